//! create, run, kill, delete.

use berth::container::{create as c, ops, supervise};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Path to the bundle directory
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is set
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write the container's init pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring (berth never does)
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra file descriptors (3..3+N) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach from the container's process
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container after it exits
    #[arg(long)]
    pub keep: bool,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal all processes in the container
    #[arg(short, long)]
    pub all: bool,
    pub id: String,
    /// Signal name or number
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Kill the container first if it is running
    #[arg(short, long)]
    pub force: bool,
    pub id: String,
}

fn opts(root: &Path, a: &CreateArgs, systemd: bool) -> c::CreateOpts {
    c::CreateOpts {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        root: root.to_path_buf(),
        console_socket: a.console_socket.clone(),
        // Resolved now against the caller's cwd, as runc does: nothing may read it otherwise.
        pid_file: a
            .pid_file
            .as_ref()
            .map(|p| std::path::absolute(p).unwrap_or(p.clone())),
        no_pivot: a.no_pivot,
        preserve_fds: a.preserve_fds,
        relay_tty: false,
        systemd,
    }
}

pub fn create(root: &Path, a: CreateArgs, systemd: bool) -> berth::Result<i32> {
    berth::selfexe::ensure_cloned()?;
    c::create(&opts(root, &a, systemd)).map(|_| 0)
}

pub fn run(root: &Path, a: RunArgs, systemd: bool) -> berth::Result<i32> {
    berth::selfexe::ensure_cloned()?;
    if !a.detach {
        supervise::become_subreaper();
    }
    // A foreground terminal without --console-socket: berth holds the pty itself, as runc does.
    let o = c::CreateOpts {
        relay_tty: !a.detach,
        ..opts(root, &a.create, systemd)
    };
    let mut created = c::create(&o)?;
    let pid = created.state.pid;
    let relay = created.console.take();
    drop(created);
    let master = relay.map(|r| r.recv_master()).transpose();
    if let Ok(Some(m)) = &master {
        berth::ttyproxy::copy_winsize(std::os::fd::AsRawFd::as_raw_fd(m));
    }
    let master = match master.and_then(|m| ops::start(root, &a.create.id).map(|_| m)) {
        Ok(m) => m,
        Err(e) => {
            let _ = ops::delete(root, &a.create.id, true);
            return Err(e);
        }
    };
    if a.detach {
        return Ok(0);
    }
    let code = match master {
        Some(m) => berth::ttyproxy::proxy(pid, m),
        None => supervise::wait(pid),
    };
    if !a.keep {
        ops::delete(root, &a.create.id, true)?;
    }
    Ok(code)
}

pub fn kill(root: &Path, a: KillArgs) -> berth::Result<i32> {
    // Signal 0 sends nothing: an existence check, as runc's.
    if a.signal.trim() == "0" {
        return ops::probe(root, &a.id).map(|_| 0);
    }
    let sig = ops::parse_signal(&a.signal)?;
    ops::kill(root, &a.id, sig, a.all).map(|_| 0)
}

pub fn delete(root: &Path, a: DeleteArgs) -> berth::Result<i32> {
    ops::delete(root, &a.id, a.force).map(|_| 0)
}
