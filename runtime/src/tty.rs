//! Terminals: the pty is opened inside the container (its own devpts), the master is sent
//! over `--console-socket` with SCM_RIGHTS as runc does, and the slave becomes stdio and
//! the controlling terminal.

use crate::error::{Context, Error, Result};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

pub fn connect(path: &Path) -> Result<OwnedFd> {
    let s = UnixStream::connect(path)
        .map_err(|e| Error::Other(format!("--console-socket {}: {e}", path.display())))?;
    Ok(s.into())
}

/// Opens a pty pair, sends the master to `socket`, gives the slave to `owner` (the process
/// user), makes it our stdio and controlling terminal, and returns its path (for
/// /dev/console).
pub fn setup(socket: &OwnedFd, size: Option<(u16, u16)>, owner: u32) -> Result<PathBuf> {
    use nix::fcntl::OFlag;
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .ctx(|| "open /dev/ptmx".into())?;
    grantpt(&master).ctx(|| "grantpt".into())?;
    unlockpt(&master).ctx(|| "unlockpt".into())?;
    let name = ptsname_r(&master).ctx(|| "ptsname".into())?;
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ with a valid winsize.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    let fds = [master.as_raw_fd()];
    let payload = b"/dev/ptmx";
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(payload)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .ctx(|| "send pty master over --console-socket".into())?;
    drop(master);
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&name)
        .ctx(|| name.clone())?;
    give_to(&slave, owner, &name)?;
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors.
        if unsafe { libc::dup2(slave.as_raw_fd(), fd) } < 0 {
            return Err(Error::io("dup2 tty", std::io::Error::last_os_error()));
        }
    }
    // SAFETY: TIOCSCTTY on our own terminal; we are a session leader.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
        return Err(Error::io("TIOCSCTTY", std::io::Error::last_os_error()));
    }
    Ok(PathBuf::from(name))
}

/// The slave belongs to the process user and keeps its group (devpts's `gid=5`, the tty
/// group), as runc's fixStdioPermissions leaves it: ssh, sudo, screen and mesg check this.
/// Like runc, an owner the user namespace cannot map (EINVAL), an inode we may not chown
/// (EPERM) or a read-only /dev (EROFS) leaves it as it is rather than failing.
fn give_to(slave: &std::fs::File, owner: u32, name: &str) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let st = slave.metadata().ctx(|| name.to_string())?;
    if st.uid() == owner {
        return Ok(());
    }
    match nix::unistd::fchown(slave, Some(nix::unistd::Uid::from_raw(owner)), None) {
        Ok(()) => Ok(()),
        Err(nix::Error::EINVAL | nix::Error::EPERM | nix::Error::EROFS) => Ok(()),
        Err(e) => Err(Error::sys(format!("chown {name} to uid {owner}"), e)),
    }
}
