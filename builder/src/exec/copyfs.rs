//! The copy-based stand-in for an overlay mount, for rootless builds where the kernel
//! refuses overlay in a user namespace (before Linux 5.11, or an upper filesystem
//! without user xattrs). `materialize` copies the merged lowers into the target dir
//! (whiteouts and opaque dirs applied) and notes each entry's (inode, ctime); `diff`
//! later writes what changed into the upper dir in overlay's own format: changed and
//! new entries, 0/0 char devices for deleted ones, the opaque xattr on a directory
//! that replaced another entry. ctime cannot be set from user space, so any change of
//! content or metadata is seen; a replaced entry has a new inode or birth time.

use crate::error::{IoContext, Result};
use crate::layer::xattr;
use nix::sys::stat::{mknod, Mode, SFlag};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// An entry's identity (inode and birth time: a freed inode is soon reused, as when
/// `rm -rf d && mkdir d`) and its last change (ctime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sig {
    id: (u64, Option<std::time::SystemTime>),
    changed: (i64, i64),
}

/// What each entry of the materialized tree was.
#[derive(Debug, Default)]
pub struct Record {
    sig: HashMap<PathBuf, Sig>,
    /// A directory's entries at materialize time (for deletions).
    names: HashMap<PathBuf, Vec<OsString>>,
}

fn sig(md: &fs::Metadata) -> Sig {
    Sig {
        id: (md.ino(), md.created().ok()),
        changed: (md.ctime(), md.ctime_nsec()),
    }
}

/// Is this a whiteout of overlay's (a 0/0 char device)?
fn is_whiteout(md: &fs::Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

/// Copy the merged view of `lowers` (top-most first) into `target`.
pub fn materialize(lowers: &[PathBuf], target: &Path) -> Result<Record> {
    let dirs: Vec<PathBuf> = lowers.to_vec();
    merge_dir(&dirs, target)?;
    let mut rec = Record::default();
    for e in walkdir::WalkDir::new(target).min_depth(1) {
        let e =
            e.map_err(|e| crate::Error::invalid(target.display().to_string(), e.to_string()))?;
        let rel = e
            .path()
            .strip_prefix(target)
            .expect("under target")
            .to_path_buf();
        let md = e.path().symlink_metadata().at(e.path())?;
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        rec.names
            .entry(parent)
            .or_default()
            .push(e.file_name().to_os_string());
        rec.sig.insert(rel, sig(&md));
    }
    Ok(rec)
}

/// Merge the same directory of several layers (top-most first) into `dst`.
fn merge_dir(srcs: &[PathBuf], dst: &Path) -> Result<()> {
    // name → the layers' paths for it, top-most first, down to an opaque dir or a
    // non-directory (which hides everything below it).
    let mut names: BTreeMap<OsString, Vec<PathBuf>> = BTreeMap::new();
    let mut closed: Vec<OsString> = vec![];
    for src in srcs {
        let Ok(rd) = fs::read_dir(src) else { continue };
        for e in rd {
            let e = e.at(src)?;
            let (name, p) = (e.file_name(), e.path());
            if closed.contains(&name) {
                continue;
            }
            let md = p.symlink_metadata().at(&p)?;
            if !md.is_dir() || xattr::is_opaque(&p) {
                closed.push(name.clone());
            }
            names.entry(name).or_default().push(p);
        }
    }
    for (name, paths) in names {
        let top = &paths[0];
        let md = top.symlink_metadata().at(top)?;
        let out = dst.join(&name);
        if is_whiteout(&md) {
            continue;
        } else if md.is_dir() {
            fs::create_dir(&out).at(&out)?;
            merge_dir(&paths, &out)?;
            meta(&out, &md)?;
        } else {
            leaf(top, &out, &md)?;
        }
    }
    Ok(())
}

/// Owner, mode and mtime of `md` onto `p` (mode not for symlinks).
fn meta(p: &Path, md: &fs::Metadata) -> Result<()> {
    crate::build::fsutil::chown(p, md.uid(), md.gid())?;
    if !md.file_type().is_symlink() {
        fs::set_permissions(p, fs::Permissions::from_mode(md.mode() & 0o7777)).at(p)?;
    }
    crate::build::fsutil::set_mtime(p, md.mtime(), md.mtime_nsec())
}

/// Copy a non-directory (file, symlink, device, fifo) with its metadata.
fn leaf(src: &Path, dst: &Path, md: &fs::Metadata) -> Result<()> {
    let ft = md.file_type();
    if ft.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(src).at(src)?, dst).at(dst)?;
    } else if ft.is_file() {
        fs::copy(src, dst).at(dst)?;
        if let Ok(Some(cap)) = xattr::get(src, "security.capability") {
            let _ = xattr::set(dst, "security.capability", &cap);
        }
    } else if ft.is_socket() {
        return Ok(());
    } else {
        let kind = if ft.is_char_device() {
            SFlag::S_IFCHR
        } else if ft.is_block_device() {
            SFlag::S_IFBLK
        } else {
            SFlag::S_IFIFO
        };
        mknod(dst, kind, Mode::from_bits_truncate(md.mode()), md.rdev()).at(dst)?;
    }
    meta(dst, md)
}

/// Write the changes of `target` since `materialize` into `upper` (overlay format).
pub fn diff(target: &Path, rec: &Record, upper: &Path) -> Result<()> {
    diff_dir(target, rec, upper, Path::new("")).map(|_| ())
}

/// Diff one directory; returns whether anything under it went into `upper`.
fn diff_dir(target: &Path, rec: &Record, upper: &Path, rel: &Path) -> Result<bool> {
    let abs = target.join(rel);
    let mut emitted = false;
    let mut present = vec![];
    let mut entries: Vec<_> = fs::read_dir(&abs)
        .at(&abs)?
        .collect::<std::io::Result<_>>()
        .at(&abs)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let r = rel.join(&name);
        let p = e.path();
        let md = p.symlink_metadata().at(&p)?;
        present.push(name);
        let old = rec.sig.get(&r);
        let same_inode = old.is_some_and(|o| o.id == sig(&md).id);
        if md.is_dir() && same_inode {
            let changed = old != Some(&sig(&md));
            if diff_dir(target, rec, upper, &r)? || changed {
                ensure_dir(&upper.join(&r), &md)?;
                emitted = true;
            }
        } else if old != Some(&sig(&md)) {
            // New, replaced or changed: all of it goes up.
            fs::create_dir_all(upper.join(rel)).at(upper.join(rel))?;
            copy_all(&p, &upper.join(&r), &md)?;
            if md.is_dir() && old.is_some() {
                // A directory where something else was: overlay makes it opaque.
                let u = upper.join(&r);
                xattr::set(&u, xattr::opaque_name(), b"y").at(&u)?;
            }
            emitted = true;
        }
    }
    for gone in rec.names.get(rel).into_iter().flatten() {
        if !present.contains(gone) {
            let d = upper.join(rel);
            fs::create_dir_all(&d).at(&d)?;
            let w = d.join(gone);
            mknod(&w, SFlag::S_IFCHR, Mode::empty(), 0).at(&w)?;
            emitted = true;
        }
    }
    Ok(emitted)
}

/// Make `dir` (its parents already made by children) carry `md`'s metadata.
fn ensure_dir(dir: &Path, md: &fs::Metadata) -> Result<()> {
    fs::create_dir_all(dir).at(dir)?;
    meta(dir, md)
}

/// Copy `src` (any type, recursively) to `dst`, which does not exist.
fn copy_all(src: &Path, dst: &Path, md: &fs::Metadata) -> Result<()> {
    if !md.is_dir() {
        return leaf(src, dst, md);
    }
    fs::create_dir(dst).at(dst)?;
    for e in fs::read_dir(src).at(src)? {
        let e = e.at(src)?;
        let cmd = e.path().symlink_metadata().at(e.path())?;
        copy_all(&e.path(), &dst.join(e.file_name()), &cmd)?;
    }
    meta(dst, md)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &Path, s: &str) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, s).unwrap();
    }

    /// Whiteouts and opaque dirs of the lowers are applied; the diff has overlay's
    /// format. (Needs root: 0/0 char devices and trusted.* xattrs.)
    #[test]
    fn materialize_then_diff() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (low, top, tgt, up) = (
            t.path().join("low"),
            t.path().join("top"),
            t.path().join("tgt"),
            t.path().join("up"),
        );
        file(&low.join("a/x"), "x");
        file(&low.join("a/y"), "y");
        file(&low.join("b/z"), "z");
        file(&low.join("c"), "c");
        file(&top.join("b/w"), "w");
        fs::create_dir(top.join("a")).unwrap();
        mknod(&top.join("a/y"), SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
        xattr::set(&top.join("b"), xattr::opaque_name(), b"y").unwrap();
        for d in [&tgt, &up] {
            fs::create_dir(d).unwrap();
        }
        let rec = materialize(&[top, low], &tgt).unwrap();
        assert!(tgt.join("a/x").exists() && !tgt.join("a/y").exists());
        assert!(tgt.join("b/w").exists() && !tgt.join("b/z").exists());
        fs::write(tgt.join("a/x"), "x2").unwrap();
        fs::remove_file(tgt.join("c")).unwrap();
        fs::remove_dir_all(tgt.join("b")).unwrap();
        file(&tgt.join("b/v"), "v");
        file(&tgt.join("n"), "n");
        diff(&tgt, &rec, &up).unwrap();
        let names: Vec<String> = walkdir::WalkDir::new(&up)
            .min_depth(1)
            .sort_by_file_name()
            .into_iter()
            .map(|e| {
                e.unwrap()
                    .path()
                    .strip_prefix(&up)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["a", "a/x", "b", "b/v", "c", "n"]);
        assert_eq!(fs::read_to_string(up.join("a/x")).unwrap(), "x2");
        assert!(is_whiteout(&up.join("c").symlink_metadata().unwrap()));
        assert!(xattr::is_opaque(&up.join("b")));
    }
}
