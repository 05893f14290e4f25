//! Linux plumbing shared by the runtime (`berth`), the builder (`berth-build`) and the shim.
//!
//! - [`inroot`]: the one resolver for every path inside a rootfs, snapshot, build context,
//!   stage or store that a stranger's input can shape. Nothing else in the workspace may join
//!   such a path and then write, delete, chown or mount through it.

pub mod inroot;
