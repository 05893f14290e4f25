//! /dev: the default devices the runtime-spec requires, `linux.devices`, and the standard
//! symlinks. Outside a user namespace nodes are made with mknod; inside one (where mknod is
//! refused) the host's nodes are bind-mounted instead.

use super::paths::{fd_path, Kind, Root};
use crate::error::{Context, Error, Result};
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
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

fn mknod(root: &Root, n: &Node) -> Result<()> {
    let (parent, name) = split(&n.path)?;
    root.mkdir_all(&parent, 0o755)?;
    let dir = root
        .open_in(&parent, libc::O_DIRECTORY | libc::O_RDONLY)
        .map_err(|e| Error::io(&parent, e))?;
    let cname =
        CString::new(name.as_bytes()).map_err(|_| Error::Other("bad device name".into()))?;
    let fmt = match n.kind {
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        _ => libc::S_IFCHR,
    };
    // SAFETY: unlinkat/mknodat/fchownat relative to a directory descriptor we hold.
    unsafe {
        libc::unlinkat(dir.as_raw_fd(), cname.as_ptr(), 0);
        let dev = libc::makedev(n.major as u32, n.minor as u32);
        if libc::mknodat(
            dir.as_raw_fd(),
            cname.as_ptr(),
            fmt | (n.mode & 0o7777),
            dev,
        ) != 0
        {
            return Err(Error::io(&n.path, std::io::Error::last_os_error()));
        }
        if libc::fchownat(
            dir.as_raw_fd(),
            cname.as_ptr(),
            n.uid,
            n.gid,
            libc::AT_SYMLINK_NOFOLLOW,
        ) != 0
        {
            return Err(Error::io(&n.path, std::io::Error::last_os_error()));
        }
        libc::fchmodat(dir.as_raw_fd(), cname.as_ptr(), n.mode & 0o7777, 0);
    }
    Ok(())
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

fn split(p: &Path) -> Result<(PathBuf, std::ffi::OsString)> {
    match (p.parent(), p.file_name()) {
        (Some(a), Some(b)) => Ok((a.to_path_buf(), b.to_owned())),
        _ => Err(Error::Other(format!("invalid device path {}", p.display()))),
    }
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
    let dev = root
        .open_in(Path::new("/dev"), libc::O_DIRECTORY | libc::O_RDONLY)
        .map_err(|e| Error::io("/dev", e))?;
    for (target, name) in l {
        symlinkat(&dev, target, name)?;
    }
    // /dev/ptmx must be the container's own devpts instance.
    let ptmx = CString::new("ptmx").unwrap();
    // SAFETY: unlinkat relative to the /dev descriptor.
    unsafe { libc::unlinkat(dev.as_raw_fd(), ptmx.as_ptr(), 0) };
    symlinkat(&dev, "pts/ptmx", "ptmx")
}

fn symlinkat(dir: &impl AsRawFd, target: &str, name: &str) -> Result<()> {
    let (t, n) = (CString::new(target).unwrap(), CString::new(name).unwrap());
    // SAFETY: symlinkat relative to a directory descriptor we hold.
    if unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), n.as_ptr()) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(Error::io(format!("/dev/{name}"), e));
        }
    }
    Ok(())
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
    let name = std::ffi::OsStr::new("console");
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
