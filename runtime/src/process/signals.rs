//! The signal state a container's process starts with: every disposition SIG_DFL and an
//! empty mask, as runc gives. execve resets caught signals but keeps ignored ones and the
//! mask, and berth's own process ignores SIGPIPE (Rust's runtime) and may inherit more from
//! its caller (a shim ignores glibc's 32 and 33): left alone, `yes | head -n1` in the
//! container fails with "Broken pipe".

/// The kernel's struct sigaction for rt_sigaction(2) on Linux (not glibc's): handler,
/// flags, restorer, then a 64-bit mask.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Highest signal number the kernel knows (_NSIG - 1).
const MAX_SIGNAL: i32 = 64;

/// Resets dispositions 1..=64 to SIG_DFL and empties the mask. Runs just before execve in a
/// single-threaded child: glibc's sigaction refuses 32 and 33 (its own), so this uses the
/// raw system call. Errors are ignored: a signal the kernel refuses cannot be ignored either.
pub fn reset() {
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=MAX_SIGNAL {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction with a valid struct of the kernel's layout and its size of
        // the mask (8); SIG_DFL installs no handler, so no restorer is needed.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                std::mem::size_of::<u64>(),
            );
        }
    }
    let empty: u64 = 0;
    // SAFETY: rt_sigprocmask with a valid 8-byte set; raw too, as glibc's would keep 32/33.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            std::mem::size_of::<u64>(),
        );
    }
}

extern "C" fn ignore(_: libc::c_int) {}

/// Catches `sig` with a handler that does nothing. Unlike SIG_IGN, which execve keeps, a
/// caught signal is reset to SIG_DFL at execve, so the container's process still starts
/// with every disposition SIG_DFL. glibc's sigaction supplies the restorer a handler needs.
pub fn catch_until_exec(sig: libc::c_int) {
    // SAFETY: a zeroed sigaction with a valid handler and an empty mask; `ignore` is
    // async-signal-safe (it does nothing).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = ignore as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}
