//! Building the container's root: propagation, the rootfs bind, config mounts and /dev
//! (prepare, before pivot_root), then pivot_root, then masked/read-only paths and the
//! read-only root (finalize, inside the new root).

#![deny(clippy::disallowed_methods)] // paths in here are inside a root: see clippy.toml

pub mod devices;
pub mod hostmnt;
pub mod idmap;
pub mod mounts;
pub mod options;
pub mod paths;
pub mod procfs;

use crate::error::{Context, Error, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::Spec;
use paths::{fd_path, Root};
use std::path::{Path, PathBuf};

pub fn propagation_flag(name: &str) -> Result<MsFlags> {
    use MsFlags as F;
    Ok(match name {
        "private" => F::MS_PRIVATE,
        "rprivate" => F::MS_PRIVATE | F::MS_REC,
        "slave" => F::MS_SLAVE,
        "rslave" => F::MS_SLAVE | F::MS_REC,
        "shared" => F::MS_SHARED,
        "rshared" => F::MS_SHARED | F::MS_REC,
        "unbindable" => F::MS_UNBINDABLE,
        "runbindable" => F::MS_UNBINDABLE | F::MS_REC,
        _ => {
            return Err(Error::Other(format!(
                "linux.rootfsPropagation: unknown value {name:?}"
            )))
        }
    })
}

/// Sets the propagation of our new mount namespace's tree as runc does: `/` recursively
/// gets `linux.rootfsPropagation` (rslave by default), so with `rshared` the host's shared
/// mounts stay peers of their copies here and a bind volume marked `rshared` is
/// bidirectional (a mount made in the container appears on the host). Only the mount
/// holding the rootfs is made private, for pivot_root and so that the rootfs bind does not
/// propagate out. Then the rootfs is bound onto itself, a mount point pivot_root can use.
pub fn prepare_root(rootfs: &Path, propagation: Option<&str>) -> Result<Root> {
    let conf = propagation
        .filter(|p| !p.is_empty())
        .map(propagation_flag)
        .transpose()?;
    let initial = match conf {
        // An unbindable / could not be bound as the rootfs: that comes in finalize.
        Some(f) if !f.contains(MsFlags::MS_UNBINDABLE) => f,
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    mount(None::<&str>, "/", None::<&str>, initial, None::<&str>)
        .ctx(|| "set / propagation".into())?;
    parent_mount_private(rootfs)?;
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("bind rootfs {}", rootfs.display()))?;
    if conf.is_some_and(|f| f.contains(MsFlags::MS_SHARED)) {
        // pivot_root refuses a shared new root; it becomes shared again in finalize.
        mount(
            None::<&str>,
            rootfs,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .ctx(|| "make rootfs private".into())?;
    }
    Ok(Root::open(rootfs)?)
}

/// Makes the mount that holds `rootfs` (the longest mount point above or at it) private
/// when it is shared, as runc's rootfsParentMountPrivate does.
fn parent_mount_private(rootfs: &Path) -> Result<()> {
    let mi =
        std::fs::read_to_string("/proc/self/mountinfo").ctx(|| "/proc/self/mountinfo".into())?;
    let parent = mi
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let point = PathBuf::from(unescape(f.get(4)?));
            let opt = f.get(6..)?.iter().take_while(|o| **o != "-");
            let shared = opt.clone().any(|o| o.starts_with("shared:"));
            rootfs.starts_with(&point).then_some((point, shared))
        })
        .max_by_key(|(p, _)| p.as_os_str().len());
    match parent {
        Some((point, true)) => mount(
            None::<&str>,
            &point,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .ctx(|| format!("make {} private", point.display())),
        _ => Ok(()),
    }
}

/// mountinfo's octal escapes (`\040` for a space) undone.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(std::str::from_utf8(o).ok()?, 8).ok());
        match (b[i], oct) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// pivot_root(".", ".") and a lazy unmount of the old root: nothing of the host stays
/// reachable. With `no_pivot`, the rootfs is moved over / and chrooted instead.
pub fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    nix::unistd::chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
    if no_pivot {
        hide_full_proc_and_sys(rootfs)?;
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .ctx(|| "move rootfs to /".into())?;
        nix::unistd::chroot(".").ctx(|| "chroot".into())?;
        return nix::unistd::chdir("/").ctx(|| "chdir /".into());
    }
    let old = std::fs::File::open("/").ctx(|| "/".into())?;
    nix::unistd::pivot_root(".", ".").ctx(|| format!("pivot_root {}", rootfs.display()))?;
    nix::unistd::fchdir(&old).ctx(|| "fchdir old root".into())?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| "old root slave".into())?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "unmount old root".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}

/// Before a `--no-pivot` move of the rootfs: the host's full procfs and sysfs mounts (their
/// fs root mounted, outside the rootfs) would stay in our mount namespace behind the
/// chroot, and while one is fully visible the kernel lets a container with CAP_SYS_ADMIN
/// in its user namespace mount a fresh procfs without the masked paths. So each is
/// detached, or covered with a tmpfs where that is refused, as runc's msMoveRoot does.
fn hide_full_proc_and_sys(rootfs: &Path) -> Result<()> {
    let mi =
        std::fs::read_to_string("/proc/self/mountinfo").ctx(|| "/proc/self/mountinfo".into())?;
    let full: Vec<PathBuf> = mi
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            let (root, point, fstype) = (
                f.get(3)?,
                PathBuf::from(unescape(f.get(4)?)),
                f.get(sep + 1)?,
            );
            let proc_or_sys = matches!(*fstype, "proc" | "sysfs");
            (*root == "/" && proc_or_sys && !point.starts_with(rootfs)).then_some(point)
        })
        .collect();
    for p in full {
        // Unmount events must not reach the host.
        match mount(
            None::<&str>,
            &p,
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ) {
            Err(nix::Error::ENOENT) => continue, // under one already detached
            r => r.ctx(|| format!("make {} slave", p.display()))?,
        }
        match umount2(&p, MntFlags::MNT_DETACH) {
            Err(nix::Error::EINVAL) | Err(nix::Error::EPERM) => mount(
                Some("tmpfs"),
                &p,
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .ctx(|| format!("cover {}", p.display()))?,
            r => r.ctx(|| format!("unmount {}", p.display()))?,
        }
    }
    Ok(())
}

/// Inside the new root: masked and read-only paths, the read-only root, final propagation.
pub fn finalize(spec: &Spec) -> Result<()> {
    let root = Root::open(Path::new("/"))?;
    dev_readonly(&root, spec)?;
    let linux = spec.linux().as_ref();
    if let Some(paths) = linux.and_then(|l| l.masked_paths().as_ref()) {
        mask(&root, paths, linux.and_then(|l| l.mount_label().as_deref()))?;
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        readonly(&root, Path::new(p))
            .map_err(|e| Error::Other(format!("linux.readonlyPaths {p}: {e}")))?;
    }
    if spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly() == Some(true))
    {
        mounts::remount(
            &root
                .resolve(Path::new("/"))
                .map_err(|e| Error::io("/", e))?,
            MsFlags::MS_RDONLY,
        )
        .map_err(|e| Error::Other(format!("root.readonly: {e}")))?;
    }
    if let Some(p) = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|p| !p.is_empty())
    {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            propagation_flag(p)?,
            None::<&str>,
        )
        .ctx(|| "linux.rootfsPropagation".into())?;
    }
    Ok(())
}

/// A `/dev` mount asked `ro` is mounted writable (mounts.rs) so that /dev/pts, /dev/shm,
/// the device nodes and /dev/console can be made under it, and made read-only here, after
/// all of them, with its other flags kept (as runc's finalizeRootfs does).
fn dev_readonly(root: &Root, spec: &Spec) -> Result<()> {
    let dev = spec
        .mounts()
        .iter()
        .flatten()
        .rfind(|m| mounts::is_dev(m.destination()));
    let Some(m) = dev else { return Ok(()) };
    let opts = options::parse(m.options().as_deref().unwrap_or(&[]));
    if !opts.flags.contains(MsFlags::MS_RDONLY) {
        return Ok(());
    }
    let top = root
        .resolve(Path::new("/dev"))
        .map_err(|e| Error::io("/dev", e))?;
    mounts::remount(&top, opts.remount_flags())
        .map_err(|e| Error::Other(format!("make /dev read-only: {e}")))
}

/// Files are covered with /dev/null, directories with an empty read-only tmpfs. /dev/null
/// is checked to be the real null device first: a container that swapped it for a link
/// must not get some other file bind-mounted over the masked path.
fn mask(root: &Root, paths: &[String], label: Option<&str>) -> Result<()> {
    // Labelled as runc's maskDir labels its tmpfs.
    let data = crate::security::lsm::format_mount_label(Some("size=0,mode=555"), label);
    let null = root
        .open_in(Path::new("/dev/null"), libc::O_PATH | libc::O_NOFOLLOW)
        .map_err(|e| Error::io("/dev/null", e))?;
    let st = nix::sys::stat::fstat(&null).ctx(|| "/dev/null".into())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
        return Err(Error::Other(
            "/dev/null in the container is not the null device".into(),
        ));
    }
    for p in paths {
        // Followed inside the root, as runc's mount on the path after pivot_root follows it:
        // a link in the image protects what it points at there, never a host path.
        let target = match root.resolve(Path::new(p)) {
            Ok(t) => t,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(Error::Other(format!("linux.maskedPaths {p}: {e}"))),
        };
        let st = nix::sys::stat::fstat(&target).ctx(|| p.clone())?;
        let r = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            let f =
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            mount(
                Some("tmpfs"),
                fd_path(&target).as_str(),
                Some("tmpfs"),
                f,
                data.as_deref(),
            )
        } else {
            mount(
                Some(fd_path(&null).as_str()),
                fd_path(&target).as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        r.ctx(|| format!("linux.maskedPaths {p}"))?;
    }
    Ok(())
}

fn readonly(root: &Root, p: &Path) -> Result<()> {
    let target = match root.resolve(p) {
        Ok(t) => t,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::io(p, e)),
    };
    let t = fd_path(&target);
    mount(
        Some(t.as_str()),
        t.as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| "bind".into())?;
    let top = root.resolve(p).map_err(|e| Error::io(p, e))?;
    mounts::remount(
        &top,
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
    )
}
