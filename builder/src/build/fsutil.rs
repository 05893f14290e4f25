//! Copying with explicit metadata, for COPY/ADD/WORKDIR staging. Everything made in a
//! staging dir goes through descriptors (`inroot::Dir`): a symlink staged by one source is
//! never followed by the next, and a source tree is read by descriptors too.

use crate::error::{Error, IoContext, Result};
use berth_common::inroot::{Dir, Root, Stat};
use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::fs::lchown;
use std::path::{Path, PathBuf};

/// Ownership/mode to give copied entries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Owner {
    /// None: keep the source's (COPY --from); Some: force.
    pub ids: Option<(u32, u32)>,
    pub chmod: Option<super::chmod::Chmod>,
}

/// utimensat(2) on a path of a tree we made ourselves (a download, a copy-mode rootfs).
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

/// The rootless build's clear error for an id it has not mapped, else the plain one.
fn chown_err(p: PathBuf, uid: u32, gid: u32, source: std::io::Error) -> Error {
    match crate::rootless::chown_error(&p, uid, gid) {
        Some(e) => e.into(),
        None => Error::Io { path: p, source },
    }
}

/// lchown(2) on a path of a tree we made ourselves (see `set_mtime`).
pub fn chown(p: &Path, uid: u32, gid: u32) -> Result<()> {
    lchown(p, Some(uid), Some(gid)).map_err(|e| chown_err(p.to_path_buf(), uid, gid, e))
}

/// Owner, mode (not for a symlink) and mtime of `st`, overridden by `own`, onto `name` in
/// `dir`. The owner goes first: chown clears setuid and setgid.
pub fn set_meta(dir: &Dir, name: &OsStr, st: &Stat, own: Owner) -> Result<()> {
    let (uid, gid) = own.ids.unwrap_or((st.uid(), st.gid()));
    dir.chown(name, uid, gid)
        .map_err(|e| chown_err(e.path, uid, gid, e.source))?;
    if !st.is_symlink() {
        dir.chmod(
            name,
            own.chmod
                .map_or(st.mode(), |c| c.apply(st.mode(), st.is_dir())),
        )?;
    }
    dir.set_times(name, st.mtime(), st.mtime())?;
    Ok(())
}

/// As `set_meta`, onto the open directory `d` itself (the staging top, or one we hold).
pub fn set_dir_meta(d: &Dir, st: &Stat, own: Owner) -> Result<()> {
    let (uid, gid) = own.ids.unwrap_or((st.uid(), st.gid()));
    let fd = d.as_fd();
    nix::unistd::fchown(fd, Some(uid.into()), Some(gid.into()))
        .map_err(|e| chown_err(d.path().to_path_buf(), uid, gid, e.into()))?;
    let mode = nix::sys::stat::Mode::from_bits_truncate(
        own.chmod.map_or(st.mode(), |c| c.apply(st.mode(), true)),
    );
    nix::sys::stat::fchmod(fd, mode).at(d.path())?;
    let (s, ns) = st.mtime();
    let t = TimeSpec::new(s, ns);
    nix::sys::stat::futimens(fd, &t, &t).at(d.path())
}

/// Sets the mtime (and atime) of the open directory `d` itself.
pub fn set_dir_mtime(d: &Dir, (s, ns): (i64, i64)) -> Result<()> {
    let t = TimeSpec::new(s, ns);
    nix::sys::stat::futimens(d.as_fd(), &t, &t).at(d.path())
}

/// Regular files staged empty, their bytes to be read from the source when the layer is
/// packed (staging path → source's host path, symlink-free): a COPY from the context then
/// reads each byte once for its cache key and once into the layer, instead of also copying
/// it into the staging dir. Such a staging dir is no snapshot; the layer is unpacked if a
/// later step needs it.
#[derive(Debug, Default)]
pub struct Deferred(RefCell<HashMap<PathBuf, PathBuf>>);

impl Deferred {
    /// The staged `rel` was written with its own bytes after all.
    pub fn forget(&self, rel: &Path) {
        self.0.borrow_mut().remove(rel);
    }
    /// Staging-relative path → source.
    pub fn into_map(self) -> HashMap<PathBuf, PathBuf> {
        self.0.into_inner()
    }
}

/// One side of a copy: an open directory, its path from the top of its tree (the
/// staging rel path of a destination; the context-relative path of a source, which
/// .dockerignore matches) and, for a source, its host path (for deferred bytes).
pub struct At<'a> {
    pub dir: &'a Dir,
    pub rel: PathBuf,
    pub host: PathBuf,
}

impl At<'_> {
    fn child<'b>(&self, dir: &'b Dir, name: &OsStr) -> At<'b> {
        At {
            dir,
            rel: self.rel.join(name),
            host: self.host.join(name),
        }
    }
}

/// How to copy: owner and mode, which context paths .dockerignore excludes, and whether
/// regular files' bytes are deferred.
pub struct CopyOpts<'a> {
    pub own: Owner,
    pub skip: &'a dyn Fn(&Path) -> bool,
    /// Exceptions (`!pattern`) exist: an excluded directory may hold included paths.
    pub exceptions: bool,
    pub defer: Option<&'a Deferred>,
}

/// Copies the non-directory `name` of `src` (file or symlink; others are not copied) to
/// `dst_name` in `dst`, replacing whatever is there.
pub fn copy_leaf(
    o: &CopyOpts,
    (src, name): (&At, &OsStr),
    st: &Stat,
    (dst, dst_name): (&At, &OsStr),
) -> Result<()> {
    if !st.is_symlink() && !st.is_file() {
        return Ok(()); // devices, fifos and sockets are not copied
    }
    dst.dir.remove_all(dst_name)?;
    if st.is_symlink() {
        let target = src.dir.read_link(name)?;
        dst.dir.symlink(dst_name, &target)?;
        return set_meta(dst.dir, dst_name, st, o.own);
    }
    match o.defer {
        Some(d) => {
            dst.dir.create(dst_name, 0o600)?;
            d.0.borrow_mut()
                .insert(dst.rel.join(dst_name), src.host.join(name));
        }
        None => {
            let mut from = src.dir.open(name, libc::O_RDONLY | libc::O_NONBLOCK)?;
            let mut to = dst.dir.create(dst_name, 0o600)?;
            std::io::copy(&mut from, &mut to).at(dst.dir.display(dst_name))?;
        }
    }
    set_meta(dst.dir, dst_name, st, o.own)
}

/// Opens the directory `name` in `dir`, made (mode 0755) if missing or replacing a
/// non-directory staged there; true when it was made.
pub fn ensure_dir(dir: &Dir, name: &OsStr) -> Result<(Dir, bool)> {
    match dir.lstat(name)? {
        Some(st) if st.is_dir() => return Ok((dir.open_dir(name)?, false)),
        Some(_) => dir.remove_all(name)?,
        None => {}
    }
    dir.mkdir(name, 0o755)?;
    Ok((dir.open_dir(name)?, true))
}

/// Copies the contents of the directory `src` into `dst`; true when anything was copied.
/// An excluded directory is entered only when exceptions exist, and is kept only for what
/// they include (BuildKit).
pub fn copy_tree(o: &CopyOpts, src: &At, dst: &At) -> Result<bool> {
    let mut copied = false;
    super::sources::too_deep(dst.dir, &dst.rel)?;
    for name in src.dir.entries()? {
        let excluded = (o.skip)(&src.rel.join(&name));
        let Some(st) = src.dir.lstat(&name)? else {
            continue; // gone meanwhile
        };
        if !st.is_dir() {
            if !excluded {
                copy_leaf(o, (src, &name), &st, (dst, &name))?;
                copied = true;
            }
            continue;
        }
        if excluded && !o.exceptions {
            continue;
        }
        let sd = src.dir.open_dir(&name)?;
        let (dd, made) = ensure_dir(dst.dir, &name)?;
        let any = copy_tree(o, &src.child(&sd, &name), &dst.child(&dd, &name))?;
        if excluded && !any {
            if made {
                dst.dir.rmdir(&name)?;
            }
            continue;
        }
        set_dir_meta(&dd, &st, o.own)?;
        copied = true;
    }
    Ok(copied)
}

/// Opens `rel` in the staging tree (made as needed: each new directory gets the metadata
/// of the same directory in `view`, the image so far, or 0755 owned by `new_owner` (BuildKit's
/// mkdir-with-parents as the user of WORKDIR or COPY --chown); a non-directory staged in
/// the way is replaced). `rel` holds plain names only (a path `resolve_dest` gave).
pub fn make_dirs(
    staging: &Root,
    view: Option<&Root>,
    rel: &Path,
    new_owner: Option<(u32, u32)>,
) -> Result<Dir> {
    let mut cur = staging.top()?;
    let mut path = PathBuf::new();
    for name in rel.iter() {
        path.push(name);
        let (d, made) = ensure_dir(&cur, name)?;
        if made {
            match view.and_then(|v| v.lstat(&path).ok().flatten()) {
                Some(st) if st.is_dir() => set_dir_meta(&d, &st, Owner::default())?,
                _ => {
                    if let Some((uid, gid)) = new_owner {
                        nix::unistd::fchown(d.as_fd(), Some(uid.into()), Some(gid.into()))
                            .map_err(|e| chown_err(d.path().to_path_buf(), uid, gid, e.into()))?;
                    }
                }
            }
        }
        cur = d;
    }
    Ok(cur)
}

/// The staging directory that will hold `rel`, and `rel`'s last name (made as `make_dirs`).
pub fn make_parent(
    staging: &Root,
    view: Option<&Root>,
    rel: &Path,
    new_owner: Option<(u32, u32)>,
) -> Result<(Dir, std::ffi::OsString)> {
    let name = rel
        .file_name()
        .filter(|n| berth_common::inroot::is_plain_name(n))
        .ok_or_else(|| {
            Error::invalid(
                rel.display().to_string(),
                "not a file name in the destination",
            )
        })?;
    let parent = rel.parent().unwrap_or(Path::new(""));
    Ok((
        make_dirs(staging, view, parent, new_owner)?,
        name.to_os_string(),
    ))
}
