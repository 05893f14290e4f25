//! Building the container's root: propagation, the rootfs bind, config mounts and /dev
//! (prepare, before pivot_root), then pivot_root, then masked/read-only paths and the
//! read-only root (finalize, inside the new root).

pub mod devices;
pub mod idmap;
pub mod mounts;
pub mod options;
pub mod paths;
pub mod procfs;

use crate::error::{Context, Error, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::Spec;
use paths::{fd_path, Root};
use std::path::Path;

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

/// Makes the mount tree of our new mount namespace stop propagating to the host, then
/// binds the rootfs onto itself so it is a mount point pivot_root can use.
pub fn prepare_root(rootfs: &Path, propagation: Option<&str>) -> Result<Root> {
    let conf = propagation
        .filter(|p| !p.is_empty())
        .map(propagation_flag)
        .transpose()?;
    let initial = match conf {
        // An unbindable / could not be bound as the rootfs: that comes in finalize.
        Some(f) if !f.intersects(MsFlags::MS_SHARED | MsFlags::MS_UNBINDABLE) => f,
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    mount(None::<&str>, "/", None::<&str>, initial, None::<&str>)
        .ctx(|| "set / propagation".into())?;
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

/// pivot_root(".", ".") and a lazy unmount of the old root: nothing of the host stays
/// reachable. With `no_pivot`, the rootfs is moved over / and chrooted instead.
pub fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    nix::unistd::chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
    if no_pivot {
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

/// Inside the new root: masked and read-only paths, the read-only root, final propagation.
pub fn finalize(spec: &Spec) -> Result<()> {
    let root = Root::open(Path::new("/"))?;
    let linux = spec.linux().as_ref();
    if let Some(paths) = linux.and_then(|l| l.masked_paths().as_ref()) {
        mask(&root, paths)?;
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

/// Files are covered with /dev/null, directories with an empty read-only tmpfs. /dev/null
/// is checked to be the real null device first: a container that swapped it for a link
/// must not get some other file bind-mounted over the masked path.
fn mask(root: &Root, paths: &[String]) -> Result<()> {
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
                Some("size=0,mode=555"),
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
