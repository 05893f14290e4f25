//! create, run, kill, delete.

use berth::container::{create as c, ops, run};
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
    let mode = run::RunMode {
        detach: a.detach,
        keep: a.keep,
    };
    run::run(opts(root, &a.create, systemd), mode)
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
