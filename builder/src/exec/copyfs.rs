//! The copy-based stand-in for an overlay mount, for rootless builds where the kernel
//! refuses overlay in a user namespace (before Linux 5.11, or an upper filesystem
//! without user xattrs). `materialize` copies the merged lowers into the target dir
//! (whiteouts and opaque dirs applied) and notes each entry's (inode, ctime); `diff`
//! later writes what changed into the upper dir in overlay's own format: changed and
//! new entries, 0/0 char devices for deleted ones, the opaque xattr on a directory
//! that replaced another entry. ctime cannot be set from user space, so any change of
//! content or metadata is seen; a replaced entry has a new inode or birth time.
//! The layers and the step's tree are read, and the copy and the upper dir made, by
//! descriptor (`inroot::Dir`): no symlink either holds is ever followed.

use crate::build::fsutil::{set_dir_meta, set_meta, Owner};
use crate::error::{IoContext, Result};
use crate::layer::xattr;
use berth_common::inroot::{Dir, Stat};
use std::collections::{BTreeMap, HashMap};
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// An entry's identity (inode and birth time: a freed inode is soon reused, as when
/// `rm -rf d && mkdir d`) and its last change (ctime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sig {
    id: (u64, Option<(i64, u32)>),
    changed: (i64, i64),
}

/// What each entry of the materialized tree was.
#[derive(Debug, Default)]
pub struct Record {
    sig: HashMap<PathBuf, Sig>,
    /// A directory's entries at materialize time (for deletions).
    names: HashMap<PathBuf, Vec<OsString>>,
}

/// statx of `name` in `dir` (not followed): inode, birth time if the filesystem keeps one,
/// ctime.
fn sig(dir: &Dir, name: &OsStr) -> Result<Sig> {
    let c = CString::new(std::os::unix::ffi::OsStrExt::as_bytes(name))
        .map_err(|_| crate::Error::invalid(dir.display(name).display().to_string(), "NUL"))?;
    // SAFETY: all-zero is a valid statx; the kernel fills it.
    let mut sx: libc::statx = unsafe { std::mem::zeroed() };
    let mask = libc::STATX_INO | libc::STATX_CTIME | libc::STATX_BTIME;
    // SAFETY: `c` is NUL-terminated and `sx` outlives the call.
    let r = unsafe {
        libc::statx(
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            mask,
            &mut sx,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).at(dir.display(name));
    }
    let born = (sx.stx_mask & libc::STATX_BTIME != 0)
        .then_some((sx.stx_btime.tv_sec, sx.stx_btime.tv_nsec));
    Ok(Sig {
        id: (sx.stx_ino, born),
        changed: (sx.stx_ctime.tv_sec, sx.stx_ctime.tv_nsec as i64),
    })
}

/// Is this a whiteout of overlay's (a 0/0 char device)?
fn is_whiteout(st: &Stat) -> bool {
    st.file_type() == libc::S_IFCHR && st.rdev() == 0
}

/// fsetxattr on an open file.
fn fset(fd: &impl AsRawFd, key: &str, value: &[u8]) -> std::io::Result<()> {
    let k = CString::new(key).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid descriptor, C string and a buffer of the given length.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            k.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn is_opaque(dir: &Dir) -> bool {
    xattr::fget(dir, xattr::opaque_name()).is_some_and(|v| v == b"y")
}

/// Copy the merged view of `lowers` (top-most first) into `target`: every entry is read
/// and made by descriptor (`inroot::Dir`), never through a path a layer could redirect.
pub fn materialize(lowers: &[PathBuf], target: &Path) -> Result<Record> {
    let dirs = lowers
        .iter()
        .map(Dir::open_host)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let top = Dir::open_host(target)?;
    merge_dir(&dirs, &top)?;
    let mut rec = Record::default();
    crate::build::sources::walk(&top, Path::new(""), &mut |dir, name, rel, _| {
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        rec.names.entry(parent).or_default().push(name.clone());
        rec.sig.insert(rel.to_path_buf(), sig(dir, name)?);
        Ok(true)
    })?;
    Ok(rec)
}

/// Merge the same directory of several layers (top-most first) into `dst`.
fn merge_dir(srcs: &[Dir], dst: &Dir) -> Result<()> {
    // name → the layers holding it (indexes into `srcs`), top-most first, down to an
    // opaque dir or a non-directory (which hides everything below it).
    let mut names: BTreeMap<OsString, Vec<usize>> = BTreeMap::new();
    let mut closed: Vec<OsString> = vec![];
    for (i, src) in srcs.iter().enumerate() {
        for name in src.entries()? {
            if closed.contains(&name) {
                continue;
            }
            let Some(st) = src.lstat(&name)? else {
                continue;
            };
            let opaque = st.is_dir() && src.open_dir(&name).is_ok_and(|d| is_opaque(&d));
            if !st.is_dir() || opaque {
                closed.push(name.clone());
            }
            names.entry(name).or_default().push(i);
        }
    }
    for (name, layers) in names {
        let top = &srcs[layers[0]];
        let Some(st) = top.lstat(&name)? else {
            continue;
        };
        if is_whiteout(&st) {
            continue;
        } else if st.is_dir() {
            let subs: Vec<Dir> = layers
                .iter()
                .filter_map(|&i| srcs[i].open_dir(&name).ok())
                .collect();
            dst.mkdir(&name, 0o700)?;
            let out = dst.open_dir(&name)?;
            merge_dir(&subs, &out)?;
            set_dir_meta(&out, &st, Owner::default())?;
        } else {
            leaf(top, &name, &st, dst, &name)?;
        }
    }
    Ok(())
}

/// Copy a non-directory (file, symlink, device, fifo) with its metadata; `dst_name` must
/// not exist in `dst`.
fn leaf(src: &Dir, name: &OsStr, st: &Stat, dst: &Dir, dst_name: &OsStr) -> Result<()> {
    match st.file_type() {
        libc::S_IFLNK => dst.symlink(dst_name, &src.read_link(name)?)?,
        libc::S_IFREG => {
            let mut from = src.open(name, libc::O_RDONLY | libc::O_NONBLOCK)?;
            let mut to = dst.create(dst_name, 0o600)?;
            std::io::copy(&mut from, &mut to).at(dst.display(dst_name))?;
            if let Some(cap) = xattr::fget(&from, "security.capability") {
                let _ = fset(&to, "security.capability", &cap);
            }
        }
        libc::S_IFSOCK => return Ok(()),
        kind => dst.mknod(dst_name, kind, st.mode(), st.rdev())?,
    }
    set_meta(dst, dst_name, st, Owner::default())
}

/// Write the changes of `target` since `materialize` into `upper` (overlay format).
pub fn diff(target: &Path, rec: &Record, upper: &Path) -> Result<()> {
    let t = Dir::open_host(target)?;
    let u = Dir::open_host(upper)?;
    diff_dir(&t, rec, &Lazy::Made(u), Path::new("")).map(|_| ())
}

/// A directory of the upper dir, made only once something goes into it.
enum Lazy<'a> {
    Made(Dir),
    /// (parent, name)
    Pending(&'a Lazy<'a>, &'a OsStr, std::cell::OnceCell<Dir>),
}

impl Lazy<'_> {
    fn get(&self) -> Result<&Dir> {
        match self {
            Lazy::Made(d) => Ok(d),
            Lazy::Pending(parent, name, cell) => {
                if let Some(d) = cell.get() {
                    return Ok(d);
                }
                let p = parent.get()?;
                p.mkdir(name, 0o700)?;
                let d = p.open_dir(name)?;
                Ok(cell.get_or_init(|| d))
            }
        }
    }
}

/// Diff one directory; returns whether anything under it went into `upper`.
fn diff_dir(target: &Dir, rec: &Record, upper: &Lazy, rel: &Path) -> Result<bool> {
    let mut emitted = false;
    let mut present = vec![];
    for name in target.entries()? {
        let r = rel.join(&name);
        crate::build::sources::too_deep(target, &r)?;
        let Some(st) = target.lstat(&name)? else {
            continue;
        };
        let now = sig(target, &name)?;
        present.push(name.clone());
        let old = rec.sig.get(&r);
        let same_inode = old.is_some_and(|o| o.id == now.id);
        if st.is_dir() && same_inode {
            let changed = old != Some(&now);
            let sub = target.open_dir(&name)?;
            let up = Lazy::Pending(upper, &name, Default::default());
            if diff_dir(&sub, rec, &up, &r)? || changed {
                let d = up.get()?;
                set_dir_meta(d, &st, Owner::default())?;
                emitted = true;
            }
        } else if old != Some(&now) {
            // New, replaced or changed: all of it goes up.
            let u = upper.get()?;
            copy_all(target, &name, &st, u)?;
            if st.is_dir() && old.is_some() {
                // A directory where something else was: overlay makes it opaque.
                u.open_dir(&name)?
                    .set_xattr_self(xattr::opaque_name(), b"y")?;
            }
            emitted = true;
        }
    }
    for gone in rec.names.get(rel).into_iter().flatten() {
        if !present.contains(gone) {
            upper.get()?.mknod(gone, libc::S_IFCHR, 0, 0)?;
            emitted = true;
        }
    }
    Ok(emitted)
}

/// Copy `name` of `src` (any type, recursively) to the same name in `dst`, where it does
/// not exist.
fn copy_all(src: &Dir, name: &OsStr, st: &Stat, dst: &Dir) -> Result<()> {
    if !st.is_dir() {
        return leaf(src, name, st, dst, name);
    }
    let from = src.open_dir(name)?;
    dst.mkdir(name, 0o700)?;
    let to = dst.open_dir(name)?;
    crate::build::sources::too_deep(&to, to.path())?;
    for n in from.entries()? {
        if let Some(cst) = from.lstat(&n)? {
            copy_all(&from, &n, &cst, &to)?;
        }
    }
    set_dir_meta(&to, st, Owner::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::{mknod, Mode, SFlag};
    use std::fs;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

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
        let c = up.join("c").symlink_metadata().unwrap();
        assert!(c.file_type().is_char_device() && c.rdev() == 0);
        assert!(xattr::is_opaque(&up.join("b")));
    }
}
