//! The forked stages of `create`: stage-1 settles the namespaces and forks the init, which
//! builds the root filesystem, reports Ready, waits on exec.fifo for `start`, and execs.
//! Both run single-threaded, forked from the single-threaded berth process.

use super::channel::{Channel, ToChild, ToParent};
use super::sched::{self, Affinity};
use super::{exit_child, persona, set_name, setup};
use crate::cgroups::Hierarchy;
use crate::config::Bundle;
use crate::error::{Context, Error, Result};
use crate::namespaces::Plan;
use crate::process::setup::SeccompAt;
use crate::rootfs::{self, devices, mounts};
use nix::sched::CloneFlags;
use nix::unistd::{fork, ForkResult, Gid, Uid};
use oci_spec::runtime::LinuxNamespaceType as T;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub struct InitCtx<'a> {
    pub bundle: &'a Bundle,
    pub chan: Channel,
    pub plan: Plan,
    /// exec.fifo, opened O_PATH by the parent.
    pub fifo: OwnedFd,
    pub console: Option<OwnedFd>,
    pub hierarchies: Vec<Hierarchy>,
    pub cgroup_paths: Vec<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    pub need_hooks: bool,
    /// Bind trees the parent prepared on the host (moved into place by the init).
    pub trees: Vec<rootfs::idmap::Tree>,
    pub ready_sent: std::cell::Cell<bool>,
    pub join_by: crate::cgroups::JoinBy,
}

/// Stage-1: never returns.
pub fn stage1(ctx: InitCtx) -> ! {
    set_name("berth:stage1");
    if let Err(e) = stage1_inner(&ctx) {
        let _ = ctx.chan.send(&ToParent::Error(e.to_string()));
        exit_child(1);
    }
    // SAFETY: single-threaded process; the child only runs our own init code.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => init(ctx),
        Ok(ForkResult::Parent { child }) => {
            let _ = ctx.chan.send(&ToParent::Pid(child.as_raw()));
            exit_child(0)
        }
        Err(e) => {
            let _ = ctx.chan.send(&ToParent::Error(format!("fork init: {e}")));
            exit_child(1)
        }
    }
}

fn stage1_inner(ctx: &InitCtx) -> Result<()> {
    let process = ctx.bundle.spec.process().as_ref();
    if let Some(p) = process {
        sched::apply_affinity(p, Affinity::Initial)?;
    }
    // Before any setns: the paths are the host's, and a new user namespace could not write them.
    crate::cgroups::join_self(&ctx.cgroup_paths, ctx.join_by)?;
    crate::namespaces::join(&ctx.plan.join)?;
    if ctx.plan.is_new(T::User) {
        nix::sched::unshare(CloneFlags::CLONE_NEWUSER).map_err(crate::rootless::userns_refused)?;
    }
    ctx.chan.send(&ToParent::Stage1Ready)?;
    match ctx.chan.recv::<ToChild>()? {
        Some(ToChild::Go) => {}
        _ => return Err(Error::Child("runtime went away".into())),
    }
    // Now in the container's cgroups: the init forked from here inherits the final set.
    if let Some(p) = process {
        sched::apply_affinity(p, Affinity::Final)?;
    }
    let time = crate::namespaces::flag(T::Time);
    if ctx.plan.is_new(T::Time) {
        // Before the switch to the mapped root: a uid change makes the process non-dumpable,
        // and then its /proc/self files belong to the host's root, which the mapped root
        // may not open (EACCES). The new time namespace belongs to the user namespace we
        // are in already, so the offsets need no other rights.
        nix::sched::unshare(time).ctx(|| "unshare time namespace".into())?;
        write_time_offsets(ctx.bundle)?;
    }
    if ctx.plan.has(T::User) {
        let (u, g) = (Uid::from_raw(0), Gid::from_raw(0));
        nix::unistd::setresgid(g, g, g).ctx(|| "setresgid 0 in user namespace".into())?;
        nix::unistd::setresuid(u, u, u).ctx(|| "setresuid 0 in user namespace".into())?;
    }
    let rest = ctx.plan.unshare_flags() - time;
    nix::sched::unshare(rest).ctx(|| format!("unshare {:?}", ctx.plan.new))?;
    Ok(())
}

fn write_time_offsets(b: &Bundle) -> Result<()> {
    let Some(offs) = b
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut s = String::new();
    for (clock, o) in offs {
        if clock != "monotonic" && clock != "boottime" {
            return Err(Error::Other(format!(
                "linux.timeOffsets.{clock}: only monotonic and boottime can be offset"
            )));
        }
        s += &format!(
            "{clock} {} {}\n",
            o.secs().unwrap_or(0),
            o.nanosecs().unwrap_or(0)
        );
    }
    rootfs::procfs::write("self/timens_offsets", s.as_bytes())
        .map_err(|e| Error::Other(format!("linux.timeOffsets: {e}")))
}

/// The container's init: never returns.
fn init(ctx: InitCtx) -> ! {
    set_name("berth:init");
    match init_inner(&ctx) {
        Ok(exec) => {
            let e = setup::exec(&exec);
            crate::logger::stderr_line(&format!("berth: error: {e}"));
            exit_child(127)
        }
        Err(e) => {
            // After Ready nobody reads the channel: the container's stderr is all we have.
            if ctx.ready_sent.get() {
                crate::logger::stderr_line(&format!("berth: error: {e}"));
            } else {
                let _ = ctx.chan.send(&ToParent::Error(e.to_string()));
            }
            exit_child(1)
        }
    }
}

fn init_inner(ctx: &InitCtx) -> Result<setup::Exec> {
    let spec = &ctx.bundle.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Other("process is required".into()))?;
    // No other process may read our memory or /proc/self/exe while we hold runtime state.
    let _ = nix::sys::prctl::set_dumpable(false);
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    nix::unistd::setsid().ctx(|| "setsid".into())?;
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).ctx(|| format!("hostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        // SAFETY: setdomainname with a valid buffer and length.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            return Err(Error::io(
                format!("domainname {d:?}"),
                std::io::Error::last_os_error(),
            ));
        }
    }
    let state = build_rootfs(ctx)?;
    let mntns = ctx.plan.has(T::Mount);
    if process.terminal() == Some(true) {
        let sock = ctx
            .console
            .as_ref()
            .ok_or_else(|| Error::Other("process.terminal needs --console-socket".into()))?;
        let size = process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        let slave = crate::tty::setup(sock, size, process.user().uid())?;
        // /dev/console is a bind mount: none in the host's mount namespace.
        if mntns {
            devices::console(&rootfs::paths::Root::open(Path::new("/"))?, &slave)?;
        }
    }
    write_sysctls(spec)?;
    if mntns {
        rootfs::finalize(spec)?;
    }
    setup::apply_oom_score_adj(process)?;
    setup::apply_rlimits(process)?;
    apply_kernel_attrs(spec, process)?;
    crate::security::lsm::apply_exec_attrs(process)?;
    // Without a mount namespace the rootfs has no /proc: the procfs writes above went
    // through the host's (per task or per namespace of the writer, so the same files), and
    // exec.fifo is reopened through it.
    let host_proc = match mntns {
        true => None,
        false => Some(rootfs::hostmnt::open_proc()?),
    };
    if !mntns {
        rootfs::hostmnt::chroot(&ctx.bundle.rootfs)?;
    }
    setup::enter_cwd(process, true)?;
    let seccomp = setup::prepare_seccomp(
        spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()),
        process,
    )?;
    let early = setup::load_seccomp(&seccomp, SeccompAt::BeforeIdentity)?;
    setup::apply_identity(process)?;
    let listener = early.or(setup::load_seccomp(&seccomp, SeccompAt::BeforeReady)?);
    if let Some(fd) = listener {
        ctx.chan.send_fd(&ToParent::SeccompFd, &fd)?;
    }
    let exec = setup::prepare_exec(process)?;
    crate::utils::cloexec_from(3 + ctx.preserve_fds);
    ctx.chan.send(&ToParent::Ready)?;
    ctx.ready_sent.set(true);
    let mut started = wait_for_start(&ctx.fifo, host_proc.as_ref())?;
    drop(host_proc);
    // For startContainer hooks without `env`: the process's, HOME included.
    let env: Vec<String> = exec
        .envp
        .iter()
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    // Before seccomp, which might refuse rt_sigaction. SIGPIPE stays caught until execve, so
    // a hook that leaves its stdin unread gets EPIPE, not the init killed.
    super::signals::reset();
    super::signals::catch_until_exec(libc::SIGPIPE);
    setup::load_seccomp(&seccomp, SeccompAt::Last)?;
    // Under the container's seccomp filter and identity, with its environment: runc runs
    // them there (after InitSeccomp and finalizeNamespace, just before execve).
    crate::hooks::run_with_env(spec.hooks().as_ref(), "startContainer", &state, &env)?;
    // The byte tells `start` the startContainer hooks passed; the fifo (CLOEXEC) then closes
    // at execve, which is when `start` returns and poststart hooks may run.
    started.write_all(b"0").ctx(|| "write exec fifo".into())?;
    std::mem::forget(started);
    Ok(exec)
}

/// Scheduling, I/O priority, personality and memory policy: kept across execve, and set
/// while the init still has CAP_SYS_NICE.
fn apply_kernel_attrs(
    spec: &oci_spec::runtime::Spec,
    p: &oci_spec::runtime::Process,
) -> Result<()> {
    let linux = spec.linux().as_ref();
    sched::apply_scheduler(p)?;
    sched::apply_io_priority(p)?;
    persona::apply_personality(linux.and_then(|l| l.personality().as_ref()))?;
    persona::apply_memory_policy(linux.and_then(|l| l.memory_policy().as_ref()))
}

/// Mounts, devices, the runtime's hooks, pivot_root. Returns the state document.
fn build_rootfs(ctx: &InitCtx) -> Result<serde_json::Value> {
    let spec = &ctx.bundle.spec;
    let linux = spec.linux().as_ref();
    nix::unistd::chdir(&ctx.bundle.dir).ctx(|| ctx.bundle.dir.display().to_string())?;
    let mntns = ctx.plan.has(T::Mount);
    // In the host's mount namespace nothing is mounted (create refused what would need it).
    let root = if mntns {
        rootfs::prepare_root(
            &ctx.bundle.rootfs,
            linux.and_then(|l| l.rootfs_propagation().as_deref()),
        )?
    } else {
        rootfs::paths::Root::open(&ctx.bundle.rootfs)?
    };
    let userns = ctx.plan.has(T::User);
    let mctx = mounts::MountCtx {
        root: &root,
        bundle: &ctx.bundle.dir,
        hierarchies: &ctx.hierarchies,
        cgroup_paths: &ctx.cgroup_paths,
        new_cgroupns: ctx.plan.is_new(T::Cgroup),
        userns,
        trees: &ctx.trees,
        label: linux.and_then(|l| l.mount_label().as_deref()),
    };
    let mounts = spec.mounts().clone().unwrap_or_default();
    mounts::mount_all(&mctx, &mounts)?;
    let dev_bound = mounts
        .iter()
        .any(|m| m.destination() == Path::new("/dev") && m.typ().as_deref() != Some("tmpfs"));
    let devs = linux.and_then(|l| l.devices().clone()).unwrap_or_default();
    // Rootless without a user namespace of its own (root of the caller's user namespace, as
    // in a rootless build) mknod is refused just the same: bind the host's nodes.
    let bind_devs = userns || crate::rootless::is_rootless();
    devices::setup(&root, &devs, bind_devs, !dev_bound)?;
    let state = match ctx.chan.recv::<ToChild>()? {
        Some(ToChild::State(s)) => serde_json::from_str(&s).unwrap_or_default(),
        _ => return Err(Error::Child("runtime went away".into())),
    };
    if ctx.need_hooks {
        ctx.chan.send(&ToParent::RunHooks)?;
        match ctx.chan.recv::<ToChild>()? {
            Some(ToChild::HooksDone) => {}
            _ => return Err(Error::Child("runtime went away during hooks".into())),
        }
    }
    // createContainer hooks run from the rootfs, as runc runs them (before pivot_root).
    nix::unistd::chdir(&ctx.bundle.rootfs).ctx(|| ctx.bundle.rootfs.display().to_string())?;
    crate::hooks::run(spec.hooks().as_ref(), "createContainer", &state)?;
    let mut state = state;
    state["status"] = "created".into();
    drop(root);
    if mntns {
        rootfs::pivot(&ctx.bundle.rootfs, ctx.no_pivot)?;
    }
    Ok(state)
}

use std::os::unix::fs::OpenOptionsExt;

fn write_sysctls(spec: &oci_spec::runtime::Spec) -> Result<()> {
    for (k, v) in spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        let p = format!("sys/{}", k.replace('.', "/"));
        rootfs::procfs::write(&p, v.as_bytes())
            .map_err(|e| Error::Other(format!("linux.sysctl.{k}={v}: {e}")))?;
    }
    Ok(())
}

/// Blocks until `start` opens the other end of exec.fifo, reopened through `/proc` (or
/// `proc`, the host's, where the root has none).
fn wait_for_start(fifo: &OwnedFd, proc: Option<&OwnedFd>) -> Result<std::fs::File> {
    let rel = format!("self/fd/{}", fifo.as_raw_fd());
    let Some(proc) = proc else {
        return std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(format!("/proc/{rel}"))
            .ctx(|| "open exec fifo".into());
    };
    let flags = nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(proc, rel.as_str(), flags, nix::sys::stat::Mode::empty())
        .ctx(|| "open exec fifo".into())?;
    Ok(fd.into())
}
