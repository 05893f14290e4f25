//! /dev: the default devices the runtime-spec requires, `linux.devices`, and the standard
//! symlinks. Outside a user namespace nodes are made with mknod; inside one (where mknod is
//! refused) the host's nodes are bind-mounted instead.

use super::paths::{fd_path, Dir, Kind, Root};
use crate::error::{Context, Error, Result};
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// (path, major, minor): the runtime-spec's default devices, all char devices, mode 0666.
const DEFAULTS: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

pub struct Node {
    pub path: PathBuf,
    pub kind: LinuxDeviceType,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

pub fn setup(root: &Root, devices: &[LinuxDevice], userns: bool, defaults: bool) -> Result<()> {
    let mut nodes: Vec<Node> = Vec::new();
    if defaults {
        for (p, maj, min) in DEFAULTS {
            nodes.push(Node {
                path: p.into(),
                kind: LinuxDeviceType::C,
                major: maj,
                minor: min,
                mode: 0o666,
                uid: 0,
                gid: 0,
            });
        }
    }
    for (i, d) in devices.iter().enumerate() {
        if !d.path().starts_with("/dev") {
            return Err(Error::Other(format!(
                "linux.devices[{i}].path {}: must be under /dev",
                d.path().display()
            )));
        }
        nodes.retain(|n| n.path != *d.path());
        nodes.push(Node {
            path: d.path().clone(),
            kind: d.typ(),
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    for n in &nodes {
        let r = if userns {
            bind_host(root, n)
        } else {
            mknod(root, n)
        };
        r.map_err(|e| Error::Other(format!("device {}: {e}", n.path.display())))?;
    }
    if defaults {
        links(root)?;
    }
    Ok(())
}

/// Makes the node where nothing is yet, through the in-root resolver; an existing entry is
/// left alone, as runc leaves it: never unlinked and re-made (/dev may be a host directory
/// bound in, even the host's /dev, whose nodes must keep their inode, owner and mode).
fn mknod(root: &Root, n: &Node) -> Result<()> {
    let (dir, name) = root.parent_all(&n.path, 0o755)?;
    if dir.lstat(&name)?.is_some() {
        return Ok(());
    }
    let fmt = match n.kind {
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        _ => libc::S_IFCHR,
    };
    let dev = libc::makedev(n.major as u32, n.minor as u32);
    match dir.mknod(&name, fmt, n.mode & 0o7777, dev) {
        // Made meanwhile (a shared /dev): theirs stays.
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => return Ok(()),
        r => r?,
    }
    Ok(dir.chown(&name, n.uid, n.gid)?)
}

fn bind_host(root: &Root, n: &Node) -> Result<()> {
    let target = root.ensure(&n.path, Kind::File)?;
    let host = n.path.to_string_lossy().into_owned();
    mount(
        Some(host.as_str()),
        fd_path(&target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .ctx(|| format!("bind host {host}"))
}

fn links(root: &Root) -> Result<()> {
    let mut l = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        l.push(("/proc/kcore", "core"));
    }
    let dev = root.dir(Path::new("/dev"))?;
    for (target, name) in l {
        symlink(&dev, target, name)?;
    }
    // /dev/ptmx must be the container's own devpts instance (this /dev is the config's
    // tmpfs or the image's own directory, never a bound host /dev: see setup).
    let ptmx = OsStr::new("ptmx");
    if dev.lstat(ptmx)?.is_some_and(|st| !st.is_dir()) {
        dev.unlink(ptmx)?;
    }
    symlink(&dev, "pts/ptmx", "ptmx")
}

/// An existing entry of that name is kept.
fn symlink(dev: &Dir, target: &str, name: &str) -> Result<()> {
    match dev.symlink(OsStr::new(name), Path::new(target)) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        r => Ok(r?),
    }
}

/// Binds the terminal's slave side onto /dev/console, as the spec asks when `terminal` is
/// set, without following anything a container could have planted (CVE-2025-52565): the
/// source is the slave the init holds on fd 0 (tty::setup put it there), checked to be the
/// pty `slave` names; the target is /dev/console itself, made empty if missing, and a link
/// there is refused (as runc refuses it) instead of mounting the pty wherever it points.
pub fn console(root: &Root, slave: &Path) -> Result<()> {
    let err = |m: &dyn std::fmt::Display| Error::Other(format!("/dev/console: {m}"));
    let src = nix::sys::stat::fstat(std::io::stdin()).ctx(|| "fstat the terminal".into())?;
    let n: Option<u64> = slave
        .strip_prefix("/dev/pts")
        .ok()
        .and_then(|n| n.to_str()?.parse().ok());
    // UNIX98 pty slaves: majors 136-143, minor = the low 8 bits of the pts number.
    let want = n.map(|n| libc::makedev(136 + (n >> 8) as u32, (n & 0xff) as u32));
    if src.st_mode & libc::S_IFMT != libc::S_IFCHR || Some(src.st_rdev) != want {
        return Err(err(&format!(
            "stdin is not the terminal {}",
            slave.display()
        )));
    }
    let dev = root.dir(Path::new("/dev"))?;
    let name = OsStr::new("console");
    match dev.lstat(name)? {
        None => drop(dev.create(name, 0o666)?),
        Some(st) if st.is_symlink() => {
            return Err(err(&"is a symlink; refusing to mount through it"))
        }
        Some(_) => {}
    }
    let target = dev.open_path(name)?;
    if super::paths::fstat(&target)
        .map_err(|e| err(&e))?
        .is_symlink()
    {
        return Err(err(&"is a symlink; refusing to mount through it"));
    }
    mount(
        Some("/proc/self/fd/0"),
        fd_path(&target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .ctx(|| format!("bind {} on /dev/console", slave.display()))
}
