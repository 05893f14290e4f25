//! The rootfs mounts containerd passes with Create (an overlay of snapshots, or a bind),
//! mounted at `<bundle>/rootfs` before `berth create` and unmounted on delete.

use std::path::Path;

use containerd_shim::protos::api::Mount;

use crate::error::{Error, Result};

/// Mounts each of `mounts` on `target`; returns whether anything was mounted.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<bool> {
    if mounts.is_empty() {
        return Ok(false);
    }
    std::fs::create_dir_all(target).map_err(Error::io(format!("creating {}", target.display())))?;
    for (i, m) in mounts.iter().enumerate() {
        let res = containerd_shim::mount::mount_rootfs(
            Some(m.type_.as_str()).filter(|t| !t.is_empty()),
            Some(m.source.as_str()),
            &m.options,
            target,
        );
        if let Err(e) = res {
            if i > 0 {
                unmount(target);
            }
            return Err(Error::Mount {
                target: target.display().to_string(),
                msg: format!("{} {}: {e}", m.type_, m.source),
            });
        }
    }
    Ok(true)
}

/// Lazily unmounts everything stacked on `target` (best effort: delete must go on).
pub fn unmount(target: &Path) {
    loop {
        match nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => break,
            Err(e) => {
                log::warn!("unmounting {}: {e}", target.display());
                break;
            }
        }
    }
}
