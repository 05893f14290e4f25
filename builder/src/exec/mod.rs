//! RUN steps as real containers: an overlay rootfs over the parent's snapshots, an
//! OCI runtime bundle, and the runtime binary run with runc's command line.

pub mod bundle;
pub mod copyfs;
pub mod mount;
pub mod runtime;
