//! COPY and ADD: sources from the context (minus .dockerignore), another stage or an
//! image, or heredocs; staged into a directory that becomes the layer.

use super::fsutil::{copy_leaf, copy_tree, make_parents, resolve_in_root, Deferred, Owner};
use super::run::{apply_record, commit_dir, resolve_user};
use super::state::StageState;
use super::tmp::TmpDir;
use super::{fetch, Ctx};
use crate::digest::Hasher;
use crate::dockerfile::{expand, CopySpec, Instruction};
use crate::error::{Error, IoContext, Result};
use crate::exec::mount;
use crate::plan::cache;
use crate::plan::glob::{has_meta, Glob};
use crate::plan::stages::stage_index;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Where sources come from.
enum Root {
    Context,
    /// Layers of a stage or image.
    Layers(Box<StageState>),
}

pub(super) struct Src {
    pub abs: PathBuf,
    /// Context-relative path (for .dockerignore and messages).
    pub rel: String,
    /// Downloaded by ADD <url> (never extracted).
    pub remote: bool,
}

fn clean_rel(p: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir if !out.pop() => {
                return None;
            }
            _ => {}
        }
    }
    Some(out)
}

/// All non-ignored paths under `root`, relative, sorted.
fn walk_rel(root: &Path, skip: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut out = vec![];
    for e in walkdir::WalkDir::new(root)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .flatten()
    {
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap_or(e.path())
            .to_string_lossy()
            .to_string();
        if !skip(&rel) {
            out.push(rel);
        }
    }
    out
}

fn err(cx: &Ctx, ins: &Instruction, why: impl Into<String>) -> Error {
    Error::invalid(format!("{}:{}: {}", cx.file_name, ins.line, ins.text), why)
}

/// Expand source patterns into concrete sources under `root`.
fn sources(
    cx: &Ctx,
    ins: &Instruction,
    root: &Path,
    pats: &[String],
    ctx: bool,
) -> Result<Vec<Src>> {
    let skip = |rel: &str| ctx && cx.ignore.excluded(rel);
    let canon_root = fs::canonicalize(root).at(root)?;
    let mut out = vec![];
    for p in pats {
        let rel = clean_rel(p).ok_or_else(|| {
            err(
                cx,
                ins,
                format!("source {p:?} is outside the build context"),
            )
        })?;
        let rels = rel.to_string_lossy().to_string();
        let found: Vec<String> = if has_meta(&rels) {
            let g = Glob::new(&rels).map_err(|e| err(cx, ins, e))?;
            walk_rel(root, &skip)
                .into_iter()
                .filter(|r| g.matches(r))
                .collect()
        } else if rels.is_empty() || (root.join(&rel).symlink_metadata().is_ok() && !skip(&rels)) {
            vec![rels.clone()]
        } else {
            vec![]
        };
        if found.is_empty() {
            return Err(err(
                cx,
                ins,
                format!("file not found in build context or excluded by .dockerignore: {p}"),
            ));
        }
        for r in found {
            let abs = root.join(&r);
            if ctx {
                let c = fs::canonicalize(&abs).at(&abs)?;
                if !c.starts_with(&canon_root) {
                    return Err(err(
                        cx,
                        ins,
                        format!("source {r:?} resolves outside the build context"),
                    ));
                }
            }
            out.push(Src {
                abs,
                rel: r,
                remote: false,
            });
        }
    }
    Ok(out)
}

/// Content hash of sources (paths, types, modes, sizes, content, link targets).
pub(super) fn content_hash(cx: &Ctx, srcs: &[Src], ctx: bool) -> Result<String> {
    let mut h = Hasher::new();
    for s in srcs {
        h.field("src", s.rel.as_bytes());
        let walk = walkdir::WalkDir::new(&s.abs)
            .sort_by_file_name()
            .follow_root_links(true);
        for e in walk {
            let e = e.map_err(|e| Error::invalid(s.abs.display().to_string(), e.to_string()))?;
            let rel = e
                .path()
                .strip_prefix(&s.abs)
                .unwrap_or(e.path())
                .to_string_lossy()
                .to_string();
            let full = Path::new(&s.rel).join(&rel).to_string_lossy().to_string();
            if ctx && !rel.is_empty() && cx.ignore.excluded(&full) {
                continue;
            }
            // A top-level symlink is followed (COPY copies what it points to).
            let md = if rel.is_empty() {
                fs::metadata(e.path())
            } else {
                e.path().symlink_metadata()
            };
            let md = md.at(e.path())?;
            h.field("path", rel.as_bytes());
            h.field("mode", &md.mode().to_le_bytes());
            if !ctx {
                h.field("owner", format!("{}:{}", md.uid(), md.gid()).as_bytes());
            }
            if md.file_type().is_symlink() {
                let t = fs::read_link(e.path()).at(e.path())?;
                h.field("link", t.as_os_str().as_encoded_bytes());
            } else if md.is_file() {
                h.field("size", &md.len().to_le_bytes());
                h.field("blake3", cx.hashes.digest(e.path(), &md)?.as_bytes());
            }
        }
    }
    Ok(h.hex())
}

fn source_root(
    cx: &Ctx,
    from: &Option<String>,
    stage: usize,
    results: &[Option<StageState>],
) -> Result<Root> {
    let Some(f) = from else {
        return Ok(Root::Context);
    };
    if let Some(j) = stage_index(&cx.df, f, stage) {
        let st = super::stage::built(cx, results, j, f)?;
        return Ok(Root::Layers(Box::new(st)));
    }
    let img = cx.store.resolve(f)?;
    let st = StageState::new(
        img.config.clone(),
        img.manifest.layers.clone(),
        &img.manifest_desc.digest,
        String::new(),
    );
    Ok(Root::Layers(Box::new(st)))
}

fn parse_chmod(s: &str) -> std::result::Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("invalid --chmod={s}: expected an octal mode"))
}

struct Expanded {
    srcs: Vec<String>,
    dest: String,
    chown: Option<String>,
    chmod: Option<u32>,
    from: Option<String>,
}

fn expand_spec(cx: &Ctx, st: &StageState, ins: &Instruction, c: &CopySpec) -> Result<Expanded> {
    let s = st.clone();
    let vars = move |n: &str| s.lookup(n);
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
            .map(|m| ex(m).and_then(|m| parse_chmod(&m).map_err(|e| err(cx, ins, e))))
            .transpose()?,
        from: c.from.as_deref().map(ex).transpose()?,
    })
}

/// Cache key of a COPY/ADD: expanded arguments plus the content of the sources.
fn copy_key(
    st: &StageState,
    c: &CopySpec,
    x: &Expanded,
    root: &Root,
    srcs: &[Src],
    cx: &Ctx,
    add: bool,
) -> Result<String> {
    let mut content = match root {
        Root::Context => content_hash(cx, srcs, true)?,
        Root::Layers(s) => {
            let mut h = Hasher::new();
            h.field("layers", s.config.rootfs.diff_ids.join(",").as_bytes());
            for sr in srcs {
                h.field("src", sr.rel.as_bytes());
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
    let root = source_root(cx, &x.from, stage, results)?;
    let tmp = TmpDir::new(cx.store, "copy")?;
    let (src_dir, _src_mnt, ctx) = match &root {
        Root::Context => (cx.context.clone(), None, true),
        Root::Layers(s) => {
            let d = tmp.path().join("src");
            fs::create_dir_all(&d).at(&d)?;
            let m = mount::overlay(&s.snapshots(cx.store)?, None, &d, &tmp.path().join("empty"))?;
            (d, Some(m), false)
        }
    };
    let mut srcs = sources(cx, ins, &src_dir, &x.srcs, ctx)?;
    for (n, u) in urls.iter().enumerate() {
        let d = tmp.path().join(format!("url-{n}"));
        fs::create_dir_all(&d).at(&d)?;
        let abs =
            fetch::fetch(u, &d, c.checksum.as_deref()).map_err(|e| err(cx, ins, e.to_string()))?;
        srcs.push(Src {
            abs,
            rel: u.clone(),
            remote: true,
        });
    }
    let key = copy_key(st, c, &x, &root, &srcs, cx, add)?;
    let created_by = format!("{} # buildkit", ins.text);
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
    let owner = Owner {
        ids: match &x.chown {
            Some(u) => Some(resolve_user(&view_dir, u).map_err(|e| err(cx, ins, e.to_string()))?),
            None if ctx => Some((0, 0)),
            None => None,
        },
        chmod: x.chmod,
    };
    let n_items = srcs.len() + c.heredocs.len();
    let dest_dir = x.dest.ends_with('/')
        || x.dest.ends_with("/.")
        || x.dest.ends_with("/..")
        || n_items > 1
        || srcs.iter().any(|s| s.abs.is_dir());
    // The destination as the image resolves it (e.g. /var/run/x → /run/x).
    let dest_rel = clean_rel(&x.dest).unwrap_or_default();
    let mut dest_rel = resolve_in_root(&view_dir, &dest_rel, false);
    let followed = resolve_in_root(&view_dir, &dest_rel, true);
    let view_is_dir = !dest_rel.as_os_str().is_empty() && view_dir.join(&followed).is_dir();
    if view_is_dir || dest_dir {
        dest_rel = followed;
    }
    let skip = |p: &Path| {
        ctx && p
            .strip_prefix(&src_dir)
            .map(|r| cx.ignore.excluded(&r.to_string_lossy()))
            .unwrap_or(false)
    };
    let deferred = Deferred::default();
    let pcx = PlaceCx {
        staging: &staging,
        deferred: &deferred,
        view: &view_dir,
        dest_rel: &dest_rel,
        into_dir: dest_dir || view_is_dir || dest_rel.as_os_str().is_empty(),
        owner,
        add,
        ctx,
    };
    place(cx, ins, &pcx, &srcs, &skip)?;
    place_heredocs(st, c, &pcx)?;
    view.unmount()?;
    let content = deferred.relative_to(&staging);
    let rec = commit_dir(cx, st, &staging, &key, false, &content)?;
    apply_record(st, &rec, &created_by);
    st.key = key;
    Ok(false)
}

/// COPY <<EOF: each heredoc becomes a file named after its delimiter.
fn place_heredocs(st: &StageState, c: &CopySpec, p: &PlaceCx) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for h in &c.heredocs {
        let target = if p.into_dir {
            p.dest_rel.join(&h.name)
        } else {
            p.dest_rel.to_path_buf()
        };
        make_parents(p.staging, Some(p.view), &target, false)?;
        let text = if h.expand {
            let s = st.clone();
            expand::heredoc(&h.content, &move |n: &str| s.lookup(n))
                .unwrap_or_else(|_| h.content.clone())
        } else {
            h.content.clone()
        };
        let f = p.staging.join(&target);
        p.deferred.forget(&f);
        fs::write(&f, text).at(&f)?;
        let (uid, gid) = p.owner.ids.unwrap_or((0, 0));
        super::fsutil::chown(&f, uid, gid)?;
        fs::set_permissions(
            &f,
            fs::Permissions::from_mode(p.owner.chmod.unwrap_or(0o644)),
        )
        .at(&f)?;
    }
    Ok(())
}

struct PlaceCx<'a> {
    staging: &'a Path,
    /// Context files whose bytes go straight from the context into the layer.
    deferred: &'a Deferred,
    view: &'a Path,
    dest_rel: &'a Path,
    into_dir: bool,
    owner: Owner,
    add: bool,
    ctx: bool,
}

fn place(
    cx: &Ctx,
    ins: &Instruction,
    p: &PlaceCx,
    srcs: &[Src],
    skip: &dyn Fn(&Path) -> bool,
) -> Result<()> {
    for s in srcs {
        let md = fs::metadata(&s.abs).at(&s.abs)?;
        if md.is_dir() {
            make_parents(p.staging, Some(p.view), p.dest_rel, true)?;
            let defer = p.ctx.then_some(p.deferred);
            copy_tree(&s.abs, &p.staging.join(p.dest_rel), p.owner, skip, defer)?;
            continue;
        }
        if p.add && p.ctx && !s.remote && crate::layer::unpack::is_archive(&s.abs) {
            make_parents(p.staging, Some(p.view), p.dest_rel, true)?;
            let opts = crate::layer::unpack::UnpackOptions {
                overlay_whiteouts: false,
                strict: true,
            };
            let r = crate::layer::unpack::open_tar(&s.abs)?;
            crate::layer::unpack::unpack(r, &p.staging.join(p.dest_rel), opts, &s.abs)
                .map_err(|e| err(cx, ins, e.to_string()))?;
            continue;
        }
        let name = s.abs.file_name().unwrap_or_default();
        let target = if p.into_dir {
            p.dest_rel.join(name)
        } else {
            p.dest_rel.to_path_buf()
        };
        make_parents(p.staging, Some(p.view), &target, false)?;
        // Follow a top-level symlink (it was checked to stay inside the context).
        let real = if p.ctx && !s.remote {
            fs::canonicalize(&s.abs).at(&s.abs)?
        } else {
            s.abs.clone()
        };
        let defer = (p.ctx && !s.remote).then_some(p.deferred);
        copy_leaf(&real, &p.staging.join(&target), p.owner, defer)?;
    }
    Ok(())
}
