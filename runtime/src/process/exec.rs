//! The forked stages of `exec`: stage-1 joins the container's namespaces (user first) and,
//! once the parent has put it in the container's cgroups, forks the process, which applies
//! the process spec and execs. A successful exec closes the channel (it is CLOEXEC); a
//! failure is sent as an Error message first.

use super::channel::{Channel, ToChild, ToParent};
use super::sched::{self, Affinity};
use super::{exit_child, persona, set_name, setup};
use crate::error::{Error, Result};
use crate::process::setup::SeccompAt;
use nix::unistd::{fork, ForkResult};
use oci_spec::runtime::Process;
use std::os::fd::OwnedFd;

pub struct ExecCtx {
    pub chan: Channel,
    pub pid: i32,
    pub process: Process,
    pub console: Option<OwnedFd>,
    pub preserve_fds: u32,
    /// The container's linux.seccomp: exec'd processes get the same filter.
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// The container's linux.personality and linux.memoryPolicy, which exec'd processes share.
    pub personality: Option<oci_spec::runtime::LinuxPersonality>,
    pub memory_policy: Option<oci_spec::runtime::LinuxMemoryPolicy>,
    /// The container's cgroups, for this process to join itself (cgroups::join_self).
    pub cgroup_paths: Vec<std::path::PathBuf>,
    pub join_by: crate::cgroups::JoinBy,
    /// The init's root (`/proc/PID/root`) when the container shares the host's mount
    /// namespace: joining namespaces does not enter it, so the process chroots there.
    /// (runc 1.1.5 leaves such an exec in the host's root: measured.)
    pub chroot: Option<OwnedFd>,
}

pub fn stage1(ctx: ExecCtx) -> ! {
    set_name("berth:exec1");
    let r = (|| -> Result<()> {
        sched::apply_affinity(&ctx.process, Affinity::Initial)?;
        // Before setns: the paths are the host's.
        crate::cgroups::join_self(&ctx.cgroup_paths, ctx.join_by)?;
        crate::namespaces::join_process(ctx.pid, &crate::namespaces::all_types())?;
        if let Some(root) = &ctx.chroot {
            nix::unistd::fchdir(root).map_err(|e| Error::sys("fchdir container root", e))?;
            nix::unistd::chroot(".").map_err(|e| Error::sys("chroot container root", e))?;
        }
        ctx.chan.send(&ToParent::Stage1Ready)?;
        match ctx.chan.recv::<ToChild>()? {
            Some(ToChild::Go) => {}
            _ => return Err(Error::Child("runtime went away".into())),
        }
        // In the container's cgroups now; the process forked next inherits this set.
        sched::apply_affinity(&ctx.process, Affinity::Final)
    })();
    if let Err(e) = r {
        let _ = ctx.chan.send(&ToParent::Error(e.to_string()));
        exit_child(1);
    }
    // SAFETY: single-threaded; the child runs only our setup code before exec.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => process(ctx),
        Ok(ForkResult::Parent { child }) => {
            let _ = ctx.chan.send(&ToParent::Pid(child.as_raw()));
            exit_child(0)
        }
        Err(e) => {
            let _ = ctx.chan.send(&ToParent::Error(format!("fork: {e}")));
            exit_child(1)
        }
    }
}

fn process(ctx: ExecCtx) -> ! {
    set_name("berth:exec");
    let r = (|| -> Result<setup::Exec> {
        let _ = nix::sys::prctl::set_dumpable(false);
        let p = &ctx.process;
        if p.terminal() == Some(true) {
            let sock = ctx
                .console
                .as_ref()
                .ok_or_else(|| Error::Other("--tty needs --console-socket".into()))?;
            nix::unistd::setsid().map_err(|e| Error::sys("setsid", e))?;
            let size = p
                .console_size()
                .as_ref()
                .map(|b| (b.height() as u16, b.width() as u16));
            crate::tty::setup(sock, size, p.user().uid())?;
        }
        setup::apply_oom_score_adj(p)?;
        setup::apply_rlimits(p)?;
        sched::apply_scheduler(p)?;
        sched::apply_io_priority(p)?;
        persona::apply_personality(ctx.personality.as_ref())?;
        persona::apply_memory_policy(ctx.memory_policy.as_ref())?;
        crate::security::lsm::apply_exec_attrs(p)?;
        setup::enter_cwd(p, false)?;
        let seccomp = setup::prepare_seccomp(ctx.seccomp.as_ref(), p)?;
        let early = setup::load_seccomp(&seccomp, SeccompAt::BeforeIdentity)?;
        setup::apply_identity(p)?;
        let listener = early.or(setup::load_seccomp(&seccomp, SeccompAt::BeforeReady)?);
        if let Some(fd) = listener {
            ctx.chan.send_fd(&ToParent::SeccompFd, &fd)?;
        }
        let exec = setup::prepare_exec(p)?;
        crate::utils::cloexec_from(3 + ctx.preserve_fds);
        // Last before seccomp, which might refuse rt_sigaction.
        super::signals::reset();
        setup::load_seccomp(&seccomp, SeccompAt::Last)?;
        Ok(exec)
    })();
    let e = match r {
        Ok(exec) => setup::exec(&exec),
        Err(e) => e,
    };
    let _ = ctx.chan.send(&ToParent::Error(e.to_string()));
    exit_child(127)
}
