//! The one safe path resolver for everything inside a container's rootfs. Every lookup goes
//! through openat2(RESOLVE_IN_ROOT), so `..` and symlinks (absolute or relative) in an image
//! are resolved as if the rootfs were `/` and can never lead outside it. Mounts then target
//! the resolved `/proc/self/fd/N`, never a path string that could be swapped in between.

use crate::error::{Error, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// An O_PATH descriptor of a container root directory.
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Dir,
    File,
}

/// `/proc/self/fd/N`: hands a resolved descriptor to syscalls that take paths (mount).
pub fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn openat2(
    dirfd: RawFd,
    path: &Path,
    flags: i32,
    mode: u64,
    resolve: u64,
) -> std::io::Result<OwnedFd> {
    let c =
        CString::new(path.as_os_str().as_bytes()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: open_how is plain data; zero is a valid value for every field.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = mode;
    how.resolve = resolve;
    loop {
        // SAFETY: `how` and `c` outlive the call; the kernel returns a new descriptor we own.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                c.as_ptr(),
                &how as *const _,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if r >= 0 {
            // SAFETY: fresh descriptor from the kernel.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EAGAIN) && e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Strips the leading `/` and `.` parts so a container path is relative to the root fd.
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect()
}

impl Root {
    pub fn open(path: &Path) -> Result<Root> {
        let fd = openat2(libc::AT_FDCWD, path, libc::O_PATH | libc::O_DIRECTORY, 0, 0)
            .map_err(|e| Error::io(path, e))?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `path` inside the root with `flags`, resolving every link inside the root.
    pub fn open_in(&self, path: &Path, flags: i32) -> std::io::Result<OwnedFd> {
        let rel = relative(path);
        let rel = if rel.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            rel
        };
        openat2(
            self.fd.as_raw_fd(),
            &rel,
            flags,
            0,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        )
    }

    /// O_PATH descriptor of an existing path inside the root.
    pub fn resolve(&self, path: &Path) -> std::io::Result<OwnedFd> {
        self.open_in(path, libc::O_PATH)
    }

    /// Creates `path` (and missing parents) inside the root, returning an O_PATH descriptor
    /// of the result. Existing entries are reused whatever their type, as runc does.
    pub fn mkdir_all(&self, path: &Path, mode: u32) -> Result<OwnedFd> {
        let rel = relative(path);
        let mut cur = PathBuf::new();
        let mut fd = self
            .open_in(Path::new("."), libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|e| Error::io(&self.path, e))?;
        for comp in rel.components() {
            let parent = fd;
            cur.push(comp);
            fd = match self.open_in(&cur, libc::O_PATH) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.mkdirat(&parent, comp.as_os_str(), mode, &cur)?;
                    self.open_in(&cur, libc::O_PATH)
                        .map_err(|e| Error::io(self.path.join(&cur), e))?
                }
                Err(e) => return Err(Error::io(self.path.join(&cur), e)),
            };
        }
        Ok(fd)
    }

    fn mkdirat(
        &self,
        parent: &OwnedFd,
        name: &std::ffi::OsStr,
        mode: u32,
        full: &Path,
    ) -> Result<()> {
        let c = CString::new(name.as_bytes())
            .map_err(|_| Error::Other(format!("bad path {full:?}")))?;
        // SAFETY: plain mkdirat on a descriptor we own.
        let r = unsafe { libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), mode) };
        let e = std::io::Error::last_os_error();
        if r != 0 && e.raw_os_error() != Some(libc::EEXIST) {
            return Err(Error::io(self.path.join(full), e));
        }
        Ok(())
    }

    /// Makes sure `path` exists as `kind` (a mount target) and returns its O_PATH descriptor.
    pub fn ensure(&self, path: &Path, kind: Kind) -> Result<OwnedFd> {
        if kind == Kind::Dir {
            return self.mkdir_all(path, 0o755);
        }
        if let Ok(fd) = self.resolve(path) {
            return Ok(fd);
        }
        let rel = relative(path);
        let (parent, name) = match (rel.parent(), rel.file_name()) {
            (Some(p), Some(n)) => (p.to_path_buf(), n.to_owned()),
            _ => {
                return Err(Error::Other(format!(
                    "invalid mount destination {}",
                    path.display()
                )))
            }
        };
        let pfd = self.mkdir_all(&parent, 0o755)?;
        let dir = self
            .open_in(&parent, libc::O_DIRECTORY | libc::O_RDONLY)
            .map_err(|e| Error::io(self.path.join(&parent), e))?;
        drop(pfd);
        let c = CString::new(name.as_bytes())
            .map_err(|_| Error::Other(format!("bad path {path:?}")))?;
        // SAFETY: openat relative to a directory we hold; O_NOFOLLOW refuses a planted link.
        let r = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                c.as_ptr(),
                libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_WRONLY,
                0o644,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(Error::io(self.path.join(&rel), e));
            }
        } else {
            // SAFETY: we own r.
            drop(unsafe { OwnedFd::from_raw_fd(r) });
        }
        self.resolve(path)
            .map_err(|e| Error::io(self.path.join(&rel), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn real(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(fd_path(fd)).unwrap()
    }

    #[test]
    fn symlinks_cannot_escape_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../../..", root.join("up")).unwrap();
        let r = Root::open(&root).unwrap();
        assert_eq!(
            real(&r.resolve(Path::new("/abs")).unwrap()),
            root.join("etc")
        );
        assert_eq!(real(&r.resolve(Path::new("up")).unwrap()), root);
        let made = r.mkdir_all(Path::new("/up/x/../y/z"), 0o755).unwrap();
        assert_eq!(real(&made), root.join("y/z"));
        assert!(!t.path().join("x").exists());
    }

    #[test]
    fn ensure_file_creates_in_root_and_refuses_dangling_link_escape() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        symlink(t.path().join("outside"), root.join("evil")).unwrap();
        let r = Root::open(&root).unwrap();
        let f = r.ensure(Path::new("/a/b/file"), Kind::File).unwrap();
        assert_eq!(real(&f), root.join("a/b/file"));
        // A dangling link to a host path must not create the host file.
        let _ = r.ensure(Path::new("/evil"), Kind::File);
        assert!(!t.path().join("outside").exists());
    }
}
