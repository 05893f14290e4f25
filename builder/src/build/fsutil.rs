//! File copying with explicit metadata, for COPY/ADD staging.

use crate::error::{IoContext, Result};
use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Ownership/mode to give copied entries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Owner {
    /// None: keep the source's (COPY --from); Some: force.
    pub ids: Option<(u32, u32)>,
    pub chmod: Option<u32>,
}

pub fn set_mtime(p: &Path, secs: i64, nsecs: i64) -> Result<()> {
    let t = TimeSpec::new(secs, nsecs);
    utimensat(
        nix::fcntl::AT_FDCWD,
        p,
        &t,
        &t,
        UtimensatFlags::NoFollowSymlink,
    )
    .at(p)
}

/// lchown(2), with the rootless build's clear error for an id it has not mapped.
pub fn chown(p: &Path, uid: u32, gid: u32) -> Result<()> {
    lchown(p, Some(uid), Some(gid)).map_err(|source| {
        match crate::rootless::chown_error(p, uid, gid) {
            Some(e) => e.into(),
            None => crate::error::Error::Io {
                path: p.to_path_buf(),
                source,
            },
        }
    })
}

fn apply_meta(dst: &Path, md: &fs::Metadata, own: Owner, symlink: bool) -> Result<()> {
    let (uid, gid) = own.ids.unwrap_or((md.uid(), md.gid()));
    chown(dst, uid, gid)?;
    if !symlink {
        let mode = own.chmod.unwrap_or(md.mode() & 0o7777);
        fs::set_permissions(dst, fs::Permissions::from_mode(mode)).at(dst)?;
    }
    set_mtime(dst, md.mtime(), md.mtime_nsec())
}

/// Regular files staged empty, their bytes to be read from the source when the layer is
/// packed (staging path → source path): a COPY from the context then reads each byte
/// once for its cache key and once into the layer, instead of also copying it into the
/// staging dir. Such a staging dir is no snapshot; the layer is unpacked if a later step
/// needs it.
#[derive(Debug, Default)]
pub struct Deferred(RefCell<HashMap<PathBuf, PathBuf>>);

impl Deferred {
    /// `dst` was written with its own bytes after all.
    pub fn forget(&self, dst: &Path) {
        self.0.borrow_mut().remove(dst);
    }
    /// The map with keys made relative to `root` (the staging dir).
    pub fn relative_to(self, root: &Path) -> HashMap<PathBuf, PathBuf> {
        self.0
            .into_inner()
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(root).ok()?.to_path_buf(), v)))
            .collect()
    }
}

/// Copy one file or symlink (not directories) from `src` to `dst`; with `defer`, a
/// regular file is created empty and its source recorded instead.
pub fn copy_leaf(src: &Path, dst: &Path, own: Owner, defer: Option<&Deferred>) -> Result<()> {
    let md = fs::symlink_metadata(src).at(src)?;
    if let Ok(old) = fs::symlink_metadata(dst) {
        if old.is_dir() {
            fs::remove_dir_all(dst).at(dst)?;
        } else {
            fs::remove_file(dst).at(dst)?;
        }
    }
    if md.file_type().is_symlink() {
        let t = fs::read_link(src).at(src)?;
        std::os::unix::fs::symlink(&t, dst).at(dst)?;
        return apply_meta(dst, &md, own, true);
    }
    if !md.is_file() {
        return Ok(()); // devices, fifos and sockets are not copied
    }
    match defer {
        Some(d) => {
            fs::File::create(dst).at(dst)?;
            d.0.borrow_mut()
                .insert(dst.to_path_buf(), src.to_path_buf());
        }
        None => {
            fs::copy(src, dst).at(dst)?;
        }
    }
    apply_meta(dst, &md, own, false)
}

/// Copy a directory tree's contents into `dst` (created like `src`).
pub fn copy_tree(
    src: &Path,
    dst: &Path,
    own: Owner,
    skip: &dyn Fn(&Path) -> bool,
    defer: Option<&Deferred>,
) -> Result<()> {
    let md = fs::symlink_metadata(src).at(src)?;
    if !dst.is_dir() {
        fs::create_dir_all(dst).at(dst)?;
    }
    let mut names: Vec<_> = fs::read_dir(src)
        .at(src)?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for n in names {
        let (s, d) = (src.join(&n), dst.join(&n));
        if skip(&s) {
            continue;
        }
        let m = fs::symlink_metadata(&s).at(&s)?;
        if m.is_dir() {
            copy_tree(&s, &d, own, skip, defer)?;
        } else {
            copy_leaf(&s, &d, own, defer)?;
        }
    }
    apply_meta(dst, &md, own, false)
}

/// Create `rel`'s missing parents (and `rel` if `with_self`) under `staging`, copying
/// the metadata of the same directories in `view` (the image so far) when they exist.
pub fn make_parents(
    staging: &Path,
    view: Option<&Path>,
    rel: &Path,
    with_self: bool,
) -> Result<()> {
    let comps: Vec<_> = rel.components().collect();
    let n = if with_self {
        comps.len()
    } else {
        comps.len().saturating_sub(1)
    };
    let mut cur = std::path::PathBuf::new();
    for c in &comps[..n] {
        cur.push(c);
        let d = staging.join(&cur);
        if d.is_dir() {
            continue;
        }
        fs::create_dir(&d).at(&d)?;
        match view
            .map(|v| v.join(&cur))
            .and_then(|p| fs::metadata(p).ok())
        {
            Some(md) if md.is_dir() => apply_meta(&d, &md, Owner::default(), false)?,
            _ => fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).at(&d)?,
        }
    }
    Ok(())
}

/// Resolve `rel` inside the rootfs at `root` (no escape): symlinks are followed with
/// `root` as `/`, and `..` stops at the root. `follow_last`: also resolve the last
/// component. Returns a root-relative path.
pub fn resolve_in_root(root: &Path, rel: &Path, follow_last: bool) -> std::path::PathBuf {
    use std::path::{Component, PathBuf};
    let mut todo: Vec<std::ffi::OsString> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .rev()
        .collect();
    let mut out = PathBuf::new();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            out.pop();
            continue;
        }
        let cand = out.join(&c);
        let last = todo.is_empty();
        match fs::read_link(root.join(&cand)) {
            Ok(t) if hops < 40 && (!last || follow_last) => {
                hops += 1;
                if t.is_absolute() {
                    out = PathBuf::new();
                }
                for comp in t.components().rev() {
                    match comp {
                        Component::Normal(n) => todo.push(n.to_os_string()),
                        Component::ParentDir => todo.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => out = cand,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn resolves_inside_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("run/x")).unwrap();
        fs::create_dir_all(r.join("var")).unwrap();
        std::os::unix::fs::symlink("/run", r.join("var/run")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", r.join("var/esc")).unwrap();
        std::os::unix::fs::symlink("x", r.join("run/y")).unwrap();
        assert_eq!(
            resolve_in_root(r, Path::new("var/run/a"), false),
            Path::new("run/a")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("var/esc/passwd"), false),
            Path::new("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("var/run/y"), true),
            Path::new("run/x")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("var/run/y"), false),
            Path::new("run/y")
        );
    }
}
