//! Process privileges: capabilities (and, with the resources issue, seccomp).
pub mod caps;
