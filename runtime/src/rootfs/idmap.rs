//! Bind mounts prepared on the host, before any namespace is made: the runtime's parent
//! clones each source tree detached (open_tree), and the init inherits the descriptors and
//! moves the trees into place (move_mount).
//! - Idmapped binds (mount `uidMappings`/`gidMappings`, options `idmap`/`ridmap`) also get
//!   a user namespace holding the mapping attached (mount_setattr MOUNT_ATTR_IDMAP); inside
//!   a container user namespace the init could not idmap a host mount itself.
//! - Every other bind of a container with a user namespace: its source is opened here, as
//!   host root, so a source only host root may reach (a 0700 parent) still works once the
//!   init is a mapped uid (runc >= 1.1 passes such sources in as descriptors too).

use super::options::{self, ATTR_IDMAP};
use crate::error::{Error, Result};
use nix::unistd::{fork, ForkResult};
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

const OPEN_TREE_CLONE: u32 = 1;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;

/// A detached, idmapped mount tree for `mounts[index]`.
pub struct Tree {
    pub index: usize,
    pub fd: OwnedFd,
}

/// The mappings a mount asks for: its own, or with a bare `idmap`/`ridmap` option the
/// container's user namespace mappings. None when the mount is not idmapped.
fn mappings<'a>(
    m: &'a Mount,
    spec: &'a Spec,
    field: &str,
) -> Result<Option<(&'a [LinuxIdMapping], &'a [LinuxIdMapping])>> {
    let opts = options::parse(m.options().as_deref().unwrap_or(&[]));
    let (u, g) = (m.uid_mappings().as_deref(), m.gid_mappings().as_deref());
    if u.is_none() && g.is_none() && !opts.idmap {
        return Ok(None);
    }
    let linux = spec.linux().as_ref();
    let (u, g) = match (u, g) {
        (Some(u), Some(g)) => (u, g),
        (None, None) => match linux.and_then(|l| l.uid_mappings().as_deref().zip(l.gid_mappings().as_deref())) {
            Some(ug) => ug,
            None => {
                return Err(Error::Other(format!(
                    "{field}.options: idmap without uidMappings/gidMappings needs the container's user namespace mappings"
                )))
            }
        },
        _ => {
            return Err(Error::Other(format!(
                "{field}: uidMappings and gidMappings must be given together"
            )))
        }
    };
    let bind = m.typ().as_deref() == Some("bind") || opts.bind();
    if !bind {
        return Err(Error::Other(format!(
            "{field}: idmapped mounts must be bind mounts (type {:?})",
            m.typ().as_deref().unwrap_or("")
        )));
    }
    Ok(Some((u, g)))
}

/// Prepares every idmapped mount of the config, and with a user namespace (as root) every
/// other bind (on the host, before create forks).
pub fn prepare(spec: &Spec, bundle: &Path) -> Result<Vec<Tree>> {
    // Rootless, the caller could not clone a mount tree (and reaches only its own paths).
    let userns = !crate::rootless::is_rootless()
        && spec.linux().as_ref().is_some_and(|l| {
            l.namespaces()
                .iter()
                .flatten()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        });
    let mut out = vec![];
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let field = format!("mounts[{i}] ({})", m.destination().display());
        let fd = match mappings(m, spec, &field)? {
            Some((u, g)) => idmapped_tree(m, bundle, u, g),
            None if userns && is_bind(m) => tree(m, bundle),
            None => continue,
        };
        let fd = fd.map_err(|e| Error::Other(format!("{field}: {e}")))?;
        out.push(Tree { index: i, fd });
    }
    Ok(out)
}

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || options::parse(m.options().as_deref().unwrap_or(&[])).bind()
}

fn idmapped_tree(
    m: &Mount,
    bundle: &Path,
    u: &[LinuxIdMapping],
    g: &[LinuxIdMapping],
) -> std::result::Result<OwnedFd, String> {
    let opts = options::parse(m.options().as_deref().unwrap_or(&[]));
    let tree = tree(m, bundle)?;
    let userns = mapping_userns(u, g)?;
    super::mounts::setattr_userns(
        &tree,
        ATTR_IDMAP,
        0,
        opts.recursive_idmap,
        userns.as_raw_fd() as u64,
    )
    .map_err(|e| {
        format!(
            "mount_setattr MOUNT_ATTR_IDMAP: {e} (does the filesystem support idmapped mounts?)"
        )
    })?;
    Ok(tree)
}

/// The source of a bind, cloned detached (with its submounts for `rbind`).
#[allow(clippy::disallowed_methods)] // a bind source is a host path by design (the bundle owner's)
fn tree(m: &Mount, bundle: &Path) -> std::result::Result<OwnedFd, String> {
    let opts = options::parse(m.options().as_deref().unwrap_or(&[]));
    let src = m.source().as_ref().ok_or("bind mount needs a source")?;
    let src = if src.is_absolute() {
        src.clone()
    } else {
        bundle.join(src)
    };
    let recursive_tree = opts.flags.contains(nix::mount::MsFlags::MS_REC);
    let flags = OPEN_TREE_CLONE
        | libc::O_CLOEXEC as u32
        | if recursive_tree {
            libc::AT_RECURSIVE as u32
        } else {
            0
        };
    let c =
        std::ffi::CString::new(src.as_os_str().as_encoded_bytes()).map_err(|_| "NUL in source")?;
    // SAFETY: c is a valid C string; open_tree returns a new descriptor or -1.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if r < 0 {
        return Err(format!(
            "open_tree {}: {}",
            src.display(),
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: r is a descriptor we own from here on.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// A user namespace holding the mapping, kept by its descriptor: a forked child unshares
/// it, we write its maps, open it, and let the child go.
fn mapping_userns(
    u: &[LinuxIdMapping],
    g: &[LinuxIdMapping],
) -> std::result::Result<OwnedFd, String> {
    let (ready_r, ready_w) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    let (done_r, done_w) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: berth is single-threaded; the child only unshares, writes and reads.
    let child = match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            // Our copies of the parent's ends would keep the read below from seeing EOF.
            drop((ready_r, done_w));
            let ok = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_ok();
            let _ = nix::unistd::write(&ready_w, if ok { b"1" } else { b"0" });
            let _ = nix::unistd::read(&done_r, &mut [0u8; 1]);
            crate::process::exit_child(0)
        }
        ForkResult::Parent { child } => child,
    };
    drop((ready_w, done_r));
    let mut b = [0u8; 1];
    let got = nix::unistd::read(&ready_r, &mut b);
    let r = (|| {
        if got != Ok(1) || b[0] != b'1' {
            return Err("unshare user namespace for the mapping failed".to_string());
        }
        let fmt = |m: &[LinuxIdMapping]| {
            m.iter()
                .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
                .collect::<String>()
        };
        super::procfs::write(&format!("{child}/uid_map"), fmt(u).as_bytes())
            .map_err(|e| format!("uidMappings: {e}"))?;
        super::procfs::write(&format!("{child}/gid_map"), fmt(g).as_bytes())
            .map_err(|e| format!("gidMappings: {e}"))?;
        std::fs::File::open(format!("/proc/{child}/ns/user"))
            .map(OwnedFd::from)
            .map_err(|e| format!("open user namespace: {e}"))
    })();
    drop(done_w);
    let _ = nix::sys::wait::waitpid(child, None);
    r
}

/// Moves a prepared tree onto `target` (an O_PATH descriptor inside the rootfs).
pub fn attach(tree: &OwnedFd, target: &OwnedFd) -> nix::Result<()> {
    // SAFETY: both descriptors are valid; empty paths with the *_EMPTY_PATH flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r < 0 {
        Err(nix::Error::last())
    } else {
        Ok(())
    }
}
