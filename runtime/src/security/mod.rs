//! Process privileges: capabilities and seccomp.
pub mod caps;
pub mod seccomp;
mod syscalls_x86_64;
