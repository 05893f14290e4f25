//! `exec`: run a further process in a running container (diagram in process/channel.rs;
//! here the stages join the init's namespaces instead of making new ones).

use super::state::{ContainerDir, Status};
use crate::cgroups;
use crate::error::{Error, Result};
use crate::process::channel::{self, ToChild, ToParent};
use crate::process::clone;
use crate::process::exec::{self as pexec, ExecCtx};
use nix::sys::wait::waitpid;
use nix::unistd::ForkResult;
use oci_spec::runtime::Process;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub struct ExecOpts {
    pub id: String,
    pub root: PathBuf,
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    /// Allow a paused container (runc's --ignore-paused).
    pub ignore_paused: bool,
    /// `--cgroup PATH` / `CTRL[,CTRL]:PATH`: sub-cgroups to join (cgroups::Manager::exec_paths).
    pub cgroups: Vec<String>,
}

/// The config.json `process` of a container, the base `exec` starts from.
pub fn container_process(root: &Path, id: &str) -> Result<Process> {
    let dir = ContainerDir::open(root, id, false)?;
    let st = dir.load()?;
    let spec = crate::config::parse_file(&st.bundle.join("config.json"))?;
    spec.process()
        .clone()
        .ok_or_else(|| Error::state(id, "config.json has no process"))
}

/// Starts the process; returns its host pid.
pub fn exec(o: &ExecOpts) -> Result<i32> {
    // --user/-g build the process on the command line, past config.rs's checks.
    crate::config::check_user(o.process.user())
        .map_err(|(f, m)| Error::Other(format!("exec: {f}: {m}")))?;
    crate::security::lsm::check_process(&o.process)
        .map_err(|(f, m)| Error::Other(format!("exec: {f}: {m}")))?;
    let dir = ContainerDir::open(&o.root, &o.id, false)?;
    let st = dir.load()?;
    match st.status(&dir) {
        Status::Running | Status::Created => {}
        Status::Paused if o.ignore_paused => {}
        s => {
            return Err(Error::state(
                &o.id,
                format!("cannot exec in a container that is {s}"),
            ))
        }
    }
    let terminal = o.process.terminal() == Some(true);
    let console = match (&o.console_socket, terminal) {
        (Some(p), true) => Some(crate::tty::connect(p)?),
        (None, true) => return Err(Error::Other("--tty needs --console-socket".into())),
        _ => None,
    };
    let state_doc = st.to_oci(st.status(&dir));
    let (parent, child) = channel::pair()?;
    let spec = crate::config::parse_file(&st.bundle.join("config.json")).ok();
    let linux = spec.as_ref().and_then(|s| s.linux().as_ref());
    let seccomp = linux.and_then(|l| l.seccomp().clone());
    let join_by = cgroups::JoinBy::for_caller();
    let cg = st.cgroups();
    let cg_paths = cg.exec_paths(&o.cgroups)?;
    let chroot = match spec.as_ref().map(shares_mount_ns) {
        Some(true) => Some(open_root(st.pid)?),
        _ => None,
    };
    let ctx = ExecCtx {
        chan: child,
        pid: st.pid,
        process: o.process.clone(),
        console,
        preserve_fds: o.preserve_fds,
        seccomp,
        personality: linux.and_then(|l| l.personality().clone()),
        memory_policy: linux.and_then(|l| l.memory_policy().clone()),
        cgroup_paths: cg_paths.clone(),
        join_by,
        chroot,
    };
    let into = clone::Target::for_process(&cg_paths, join_by, Some(&o.process));
    // SAFETY: berth is single-threaded here.
    let (stage1, cloned) = match unsafe { clone::fork(into.as_ref()) }? {
        (ForkResult::Child, _) => pexec::stage1(ctx),
        (ForkResult::Parent { child }, cloned) => (child, cloned),
    };
    drop(ctx);
    let cloned_into = into.filter(|_| cloned).map(|t| t.path);
    let joins = clone::left_to_parent(&cg_paths, cloned_into.as_deref());
    let mut pid = None;
    let r = loop {
        let (msg, fd) = match parent.recv_fd::<ToParent>() {
            Ok(Some((m, fd))) => (Ok(Some(m)), fd),
            Ok(None) => (Ok(None), None),
            Err(e) => (Err(e), None),
        };
        match msg {
            Ok(Some(ToParent::SeccompFd)) => {
                let sent = match (
                    fd,
                    linux.and_then(|l| l.seccomp().as_ref()),
                    Some(pid.unwrap_or(st.pid)),
                ) {
                    (Some(fd), Some(s), Some(p)) => {
                        crate::security::seccomp::send_to_listener(s, &fd, p, &state_doc)
                    }
                    _ => Err(Error::Child("seccomp listener fd missing".into())),
                };
                if let Err(e) = sent {
                    break Err(e);
                }
            }
            Ok(Some(ToParent::Stage1Ready)) => {
                if let Err(e) = cg
                    .join(stage1.as_raw(), &joins)
                    .and_then(|_| parent.send(&ToChild::Go))
                {
                    break Err(e);
                }
            }
            Ok(Some(ToParent::Pid(p))) => pid = Some(p),
            Ok(Some(ToParent::Error(m))) => break Err(Error::Child(m)),
            Ok(Some(_)) => {}
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    let _ = waitpid(stage1, None);
    r?;
    let pid = pid.ok_or_else(|| Error::Child("exec process was not started".into()))?;
    if let Some(p) = &o.pid_file {
        crate::utils::write_atomic(p, pid.to_string().as_bytes())?;
    }
    Ok(pid)
}

/// Whether the container has no mount namespace of its own (rootfs/hostmnt.rs).
fn shares_mount_ns(spec: &oci_spec::runtime::Spec) -> bool {
    let plan = crate::namespaces::Plan::from_linux(spec.linux().as_ref());
    !plan.has(oci_spec::runtime::LinuxNamespaceType::Mount)
}

/// The init's root directory, opened before any namespace is joined.
fn open_root(pid: i32) -> Result<std::os::fd::OwnedFd> {
    let p = format!("/proc/{pid}/root");
    let f = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(&p)
        .map_err(|e| Error::io(p, e))?;
    Ok(f.into())
}
