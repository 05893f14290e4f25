//! berth: an OCI runtime (runtime-spec 1.2) with runc's command line.
//!
//! The library holds everything; `main.rs` is a thin CLI over it. Create is single-threaded
//! throughout: container processes are forked from it and never from a threaded process.

pub mod cgroups;
pub mod config;
pub mod container;
pub mod error;
pub mod features;
pub mod hooks;
pub mod jsonpath;
pub mod logger;
pub mod namespaces;
pub mod netdev;
pub mod netlink;
pub mod process;
pub mod rootfs;
pub mod rootless;
pub mod security;
pub mod selfexe;
pub mod tty;
pub mod ttyproxy;
pub mod utils;

pub use error::{Error, Result};

/// The runtime-spec version berth implements.
pub const OCI_VERSION: &str = "1.2.0";
/// The newest runtime-spec whose fields berth applies (1.3's linux.memoryPolicy and
/// linux.netDevices): `berth features`' ociVersionMax. Configs and state carry OCI_VERSION.
pub const OCI_VERSION_MAX: &str = "1.3.0";
