//! config.json `mounts`, in order. Each destination is resolved inside the rootfs by
//! paths::Root (so an image's symlinks cannot redirect a mount to the host), and the mount
//! syscalls target the resolved `/proc/self/fd/N`.

use super::options::{self, Options};
use super::paths::{fd_path, Kind, Root};
use crate::cgroups::Hierarchy;
use crate::error::{Context, Error, Result};
use crate::security::lsm;
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub struct MountCtx<'a> {
    pub root: &'a Root,
    pub bundle: &'a Path,
    pub hierarchies: &'a [Hierarchy],
    pub cgroup_paths: &'a [PathBuf],
    pub new_cgroupns: bool,
    pub userns: bool,
    /// Bind trees prepared on the host (rootfs/idmap.rs), by mount index.
    pub trees: &'a [super::idmap::Tree],
    /// linux.mountLabel: the SELinux context of the mounts that take one.
    pub label: Option<&'a str>,
}

pub fn mount_all(ctx: &MountCtx, mounts: &[Mount]) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        mount_one(ctx, i, m).map_err(|e| {
            Error::Other(format!("mounts[{i}] ({}): {e}", m.destination().display()))
        })?;
    }
    Ok(())
}

/// Is `dest` the container's /dev?
pub fn is_dev(dest: &Path) -> bool {
    berth_common::inroot::relative(dest) == Path::new("dev")
}

fn mount_one(ctx: &MountCtx, index: usize, m: &Mount) -> Result<()> {
    let mut opts = options::parse(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = m.destination();
    if is_dev(dest) {
        // Read-only only after everything under it is made (rootfs::finalize).
        opts.flags.remove(MsFlags::MS_RDONLY);
    }
    if let Some(t) = ctx.trees.iter().find(|t| t.index == index) {
        return attach_tree(ctx, m, &opts, t);
    }
    if typ == "bind" || opts.bind() {
        return bind(ctx, m, &opts);
    }
    if typ == "cgroup" {
        return cgroup(ctx, dest, &opts);
    }
    let target = if matches!(typ, "proc" | "sysfs") {
        ordinary_dir(ctx.root, dest, typ)?
    } else {
        ctx.root.ensure(dest, Kind::Dir)?
    };
    let src = m
        .source()
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| typ.to_string());
    let flags = opts.flags & !MsFlags::MS_REMOUNT;
    let label = ctx.label.filter(|_| lsm::takes_context(typ));
    let r = mount(
        Some(src.as_str()),
        fd_path(&target).as_str(),
        Some(typ),
        flags,
        lsm::format_mount_label(opts.data_str().as_deref(), label).as_deref(),
    );
    match r {
        Err(nix::Error::EPERM) if typ == "sysfs" => {
            // Without a network namespace of our own (or as a user namespace that does not own
            // it) sysfs cannot be mounted: bind the host's read-only, as rootless runc does.
            let f = MsFlags::MS_BIND | MsFlags::MS_REC;
            mount(
                Some("/sys"),
                fd_path(&target).as_str(),
                None::<&str>,
                f,
                None::<&str>,
            )
            .ctx(|| "bind /sys".into())?;
            let top = ctx.root.resolve(dest).map_err(|e| Error::io(dest, e))?;
            remount(
                &top,
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            )?;
        }
        r => r.ctx(|| match label {
            // The kernel's EINVAL names no option: say which one we added.
            Some(l) => format!(
                "mount {typ} on {} with linux.mountLabel context={l:?} (needs SELinux)",
                dest.display()
            ),
            None => format!("mount {typ} on {}", dest.display()),
        })?,
    }
    if typ == "mqueue" {
        let top = ctx.root.resolve(dest).map_err(|e| Error::io(dest, e))?;
        lsm::label_file(&fd_path(&top), ctx.label)?;
    }
    finish(ctx, dest, &opts)
}

/// proc and sysfs only on a real directory, never through a link that could take them
/// elsewhere in the rootfs (CVE-2019-19921), with runc's message; made if missing.
fn ordinary_dir(root: &Root, dest: &Path, typ: &str) -> Result<OwnedFd> {
    match root.resolve_nofollow(dest) {
        Ok(fd) if super::paths::fstat(&fd).is_ok_and(|st| st.is_dir()) => Ok(fd),
        Ok(_) => Err(Error::Other(format!(
            "filesystem {typ:?} must be mounted on ordinary directory"
        ))),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(root.ensure(dest, Kind::Dir)?),
        Err(e) => Err(Error::io(dest, e)),
    }
}

/// Propagation and recursive attributes, applied to the new mount (re-resolved, so the
/// descriptor is the mount's root and not the covered directory).
fn finish(ctx: &MountCtx, dest: &Path, opts: &Options) -> Result<()> {
    if opts.propagation.is_empty() && opts.attr_set == 0 && opts.attr_clr == 0 {
        return Ok(());
    }
    let top = ctx.root.resolve(dest).map_err(|e| Error::io(dest, e))?;
    for p in &opts.propagation {
        mount(
            None::<&str>,
            fd_path(&top).as_str(),
            None::<&str>,
            *p,
            None::<&str>,
        )
        .ctx(|| format!("set propagation on {}", dest.display()))?;
    }
    if opts.attr_set != 0 || opts.attr_clr != 0 {
        setattr(&top, opts.attr_set, opts.attr_clr, true)
            .ctx(|| format!("mount_setattr {}", dest.display()))?;
    }
    Ok(())
}

#[allow(clippy::disallowed_methods)] // a bind source is a host path by design (the bundle owner's)
fn bind(ctx: &MountCtx, m: &Mount, opts: &Options) -> Result<()> {
    let dest = m.destination();
    let src = m
        .source()
        .as_ref()
        .ok_or_else(|| Error::Other("bind mount needs a source".into()))?;
    let src = if src.is_absolute() {
        src.clone()
    } else {
        ctx.bundle.join(src)
    };
    let meta = std::fs::metadata(&src).map_err(|e| Error::io(&src, e))?;
    let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
    let target = ctx.root.ensure(dest, kind)?;
    // Open the source before mounting so a racing rename cannot swap it.
    let sfd = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(&src)
        .map_err(|e| Error::io(&src, e))?;
    let f = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
    mount(
        Some(fd_path(&sfd).as_str()),
        fd_path(&target).as_str(),
        None::<&str>,
        f,
        None::<&str>,
    )
    .ctx(|| format!("bind {} on {}", src.display(), dest.display()))?;
    let extra = opts.remount_flags();
    if !extra.is_empty() {
        let top = ctx.root.resolve(dest).map_err(|e| Error::io(dest, e))?;
        remount(&top, extra)?;
    }
    finish(ctx, dest, opts)
}

use std::os::unix::fs::OpenOptionsExt;

/// A bind prepared on the host (idmapped, or any bind under a user namespace): the detached
/// tree is moved onto the destination.
fn attach_tree(ctx: &MountCtx, m: &Mount, opts: &Options, t: &super::idmap::Tree) -> Result<()> {
    let dest = m.destination();
    let dir = nix::sys::stat::fstat(&t.fd)
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .unwrap_or(true);
    let target = ctx
        .root
        .ensure(dest, if dir { Kind::Dir } else { Kind::File })?;
    super::idmap::attach(&t.fd, &target)
        .ctx(|| format!("move the prepared bind onto {}", dest.display()))?;
    let extra = opts.remount_flags();
    if !extra.is_empty() {
        let top = ctx.root.resolve(dest).map_err(|e| Error::io(dest, e))?;
        remount(&top, extra)?;
    }
    finish(ctx, dest, opts)
}

/// Bind remount with new flags, keeping the flags the kernel locks on the source mount
/// (a user namespace may not clear nosuid/nodev/noexec/ro it inherited).
pub fn remount(top: &OwnedFd, flags: MsFlags) -> Result<()> {
    let st = nix::sys::statvfs::fstatvfs(top).ctx(|| "statvfs".into())?;
    use nix::sys::statvfs::FsFlags as S;
    let mut locked = MsFlags::empty();
    for (s, m) in [
        (S::ST_NOSUID, MsFlags::MS_NOSUID),
        (S::ST_NODEV, MsFlags::MS_NODEV),
        (S::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (S::ST_RDONLY, MsFlags::MS_RDONLY),
    ] {
        if st.flags().contains(s) {
            locked |= m;
        }
    }
    let f = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags;
    let path = fd_path(top);
    match mount(None::<&str>, path.as_str(), None::<&str>, f, None::<&str>) {
        Err(nix::Error::EPERM) => mount(
            None::<&str>,
            path.as_str(),
            None::<&str>,
            f | locked,
            None::<&str>,
        ),
        r => r,
    }
    .ctx(|| "remount".into())
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on a resolved mount (recursive attributes, idmapped mounts).
pub fn setattr(fd: &impl AsRawFd, set: u64, clr: u64, recursive: bool) -> nix::Result<()> {
    setattr_userns(fd, set, clr, recursive, 0)
}

pub fn setattr_userns(
    fd: &impl AsRawFd,
    set: u64,
    clr: u64,
    recursive: bool,
    userns: u64,
) -> nix::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: userns,
    };
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: attr lives across the call; the empty path with AT_EMPTY_PATH targets fd.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        Err(nix::Error::last())
    } else {
        Ok(())
    }
}

/// A `cgroup` mount: a tmpfs holding one directory per v1 hierarchy (or cgroup2 itself on
/// a v2-only host). With a cgroup namespace the hierarchies are mounted fresh (the kernel
/// shows the container's cgroup as the root); without one the container's own cgroup
/// directories are bind-mounted, so the host's tree is never visible.
#[allow(clippy::disallowed_methods)] // dest is in-container; it is resolved with ctx.root below
fn cgroup(ctx: &MountCtx, dest: &Path, opts: &Options) -> Result<()> {
    let flags = opts.flags
        & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME);
    let ro = opts.flags.contains(MsFlags::MS_RDONLY);
    let target = ctx.root.ensure(dest, Kind::Dir)?;
    if crate::cgroups::is_v2_only(ctx.hierarchies) {
        let p = ctx.cgroup_paths.first().cloned().unwrap_or_default();
        mount_hierarchy(
            &target,
            dest,
            "cgroup2",
            None,
            &p,
            ctx.new_cgroupns,
            flags,
            ro,
        )?;
        // Without a cgroup namespace it is a bind of the container's cgroup, which keeps
        // the source's rw flag until remounted: `ro` must hold either way.
        if ro {
            let top = ctx.root.resolve(dest).map_err(|e| Error::io(dest, e))?;
            remount(&top, flags | MsFlags::MS_RDONLY)?;
        }
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        fd_path(&target).as_str(),
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )
    .ctx(|| format!("mount tmpfs on {}", dest.display()))?;
    for (h, p) in ctx.hierarchies.iter().zip(ctx.cgroup_paths) {
        let name = h
            .mount
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let sub = dest.join(&name);
        let t = ctx.root.ensure(&sub, Kind::Dir)?;
        let (fstype, data) = if h.v2 {
            ("cgroup2", None)
        } else {
            ("cgroup", Some(h.controllers.as_str()))
        };
        mount_hierarchy(&t, &sub, fstype, data, p, ctx.new_cgroupns, flags, ro)?;
        if ro {
            let top = ctx.root.resolve(&sub).map_err(|e| Error::io(&sub, e))?;
            remount(&top, flags | MsFlags::MS_RDONLY)?;
        }
        comount_links(ctx, dest, &name)?;
    }
    if ro {
        let top = ctx.root.resolve(dest).map_err(|e| Error::io(dest, e))?;
        remount(&top, flags | MsFlags::MS_RDONLY)?;
    }
    Ok(())
}

/// A co-mounted v1 hierarchy (`cpu,cpuacct` on systemd hosts) is also reachable by each
/// controller's own name, as on the host and as runc makes it: `cpu -> cpu,cpuacct`.
fn comount_links(ctx: &MountCtx, dest: &Path, name: &str) -> Result<()> {
    if !name.contains(',') {
        return Ok(());
    }
    let dir = ctx.root.dir(dest)?;
    for part in name.split(',').filter(|p| !p.is_empty()) {
        match dir.symlink(std::ffi::OsStr::new(part), Path::new(name)) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            r => r?,
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn mount_hierarchy(
    t: &OwnedFd,
    dest: &Path,
    fstype: &str,
    data: Option<&str>,
    host: &Path,
    new_ns: bool,
    flags: MsFlags,
    ro: bool,
) -> Result<()> {
    let target = fd_path(t);
    let rof = if ro {
        MsFlags::MS_RDONLY
    } else {
        MsFlags::empty()
    };
    if new_ns
        && mount(
            Some("cgroup"),
            target.as_str(),
            Some(fstype),
            flags | rof,
            data,
        )
        .is_ok()
    {
        return Ok(());
    }
    let hf = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(host)
        .map_err(|e| Error::io(host, e))?;
    mount(
        Some(fd_path(&hf).as_str()),
        target.as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("bind cgroup {} on {}", host.display(), dest.display()))?;
    let _ = fstype;
    Ok(())
}
