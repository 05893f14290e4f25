//! Every write the runtime makes into procfs (oom_score_adj, sysctls, timens_offsets, a
//! child's uid_map/gid_map/setgroups) goes through here, on descriptors checked to be the
//! kernel's own files: a container that mounts something over `/proc/sys/…` or
//! `/proc/self/…` (a config mount, a shared volume raced into place) must not redirect a
//! write the runtime makes as root onto a host file or another procfs file (CVE-2025-52881).
//!
//! `/proc` is opened without following a link and must be the root of a procfs mount
//! (PROC_SUPER_MAGIC, inode 1); the file is opened beneath it with openat2
//! `RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS` (no mount may be crossed, so
//! anything mounted over the file or a directory on the way is refused) and must be on
//! procfs itself.

use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const RESOLVE_NO_XDEV: u64 = 0x01;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_BENEATH: u64 = 0x08;
const PROC_ROOT_INO: u64 = 1;

fn openat2(dir: RawFd, path: &str, flags: i32, resolve: u64) -> io::Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: open_how is plain data; zero is a valid value for every field.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    loop {
        // SAFETY: `how` and `c` outlive the call; the kernel returns a new descriptor.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
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
        if !matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)) {
            return Err(e);
        }
    }
}

fn on_procfs(fd: &OwnedFd) -> io::Result<bool> {
    // SAFETY: all-zero is a valid statfs; the kernel fills it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `st` outlives the call.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_type == libc::PROC_SUPER_MAGIC)
}

/// The `/proc` of the current root, checked to be a procfs mount's root.
fn proc_root() -> io::Result<OwnedFd> {
    let fd = openat2(
        libc::AT_FDCWD,
        "/proc",
        libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )?;
    let ino = berth_common::inroot::fstat(&fd)?.ino();
    if !on_procfs(&fd)? || ino != PROC_ROOT_INO {
        return Err(io::Error::other("/proc is not a procfs mount"));
    }
    Ok(fd)
}

/// Writes `data` to `/proc/<rel>` (e.g. `self/oom_score_adj`, `sys/net/ipv4/ip_forward`).
/// Errors name the file; a mount over it (or over a directory on the way) is refused.
pub fn write(rel: &str, data: &[u8]) -> io::Result<()> {
    let ctx = |e: io::Error| {
        let why = if e.raw_os_error() == Some(libc::EXDEV) {
            "something is mounted over it; refusing to write through it".to_string()
        } else {
            e.to_string()
        };
        io::Error::new(e.kind(), format!("/proc/{rel}: {why}"))
    };
    let proc = proc_root().map_err(ctx)?;
    let resolve = RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS;
    let fd = openat2(
        proc.as_raw_fd(),
        rel,
        libc::O_WRONLY | libc::O_NOFOLLOW,
        resolve,
    )
    .map_err(ctx)?;
    if !on_procfs(&fd).map_err(ctx)? {
        return Err(ctx(io::Error::from_raw_os_error(libc::EXDEV)));
    }
    std::fs::File::from(fd).write_all(data).map_err(ctx)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn writes_reach_procfs_and_refuse_an_overmount() {
        // Writing our own oom_score_adj back is always allowed.
        let now = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
        write("self/oom_score_adj", now.trim().as_bytes()).unwrap();
        let e = write("self/no-such-file", b"1").unwrap_err();
        assert!(e.to_string().contains("/proc/self/no-such-file"), "{e}");
        // `..` cannot leave /proc.
        assert!(write("../etc/hostname", b"x").is_err());
    }
}
