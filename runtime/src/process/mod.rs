//! Processes the runtime starts in a container: the init (create) and exec'd processes.
pub mod channel;
pub mod clone;
pub mod exec;
pub mod init;
pub mod persona;
pub mod sched;
pub mod setup;
pub mod signals;

/// Names the current (forked) stage, visible in ps, to tell runtime stages apart.
pub fn set_name(name: &str) {
    let _ = nix::sys::prctl::set_name(&std::ffi::CString::new(name).unwrap_or_default());
}

/// Ends a forked child without running the parent's atexit handlers or flushing its buffers.
pub fn exit_child(code: i32) -> ! {
    // SAFETY: _exit is always safe to call.
    unsafe { libc::_exit(code) }
}
