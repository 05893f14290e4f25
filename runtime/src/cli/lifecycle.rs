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

fn opts(root: &Path, a: &CreateArgs) -> c::CreateOpts {
    c::CreateOpts {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        root: root.to_path_buf(),
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        preserve_fds: a.preserve_fds,
    }
}

pub fn create(root: &Path, a: CreateArgs) -> berth::Result<i32> {
    berth::selfexe::ensure_cloned()?;
    c::create(&opts(root, &a)).map(|_| 0)
}

pub fn run(root: &Path, a: RunArgs) -> berth::Result<i32> {
    berth::selfexe::ensure_cloned()?;
    if !a.detach {
        supervise::become_subreaper();
    }
    // A foreground terminal without --console-socket: berth holds the pty itself, as runc does.
    let console =
        if !a.detach && a.create.console_socket.is_none() && wants_terminal(&a.create.bundle) {
            Some(berth::ttyproxy::ConsoleReceiver::new()?)
        } else {
            None
        };
    let mut o = opts(root, &a.create);
    if let Some(c) = &console {
        o.console_socket = Some(c.path().to_path_buf());
    }
    let created = c::create(&o)?;
    let pid = created.state.pid;
    drop(created);
    let master = console.as_ref().map(|c| c.recv_master()).transpose();
    if let Ok(Some(m)) = &master {
        berth::ttyproxy::copy_winsize(std::os::fd::AsRawFd::as_raw_fd(m));
    }
    if let Err(e) = master
        .as_ref()
        .map_err(|e| berth::Error::Other(e.to_string()))
        .and_then(|_| ops::start(root, &a.create.id))
    {
        let _ = ops::delete(root, &a.create.id, true);
        return Err(e);
    }
    if a.detach {
        return Ok(0);
    }
    let code = match master.ok().flatten() {
        Some(m) => berth::ttyproxy::proxy(pid, m),
        None => supervise::wait(pid),
    };
    if !a.keep {
        ops::delete(root, &a.create.id, true)?;
    }
    Ok(code)
}

fn wants_terminal(bundle: &Path) -> bool {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|c| c["process"]["terminal"] == true)
}

pub fn kill(root: &Path, a: KillArgs) -> berth::Result<i32> {
    let sig = ops::parse_signal(&a.signal)?;
    ops::kill(root, &a.id, sig, a.all).map(|_| 0)
}

pub fn delete(root: &Path, a: DeleteArgs) -> berth::Result<i32> {
    ops::delete(root, &a.id, a.force).map(|_| 0)
}
