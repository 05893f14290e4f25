//! exec: a process from --process FILE, or the container's own process with the args and
//! overrides given on the command line (as runc builds it).

use berth::container::{exec as e, supervise};
use berth::Error;
use clap::Args;
use oci_spec::runtime::{Capabilities, Process};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Path to a process.json (runtime-spec `process` object)
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Do not wait for the process
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Exec into a paused container too (the process starts frozen), as runc's flag
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Join a sub-cgroup of the container's: PATH, or CONTROLLER[,CONTROLLER]:PATH on v1
    /// (repeatable), as runc's flag
    #[arg(long = "cgroup")]
    pub cgroup: Vec<String>,
    /// Set an environment variable (KEY=VALUE)
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// UID[:GID]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional group ids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability
    #[arg(short, long)]
    pub cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// SELinux label for the process (process.selinuxLabel)
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// AppArmor profile for the process (process.apparmorProfile)
    #[arg(long)]
    pub apparmor: Option<String>,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

fn build_process(root: &Path, a: &ExecArgs) -> berth::Result<Process> {
    if let Some(f) = &a.process {
        let data = std::fs::read(f).map_err(|e| Error::io(f, e))?;
        return berth::config::parse_process(&data, f);
    }
    if a.args.is_empty() {
        return Err(Error::Other(
            "exec: give a command after the container id, or --process FILE".into(),
        ));
    }
    let mut p = e::container_process(root, &a.id)?;
    p.set_args(Some(a.args.clone()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        let key = kv.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(c) = &a.cwd {
        p.set_cwd(c.clone());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        let bad = || Error::Other(format!("--user {u:?}: expected UID[:GID]"));
        p.user_mut().set_uid(uid.parse().map_err(|_| bad())?);
        p.user_mut().set_gid(gid.parse().map_err(|_| bad())?);
    }
    if !a.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(a.additional_gids.clone()));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    // As runc: an empty value keeps the container's.
    if let Some(ap) = a.apparmor.as_ref().filter(|s| !s.is_empty()) {
        p.set_apparmor_profile(Some(ap.clone()));
    }
    if let Some(l) = a.process_label.as_ref().filter(|s| !s.is_empty()) {
        p.set_selinux_label(Some(l.clone()));
    }
    add_caps(&mut p, &a.cap)?;
    Ok(p)
}

fn add_caps(p: &mut Process, names: &[String]) -> berth::Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let mut add = Capabilities::new();
    for n in names {
        let v = serde_json::Value::String(n.to_ascii_uppercase());
        add.insert(
            serde_json::from_value(v)
                .map_err(|_| Error::Other(format!("--cap {n:?}: unknown capability")))?,
        );
    }
    let mut c = p.capabilities().clone().unwrap_or_default();
    let merge = |s: &Option<Capabilities>| {
        Some(
            s.clone()
                .unwrap_or_default()
                .union(&add)
                .cloned()
                .collect::<Capabilities>(),
        )
    };
    c.set_bounding(merge(c.bounding()));
    c.set_effective(merge(c.effective()));
    c.set_permitted(merge(c.permitted()));
    p.set_capabilities(Some(c));
    Ok(())
}

pub fn exec(root: &Path, a: ExecArgs) -> berth::Result<i32> {
    berth::selfexe::ensure_cloned()?;
    let mut process = build_process(root, &a)?;
    if !a.detach {
        supervise::become_subreaper();
    }
    // A foreground terminal without --console-socket: berth holds the pty itself, as runc does.
    let console = if !a.detach && a.console_socket.is_none() && process.terminal() == Some(true) {
        Some(berth::ttyproxy::ConsoleReceiver::new()?)
    } else {
        None
    };
    if let (Some(_), None, Some((rows, cols))) = (
        &console,
        process.console_size(),
        berth::ttyproxy::stdin_size(),
    ) {
        // The pty gets our size before the process runs (the child sets it from the spec).
        let b = oci_spec::runtime::BoxBuilder::default()
            .height(rows as u64)
            .width(cols as u64)
            .build()
            .map_err(|e| Error::Other(e.to_string()))?;
        process.set_console_size(Some(b));
    }
    let console_socket = match &console {
        Some(c) => Some(c.path().to_path_buf()),
        None => a.console_socket.clone(),
    };
    let pid = e::exec(&e::ExecOpts {
        id: a.id.clone(),
        root: root.to_path_buf(),
        process,
        console_socket,
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        cgroups: a.cgroup.clone(),
    })?;
    if a.detach {
        return Ok(0);
    }
    Ok(match console {
        Some(c) => berth::ttyproxy::proxy(pid, c.recv_master()?),
        None => supervise::wait(pid),
    })
}
