//! Entering the build's user namespace by re-executing ourselves.
//!
//! ```text
//!  parent (uid U, outside)                     child: /proc/self/exe, same argv,
//!                                              BERTH_BUILD_USERNS=R,W
//!  spawn ─────────────────────────────────────► unshare(CLONE_NEWUSER | CLONE_NEWNS)
//!        ◄──────────── "u" on W ─────────────── (or EOF: it failed and said why)
//!  newuidmap/newgidmap PID …  (or uid_map)
//!  ─────────────── "k" on R ──────────────────► setresuid/setresgid(0), run the command
//!  forward SIGINT/SIGTERM/SIGHUP; wait ◄─────── exit status
//!  exit with the child's code
//! ```
//!
//! The child unshares itself (rather than the parent forking and unsharing) so that
//! it is a fresh, single-threaded process: unshare(CLONE_NEWUSER) fails in a
//! multithreaded one.

use super::idmap::Plan;
use super::{RootlessError, MARKER};
use crate::error::Result;
use nix::sched::{unshare, CloneFlags};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

/// Which side of the re-exec this process is.
pub enum Role {
    /// Already privileged (root, or the namespace child, now set up): go on.
    Proceed,
    /// The parent: the child ran the command and exited with this code.
    Done(i32),
}

/// Called first thing (single-threaded), for commands that need the namespace.
pub fn enter() -> Result<Role> {
    if let Some(v) = std::env::var_os(MARKER) {
        let v = v.to_string_lossy().to_string();
        if v != "1" {
            child_setup(&v)?;
        }
        return Ok(Role::Proceed);
    }
    if nix::unistd::geteuid().is_root() {
        return Ok(Role::Proceed);
    }
    Ok(Role::Done(run_parent()?))
}

fn sync_err(what: &str, e: impl std::fmt::Display) -> RootlessError {
    RootlessError::Sync(format!("{what}: {e}"))
}

fn child_setup(fds: &str) -> Result<()> {
    let parse = |s: Option<&str>| s.and_then(|s| s.parse::<RawFd>().ok());
    let mut it = fds.split(',');
    let (Some(r), Some(w)) = (parse(it.next()), parse(it.next())) else {
        return Err(sync_err(MARKER, format!("bad value {fds:?}")).into());
    };
    // SAFETY: the parent passed us these two pipe ends, open and ours alone.
    let (mut r, mut w) = unsafe { (File::from_raw_fd(r), File::from_raw_fd(w)) };
    std::env::set_var(MARKER, "1");
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).map_err(|e| {
        RootlessError::Unshare {
            source: std::io::Error::from(e),
        }
    })?;
    w.write_all(b"u").map_err(|e| sync_err("write", e))?;
    drop(w);
    let mut b = [0u8; 1];
    // EOF instead of "k": the parent failed to map our ids and reports why itself.
    if r.read(&mut b).map_err(|e| sync_err("read", e))? != 1 || b[0] != b'k' {
        std::process::exit(1);
    }
    use nix::unistd::{setresgid, setresuid, Gid, Uid};
    let (u, g) = (Uid::from_raw(0), Gid::from_raw(0));
    setresgid(g, g, g).map_err(|e| sync_err("setresgid(0)", e))?;
    setresuid(u, u, u).map_err(|e| sync_err("setresuid(0)", e))?;
    // Mounts made here must not propagate back to the host's namespace.
    crate::exec::mount::make_rprivate()
}

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| sync_err("pipe", e))?)
}

fn run_parent() -> Result<i32> {
    let plan = Plan::for_current_user();
    let (child_r, parent_w) = pipe()?;
    let (parent_r, child_w) = pipe()?;
    let (cr, cw) = (child_r.as_raw_fd(), child_w.as_raw_fd());
    let mut cmd = Command::new("/proc/self/exe");
    if let Some(a0) = std::env::args_os().next() {
        cmd.arg0(a0);
    }
    cmd.args(std::env::args_os().skip(1))
        .env(MARKER, format!("{cr},{cw}"));
    // SAFETY: only fcntl(2) and prctl(2), async-signal-safe, on fds that stay open
    // until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            // Killed with us (SIGKILL cannot be forwarded); it then cleans up as on SIGTERM.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            for fd in [cr, cw] {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| sync_err("re-executing /proc/self/exe", e))?;
    drop((child_r, child_w, cmd));
    let pid = child.id() as i32;
    CHILD.store(pid, Ordering::Relaxed);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only loads an atomic and calls kill(2).
        unsafe {
            libc::signal(
                sig,
                forward as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
    let mut b = [0u8; 1];
    let unshared = File::from(parent_r).read(&mut b).unwrap_or(0) == 1;
    let mapped = if unshared { plan.apply(pid) } else { Ok(()) };
    let mut w = File::from(parent_w);
    if unshared && mapped.is_ok() {
        let _ = w.write_all(b"k");
    }
    drop(w);
    let status = child.wait().map_err(|e| sync_err("wait", e))?;
    mapped?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
