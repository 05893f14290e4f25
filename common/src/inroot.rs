//! The one in-root resolver: every path a stranger can shape (an image layer, a build
//! context, a stage, a snapshot, a config.json's mount destinations) is resolved with the
//! tree's top as `/`, so neither `..` nor a symlink (absolute or relative) can lead out.
//!
//! Two types:
//! - [`Root`] resolves a multi-component path inside a tree: `openat2` with
//!   `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS` (inroot/openat2.rs, the lookup libpathrs
//!   makes, without its per-call extras), libpathrs's checked O_PATH walk where openat2 is
//!   missing or filtered.
//! - [`Dir`] is an open directory and does one operation on one *name* in it with the
//!   `*at(2)` calls and `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW`, so a final symlink is never
//!   followed. A name must be a single component: not empty, `.`, `..`, nor holding `/`.
//!
//! The pattern for every write: `root.parent(path)` (or `parent_all`) → `(dir, name)` →
//! `dir.create/mkdir/mknod/unlink/chown/…(name)`. Nothing re-joins a string path to act on.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// An operation on `path` (shown as the host path, for messages) failed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct Error {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl Error {
    pub fn new(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error {
            path: path.into(),
            source,
        }
    }
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
    pub fn raw_os_error(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
    fn errno(path: impl Into<PathBuf>, errno: i32) -> Error {
        Error::new(path, io::Error::from_raw_os_error(errno))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

fn from_pathrs(e: pathrs::error::Error) -> io::Error {
    use pathrs::error::ErrorKind as K;
    match e.kind() {
        K::OsError(Some(n)) => io::Error::from_raw_os_error(n),
        // An attack was detected mid-walk (a component swapped for a link out, say).
        K::SafetyViolation => io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("unsafe path (EXDEV): {e}"),
        ),
        K::InvalidArgument => io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
        _ => io::Error::other(e.to_string()),
    }
}

fn cstr(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The path relative to the tree's top: leading `/` and `.` parts dropped; `..` kept (the
/// kernel resolves it, stopping at the top).
pub fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect()
}

/// As [`relative`], with the top itself as `.` (an empty path is ENOENT to openat2).
fn relative_or_top(path: &Path) -> PathBuf {
    let rel = relative(path);
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

/// Is `name` a single, ordinary path component?
pub fn is_plain_name(name: &OsStr) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && b != b"." && b != b".." && !b.contains(&b'/') && !b.contains(&0)
}

/// `/proc/self/fd/N`: hands a resolved descriptor to calls that only take paths (mount,
/// chmod of an O_PATH descriptor). The kernel follows this magic link to the very inode.
pub fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// What a mount target must be.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Dir,
    File,
}

/// A directory tree whose top acts as `/` for every path resolved in it.
pub struct Root {
    inner: pathrs::Root,
    path: PathBuf,
}

impl Root {
    /// Opens the tree at `path` (a trusted host path: the caller's own directory).
    pub fn open(path: impl AsRef<Path>) -> Result<Root> {
        let path = path.as_ref();
        let inner = pathrs::Root::open(path).map_err(|e| Error::new(path, from_pathrs(e)))?;
        Ok(Root {
            inner,
            path: path.to_path_buf(),
        })
    }

    /// The tree whose top is the open directory `dir` (one already resolved in another
    /// tree: an ADD destination inside a stage), without re-walking any path to it.
    pub fn from_dir(dir: Dir) -> Root {
        Root {
            inner: pathrs::Root::from_fd(dir.fd),
            path: dir.path,
        }
    }

    /// The host path the tree was opened at (for messages and for trusted host-side use).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The host path of `p` inside the tree, for messages only: never act on it.
    pub fn display(&self, p: &Path) -> PathBuf {
        self.path.join(relative(p))
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }

    fn err(&self, p: &Path, e: io::Error) -> Error {
        Error::new(self.display(p), e)
    }

    /// Opens `p` with `flags` (O_NOFOLLOW: the last component is not followed either).
    pub fn open_in(&self, p: &Path, flags: i32) -> io::Result<OwnedFd> {
        let rel = relative_or_top(p);
        if openat2::available() {
            match openat2::open(self.as_fd(), &rel, flags) {
                Err(None) => {}
                r => return r.map_err(Option::unwrap),
            }
        }
        let flags = pathrs::flags::OpenFlags::from_bits_retain((flags | libc::O_CLOEXEC) as u64);
        self.inner
            .open_subpath(rel, flags)
            .map(OwnedFd::from)
            .map_err(from_pathrs)
    }

    /// An O_PATH descriptor of an existing `p`, following links (inside the tree).
    pub fn resolve(&self, p: &Path) -> io::Result<OwnedFd> {
        if openat2::available() {
            return self.open_in(p, libc::O_PATH);
        }
        self.inner
            .resolve(relative_or_top(p))
            .map(OwnedFd::from)
            .map_err(from_pathrs)
    }

    /// An O_PATH descriptor of `p` itself (a final symlink is not followed).
    pub fn resolve_nofollow(&self, p: &Path) -> io::Result<OwnedFd> {
        if openat2::available() {
            return self.open_in(p, libc::O_PATH | libc::O_NOFOLLOW);
        }
        self.inner
            .resolve_nofollow(relative_or_top(p))
            .map(OwnedFd::from)
            .map_err(from_pathrs)
    }

    /// Opens an existing file of `p` for reading (links followed inside the tree).
    pub fn open_file(&self, p: &Path) -> Result<File> {
        self.open_in(p, libc::O_RDONLY)
            .map(File::from)
            .map_err(|e| self.err(p, e))
    }

    /// Opens the directory `p` (links followed inside the tree).
    pub fn dir(&self, p: &Path) -> Result<Dir> {
        let fd = self
            .open_in(p, libc::O_RDONLY | libc::O_DIRECTORY)
            .map_err(|e| self.err(p, e))?;
        Ok(Dir {
            fd,
            path: self.display(p),
        })
    }

    /// The top of the tree as a [`Dir`].
    pub fn top(&self) -> Result<Dir> {
        self.dir(Path::new("/"))
    }

    /// Splits `p` into its (existing) parent directory, resolved in the tree, and its last
    /// name. `p` must end in an ordinary name.
    pub fn parent(&self, p: &Path) -> Result<(Dir, OsString)> {
        let (parent, name) = self.split(p)?;
        Ok((self.dir(&parent)?, name))
    }

    /// As [`Root::parent`], creating missing parents with `mode`.
    pub fn parent_all(&self, p: &Path, mode: u32) -> Result<(Dir, OsString)> {
        let (parent, name) = self.split(p)?;
        self.mkdir_all(&parent, mode)?;
        Ok((self.dir(&parent)?, name))
    }

    fn split(&self, p: &Path) -> Result<(PathBuf, OsString)> {
        let rel = relative(p);
        match (rel.parent(), rel.file_name()) {
            (Some(parent), Some(name)) if is_plain_name(name) => {
                Ok((parent.to_path_buf(), name.to_owned()))
            }
            _ => Err(self.err(p, io::Error::from_raw_os_error(libc::EINVAL))),
        }
    }

    /// What `p` is (the last component not followed), or None when it or a parent is missing.
    pub fn lstat(&self, p: &Path) -> Result<Option<Stat>> {
        let rel = relative(p);
        if rel.file_name().is_none() {
            return self.top()?.stat_self().map(Some);
        }
        match self.parent(p) {
            Ok((dir, name)) => dir.lstat(&name),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `p` with a final symlink whose target does not exist replaced by that target, read
    /// and joined as the kernel would walk it (so still resolved inside the tree), hop by
    /// hop; ELOOP after 40 hops. Any other `p` comes back as it is.
    fn through_dangling_link(&self, p: &Path) -> Result<PathBuf> {
        let mut p = p.to_path_buf();
        for _ in 0..40 {
            let Ok((dir, name)) = self.parent(&p) else {
                return Ok(p);
            };
            if !dir.lstat(&name)?.is_some_and(|st| st.is_symlink()) {
                return Ok(p);
            }
            let target = dir.read_link(&name)?;
            let parent = relative(&p).parent().map(Path::to_path_buf);
            p = parent.unwrap_or_default().join(target);
        }
        Err(self.err(&p, io::Error::from_raw_os_error(libc::ELOOP)))
    }

    /// Makes `p` and its missing parents directories (an existing non-directory fails with
    /// ENOTDIR) and returns an O_PATH descriptor of it.
    pub fn mkdir_all(&self, p: &Path, mode: u32) -> Result<OwnedFd> {
        let rel = relative(p);
        if rel.as_os_str().is_empty() {
            return self.resolve(Path::new("/")).map_err(|e| self.err(p, e));
        }
        if openat2::available() {
            match openat2::mkdir_all(self.as_fd(), &rel, mode) {
                Err(None) => {}
                r => return r.map_err(|e| self.err(p, e.unwrap())),
            }
        }
        let perm = std::fs::Permissions::from_mode(mode);
        self.inner
            .mkdir_all(&rel, &perm)
            .map(OwnedFd::from)
            .map_err(|e| self.err(p, from_pathrs(e)))
    }

    /// Removes `p` (a final symlink itself, never its target), with everything under it
    /// when it is a directory. A missing `p` is not an error.
    pub fn remove_all(&self, p: &Path) -> Result<()> {
        match self.parent(p) {
            Ok((dir, name)) => dir.remove_all(&name),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Makes sure `p` exists as `kind` (a mount target) and returns its O_PATH descriptor.
    /// An existing entry is used whatever its type (the mount then reports the mismatch),
    /// as runc does; a missing file is created empty. A final symlink to a missing target
    /// is followed inside the tree (as runc's securejoin follows it: an image's
    /// `/etc/resolv.conf -> /run/…`), and the target is made there.
    pub fn ensure(&self, p: &Path, kind: Kind) -> Result<OwnedFd> {
        if let Ok(fd) = self.resolve(p) {
            return Ok(fd);
        }
        let p = &self.through_dangling_link(p)?;
        if kind == Kind::Dir {
            return self.mkdir_all(p, 0o755);
        }
        let (dir, name) = self.parent_all(p, 0o755)?;
        match dir.create(&name, 0o644) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(e),
        }
        self.resolve(p).map_err(|e| self.err(p, e))
    }
}

/// An open directory; every operation acts on one name in it without following a final
/// symlink.
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Dir {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Dir {
    /// Opens a trusted host directory (the store's own, a fresh temporary directory).
    pub fn open_host(path: impl AsRef<Path>) -> Result<Dir> {
        let path = path.as_ref();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)
            .map_err(|e| Error::new(path, e))?;
        Ok(Dir {
            fd: f.into(),
            path: path.to_path_buf(),
        })
    }

    /// The directory's host path, for messages only.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `name`'s host path, for messages only.
    pub fn display(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    fn name(&self, name: &OsStr) -> Result<CString> {
        if !is_plain_name(name) {
            return Err(Error::errno(self.display(name), libc::EINVAL));
        }
        cstr(name).map_err(|e| Error::new(self.display(name), e))
    }

    fn err(&self, name: &OsStr) -> impl FnOnce(io::Error) -> Error + '_ {
        let p = self.display(name);
        move |e| Error::new(p, e)
    }

    /// What `name` is, or None if it does not exist.
    pub fn lstat(&self, name: &OsStr) -> Result<Option<Stat>> {
        let c = self.name(name)?;
        match Stat::of(self.as_raw_fd(), &c, libc::AT_SYMLINK_NOFOLLOW) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(self.err(name)(e)),
        }
    }

    /// What this directory is.
    pub fn stat_self(&self) -> Result<Stat> {
        let empty = CString::default();
        Stat::of(self.as_raw_fd(), &empty, libc::AT_EMPTY_PATH)
            .map_err(|e| Error::new(&self.path, e))
    }

    fn openat(&self, name: &OsStr, flags: i32, mode: u32) -> Result<OwnedFd> {
        let c = self.name(name)?;
        // SAFETY: `c` is NUL-terminated; O_NOFOLLOW keeps a final symlink from being followed.
        let r = unsafe {
            libc::openat(
                self.as_raw_fd(),
                c.as_ptr(),
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        if r < 0 {
            return Err(self.err(name)(io::Error::last_os_error()));
        }
        // SAFETY: a fresh descriptor from the kernel, owned here.
        Ok(unsafe { OwnedFd::from_raw_fd(r) })
    }

    /// Opens the subdirectory `name` (a symlink there fails with ELOOP/ENOTDIR).
    pub fn open_dir(&self, name: &OsStr) -> Result<Dir> {
        let fd = self.openat(name, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        Ok(Dir {
            fd,
            path: self.display(name),
        })
    }

    /// Opens the existing regular file or directory `name` with `flags` (never a symlink).
    pub fn open(&self, name: &OsStr, flags: i32) -> Result<File> {
        self.openat(name, flags, 0).map(File::from)
    }

    /// An O_PATH descriptor of `name` itself.
    pub fn open_path(&self, name: &OsStr) -> Result<OwnedFd> {
        self.openat(name, libc::O_PATH, 0)
    }

    /// Creates the regular file `name` (it must not exist) with exactly `mode` (no umask).
    pub fn create(&self, name: &OsStr, mode: u32) -> Result<File> {
        let fd = self.openat(
            name,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            mode & 0o777,
        )?;
        let f = File::from(fd);
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(self.err(name))?;
        Ok(f)
    }

    /// Replaces whatever `name` is (a directory with its contents) by a new regular file.
    pub fn replace_file(&self, name: &OsStr, mode: u32) -> Result<File> {
        self.remove_all(name)?;
        self.create(name, mode)
    }

    /// Makes the directory `name` with exactly `mode`; Ok(false) if a directory is there.
    pub fn mkdir(&self, name: &OsStr, mode: u32) -> Result<bool> {
        let c = self.name(name)?;
        // SAFETY: `c` is NUL-terminated; mkdirat never follows a final symlink.
        let r = unsafe { libc::mkdirat(self.as_raw_fd(), c.as_ptr(), (mode & 0o777) as _) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EEXIST) {
                if let Ok(Some(st)) = self.lstat(name) {
                    if st.is_dir() {
                        return Ok(false);
                    }
                }
            }
            return Err(self.err(name)(e));
        }
        self.chmod(name, mode)?;
        Ok(true)
    }

    /// Makes a device node or FIFO (`kind`: S_IFCHR, S_IFBLK or S_IFIFO) with exactly `mode`.
    pub fn mknod(&self, name: &OsStr, kind: u32, mode: u32, dev: u64) -> Result<()> {
        let c = self.name(name)?;
        // SAFETY: `c` is NUL-terminated; mknodat never follows a final symlink.
        let r = unsafe {
            libc::mknodat(
                self.as_raw_fd(),
                c.as_ptr(),
                (kind | (mode & 0o777)) as libc::mode_t,
                dev as libc::dev_t,
            )
        };
        check(r).map_err(self.err(name))?;
        self.chmod(name, mode)
    }

    /// Makes the symlink `name` → `target` (the target is stored, never resolved here).
    pub fn symlink(&self, name: &OsStr, target: &Path) -> Result<()> {
        let c = self.name(name)?;
        let t = cstr(target.as_os_str()).map_err(self.err(name))?;
        // SAFETY: both strings are NUL-terminated.
        let r = unsafe { libc::symlinkat(t.as_ptr(), self.as_raw_fd(), c.as_ptr()) };
        check(r).map_err(self.err(name))
    }

    /// Makes `name` a hard link to `src_name` in `src` (neither followed if a symlink).
    pub fn hardlink(&self, name: &OsStr, src: &Dir, src_name: &OsStr) -> Result<()> {
        let c = self.name(name)?;
        let s = src.name(src_name)?;
        // SAFETY: both strings are NUL-terminated; flags 0: a symlink is linked, not followed.
        let r =
            unsafe { libc::linkat(src.as_raw_fd(), s.as_ptr(), self.as_raw_fd(), c.as_ptr(), 0) };
        check(r).map_err(self.err(name))
    }

    /// Reads the symlink `name`.
    pub fn read_link(&self, name: &OsStr) -> Result<PathBuf> {
        let c = self.name(name)?;
        let mut buf = vec![0u8; libc::PATH_MAX as usize];
        // SAFETY: `buf` is writable for its length.
        let n = unsafe {
            libc::readlinkat(
                self.as_raw_fd(),
                c.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(self.err(name)(io::Error::last_os_error()));
        }
        buf.truncate(n as usize);
        Ok(PathBuf::from(
            <OsString as std::os::unix::ffi::OsStringExt>::from_vec(buf),
        ))
    }

    fn unlinkat(&self, name: &OsStr, flags: i32) -> Result<()> {
        let c = self.name(name)?;
        // SAFETY: `c` is NUL-terminated; unlinkat acts on the entry itself.
        check(unsafe { libc::unlinkat(self.as_raw_fd(), c.as_ptr(), flags) })
            .map_err(self.err(name))
    }

    /// Removes the non-directory `name`.
    pub fn unlink(&self, name: &OsStr) -> Result<()> {
        self.unlinkat(name, 0)
    }

    /// Removes the empty directory `name`.
    pub fn rmdir(&self, name: &OsStr) -> Result<()> {
        self.unlinkat(name, libc::AT_REMOVEDIR)
    }

    /// Removes `name` whatever it is, a directory with everything under it; missing is Ok.
    /// Subdirectories are opened with O_NOFOLLOW, so a symlink is removed, never entered.
    pub fn remove_all(&self, name: &OsStr) -> Result<()> {
        let Some(st) = self.lstat(name)? else {
            return Ok(());
        };
        if !st.is_dir() {
            return self.unlink(name);
        }
        self.open_dir(name)?.clear()?;
        self.rmdir(name)
    }

    /// Removes everything in this directory (an opaque whiteout).
    pub fn clear(&self) -> Result<()> {
        for n in self.entries()? {
            self.remove_all(&n)?;
        }
        Ok(())
    }

    /// The names in this directory (not `.`/`..`), sorted.
    pub fn entries(&self) -> Result<Vec<OsString>> {
        let err = |e| Error::new(&self.path, e);
        // SAFETY: dup of a descriptor we own; fdopendir takes the duplicate.
        let dup = unsafe { libc::fcntl(self.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(err(io::Error::last_os_error()));
        }
        // SAFETY: `dup` is a directory descriptor we own; on success DIR owns it.
        let dirp = unsafe { libc::fdopendir(dup) };
        if dirp.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: fdopendir failed, so `dup` is still ours to close.
            unsafe { libc::close(dup) };
            return Err(err(e));
        }
        // SAFETY: a fresh DIR stream reads from the start of the duplicate's shared offset.
        unsafe { libc::rewinddir(dirp) };
        let mut out = Vec::new();
        loop {
            // SAFETY: `dirp` is valid until closedir below.
            let ent = unsafe { libc::readdir(dirp) };
            if ent.is_null() {
                break;
            }
            // SAFETY: d_name is NUL-terminated within the entry.
            let n = unsafe { std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) };
            let b = n.to_bytes();
            if b != b"." && b != b".." {
                out.push(OsStr::from_bytes(b).to_owned());
            }
        }
        // SAFETY: closes the stream and the duplicate it owns.
        unsafe { libc::closedir(dirp) };
        out.sort();
        Ok(out)
    }

    /// Sets the owner of `name` itself (a symlink's own owner, not its target's).
    pub fn chown(&self, name: &OsStr, uid: u32, gid: u32) -> Result<()> {
        let c = self.name(name)?;
        // SAFETY: `c` is NUL-terminated.
        let r = unsafe {
            libc::fchownat(
                self.as_raw_fd(),
                c.as_ptr(),
                uid,
                gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        check(r).map_err(self.err(name))
    }

    /// Sets the mode of `name` (setuid, setgid, sticky included); a symlink is left alone
    /// (Linux has no symlink modes), never its target.
    pub fn chmod(&self, name: &OsStr, mode: u32) -> Result<()> {
        let c = self.name(name)?;
        // fchmodat2 (Linux 6.6) with AT_SYMLINK_NOFOLLOW does it in one call.
        // SAFETY: `c` is NUL-terminated.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fchmodat2,
                self.as_raw_fd(),
                c.as_ptr(),
                mode & 0o7777,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) => return Ok(()), // a symlink
            Some(libc::ENOSYS) | Some(libc::EINVAL) => {}
            _ => return Err(self.err(name)(e)),
        }
        // Older kernels: pin the inode with O_PATH|O_NOFOLLOW, then chmod it via procfs.
        let fd = self.open_path(name)?;
        let st = fstat(&fd).map_err(self.err(name))?;
        if st.is_symlink() {
            return Ok(());
        }
        std::fs::set_permissions(fd_path(&fd), std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(self.err(name))
    }

    /// Sets the access and modification times of `name` itself.
    pub fn set_times(&self, name: &OsStr, atime: (i64, i64), mtime: (i64, i64)) -> Result<()> {
        let c = self.name(name)?;
        let ts = [timespec(atime), timespec(mtime)];
        // SAFETY: `c` is NUL-terminated and `ts` holds two timespecs.
        let r = unsafe {
            libc::utimensat(
                self.as_raw_fd(),
                c.as_ptr(),
                ts.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        check(r).map_err(self.err(name))
    }

    /// Sets the extended attribute `key` on `name` (not through a symlink: a symlink fails
    /// with EPERM, as user.* attributes do on links).
    pub fn set_xattr(&self, name: &OsStr, key: &str, value: &[u8]) -> Result<()> {
        let fd = self.open_path(name)?;
        let st = fstat(&fd).map_err(self.err(name))?;
        if st.is_symlink() {
            return Err(self.err(name)(io::Error::from_raw_os_error(libc::EPERM)));
        }
        let p = CString::new(fd_path(&fd)).expect("no NUL in a /proc path");
        set_xattr_path(&p, key, value).map_err(self.err(name))
    }

    /// Sets the extended attribute `key` on this directory.
    pub fn set_xattr_self(&self, key: &str, value: &[u8]) -> Result<()> {
        let k = CString::new(key).map_err(|_| Error::errno(&self.path, libc::EINVAL))?;
        // SAFETY: `k` is NUL-terminated and `value` is readable for its length.
        let r = unsafe {
            libc::fsetxattr(
                self.as_raw_fd(),
                k.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        check(r).map_err(|e| Error::new(&self.path, e))
    }

    /// Moves `name` here to `to_name` in `to` (replacing a non-directory there).
    pub fn rename(&self, name: &OsStr, to: &Dir, to_name: &OsStr) -> Result<()> {
        let a = self.name(name)?;
        let b = to.name(to_name)?;
        // SAFETY: both strings are NUL-terminated; renameat acts on the entries themselves.
        let r = unsafe { libc::renameat(self.as_raw_fd(), a.as_ptr(), to.as_raw_fd(), b.as_ptr()) };
        check(r).map_err(self.err(name))
    }
}

fn timespec((s, ns): (i64, i64)) -> libc::timespec {
    libc::timespec {
        tv_sec: s as libc::time_t,
        tv_nsec: ns as _,
    }
}

fn set_xattr_path(p: &CString, key: &str, value: &[u8]) -> io::Result<()> {
    let k = cstr(OsStr::new(key))?;
    // SAFETY: `p` and `k` are NUL-terminated; `value` is readable for its length.
    check(unsafe {
        libc::setxattr(
            p.as_ptr(),
            k.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

use std::os::unix::fs::OpenOptionsExt;

mod openat2;
mod stat;
pub use stat::{fstat, Stat};

#[cfg(test)]
mod tests;
