//! RUN --mount: type=bind (context, stage or image; read-only unless rw, writes
//! discarded), type=cache (a persistent dir in the store, keyed by id or target; uid, gid,
//! mode, sharing), type=tmpfs (size), type=secret (see `secrets`). Mount points the runtime had to create are removed from the layer.

use super::sources::{clean_rel, content_hash, Src};
use super::state::StageState;
use super::Ctx;
use crate::digest::{sha256_hex, Hasher};
use crate::dockerfile::expand;
use crate::error::{Error, IoContext, Result};
use crate::exec::mount::{self, Mounted};
use crate::plan::stages::from_index;
use berth_common::inroot::{self, Root};
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

/// Mounts ready for config.json; guards keep helper overlays mounted until dropped.
#[derive(Default)]
pub struct Prepared {
    pub mounts: Vec<Value>,
    /// What the cache key must include (content of bound sources).
    pub key: String,
    pub targets: Vec<String>,
    pub guards: Vec<Mounted>,
    /// flock()s on cache mounts (sharing=shared/locked), held while the step runs.
    pub locks: Vec<crate::store::lock::Lock>,
}

fn parse_opts(
    spec: &str,
    ex: &dyn Fn(&str) -> std::result::Result<String, String>,
) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out = vec![];
    for part in spec.split(',') {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), ex(v.trim())?),
            None => (part.trim().to_ascii_lowercase(), "true".to_string()),
        };
        out.push((k, v));
    }
    Ok(out)
}

struct Req {
    typ: String,
    target: String,
    source: String,
    from: Option<String>,
    id: Option<String>,
    rw: bool,
    /// type=secret: fail when the secret was not given.
    required: bool,
    /// type=cache and secret: mode of the cache dir / secret file, and their owner.
    mode: Option<u32>,
    uid: u32,
    gid: u32,
    /// type=cache: shared (default), private or locked.
    sharing: String,
    /// type=tmpfs: size in bytes.
    size: Option<u64>,
}

fn number<T: TryFrom<u64>>(k: &str, v: &str, radix8: bool) -> std::result::Result<T, String> {
    let n = match radix8 {
        true => u64::from_str_radix(v, 8).ok(),
        false => v.parse::<u64>().ok(),
    };
    n.and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("{k}={v}: not a valid number"))
}

fn request(opts: Vec<(String, String)>, workdir: &str) -> std::result::Result<Req, String> {
    let mut r = Req {
        typ: "bind".into(),
        target: String::new(),
        source: String::new(),
        from: None,
        id: None,
        rw: false,
        required: false,
        mode: None,
        uid: 0,
        gid: 0,
        sharing: "shared".into(),
        size: None,
    };
    for (k, v) in opts {
        match k.as_str() {
            "type" => r.typ = v,
            "target" | "dst" | "destination" => r.target = v,
            "source" | "src" => r.source = v,
            "from" => r.from = Some(v),
            "id" => r.id = Some(v),
            "rw" | "readwrite" => r.rw = v != "false",
            "ro" | "readonly" => r.rw = v == "false",
            "required" => r.required = v != "false",
            "mode" => r.mode = Some(number(&k, &v, true)?),
            "uid" => r.uid = number(&k, &v, false)?,
            "gid" => r.gid = number(&k, &v, false)?,
            "size" => r.size = Some(number(&k, &v, false)?),
            "sharing" if matches!(v.as_str(), "shared" | "private" | "locked") => r.sharing = v,
            "sharing" => return Err(format!("sharing={v}: expected shared, private or locked")),
            _ => return Err(format!("unknown --mount option {k:?}")),
        }
    }
    if !matches!(r.typ.as_str(), "bind" | "cache" | "tmpfs" | "secret") {
        return Err(format!(
            "--mount type={} is not supported (bind, cache, tmpfs, secret)",
            r.typ
        ));
    }
    if r.typ == "secret" {
        // BuildKit: the id defaults to the target's file name, the target to /run/secrets/ID.
        match (&r.id, r.target.is_empty()) {
            (None, true) => return Err("type=secret needs id= or target=".into()),
            (None, false) => r.id = r.target.rsplit('/').next().map(String::from),
            (Some(id), true) => r.target = format!("/run/secrets/{id}"),
            _ => {}
        }
    }
    if r.target.is_empty() {
        return Err("--mount needs target=".into());
    }
    if !r.target.starts_with('/') {
        r.target = format!("{}/{}", workdir.trim_end_matches('/'), r.target);
    }
    Ok(r)
}

/// Prepare every --mount of a RUN step; helper mounts live under `tmp`.
pub fn prepare(
    cx: &Ctx,
    st: &StageState,
    specs: &[String],
    stage: usize,
    results: &[Option<StageState>],
    tmp: &Path,
) -> Result<Prepared> {
    let mut p = Prepared::default();
    let mut key = Hasher::new();
    let vars = |n: &str| st.lookup(n);
    let ex = |w: &str| expand::word(w, &vars, cx.df.escape);
    let workdir = st
        .config
        .config
        .working_dir
        .clone()
        .unwrap_or_else(|| "/".into());
    for (n, spec) in specs.iter().enumerate() {
        let bad = |why: String| Error::invalid(format!("--mount={spec}"), why);
        let r = request(parse_opts(spec, &ex).map_err(bad)?, &workdir).map_err(bad)?;
        key.field(
            "mount",
            format!("{}:{}:{}:{:?}:{}", r.typ, r.target, r.source, r.from, r.rw).as_bytes(),
        );
        let host = match r.typ.as_str() {
            "tmpfs" => {
                let mut o = vec!["nosuid".to_string(), "nodev".into()];
                o.extend(r.size.map(|s| format!("size={s}")));
                p.mounts.push(json!({"destination": r.target, "type": "tmpfs", "source": "tmpfs", "options": o}));
                p.targets.push(r.target);
                continue;
            }
            "cache" => {
                let d = cache_dir(cx, &r, tmp, n, &mut p.locks)?;
                p.mounts.push(json!({"destination": r.target, "type": "bind", "source": d, "options": ["rbind", "rw"]}));
                p.targets.push(r.target);
                continue;
            }
            "secret" => {
                let id = r.id.as_deref().unwrap_or_default();
                key.field("secret", id.as_bytes());
                let m = super::secrets::SecretMount {
                    id,
                    required: r.required,
                    mode: r.mode.unwrap_or(0o400),
                    uid: r.uid,
                    gid: r.gid,
                };
                if let Some(f) = super::secrets::file(&cx.opts.secrets, &m, tmp, n)? {
                    p.mounts.push(json!({"destination": r.target, "type": "bind", "source": f, "options": ["rbind", "ro"]}));
                    p.targets.push(r.target);
                }
                continue;
            }
            _ => bind_source(cx, &r, stage, results, tmp, n, &mut key, &mut p.guards)
                .map_err(|e| bad(e.to_string()))?,
        };
        let host = if r.rw && !host.is_dir() {
            // A writable file: a throwaway copy of it.
            let copy = tmp.join(format!("bindrw-{n}-file"));
            fs::copy(&host, &copy).at(&copy)?;
            copy
        } else if r.rw {
            // Writable, but writes are thrown away: an overlay with a throwaway upper.
            let (t, u, w) = (
                tmp.join(format!("bindrw-{n}")),
                tmp.join(format!("bindrw-{n}-u")),
                tmp.join(format!("bindrw-{n}-w")),
            );
            for d in [&t, &u, &w] {
                fs::create_dir_all(d).at(d)?;
            }
            p.guards.push(mount::overlay(
                &[host],
                Some((&u, &w)),
                &t,
                &tmp.join("empty-b"),
            )?);
            t
        } else {
            host
        };
        let opt = if r.rw { "rw" } else { "ro" };
        p.mounts.push(json!({"destination": r.target, "type": "bind", "source": host, "options": ["rbind", opt]}));
        p.targets.push(r.target);
    }
    p.key = key.hex();
    Ok(p)
}

/// The directory of a type=cache mount, keyed by its id (default: the target). Made with
/// the mount's uid, gid and mode (default 0:0 0755) the first time, as BuildKit. `sharing`:
/// shared users hold a shared flock; `locked` waits for an exclusive one; `private` takes it
/// if free, else the step gets a fresh throwaway directory.
fn cache_dir(
    cx: &Ctx,
    r: &Req,
    tmp: &Path,
    n: usize,
    locks: &mut Vec<crate::store::lock::Lock>,
) -> Result<PathBuf> {
    let id = r.id.clone().unwrap_or_else(|| r.target.clone());
    let base = cx.store.berth_dir().join("run-cache");
    let d = base.join(sha256_hex(id.as_bytes()));
    if !d.exists() {
        fs::create_dir_all(&base).at(&base)?;
        // Made aside and renamed: a concurrent step never sees it half set up.
        let new = tmp.join(format!("cache-{n}-new"));
        fs::create_dir(&new).at(&new)?;
        std::os::unix::fs::chown(&new, Some(r.uid), Some(r.gid)).at(&new)?;
        let mode = r.mode.unwrap_or(0o755);
        fs::set_permissions(&new, std::os::unix::fs::PermissionsExt::from_mode(mode)).at(&new)?;
        if fs::rename(&new, &d).is_err() && !d.is_dir() {
            return Err(Error::invalid(
                d.display().to_string(),
                "cannot make the cache dir",
            ));
        }
    }
    let lock_path = base.join(format!("{}.lock", sha256_hex(id.as_bytes())));
    use crate::store::lock::Lock;
    let lock = match r.sharing.as_str() {
        "locked" => Lock::exclusive(&lock_path)?,
        "shared" => Lock::shared(&lock_path)?,
        _ => match Lock::try_exclusive(&lock_path) {
            Ok(l) => l,
            Err(_) => {
                let fresh = tmp.join(format!("cache-{n}-private"));
                fs::create_dir(&fresh).at(&fresh)?;
                std::os::unix::fs::chown(&fresh, Some(r.uid), Some(r.gid)).at(&fresh)?;
                return Ok(fresh);
            }
        },
    };
    locks.push(lock);
    Ok(d)
}

#[allow(clippy::too_many_arguments)]
fn bind_source(
    cx: &Ctx,
    r: &Req,
    stage: usize,
    results: &[Option<StageState>],
    tmp: &Path,
    n: usize,
    key: &mut Hasher,
    guards: &mut Vec<Mounted>,
) -> Result<PathBuf> {
    let rel = clean_rel(&r.source)
        .ok_or_else(|| Error::invalid(r.source.clone(), "source is outside the build context"))?;
    let Some(from) = &r.from else {
        let tree = &cx.context_root;
        let fd = tree.resolve(&rel).map_err(|e| {
            Error::invalid(
                r.source.clone(),
                format!("not found in the build context (links resolve inside it): {e}"),
            )
        })?;
        let real = super::resolve::real_path(tree, &rel, true).at(tree.display(&rel))?;
        let src = Src {
            tree,
            rel: rel.to_string_lossy().to_string(),
            name: Default::default(),
            real,
            remote: false,
        };
        key.field("content", content_hash(cx, &[src], true)?.as_bytes());
        return bind_at(&fd, &tmp.join(format!("bind-{n}-src")), guards);
    };
    let st = match from_index(&cx.df, from, stage) {
        Some(j) => super::stage::built(cx, results, j, from)?,
        None => {
            let img = cx
                .store
                .resolve(from)
                .map_err(|e| super::copy::no_such_from(cx, format!("from={from}"), from, e))?;
            StageState::new(
                img.config.clone(),
                img.manifest.layers.clone(),
                &img.manifest_desc.digest,
                String::new(),
            )
        }
    };
    key.field("layers", st.config.rootfs.diff_ids.join(",").as_bytes());
    let view = tmp.join(format!("bind-{n}"));
    fs::create_dir_all(&view).at(&view)?;
    guards.push(mount::overlay(
        &st.snapshots(cx.store)?,
        None,
        &view,
        &tmp.join(format!("bind-{n}-empty")),
    )?);
    // The stage's symlinks resolve inside the stage, never on the host.
    let fd = Root::open(&view)?
        .resolve(&rel)
        .map_err(|_| Error::invalid(r.source.clone(), format!("not found in {from}")))?;
    bind_at(&fd, &tmp.join(format!("bind-{n}-src")), guards)
}

/// Binds the resolved source `fd` onto `at` (made a directory or an empty file to match),
/// which then serves as the mount's source in config.json.
fn bind_at(fd: &std::os::fd::OwnedFd, at: &Path, guards: &mut Vec<Mounted>) -> Result<PathBuf> {
    let st = inroot::fstat(fd).at(at)?;
    if st.is_dir() {
        fs::create_dir(at).at(at)?;
    } else {
        fs::File::create(at).at(at)?;
    }
    guards.push(mount::bind_fd(fd, at)?);
    Ok(at.to_path_buf())
}

/// Remove mount points (and parents) the runtime created in `upper` that the image did
/// not have, as long as they are empty directories (or a file target's empty file). The
/// step wrote `upper`: everything is examined and removed by descriptor, links unfollowed.
pub fn clean_targets(upper: &Root, lowers: &[Root], targets: &[String]) {
    let in_lower = |rel: &Path| lowers.iter().any(|l| l.lstat(rel).ok().flatten().is_some());
    for t in targets {
        let mut rel = inroot::relative(Path::new(t));
        let Ok((dir, name)) = upper.parent(&rel) else {
            continue;
        };
        let made_file = dir
            .lstat(&name)
            .ok()
            .flatten()
            .is_some_and(|m| m.is_file() && m.size() == 0)
            && !in_lower(&rel);
        if made_file && dir.unlink(&name).is_ok() {
            rel.pop();
        }
        while !rel.as_os_str().is_empty() && !in_lower(&rel) {
            let Ok((dir, name)) = upper.parent(&rel) else {
                break;
            };
            if !is_empty_dir(&dir, &name) || dir.rmdir(&name).is_err() {
                break;
            }
            rel.pop();
        }
    }
}

fn is_empty_dir(dir: &inroot::Dir, name: &OsStr) -> bool {
    dir.lstat(name).ok().flatten().is_some_and(|m| m.is_dir())
        && dir
            .open_dir(name)
            .and_then(|d| d.entries())
            .is_ok_and(|e| e.is_empty())
}
