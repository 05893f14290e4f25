//! Container stdio: containerd's FIFOs (or `file://` logs, or `binary://` loggers: logbin.rs)
//! and terminals.
//!
//! Without a terminal, stdout and stderr FIFOs are opened read-write and handed straight to the
//! container (no copying in the shim; read-write so opening never blocks and a detached client
//! going away never turns into EPIPE, as runc's shim keeps its own reader). stdin goes through
//! a pipe fed by a copy thread, so the shim can close it on EOF or CloseIO.
//! With a terminal, berth sends the pty master over a console socket; two threads copy
//! stdin FIFO → master and master → stdout FIFO.

use std::fs::{File, OpenOptions};
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use crate::error::{Error, Result};
use crate::runtime::ProcStdio;

/// The stdio paths containerd gave for one process.
#[derive(Clone, Debug, Default)]
pub struct StdioPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// The shim's write end of a container's stdin pipe (or the pty master); `None` once closed.
pub type StdinWriter = Arc<Mutex<Option<File>>>;

fn open_output(path: &str) -> Result<Option<OwnedFd>> {
    if path.is_empty() {
        return Ok(None);
    }
    let (path, append) = match path.strip_prefix("file://") {
        Some(p) => (p, true),
        None => (path, false),
    };
    let f = OpenOptions::new()
        .read(!append)
        .write(true)
        .append(append)
        .create(append)
        .open(path)
        .map_err(Error::io(format!("opening {path}")))?;
    Ok(Some(f.into()))
}

/// Who a logging binary logs for: the process id (exec id, or container id for the init)
/// and the containerd namespace, as containerd's runc shim names them.
pub struct LogOwner<'a> {
    pub id: &'a str,
    pub namespace: &'a str,
}

/// Where a process's stdout and stderr go: containerd's FIFOs, `file://` logs, or a
/// `binary://` logging binary (which takes both).
fn outputs(paths: &StdioPaths, who: &LogOwner) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    if paths.stdout.starts_with("binary://") {
        let (out, err) = crate::logbin::start(&paths.stdout, who.id, who.namespace)?;
        return Ok((Some(out), Some(err)));
    }
    Ok((open_output(&paths.stdout)?, open_output(&paths.stderr)?))
}

/// Copies the stdin FIFO into `dst` until EOF, then closes `dst` (the container sees EOF).
fn spawn_stdin_copy(fifo: String, dst: StdinWriter) {
    let _ = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            // Blocks until the client opens its end; CloseIO may have come first.
            if let Ok(mut src) = File::open(&fifo) {
                let mut buf = [0u8; 8192];
                while let Ok(n @ 1..) = src.read(&mut buf) {
                    let mut guard = dst.lock().unwrap();
                    let Some(w) = guard.as_mut() else { return };
                    if w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
            dst.lock().unwrap().take();
        });
}

/// Ends a stdin copy thread still waiting in `open` for a client that never came (e.g. `ctr run
/// -d`): opening the write side once lets that open return, and the read then sees EOF.
pub fn release_stdin_fifo(path: &str) {
    if path.is_empty() {
        return;
    }
    let _ = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
}

/// Stdio for a process without a terminal; returns the child's fds and the stdin writer.
pub fn pipe_stdio(paths: &StdioPaths, who: &LogOwner) -> Result<(ProcStdio, Option<StdinWriter>)> {
    let (stdout, stderr) = outputs(paths, who)?;
    let mut stdio = ProcStdio {
        stdout,
        stderr,
        ..Default::default()
    };
    if paths.stdin.is_empty() {
        return Ok((stdio, None));
    }
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::io("creating the stdin pipe")(e.into()))?;
    stdio.stdin = Some(r);
    let writer: StdinWriter = Arc::new(Mutex::new(Some(File::from(w))));
    spawn_stdin_copy(paths.stdin.clone(), writer.clone());
    Ok((stdio, Some(writer)))
}

/// A unix socket berth connects to with `--console-socket` to hand over the pty master.
pub struct ConsoleSocket {
    pub path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn new(dir: &Path, name: &str) -> Result<ConsoleSocket> {
        std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        let path = dir.join(format!("{name}.console.sock"));
        let _ = std::fs::remove_file(&path);
        let listener =
            UnixListener::bind(&path).map_err(Error::io(format!("binding {}", path.display())))?;
        Ok(ConsoleSocket { path, listener })
    }

    /// The master berth sent; called after `create`/`exec` returned, so the connection and its
    /// SCM_RIGHTS message already wait in the backlog.
    pub fn receive(&self) -> Result<File> {
        let what = format!("receiving the pty master on {}", self.path.display());
        self.listener
            .set_nonblocking(true)
            .map_err(Error::io(&what))?;
        let (conn, _) = self.listener.accept().map_err(Error::io(&what))?;
        let mut buf = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .map_err(|e| Error::io(&what)(e.into()))?;
        for c in msg.cmsgs().map_err(|e| Error::io(&what)(e.into()))? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                if let Some(&fd) = fds.first() {
                    // SAFETY: the kernel just installed this fd for us; we own it.
                    return Ok(unsafe { File::from_raw_fd(fd) });
                }
            }
        }
        Err(Error::io(&what)(std::io::Error::other(
            "no fd in the message",
        )))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Starts the copies between a pty master and the FIFOs; returns the stdin writer.
pub fn copy_console(
    master: &File,
    paths: &StdioPaths,
    who: &LogOwner,
) -> Result<Option<StdinWriter>> {
    let dup = || {
        master
            .try_clone()
            .map_err(Error::io("duplicating the pty master"))
    };
    // with a terminal, stderr is the pty too
    if let Some(out) = outputs(paths, who)?.0 {
        let mut src = dup()?;
        let mut dst = File::from(out);
        let _ = std::thread::Builder::new()
            .name("console".into())
            .spawn(move || {
                // Ends with EIO once every holder of the pty's other side has exited.
                let _ = std::io::copy(&mut src, &mut dst);
            });
    }
    if paths.stdin.is_empty() {
        return Ok(None);
    }
    let writer: StdinWriter = Arc::new(Mutex::new(Some(dup()?)));
    spawn_stdin_copy(paths.stdin.clone(), writer.clone());
    Ok(Some(writer))
}

/// ResizePty: set the terminal's window size on the master.
pub fn resize(master: &File, width: u32, height: u32) -> Result<()> {
    let ws = libc::winsize {
        ws_row: height as u16,
        ws_col: width as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which lives across the call.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if rc < 0 {
        return Err(Error::io("resizing the pty")(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}
