//! `create`: validate the bundle, reserve the id, make cgroups and exec.fifo, fork the
//! container's stages and drive them (diagram in process/channel.rs). On any failure
//! everything made so far is undone: no state dir, cgroup or process is left behind.

use super::state::{ContainerDir, State};
use crate::cgroups;
use crate::config::Bundle;
use crate::error::{Context, Error, Result};
use crate::namespaces::Plan;
use crate::process::channel::{self, Channel, ToChild, ToParent};
use crate::process::clone;
use crate::process::init::{self, InitCtx};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};
use oci_spec::runtime::LinuxNamespaceType as T;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

#[derive(Debug, Default, Clone)]
pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub root: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    /// A terminal process without `console_socket` gets a private one (`Created::console`),
    /// for a foreground run to relay, as runc does; otherwise that is an error.
    pub relay_tty: bool,
    /// `--systemd-cgroup`: the cgroup is a transient systemd scope (cgroups/systemd).
    pub systemd: bool,
}

pub struct Created {
    pub dir: ContainerDir,
    pub state: State,
    pub bundle: Bundle,
    /// Where the pty master waits, when `relay_tty` made the console socket.
    pub console: Option<crate::ttyproxy::ConsoleReceiver>,
}

pub fn create(o: &CreateOpts) -> Result<Created> {
    let bundle = Bundle::load(&o.bundle)?;
    let dir = ContainerDir::create(&o.root, &o.id)?;
    let mut undo = Undo {
        dir: Some(dir),
        cgroups: None,
        made: vec![],
        pid: None,
        bundle: None,
    };
    match create_in(o, bundle, &mut undo) {
        Ok(c) => Ok(c),
        Err(e) => {
            undo.run();
            Err(e)
        }
    }
}

/// What a failed create must take back.
struct Undo {
    dir: Option<ContainerDir>,
    /// Removes what it made (a systemd scope: stops the unit once started).
    cgroups: Option<Box<dyn cgroups::Manager>>,
    /// The cgroup directories this create made: only these are removed.
    made: Vec<PathBuf>,
    pid: Option<i32>,
    bundle: Option<(Bundle, serde_json::Value)>,
}

impl Undo {
    fn run(mut self) {
        if let Some(pid) = self.pid {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            super::ops::wait_gone(pid, std::time::Duration::from_secs(5));
        }
        if let Some(cg) = &self.cgroups {
            let r = cg.remove(Some(&self.made));
            if let (Err(e), cgroups::Driver::Systemd) = (r, cg.driver()) {
                crate::logger::warn(&e.to_string());
            }
        }
        if let Some((b, mut st)) = self.bundle.take() {
            st["status"] = "stopped".into();
            crate::hooks::run_warn(b.spec.hooks().as_ref(), "poststop", &st);
        }
        if let Some(d) = self.dir.take() {
            crate::netdev::restore(&d.path);
            let _ = d.remove();
        }
    }
}

fn create_in(o: &CreateOpts, bundle: Bundle, undo: &mut Undo) -> Result<Created> {
    let linux = bundle.spec.linux().as_ref();
    let plan = Plan::from_linux(linux);
    if !plan.has(T::Mount) {
        if let Some(why) = crate::rootfs::hostmnt::refusal(&bundle.spec, plan.has(T::User)) {
            return Err(Error::Other(format!(
                "config {}: {why}: without one berth makes no mount (add {{\"type\": \"mount\"}} to linux.namespaces)",
                bundle.config_path.display()
            )));
        }
    }
    if !nix::unistd::geteuid().is_root() && !plan.is_new(T::User) {
        return Err(Error::Other(format!(
            "config {}: linux.namespaces: running as uid {} (not root) needs a user namespace: make the config with `berth spec --rootless`",
            bundle.config_path.display(),
            nix::unistd::geteuid()
        )));
    }
    if let Some(s) = linux.and_then(|l| l.seccomp().as_ref()) {
        if let Some(d) = crate::security::seccomp::unknown_names(s) {
            crate::logger::debug(&d);
        }
        // In --log under a shim: on stderr it would land in the container's log.
        for w in crate::security::seccomp::warnings(s) {
            crate::logger::warn(&w);
        }
    }
    let empty = oci_spec::runtime::LinuxResources::default();
    let r = linux.and_then(|l| l.resources().as_ref()).unwrap_or(&empty);
    let cg_path = linux.and_then(|l| l.cgroups_path().as_deref());
    let cg = undo
        .cgroups
        .insert(cgroups::manager::for_create(o.systemd, cg_path, &o.id, r)?);
    // A systemd scope is made once stage 1 exists (drive), its limits applied then.
    cg.create(r, &mut undo.made)?;
    let systemd = cg.driver() == cgroups::Driver::Systemd;
    if !systemd {
        // Every container gets a device cgroup: deny all but runc's defaults and the
        // config's rules. linux.devices are created, not allowed: access comes from
        // resources.devices alone, as with runc.
        cg.set(r, Some(&[]))?;
    }
    let (hierarchies, paths) = (cg.hierarchies().to_vec(), cg.paths().to_vec());
    let join_by = cg.create_join_by();
    let unit = cg.unit().map(str::to_string);
    let systemd_user = cg.user_manager();
    let fifo = undo.dir.as_ref().expect("dir is set").fifo();
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .ctx(|| fifo.display().to_string())?;
    // The init opens it after switching to the container's user, maybe a mapped host uid.
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o622);
    std::fs::set_permissions(&fifo, mode).ctx(|| fifo.display().to_string())?;
    // Opened here, as host root: the state root is 0700, which an init whose root is a
    // mapped host uid could not walk. It reopens this descriptor through /proc/self/fd.
    let fifo = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(&fifo)
        .ctx(|| fifo.display().to_string())?;
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .is_some_and(|p| p.terminal() == Some(true));
    let mut relay = None;
    let console = match (&o.console_socket, terminal) {
        (Some(p), true) => Some(crate::tty::connect(p)?),
        (None, true) if o.relay_tty => {
            let r = crate::ttyproxy::ConsoleReceiver::new()?;
            let c = crate::tty::connect(r.path())?;
            relay = Some(r);
            Some(c)
        }
        (None, true) => {
            return Err(Error::Other(
                "process.terminal is true: --console-socket is required".into(),
            ))
        }
        _ => None,
    };
    let hooks = bundle.spec.hooks().as_ref();
    let need_hooks = ["prestart", "createRuntime"]
        .iter()
        .any(|s| !crate::hooks::hooks_of(hooks, s).is_empty());
    let idmapped = crate::rootfs::idmap::prepare(&bundle.spec, &bundle.dir)?;
    let (parent, child) = channel::pair()?;
    let mut st = State {
        id: o.id.clone(),
        pid: 0,
        start_time: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: crate::utils::rfc3339(std::time::SystemTime::now()),
        owner: nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_default(),
        annotations: bundle.spec.annotations().clone().unwrap_or_default(),
        cgroup_paths: paths.clone(),
        cgroup_made: Some(undo.made.clone()),
        creating: true,
        use_systemd: systemd,
        cgroup_v2: Some(cg.is_v2()),
        systemd_unit: unit,
        systemd_user,
        hooks: bundle.spec.hooks().clone(),
    };
    let ctx = InitCtx {
        bundle: &bundle,
        chan: child,
        plan: plan.clone(),
        fifo: fifo.into(),
        console,
        hierarchies,
        cgroup_paths: paths.clone(),
        no_pivot: o.no_pivot,
        preserve_fds: o.preserve_fds,
        need_hooks,
        trees: idmapped,
        ready_sent: Default::default(),
        join_by,
    };
    let into = clone::Target::for_process(&paths, ctx.join_by, bundle.spec.process().as_ref());
    // SAFETY: berth is single-threaded here, so the child may allocate freely.
    let (stage1, cloned) = match unsafe { clone::fork(into.as_ref()) }? {
        (ForkResult::Child, _) => init::stage1(ctx),
        (ForkResult::Parent { child }, cloned) => (child, cloned),
    };
    drop(ctx);
    let cloned_into = into.filter(|_| cloned).map(|t| t.path);
    let joins = clone::left_to_parent(&paths, cloned_into.as_deref());
    let r = drive(&parent, stage1, &bundle, &plan, &joins, &mut st, undo);
    if r.is_err() {
        // Stage-1 may still wait for a Go that will not come (e.g. the id maps were refused).
        let _ = kill(stage1, Signal::SIGKILL);
    }
    let _ = waitpid(stage1, None);
    r?;
    st.creating = false;
    undo.dir.as_ref().expect("dir is set").save(&st)?;
    if let Some(p) = &o.pid_file {
        crate::utils::write_atomic(p, st.pid.to_string().as_bytes())?;
    }
    let dir = undo.dir.take().expect("dir is set");
    Ok(Created {
        dir,
        state: st,
        bundle,
        console: relay,
    })
}

fn drive(
    chan: &Channel,
    stage1: Pid,
    b: &Bundle,
    plan: &Plan,
    joins: &[PathBuf],
    st: &mut State,
    undo: &mut Undo,
) -> Result<()> {
    loop {
        let (msg, fd) = match chan.recv_fd::<ToParent>()? {
            Some((m, fd)) => (Some(m), fd),
            None => (None, None),
        };
        match msg {
            Some(ToParent::SeccompFd) => {
                let (Some(fd), Some(s)) = (
                    fd,
                    b.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()),
                ) else {
                    return Err(Error::Child("seccomp listener fd missing".into()));
                };
                let doc = st.to_oci(super::state::Status::Creating);
                crate::security::seccomp::send_to_listener(s, &fd, st.pid, &doc)?;
            }
            Some(ToParent::Stage1Ready) => {
                // The directories stage 1 did not join itself; a systemd scope is started
                // around it here (D-Bus starts threads: from here on this process forks
                // no container process, see cgroups/systemd/dbus.rs).
                let cg = undo.cgroups.as_mut().expect("cgroups are set");
                cg.apply(stage1.as_raw(), joins, &mut undo.made)?;
                // The systemd driver makes its v1 directories only now.
                st.cgroup_made = Some(undo.made.clone());
                if plan.is_new(T::User) {
                    write_id_maps(stage1.as_raw(), b)?;
                }
                send(chan, &ToChild::Go)?;
            }
            Some(ToParent::Pid(pid)) => {
                undo.pid = Some(pid);
                st.pid = pid;
                st.start_time = crate::utils::proc_start_time(pid).unwrap_or(0);
                if let Some(devs) = b
                    .spec
                    .linux()
                    .as_ref()
                    .and_then(|l| l.net_devices().as_ref())
                {
                    let dir = &undo.dir.as_ref().expect("dir is set").path;
                    // An init that already failed (a mount it refused) has no netns left to
                    // pin: its own error, already sent, is the one to report.
                    crate::netdev::move_in(devs, pid, dir).map_err(|e| child_error_or(chan, e))?;
                }
                let doc = st.to_oci(super::state::Status::Creating);
                undo.bundle = Some((b.clone(), doc.clone()));
                send(chan, &ToChild::State(doc.to_string()))?;
            }
            Some(ToParent::RunHooks) => {
                undo.dir.as_ref().expect("dir is set").save(st)?;
                let doc = st.to_oci(super::state::Status::Creating);
                crate::hooks::run(b.spec.hooks().as_ref(), "prestart", &doc)?;
                crate::hooks::run(b.spec.hooks().as_ref(), "createRuntime", &doc)?;
                send(chan, &ToChild::HooksDone)?;
            }
            Some(ToParent::Ready) => return Ok(()),
            Some(ToParent::Error(m)) => return Err(Error::Child(m)),
            None => {
                return Err(Error::Child(
                    "container init exited before it was ready".into(),
                ))
            }
        }
    }
}

/// The error the child sent before it went, if there is one; else `e`.
fn child_error_or(chan: &Channel, e: Error) -> Error {
    match chan.try_recv::<ToParent>() {
        Some(ToParent::Error(m)) => Error::Child(m),
        _ => e,
    }
}

/// Sends to the child; when it has gone (EPIPE), the error it sent first says why (e.g. a
/// mount it refused while the parent was moving network devices). That error is read
/// without waiting: a child still alive sends nothing, and waiting for it would hang.
fn send(chan: &Channel, msg: &ToChild) -> Result<()> {
    chan.send(msg)
        .map_err(|e| match chan.try_recv::<ToParent>() {
            Some(ToParent::Error(m)) => Error::Child(m),
            _ => e,
        })
}

/// Writes uid_map and gid_map of the stage-1 process that unshared the user namespace.
fn write_id_maps(pid: i32, b: &Bundle) -> Result<()> {
    use crate::rootless::{write_map, IdMap};
    let linux = b.spec.linux().as_ref();
    let conv = |m: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<IdMap> {
        m.into_iter()
            .flatten()
            .map(|m| IdMap {
                inside: m.container_id(),
                outside: m.host_id(),
                size: m.size(),
            })
            .collect()
    };
    write_map(
        pid,
        "uid",
        &conv(linux.and_then(|l| l.uid_mappings().as_ref())),
    )?;
    write_map(
        pid,
        "gid",
        &conv(linux.and_then(|l| l.gid_mappings().as_ref())),
    )
}
