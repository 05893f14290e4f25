//! Foreground `run` and `exec`: berth is the subreaper of the container's process, forwards
//! the signals it gets to it, reaps it (and any orphans), and returns its exit code.

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Must be called before the process is forked, so orphaned stages reparent to us.
pub fn become_subreaper() {
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

/// Blocks every signal but the synchronous faults, so they can be taken with sigtimedwait.
pub fn block_signals() -> SigSet {
    let mut all = SigSet::all();
    for s in [
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
    ] {
        all.remove(s);
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None);
    all
}

/// Waits for `pid`; returns its exit code (128+N when killed by signal N).
pub fn wait(pid: i32) -> i32 {
    let all = block_signals();
    loop {
        if let Some(code) = reap(pid) {
            return code;
        }
        if let Some(sig) = take_signal(&all, 200_000_000) {
            if sig != libc::SIGCHLD {
                // SAFETY: forwarding a signal number the kernel just gave us.
                unsafe { libc::kill(pid, sig) };
            }
        }
    }
}

/// Forwards every pending signal to `pid` without waiting; SIGWINCH runs `winch` instead.
pub fn forward_pending(set: &SigSet, pid: i32, winch: impl Fn()) {
    while let Some(sig) = take_signal(set, 0) {
        match sig {
            libc::SIGCHLD => {}
            libc::SIGWINCH => winch(),
            // SAFETY: forwarding a signal number the kernel just gave us.
            _ => unsafe {
                libc::kill(pid, sig);
            },
        }
    }
}

fn take_signal(set: &SigSet, nanos: i64) -> Option<i32> {
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: nanos,
    };
    // SAFETY: valid signal set, siginfo and timeout pointers.
    let sig = unsafe { libc::sigtimedwait(set.as_ref(), &mut info, &ts) };
    (sig > 0).then_some(sig)
}

pub fn reap(pid: i32) -> Option<i32> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => return Some(code),
            Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == pid => return Some(128 + s as i32),
            Ok(WaitStatus::StillAlive) => return None,
            // Not our child (no subreaper): poll the process instead.
            Err(_) if crate::utils::proc_state(pid).is_some_and(|s| s != 'Z') => return None,
            Err(_) => return Some(255),
            Ok(_) => continue,
        }
    }
}
