//! Process privileges: capabilities, seccomp and the LSM (AppArmor, SELinux) labels.
pub mod caps;
pub mod lsm;
pub mod seccomp;
mod syscalls_x86_64;

// The seccomp compiler emits x86_64 filters and the syscall table is x86_64's: built for
// another architecture, berth would load filters that match nothing there. Refuse to build
// instead (add syscalls_<arch>.rs, its TargetArch and AUDIT_ARCH first).
#[cfg(not(target_arch = "x86_64"))]
compile_error!("berth's seccomp support covers x86_64 only: add the syscall table and audit arch for this target");
