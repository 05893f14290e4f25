//! COPY and ADD: sources from the context (minus .dockerignore), another stage or an
//! image, or heredocs; staged into a directory that becomes the layer. Sources are read and
//! the staging dir is written only through descriptors (`inroot`): symlinks of the context,
//! of a stage and of the staged layer itself resolve inside their own tree.

use super::chmod::Chmod;
use super::fsutil::{copy_leaf, copy_tree, make_dirs, make_parent, set_dir_mtime, At, CopyOpts};
use super::fsutil::{Deferred, Owner};
use super::resolve::resolve_dest;
use super::run::{apply_record, commit_dir, resolve_user};
use super::sources::{clean_rel, content_hash, sources, Site, Src};
use super::state::StageState;
use super::tmp::TmpDir;
use super::{fetch, Ctx};
use crate::digest::Hasher;
use crate::dockerfile::{expand, CopySpec, Instruction};
use crate::error::{Error, IoContext, Result};
use crate::exec::mount;
use crate::plan::cache;
use crate::plan::stages::from_index;
use berth_common::inroot::{is_plain_name, Root};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where sources come from.
enum From {
    Context,
    /// Layers of a stage or image.
    Layers(Box<StageState>),
}

fn err(cx: &Ctx, ins: &Instruction, why: impl Into<String>) -> Error {
    Error::invalid(format!("{}:{}: {}", cx.file_name, ins.line, ins.text), why)
}

fn source_root(
    cx: &Ctx,
    from: &Option<String>,
    stage: usize,
    results: &[Option<StageState>],
) -> Result<From> {
    let Some(f) = from else {
        return Ok(From::Context);
    };
    if let Some(j) = from_index(&cx.df, f, stage) {
        let st = super::stage::built(cx, results, j, f)?;
        return Ok(From::Layers(Box::new(st)));
    }
    let img = cx
        .store
        .resolve(f)
        .map_err(|e| no_such_from(cx, format!("COPY --from={f}"), f, e))?;
    let st = StageState::new(
        img.config.clone(),
        img.manifest.layers.clone(),
        &img.manifest_desc.digest,
        String::new(),
    );
    Ok(From::Layers(Box::new(st)))
}

/// An unknown `--from`: BuildKit's wording, with the stage names (a typo is the usual cause).
pub fn no_such_from(cx: &Ctx, what: String, f: &str, e: Error) -> Error {
    if !e.to_string().contains("not found") {
        return e;
    }
    let names: Vec<&str> = cx
        .df
        .stages
        .iter()
        .filter_map(|s| s.name.as_deref())
        .collect();
    let why = match names.is_empty() {
        true => format!("no stage or image named {f}"),
        false => format!("no stage or image named {f} (stages: {})", names.join(", ")),
    };
    Error::invalid(what, why)
}

struct Expanded {
    srcs: Vec<String>,
    dest: String,
    chown: Option<String>,
    chmod: Option<Chmod>,
    from: Option<String>,
}

fn expand_spec(cx: &Ctx, st: &StageState, ins: &Instruction, c: &CopySpec) -> Result<Expanded> {
    let vars = |n: &str| st.lookup(n);
    let ex = |w: &str| expand::word(w, &vars, cx.df.escape).map_err(|e| err(cx, ins, e));
    let mut srcs = vec![];
    for w in &c.srcs {
        if !c.json && crate::dockerfile::lexer::heredoc_marker(w).is_some() {
            continue;
        }
        srcs.push(ex(w)?);
    }
    let dest = ex(&c.dest)?;
    let workdir = st
        .config
        .config
        .working_dir
        .clone()
        .unwrap_or_else(|| "/".into());
    let dest = if dest.starts_with('/') {
        dest
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), dest)
    };
    Ok(Expanded {
        srcs,
        dest,
        chown: c.chown.as_deref().map(ex).transpose()?,
        chmod: c
            .chmod
            .as_deref()
            .map(|m| ex(m).and_then(|m| super::chmod::parse(&m).map_err(|e| err(cx, ins, e))))
            .transpose()?,
        from: match c.from.as_deref() {
            Some(f) if f.contains('$') => return Err(err(cx, ins, format!(
                "--from={f}: variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround"
            ))),
            f => f.map(String::from),
        },
    })
}

/// Cache key of a COPY/ADD: expanded arguments plus the content of the sources.
fn copy_key(
    st: &StageState,
    c: &CopySpec,
    x: &Expanded,
    from: &From,
    srcs: &[Src],
    cx: &Ctx,
    add: bool,
) -> Result<String> {
    let mut content = match from {
        From::Context => content_hash(cx, srcs, true)?,
        // What matches the patterns is fixed by the layers: the key needs neither their
        // files nor the matches, so a hit fetches no layer of an imported cache.
        From::Layers(s) => {
            let mut h = Hasher::new();
            h.field("layers", s.config.rootfs.diff_ids.join(",").as_bytes());
            for p in &x.srcs {
                h.field("src", p.as_bytes());
            }
            for sr in srcs.iter().filter(|s| s.remote) {
                h.field("remote", sr.rel.as_bytes());
            }
            h.hex()
        }
    };
    for h in &c.heredocs {
        content.push_str(&format!("|heredoc {} {}", h.name, h.content));
    }
    let instr = format!(
        "{} dest={} chown={:?} chmod={:?} from={:?} epoch={:?}",
        if add { "ADD" } else { "COPY" },
        x.dest,
        x.chown,
        x.chmod,
        x.from,
        cx.opts.epoch
    );
    Ok(st.step_key(&instr, false, &content))
}

pub fn copy(
    cx: &Ctx,
    st: &mut StageState,
    ins: &Instruction,
    c: &CopySpec,
    add: bool,
    stage: usize,
    results: &[Option<StageState>],
) -> Result<bool> {
    let mut x = expand_spec(cx, st, ins, c)?;
    let urls: Vec<String> = x
        .srcs
        .iter()
        .filter(|s| add && fetch::is_url(s))
        .cloned()
        .collect();
    x.srcs.retain(|s| !(add && fetch::is_url(s)));
    if c.checksum.is_some() && (!x.srcs.is_empty() || !c.heredocs.is_empty()) {
        // BuildKit's rule: a checksum pins a download; a local file has nothing to pin.
        return Err(err(
            cx,
            ins,
            "checksum can't be specified for non-HTTP(S) sources",
        ));
    }
    if add
        && x.srcs
            .iter()
            .any(|s| s.starts_with("git@") || s.ends_with(".git"))
    {
        return Err(err(cx, ins, "ADD of a git repository is not supported"));
    }
    if !add && x.srcs.iter().any(|s| fetch::is_url(s)) {
        return Err(err(cx, ins, "COPY does not take URLs (use ADD)"));
    }
    let from = source_root(cx, &x.from, stage, results).map_err(|e| super::locate(cx, ins, e))?;
    let created_by = format!("{} # buildkit", ins.text);
    if let (From::Layers(_), true, false) = (&from, urls.is_empty(), cx.opts.no_cache) {
        let key = copy_key(st, c, &x, &from, &[], cx, add)?;
        if let Some(rec) = cache::get(cx.store, &key) {
            apply_record(st, &rec, &created_by);
            st.key = key;
            return Ok(true);
        }
    }
    let tmp = TmpDir::new(cx.store, "copy")?;
    let stage_tree;
    let (tree, _src_mnt, ctx) = match &from {
        From::Context => (&cx.context_root, None, true),
        From::Layers(s) => {
            let d = tmp.path().join("src");
            fs::create_dir_all(&d).at(&d)?;
            let m = mount::overlay(&s.snapshots(cx.store)?, None, &d, &tmp.path().join("empty"))?;
            stage_tree = Root::open(&d)?;
            (&stage_tree, Some(m), false)
        }
    };
    let site = Site {
        line: ins.line,
        text: &ins.text,
    };
    let mut srcs = sources(cx, &site, tree, &x.srcs, ctx)?;
    let downloads = download(cx, ins, &tmp, &urls, c.checksum.as_deref())?;
    for (u, (root, name)) in urls.iter().zip(&downloads) {
        srcs.push(Src {
            tree: root,
            rel: u.clone(),
            real: PathBuf::from(name),
            name: name.into(),
            remote: true,
        });
    }
    let key = copy_key(st, c, &x, &from, &srcs, cx, add)?;
    if !cx.opts.no_cache {
        if let Some(rec) = cache::get(cx.store, &key) {
            apply_record(st, &rec, &created_by);
            st.key = key;
            return Ok(true);
        }
    }
    let staging = tmp.path().join("layer");
    fs::create_dir_all(&staging).at(&staging)?;
    let view_dir = tmp.path().join("view");
    fs::create_dir_all(&view_dir).at(&view_dir)?;
    let view = mount::overlay(
        &st.snapshots(cx.store)?,
        None,
        &view_dir,
        &tmp.path().join("empty2"),
    )?;
    let view_root = Root::open(&view_dir)?;
    let owner = Owner {
        ids: match &x.chown {
            Some(u) => Some(chown_ids(&view_root, u).map_err(|e| err(cx, ins, e.to_string()))?),
            None if ctx => Some((0, 0)),
            None => None,
        },
        chmod: x.chmod,
    };
    let mut src_dirs = false;
    for s in &srcs {
        src_dirs |= s.tree.lstat(&s.real)?.is_some_and(|m| m.is_dir());
    }
    let n_items = srcs.len() + c.heredocs.len();
    let dest_dir = x.dest.ends_with('/')
        || x.dest.ends_with("/.")
        || x.dest.ends_with("/..")
        || n_items > 1
        || src_dirs;
    // The destination as the image resolves it (e.g. /var/run/x → /run/x).
    let dest_rel = clean_rel(&x.dest).unwrap_or_default();
    let mut dest_rel = resolve_dest(&view_root, &dest_rel, false);
    let followed = resolve_dest(&view_root, &dest_rel, true);
    let view_is_dir = !dest_rel.as_os_str().is_empty()
        && view_root
            .lstat(&followed)
            .ok()
            .flatten()
            .is_some_and(|m| m.is_dir());
    if view_is_dir || dest_dir {
        dest_rel = followed;
    }
    let deferred = Deferred::default();
    let staging_root = Root::open(&staging)?;
    let pcx = &PlaceCx {
        staging: &staging_root,
        deferred: &deferred,
        view: &view_root,
        dest_rel: &dest_rel,
        into_dir: dest_dir || view_is_dir || dest_rel.as_os_str().is_empty(),
        parents: x.chown.as_ref().and(owner.ids),
        owner,
        add,
        ctx,
    };
    place(cx, ins, pcx, &srcs)?;
    place_heredocs(cx, ins, st, c, pcx)?;
    // Nothing of the view may stay open: it is unmounted now, not lazily.
    drop((staging_root, view_root));
    view.unmount()?;
    let content = deferred.into_map();
    let rec = commit_dir(cx, st, &staging, &key, false, &content)?;
    apply_record(st, &rec, &created_by);
    st.key = key;
    Ok(false)
}

/// ADD <url>...: each download in a directory of its own; (that tree, the file's name).
fn download(
    cx: &Ctx,
    ins: &Instruction,
    tmp: &TmpDir,
    urls: &[String],
    checksum: Option<&str>,
) -> Result<Vec<(Root, String)>> {
    let mut out = vec![];
    for (n, u) in urls.iter().enumerate() {
        let d = tmp.path().join(format!("url-{n}"));
        fs::create_dir_all(&d).at(&d)?;
        let file = fetch::fetch(u, &d, checksum).map_err(|e| err(cx, ins, e.to_string()))?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        out.push((Root::open(&d)?, name));
    }
    Ok(out)
}

/// COPY <<EOF: each heredoc becomes a file named after its delimiter (replacing whatever
/// an earlier source staged there, a symlink included: never written through).
fn place_heredocs(
    cx: &Ctx,
    ins: &Instruction,
    st: &StageState,
    c: &CopySpec,
    p: &PlaceCx,
) -> Result<()> {
    for h in &c.heredocs {
        if !is_plain_name(std::ffi::OsStr::new(&h.name)) {
            return Err(err(
                cx,
                ins,
                format!("heredoc name {:?} is not a file name", h.name),
            ));
        }
        let target = if p.into_dir {
            p.dest_rel.join(&h.name)
        } else {
            p.dest_rel.to_path_buf()
        };
        let (dir, name) = make_parent(p.staging, Some(p.view), &target, p.parents)?;
        let text = if h.expand {
            expand::heredoc(&h.content, &|n: &str| st.lookup(n))
                .unwrap_or_else(|_| h.content.clone())
        } else {
            h.content.clone()
        };
        p.deferred.forget(&target);
        dir.remove_all(&name)?;
        let mut f = dir.create(&name, 0o600)?;
        f.write_all(text.as_bytes()).at(dir.display(&name))?;
        drop(f);
        let (uid, gid) = p.owner.ids.unwrap_or((0, 0));
        let mode = p.owner.chmod.map_or(0o644, |c| c.apply(0o644, false));
        let meta = dir
            .lstat(&name)?
            .ok_or_else(|| Error::invalid(dir.display(&name).display().to_string(), "vanished"))?;
        let own = Owner {
            ids: Some((uid, gid)),
            chmod: Some(Chmod::Octal(mode)),
        };
        super::fsutil::set_meta(&dir, &name, &meta, own)?;
    }
    Ok(())
}

struct PlaceCx<'a> {
    staging: &'a Root,
    /// Context files whose bytes go straight from the context into the layer.
    deferred: &'a Deferred,
    view: &'a Root,
    dest_rel: &'a Path,
    into_dir: bool,
    /// Owner of the directories the copy makes (BuildKit's mkdir as the --chown user).
    parents: Option<(u32, u32)>,
    owner: Owner,
    add: bool,
    ctx: bool,
}

fn place(cx: &Ctx, ins: &Instruction, p: &PlaceCx, srcs: &[Src]) -> Result<()> {
    let skip = |rel: &Path| p.ctx && cx.ignore.excluded(&rel.to_string_lossy());
    for s in srcs {
        let Some(st) = s.tree.lstat(&s.real)? else {
            return Err(err(
                cx,
                ins,
                format!("{}: vanished during the build", s.rel),
            ));
        };
        let host = s.host();
        let defer = (p.ctx && !s.remote).then_some(p.deferred);
        if st.is_dir() {
            let dd = make_dirs(p.staging, Some(p.view), p.dest_rel, p.parents)?;
            let sd = s.tree.dir(&s.real)?;
            let o = CopyOpts {
                own: p.owner,
                skip: &skip,
                exceptions: p.ctx && cx.ignore.has_exceptions(),
                defer,
            };
            let src = At {
                dir: &sd,
                rel: s.real.clone(),
                host,
            };
            let dst = At {
                dir: &dd,
                rel: p.dest_rel.to_path_buf(),
                host: PathBuf::new(),
            };
            // The destination directory keeps its own mode and owner (made 0755 when
            // missing): --chown/--chmod are for the copied content (BuildKit). Its mtime
            // stays the image's (or the source's, when made), not the time of this copy.
            copy_tree(&o, &src, &dst)?;
            let kept = p
                .view
                .lstat(p.dest_rel)
                .ok()
                .flatten()
                .filter(|v| v.is_dir());
            set_dir_mtime(&dd, kept.map_or(st.mtime(), |v| v.mtime()))?;
            continue;
        }
        if p.add && p.ctx && !s.remote && crate::layer::unpack::is_archive(&host) {
            let dd = make_dirs(p.staging, Some(p.view), p.dest_rel, p.parents)?;
            let opts = crate::layer::unpack::UnpackOptions {
                overlay_whiteouts: false,
                strict: true,
            };
            let r = crate::layer::unpack::open_tar(&host)?;
            let dest = berth_common::inroot::Root::from_dir(dd);
            crate::layer::unpack::unpack(r, &dest, opts, &host)
                .map_err(|e| err(cx, ins, e.to_string()))?;
            continue;
        }
        let target = if p.into_dir {
            p.dest_rel.join(&s.name)
        } else {
            p.dest_rel.to_path_buf()
        };
        let (dd, name) = make_parent(p.staging, Some(p.view), &target, p.parents)?;
        let (sd, sname) = s.tree.parent(&s.real)?;
        let o = CopyOpts {
            own: p.owner,
            skip: &skip,
            exceptions: false,
            defer,
        };
        let parent_rel = target.parent().unwrap_or(Path::new("")).to_path_buf();
        let src = At {
            dir: &sd,
            rel: PathBuf::new(),
            host: host.parent().unwrap_or(Path::new("/")).to_path_buf(),
        };
        let dst = At {
            dir: &dd,
            rel: parent_rel,
            host: PathBuf::new(),
        };
        copy_leaf(&o, (&src, &sname), &st, (&dst, &name))?;
    }
    Ok(())
}

/// `--chown=USER[:GROUP]` → (uid, gid) as BuildKit's file op reads it: a name takes its
/// passwd entry's uid and primary gid; a bare number N is N:N (not RUN's USER rule, where
/// the gid comes from /etc/passwd).
fn chown_ids(root: &Root, spec: &str) -> Result<(u32, u32)> {
    match spec.parse::<u32>() {
        Ok(n) => Ok((n, n)),
        Err(_) => resolve_user(root, spec),
    }
}
