//! Overlay mounts that are always undone: a guard unmounts on drop, on every path.

use super::copyfs;
use crate::error::{Error, IoContext, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Mounted {
    target: PathBuf,
    live: bool,
    /// Not a mount but a copy (see copyfs): the record to diff, and the upper dir.
    copy: Option<(copyfs::Record, Option<PathBuf>)>,
}

impl Mounted {
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Leave it mounted for good (a bundle's rootfs outlives this process).
    pub fn keep(mut self) {
        self.live = false;
    }

    /// Unmount now, reporting errors (drop does it silently with MNT_DETACH). A copy
    /// writes its changes to the upper dir, as the overlay would have, and is emptied.
    pub fn unmount(mut self) -> Result<()> {
        self.live = false;
        if let Some((rec, upper)) = self.copy.take() {
            if let Some(u) = upper {
                copyfs::diff(&self.target, &rec, &u)?;
            }
            std::fs::remove_dir_all(&self.target).at(&self.target)?;
            return std::fs::create_dir(&self.target).at(&self.target);
        }
        umount2(&self.target, MntFlags::empty())
            .or_else(|_| umount2(&self.target, MntFlags::MNT_DETACH))
            .at(&self.target)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.live {
            let _ = umount2(&self.target, MntFlags::MNT_DETACH);
        }
    }
}

/// Mount an overlay at `target`. `lowers` are top-most first. With no upper, the
/// mount is read-only (a single lower is bind-mounted read-only instead, as overlay
/// needs two lowers without an upper). `empty` is used as lower when there is none.
pub fn overlay(
    lowers: &[PathBuf],
    upper: Option<(&Path, &Path)>,
    target: &Path,
    empty: &Path,
) -> Result<Mounted> {
    let mut lowers: Vec<PathBuf> = lowers.to_vec();
    if lowers.is_empty() {
        std::fs::create_dir_all(empty).at(empty)?;
        lowers.push(empty.to_path_buf());
    }
    if upper.is_none() && lowers.len() == 1 {
        mount(
            Some(&lowers[0]),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .at(target)?;
        let m = Mounted {
            target: target.to_path_buf(),
            live: true,
            copy: None,
        };
        let fl = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(None::<&str>, target, None::<&str>, fl, None::<&str>).at(target)?;
        return Ok(m);
    }
    let lower = lowers
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let mut opts = format!("lowerdir={lower}");
    if let Some((u, w)) = upper {
        opts.push_str(&format!(
            ",upperdir={},workdir={}",
            u.display(),
            w.display()
        ));
    }
    opts.push_str(&format!(",redirect_dir={},index=off", redirect_mode()));
    if crate::rootless::in_userns() {
        // In a user namespace overlay keeps its xattrs (opaque dirs) as user.overlay.*.
        opts.push_str(",userxattr");
    }
    let copy = crate::rootless::in_userns();
    if copy && std::env::var_os(COPY_ENV).is_some_and(|v| v == "copy") {
        return copied(&lowers, upper, target);
    }
    let res = if opts.len() >= 4000 {
        // mount(2) options are limited to a page: add the layers one by one instead.
        overlay_fsconfig(&lowers, upper, target)
    } else {
        let flags = if upper.is_none() {
            MsFlags::MS_RDONLY
        } else {
            MsFlags::empty()
        };
        let o = Some(opts.as_str());
        mount(Some("overlay"), target, Some("overlay"), flags, o).at(target)
    };
    match res {
        Ok(()) => Ok(Mounted {
            target: target.to_path_buf(),
            live: true,
            copy: None,
        }),
        Err(e) if copy => {
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                eprintln!("berth-build: warning: overlay refused in this user namespace ({e}); copying layers instead (slower)");
            });
            copied(&lowers, upper, target)
        }
        Err(e) => Err(e),
    }
}

/// Bind-mounts what `fd` refers to (a descriptor resolved inside its tree by the in-root
/// resolver) onto `target`, a fresh directory or file of ours: the kernel follows
/// `/proc/self/fd/N` to that very inode; no path is resolved again on the host.
pub fn bind_fd(fd: &impl std::os::fd::AsRawFd, target: &Path) -> Result<Mounted> {
    let src = berth_common::inroot::fd_path(fd);
    let fl = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some(src.as_str()), target, None::<&str>, fl, None::<&str>).at(target)?;
    Ok(Mounted {
        target: target.to_path_buf(),
        live: true,
        copy: None,
    })
}

/// `BERTH_BUILD_OVERLAY=copy`: in a user namespace, copy layers even where overlay works.
pub const COPY_ENV: &str = "BERTH_BUILD_OVERLAY";

/// The stand-in for an overlay: the merged lowers copied into `target`.
fn copied(lowers: &[PathBuf], upper: Option<(&Path, &Path)>, target: &Path) -> Result<Mounted> {
    let rec = copyfs::materialize(lowers, target)?;
    Ok(Mounted {
        target: target.to_path_buf(),
        live: false,
        copy: Some((rec, upper.map(|(u, _)| u.to_path_buf()))),
    })
}

/// Move this process into a private mount namespace, so every mount it makes (and
/// the runtime it starts) disappears with it, even if it is killed. Call it while
/// the process is still single-threaded.
pub fn private_mount_namespace() -> Result<()> {
    use nix::sched::{unshare, CloneFlags};
    unshare(CloneFlags::CLONE_NEWNS).at("unshare(CLONE_NEWNS)")?;
    make_rprivate()
}

/// Stop mount events propagating between this mount namespace and the others.
pub fn make_rprivate() -> Result<()> {
    let fl = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    mount(None::<&str>, "/", None::<&str>, fl, None::<&str>).at("/")
}

/// Redirects are never made; `userxattr` also refuses to follow them (Linux rejects
/// "userxattr,redirect_dir=off", as off may follow).
fn redirect_mode() -> &'static str {
    if crate::rootless::in_userns() {
        "nofollow"
    } else {
        "off"
    }
}

/// fsconfig(FSCONFIG_SET_FLAG, key).
fn set_flag(fs: &std::os::fd::OwnedFd, key: &str, target: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    const FSCONFIG_SET_FLAG: libc::c_uint = 0;
    let k = cstr(key);
    let null = std::ptr::null::<libc::c_char>();
    // SAFETY: valid fd and C string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_FLAG,
            k.as_ptr(),
            null,
            0,
        )
    };
    check(r, &format!("fsconfig {key}"), target).map(|_| ())
}

fn cstr(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s).expect("no NUL in mount parameters")
}

fn check(r: libc::c_long, what: &str, target: &Path) -> Result<libc::c_long> {
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return Err(Error::invalid(
            target.display().to_string(),
            format!("{what}: {e} (overlays with this many layers need Linux 6.8 or later)"),
        ));
    }
    Ok(r)
}

/// An overlay mount through the new mount API (fsopen/fsconfig "lowerdir+"), which
/// has no limit on the number of layers. Needs Linux 6.8.
fn overlay_fsconfig(
    lowers: &[PathBuf],
    upper: Option<(&Path, &Path)>,
    target: &Path,
) -> Result<()> {
    use std::os::fd::{FromRawFd, OwnedFd};
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
    const MOUNT_ATTR_RDONLY: libc::c_uint = 1;
    let ty = cstr("overlay");
    // SAFETY: plain syscalls on valid C strings; returned fds are owned below.
    let fs = unsafe {
        let fd = check(
            libc::syscall(libc::SYS_fsopen, ty.as_ptr(), 1 as libc::c_uint),
            "fsopen",
            target,
        )?;
        OwnedFd::from_raw_fd(fd as i32)
    };
    let set = |k: &str, v: &str| -> Result<()> {
        use std::os::fd::AsRawFd;
        let (k, v) = (cstr(k), cstr(v));
        // SAFETY: valid fd and C strings.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_STRING,
                k.as_ptr(),
                v.as_ptr(),
                0,
            )
        };
        check(
            r,
            &format!("fsconfig {}={}", k.to_string_lossy(), v.to_string_lossy()),
            target,
        )
        .map(|_| ())
    };
    // "lowerdir+" appends below the previous one: top-most first, as `lowers` is.
    for l in lowers {
        set("lowerdir+", &l.display().to_string())?;
    }
    if let Some((u, w)) = upper {
        set("upperdir", &u.display().to_string())?;
        set("workdir", &w.display().to_string())?;
    }
    set("redirect_dir", redirect_mode())?;
    set("index", "off")?;
    if crate::rootless::in_userns() {
        set_flag(&fs, "userxattr", target)?;
    }
    use std::os::fd::AsRawFd;
    let attrs = if upper.is_none() {
        MOUNT_ATTR_RDONLY
    } else {
        0
    };
    let tgt = cstr(&target.display().to_string());
    let empty = cstr("");
    // SAFETY: valid fds and C strings; the mount fd is owned right away.
    unsafe {
        let null = std::ptr::null::<libc::c_char>();
        check(
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_CMD_CREATE,
                null,
                null,
                0,
            ),
            "fsconfig create",
            target,
        )?;
        let m = check(
            libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), 1 as libc::c_uint, attrs),
            "fsmount",
            target,
        )?;
        let m = OwnedFd::from_raw_fd(m as i32);
        check(
            libc::syscall(
                libc::SYS_move_mount,
                m.as_raw_fd(),
                empty.as_ptr(),
                libc::AT_FDCWD,
                tgt.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            ),
            "move_mount",
            target,
        )?;
    }
    Ok(())
}
