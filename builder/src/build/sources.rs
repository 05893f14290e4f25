//! Sources of COPY/ADD and RUN --mount=type=bind: patterns matched in a tree (the build
//! context minus .dockerignore, a stage's view, a download dir), each source's symlinks
//! resolved inside that tree, and the content hash that keys the build cache.

use super::resolve::real_path;
use super::Ctx;
use crate::digest::Hasher;
use crate::error::{Error, Result};
use crate::plan::glob::{has_meta, Glob};
use berth_common::inroot::{Dir, Root, Stat};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

pub struct Src<'a> {
    /// The tree the source is in.
    pub tree: &'a Root,
    /// The path as matched (context-relative for the context; for messages and keys).
    pub rel: String,
    /// Where it leads in the tree, symlinks followed inside it: no component a symlink.
    pub real: PathBuf,
    /// The name it is copied under into a directory.
    pub name: OsString,
    /// Downloaded by ADD <url> (never extracted).
    pub remote: bool,
}

impl Src<'_> {
    /// The source's host path, symlink-free (for bytes read later, and messages).
    pub fn host(&self) -> PathBuf {
        self.tree.path().join(&self.real)
    }
}

/// `p` made relative with `..` taken lexically; None when it climbs above the top.
pub fn clean_rel(p: &str) -> Option<PathBuf> {
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

/// Calls `f` with every entry under the directory `dir` (at `rel`), depth first, sorted,
/// links not followed. `f` returns whether to enter a directory.
pub fn walk(
    dir: &Dir,
    rel: &Path,
    f: &mut dyn FnMut(&Dir, &OsString, &Path, &Stat) -> Result<bool>,
) -> Result<()> {
    for name in dir.entries()? {
        let Some(st) = dir.lstat(&name)? else {
            continue;
        };
        let r = rel.join(&name);
        too_deep(dir, &r)?;
        if f(dir, &name, &r, &st)? && st.is_dir() {
            walk(&dir.open_dir(&name)?, &r, f)?;
        }
    }
    Ok(())
}

/// A path no layer can hold (longer than PATH_MAX): refused before walks recurse deeper.
pub fn too_deep(dir: &Dir, rel: &Path) -> Result<()> {
    if rel.as_os_str().len() < libc::PATH_MAX as usize {
        return Ok(());
    }
    Err(Error::invalid(
        dir.path().display().to_string(),
        "holds a path longer than PATH_MAX (4096 bytes)",
    ))
}

fn err(cx: &Ctx, line: usize, text: &str, why: impl Into<String>) -> Error {
    Error::invalid(format!("{}:{line}: {text}", cx.file_name), why)
}

/// Where an instruction is, for its errors.
pub struct Site<'a> {
    pub line: usize,
    pub text: &'a str,
}

/// Expands source patterns into concrete sources in `tree`; `ctx`: the tree is the build
/// context (its .dockerignore applies, to the paths as matched and as resolved).
pub fn sources<'a>(
    cx: &Ctx,
    at: &Site,
    tree: &'a Root,
    pats: &[String],
    ctx: bool,
) -> Result<Vec<Src<'a>>> {
    let excluded = |rel: &Path| ctx && cx.ignore.excluded(&rel.to_string_lossy());
    let mut out = vec![];
    for p in pats {
        let rel = clean_rel(p).ok_or_else(|| {
            err(
                cx,
                at.line,
                at.text,
                format!("source {p:?} is outside the build context"),
            )
        })?;
        let found: Vec<PathBuf> = if has_meta(&rel.to_string_lossy()) {
            let g = Glob::new(&rel.to_string_lossy()).map_err(|e| err(cx, at.line, at.text, e))?;
            let mut hits = vec![];
            let exceptions = cx.ignore.has_exceptions();
            walk(&tree.top()?, Path::new(""), &mut |_, _, r, _| {
                let ex = excluded(r);
                if !ex && g.matches(&r.to_string_lossy()) {
                    hits.push(r.to_path_buf());
                }
                Ok(!ex || exceptions)
            })?;
            hits
        } else if rel.as_os_str().is_empty()
            || (tree.lstat(&rel).ok().flatten().is_some() && !excluded(&rel))
        {
            vec![rel.clone()]
        } else {
            vec![]
        };
        if found.is_empty() {
            return Err(err(
                cx,
                at.line,
                at.text,
                format!("file not found in build context or excluded by .dockerignore: {p}"),
            ));
        }
        for r in found {
            out.push(resolve_src(cx, at, tree, r, ctx)?);
        }
    }
    Ok(out)
}

/// A matched path with its symlinks resolved inside the tree (a source that is a symlink
/// copies what it names there, as BuildKit's COPY does).
fn resolve_src<'a>(cx: &Ctx, at: &Site, tree: &'a Root, r: PathBuf, ctx: bool) -> Result<Src<'a>> {
    let shown = r.to_string_lossy().to_string();
    let real = match real_path(tree, &r, true) {
        Ok(real) => real,
        Err(e) => {
            let link = tree.parent(&r).ok().and_then(|(d, n)| d.read_link(&n).ok());
            let why = match (link, ctx) {
                (Some(t), true) => format!(
                    "source {shown:?} is a symlink to {t:?}, which is outside the build context \
                     (links resolve inside it)"
                ),
                (Some(t), false) => format!("source {shown:?}: symlink to {t:?} not found"),
                (None, _) => format!("source {shown:?}: {e}"),
            };
            return Err(err(cx, at.line, at.text, why));
        }
    };
    if ctx && real != r && cx.ignore.excluded(&real.to_string_lossy()) {
        return Err(err(
            cx,
            at.line,
            at.text,
            format!("source {shown:?} leads to {real:?}, excluded by .dockerignore"),
        ));
    }
    Ok(Src {
        tree,
        name: r.file_name().unwrap_or_default().to_os_string(),
        rel: shown,
        real,
        remote: false,
    })
}

/// Content hash of sources (paths, types, modes, sizes, content, link targets; owners
/// outside the context). Excluded paths are left out (entered only for exceptions).
pub fn content_hash(cx: &Ctx, srcs: &[Src], ctx: bool) -> Result<String> {
    let mut h = Hasher::new();
    for s in srcs {
        h.field("src", s.rel.as_bytes());
        let st = s.tree.lstat(&s.real)?.ok_or_else(|| {
            Error::invalid(s.host().display().to_string(), "vanished during the build")
        })?;
        let Some((dir, name)) = split(s)? else {
            // The tree's top: a directory.
            hash_entry(cx, &mut h, s, None, Path::new(""), &st, ctx)?;
            hash_dir(cx, &mut h, s, &s.tree.top()?, ctx)?;
            continue;
        };
        hash_entry(cx, &mut h, s, Some((&dir, &name)), Path::new(""), &st, ctx)?;
        if st.is_dir() {
            hash_dir(cx, &mut h, s, &dir.open_dir(&name)?, ctx)?;
        }
    }
    Ok(h.hex())
}

/// The source's parent directory and name; None for the tree's top.
fn split(s: &Src) -> Result<Option<(Dir, OsString)>> {
    if s.real.as_os_str().is_empty() {
        return Ok(None);
    }
    Ok(Some(s.tree.parent(&s.real)?))
}

fn hash_dir(cx: &Ctx, h: &mut Hasher, s: &Src, top: &Dir, ctx: bool) -> Result<()> {
    let exceptions = ctx && cx.ignore.has_exceptions();
    walk(top, Path::new(""), &mut |dir, name, rel, st| {
        let excluded = ctx && cx.ignore.excluded(&s.real.join(rel).to_string_lossy());
        if !excluded {
            hash_entry(cx, h, s, Some((dir, name)), rel, st, ctx)?;
        }
        Ok(!excluded || exceptions)
    })
}

fn hash_entry(
    cx: &Ctx,
    h: &mut Hasher,
    s: &Src,
    at: Option<(&Dir, &OsString)>,
    rel: &Path,
    st: &Stat,
    ctx: bool,
) -> Result<()> {
    h.field("path", rel.as_os_str().as_encoded_bytes());
    h.field("mode", &(st.0.st_mode).to_le_bytes());
    if !ctx {
        h.field("owner", format!("{}:{}", st.uid(), st.gid()).as_bytes());
    }
    let Some((dir, name)) = at else {
        return Ok(());
    };
    if st.is_symlink() {
        let t = dir.read_link(name)?;
        h.field("link", t.as_os_str().as_encoded_bytes());
    } else if st.is_file() {
        h.field("size", &st.size().to_le_bytes());
        let key = dir.display(name);
        let open =
            || -> Result<std::fs::File> { Ok(dir.open(name, libc::O_RDONLY | libc::O_NONBLOCK)?) };
        let d = if s.remote {
            cx.hashes.digest_uncached(&key, open)?
        } else {
            cx.hashes.digest(&key, st, open)?
        };
        h.field("blake3", d.as_bytes());
    }
    Ok(())
}
