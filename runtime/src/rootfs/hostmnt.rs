//! A container without a mount namespace of its own shares the caller's, as the
//! runtime-spec allows (an absent namespace type is inherited from the runtime).
//!
//! runc 1.1.5 runs such a config by doing all its mounts in the caller's namespace (`/` made
//! rslave, the rootfs bound onto itself, every `mounts` entry, left behind after the
//! container is gone) and then `chroot`s into the rootfs (measured). berth makes no mount
//! at all in a mount namespace it does not own: the rootfs is entered with chroot(2), as
//! runc does, the default /dev nodes and `linux.devices` are made with mknod (runc makes the
//! same), and every field that needs a mount is refused with one line, as runc refuses
//! masked and read-only paths. A process with CAP_SYS_CHROOT can leave a chroot: such a
//! container is only as confined as runc's.

use crate::error::{Context, Result};
use oci_spec::runtime::Spec;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The first config field that would need a mount, with why; `None` when the config can run
/// in the caller's mount namespace. `userns`: the container has a user namespace, where
/// device nodes can only be bind-mounted.
pub fn refusal(spec: &Spec, userns: bool) -> Option<String> {
    let linux = spec.linux().as_ref();
    if let Some((i, m)) = spec.mounts().iter().flatten().enumerate().next() {
        return Some(format!(
            "mounts[{i}] ({}) needs a mount namespace",
            m.destination().display()
        ));
    }
    if spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly() == Some(true))
    {
        return Some("root.readonly needs a mount namespace".into());
    }
    let nonempty = |v: Option<&Vec<String>>| v.is_some_and(|v| !v.is_empty());
    if nonempty(linux.and_then(|l| l.masked_paths().as_ref())) {
        return Some("linux.maskedPaths need a mount namespace (runc refuses them too)".into());
    }
    if nonempty(linux.and_then(|l| l.readonly_paths().as_ref())) {
        return Some("linux.readonlyPaths need a mount namespace (runc refuses them too)".into());
    }
    if linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .is_some_and(|p| !p.is_empty())
    {
        return Some("linux.rootfsPropagation needs a mount namespace".into());
    }
    if userns || crate::rootless::is_rootless() {
        return Some(
            "a user namespace needs a mount namespace (its /dev nodes are bind mounts)".into(),
        );
    }
    None
}

/// The host's `/proc`, opened before the chroot: the rootfs has no procfs of its own.
pub fn open_proc() -> Result<std::os::fd::OwnedFd> {
    let f = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open("/proc")
        .ctx(|| "/proc".into())?;
    Ok(f.into())
}

/// Enters the rootfs as runc's chroot(): chdir, chroot("."), chdir("/").
pub fn chroot(rootfs: &Path) -> Result<()> {
    nix::unistd::chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
    nix::unistd::chroot(".").ctx(|| format!("chroot {}", rootfs.display()))?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}
