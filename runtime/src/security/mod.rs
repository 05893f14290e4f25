//! Process privileges: capabilities, seccomp and the LSM (AppArmor, SELinux) labels.
pub mod caps;
pub mod lsm;
pub mod seccomp;
mod syscalls_x86_64;
