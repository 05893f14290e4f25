//! Foreground `run`/`exec` of a terminal process without `--console-socket`, as runc does:
//! berth makes the console socket itself, receives the pty master, puts its own terminal in
//! raw mode and copies bytes both ways until the process exits (resizes follow SIGWINCH).

use crate::error::{Context, Error, Result};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// A private console socket: its path goes to create/exec as `--console-socket` would.
pub struct ConsoleReceiver {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleReceiver {
    pub fn new() -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("berth-console-{}-{nanos}.sock", std::process::id()));
        let listener = UnixListener::bind(&path).ctx(|| path.display().to_string())?;
        Ok(ConsoleReceiver { listener, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pty master the container's process sent (it connected during create/exec).
    pub fn recv_master(&self) -> Result<OwnedFd> {
        let (conn, _) = self
            .listener
            .accept()
            .ctx(|| self.path.display().to_string())?;
        let mut buf = [0u8; 64];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .ctx(|| "receive the pty master".into())?;
        for c in msg.cmsgs().map_err(|e| Error::sys("console socket", e))? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                if let Some(&fd) = fds.first() {
                    // SAFETY: the kernel just gave us this descriptor; we own it.
                    return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        Err(Error::Other(
            "console socket: no pty master was sent".into(),
        ))
    }
}

impl Drop for ConsoleReceiver {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Our terminal in raw mode for the proxy's lifetime (restored on drop).
struct RawMode(Option<nix::sys::termios::Termios>);

impl RawMode {
    fn enter() -> RawMode {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(stdin.as_fd()) else {
            return RawMode(None);
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        RawMode(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin().as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

/// Our terminal's size as (rows, cols), when stdin is one.
pub fn stdin_size() -> Option<(u16, u16)> {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ with a valid winsize.
    let ok = unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Copies our window size to the pty (no-op when stdin is not a terminal). Called before the
/// process starts, so it never sees the default size.
pub fn copy_winsize(master: RawFd) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ with a valid winsize.
    unsafe {
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Relays stdin → master and master → stdout while `pid` runs; returns its exit code.
pub fn proxy(pid: i32, master: OwnedFd) -> i32 {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let sigs = crate::container::supervise::block_signals();
    let _raw = RawMode::enter();
    let m = master.as_raw_fd();
    copy_winsize(m);
    let (mut stdin_open, mut master_open) = (true, true);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if let Some(code) = crate::container::supervise::reap(pid) {
            let _ = nix::fcntl::fcntl(
                &master,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            );
            while master_open && pump(m, 1, &mut buf) {}
            return code;
        }
        let stdin = std::io::stdin();
        let mut fds = vec![];
        if master_open {
            fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        let _ = poll(&mut fds, PollTimeout::from(100u8));
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut i = 0;
        if master_open {
            if ready[i] {
                master_open = pump(m, 1, &mut buf);
            }
            i += 1;
        }
        if stdin_open && ready[i] {
            stdin_open = pump(0, m, &mut buf);
        }
        crate::container::supervise::forward_pending(&sigs, pid, || copy_winsize(m));
    }
}

/// One read from `from` written whole to `to`; false at end of input or on error.
fn pump(from: RawFd, to: RawFd, buf: &mut [u8]) -> bool {
    // SAFETY: reading into our own buffer.
    let n = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return false;
    }
    let mut off = 0;
    while off < n as usize {
        // SAFETY: writing from our own buffer.
        let w = unsafe { libc::write(to, buf[off..].as_ptr().cast(), n as usize - off) };
        if w <= 0 {
            return false;
        }
        off += w as usize;
    }
    true
}
