//! runc's command line. Each command parses its flags, builds one request and calls one
//! library function; errors are printed and logged in one place (main.rs).

pub mod exec;
pub mod info;
pub mod lifecycle;
mod order;
pub mod update;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// println! for the commands' output, without its panic on a failed write. A reader that
/// went away (`berth features | head -1`: EPIPE, as Rust ignores SIGPIPE) ends the command
/// quietly, as it would a C tool; any other write error is reported on stderr.
macro_rules! outln {
    ($($t:tt)*) => { $crate::cli::write_line(format_args!($($t)*)) };
}
pub(crate) use outln;

pub fn write_line(args: std::fmt::Arguments) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_fmt(args).and_then(|_| o.write_all(b"\n")) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            berth::logger::stderr_line(&format!("berth: write to stdout: {e}"));
            std::process::exit(1);
        }
        std::process::exit(0);
    }
}

#[derive(Parser, Debug)]
#[command(name = "berth", version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: 1.2.0"), about = "berth: an OCI container runtime")]
pub struct Cli {
    /// Directory for container state [default: /run/berth; rootless: $XDG_RUNTIME_DIR/berth]
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Log file (runc's --log)
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd to manage cgroups
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create a container
    Create(lifecycle::CreateArgs),
    /// Start a created container
    Start { id: String },
    /// Create and start a container
    Run(lifecycle::RunArgs),
    /// Send a signal to the container's init (or all its processes)
    Kill(lifecycle::KillArgs),
    /// Delete a container
    Delete(lifecycle::DeleteArgs),
    /// Output the state of a container
    State { id: String },
    /// List containers
    List(info::ListArgs),
    /// Run a process in a running container
    Exec(exec::ExecArgs),
    /// Display the processes in a container
    Ps(info::PsArgs),
    /// Suspend all processes of a container
    Pause { id: String },
    /// Resume a paused container
    Resume { id: String },
    /// Update a container's resource limits
    Update(update::UpdateArgs),
    /// Create a new config.json
    Spec(info::SpecArgs),
    /// Show the runtime-spec features this runtime supports
    Features,
    /// Show the container's resource usage (--stats once, else every --interval) and OOM events
    Events(info::EventsArgs),
}

pub fn run(cli: Cli) -> berth::Result<i32> {
    // Refused where it cannot work rather than ignored: a container asked into a systemd
    // scope must not silently land in a cgroupfs path. Commands after create take the
    // driver from the container's state, whatever the flag says.
    if cli.systemd_cgroup {
        berth::cgroups::systemd::check_usable()?;
    }
    let systemd = cli.systemd_cgroup;
    let root = &cli
        .root
        .clone()
        .unwrap_or_else(berth::rootless::default_root);
    match cli.cmd {
        Cmd::Create(a) => lifecycle::create(root, a, systemd),
        Cmd::Start { id } => berth::container::ops::start(root, &id).map(|_| 0),
        Cmd::Run(a) => lifecycle::run(root, a, systemd),
        Cmd::Kill(a) => lifecycle::kill(root, a),
        Cmd::Delete(a) => lifecycle::delete(root, a),
        Cmd::State { id } => info::state(root, &id),
        Cmd::List(a) => info::list(root, a),
        // exec's own failures exit 255, as runc's, so a caller tells them from the
        // process exiting 1.
        Cmd::Exec(a) => exec::exec(root, a).or_else(|e| {
            crate::report(&e);
            Ok(255)
        }),
        Cmd::Ps(a) => info::ps(root, a),
        Cmd::Pause { id } => berth::container::ops::pause(root, &id).map(|_| 0),
        Cmd::Resume { id } => berth::container::ops::resume(root, &id).map(|_| 0),
        Cmd::Update(a) => update::update(root, a),
        Cmd::Spec(a) => info::spec(a),
        Cmd::Features => info::features(),
        Cmd::Events(a) => info::events(root, a),
    }
}
