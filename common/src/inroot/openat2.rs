//! The fast path under [`Root`](super::Root): openat2(2) with `RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS` called directly, the very lookup libpathrs makes on kernels that
//! have it (5.6+), without its per-call extras: libpathrs formats every failed lookup's
//! error by reading the root's path back through a checked procfs handle, re-opens each
//! `mkdir_all` step through `/proc/thread-self/fd`, and probes openat2 again after every
//! error. That cost a container's init ~1,200 extra system calls and 1.45 ms of CPU per
//! create (bench/README.md). Where openat2 is missing or filtered, `Root` uses libpathrs.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// 0: not known yet, 1: openat2 works, 2: it does not (ENOSYS, or refused by seccomp).
static STATE: AtomicU8 = AtomicU8::new(0);

/// May the fast path be used? False once openat2 was seen not to work at all.
pub(super) fn available() -> bool {
    STATE.load(Ordering::Relaxed) != 2
}

fn raw(dirfd: RawFd, path: &Path, flags: i32, resolve: u64) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: open_how is plain data; zero is a valid value for every field.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    loop {
        // SAFETY: `how` and `c` outlive the call; the kernel returns a new descriptor.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if r >= 0 {
            // SAFETY: a fresh descriptor from the kernel, owned here.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = io::Error::last_os_error();
        // EAGAIN: a rename raced the in-root walk; the kernel asks for a retry.
        if !matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)) {
            return Err(e);
        }
    }
}

/// Opens `rel` under `root` with `flags`, resolved as if `root` were `/`. Err(None) means
/// openat2 does not work here (the caller falls back to libpathrs).
pub(super) fn open(root: BorrowedFd, rel: &Path, flags: i32) -> Result<OwnedFd, Option<io::Error>> {
    match raw(
        root.as_raw_fd(),
        rel,
        flags,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    ) {
        Ok(fd) => {
            STATE.store(1, Ordering::Relaxed);
            Ok(fd)
        }
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) => {
            // An O_PATH open of "/" fails only if openat2 itself is missing or filtered.
            if STATE.load(Ordering::Relaxed) != 1
                && raw(libc::AT_FDCWD, Path::new("/"), libc::O_PATH, 0).is_err()
            {
                STATE.store(2, Ordering::Relaxed);
                return Err(None);
            }
            Err(Some(e))
        }
        Err(e) => Err(Some(e)),
    }
}

fn mkdirat(dir: &OwnedFd, name: &std::ffi::OsStr, mode: u32) -> io::Result<()> {
    let c =
        CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is NUL-terminated; mkdirat makes one name in a directory we resolved.
    if unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode as libc::mode_t) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EEXIST) => Ok(()), // made meanwhile: the re-resolve below checks it
        _ => Err(e),
    }
}

/// Makes `rel` and its missing parents directories under `root`: the deepest existing
/// ancestor is resolved in the root, then each missing name is made with mkdirat in the
/// descriptor of its resolved parent and resolved again. As libpathrs, `..` in the part
/// still to be made is refused (ENOENT), and an existing non-directory is ENOTDIR.
pub(super) fn mkdir_all(
    root: BorrowedFd,
    rel: &Path,
    mode: u32,
) -> Result<OwnedFd, Option<io::Error>> {
    let dir = |p: &Path| open(root, p, libc::O_PATH | libc::O_DIRECTORY);
    let enoent = |e: &Option<io::Error>| {
        e.as_ref()
            .is_some_and(|e| e.raw_os_error() == Some(libc::ENOENT))
    };
    match dir(rel) {
        Err(e) if enoent(&e) => {}
        r => return r,
    }
    let mut cur = dir(Path::new("."))?;
    let mut prefix = PathBuf::new();
    let mut making = false;
    for c in rel.components() {
        prefix.push(c);
        if !making {
            match dir(&prefix) {
                Ok(fd) => {
                    cur = fd;
                    continue;
                }
                Err(e) if enoent(&e) => making = true,
                Err(e) => return Err(e),
            }
        }
        let Component::Normal(name) = c else {
            return Err(Some(io::Error::from_raw_os_error(libc::ENOENT)));
        };
        mkdirat(&cur, name, mode).map_err(Some)?;
        cur = dir(&prefix)?;
    }
    Ok(cur)
}
