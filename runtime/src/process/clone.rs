//! Forking the stage-1 child straight into the container's cgroup2 directory.
//!
//! A parent that moves a child through cgroup.procs takes the kernel's global threadgroup lock
//! for writing, which waits for an RCU grace period (10–20 ms here). clone3 with
//! CLONE_INTO_CGROUP starts the child in its cgroup instead, under the read side of that lock.
//! v1 hierarchies have no such call; there the child joins itself (cgroups::join_self).
//! A process with execCPUAffinity.initial is never cloned into its cgroup (Target::for_process).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::unistd::{ForkResult, Pid};
use oci_spec::runtime::Process;

use crate::cgroups::JoinBy;
use crate::error::{Error, Result};

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// struct clone_args up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Where a fork can start its child: the container's one cgroup2 directory (root only; a
/// rootless parent keeps joining through cgroup.procs, as delegation expects).
pub struct Target {
    pub path: PathBuf,
    dir: OwnedFd,
}

impl Target {
    pub fn find(paths: &[PathBuf], by: JoinBy) -> Option<Target> {
        if by != JoinBy::SelfV1 {
            return None;
        }
        let path = paths.iter().find(|p| !p.join("tasks").exists())?;
        let dir = nix::fcntl::open(
            path.as_path(),
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()?;
        Some(Target {
            path: path.clone(),
            dir,
        })
    }

    /// [`Target::find`] for stage 1 of process `p`, or none when `p` sets
    /// execCPUAffinity.initial. The spec applies `initial` "before the transition to the
    /// container's cgroup": a child born in the cgroup2 directory would run it too late, and
    /// a v2 cpuset without those CPUs would refuse it (EINVAL). So stage 1 is forked plainly,
    /// applies `initial`, and the parent joins it at Stage1Ready.
    pub fn for_process(paths: &[PathBuf], by: JoinBy, p: Option<&Process>) -> Option<Target> {
        let initial = p
            .and_then(|p| p.exec_cpu_affinity().as_ref())
            .and_then(|a| a.initial().as_deref())
            .is_some_and(|l| !l.is_empty());
        if initial {
            return None;
        }
        Target::find(paths, by)
    }
}

/// fork(), with the child born in `into` when given and the kernel can (returned: whether it
/// was). Any clone3 failure falls back to a plain fork, leaving the join to the parent, whose
/// cgroup.procs write reports a real problem clearly.
///
/// # Safety
/// As for fork(): the caller is single-threaded. The child of a raw clone3 skips glibc's fork
/// bookkeeping (atfork handlers, the cached thread id), which stage 1 never relies on; the
/// processes it forks in turn go through fork() again.
pub unsafe fn fork(into: Option<&Target>) -> Result<(ForkResult, bool)> {
    if let Some(t) = into {
        let args = CloneArgs {
            flags: CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: t.dir.as_raw_fd() as u64,
            ..Default::default()
        };
        // SAFETY: clone3 with a valid, fully initialised clone_args of the size given; no new
        // stack, so the child continues here like a fork child.
        let r = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        match r {
            0 => return Ok((ForkResult::Child, true)),
            pid if pid > 0 => {
                let child = Pid::from_raw(pid as i32);
                return Ok((ForkResult::Parent { child }, true));
            }
            _ => {} // ENOSYS, EINVAL, EBUSY, …: fork and join the usual way
        }
    }
    // SAFETY: the caller guarantees fork's preconditions.
    let r = unsafe { nix::unistd::fork() }.map_err(|e| Error::sys("fork", e))?;
    Ok((r, false))
}

/// The cgroup paths the parent still has to join its child to.
pub fn left_to_parent(paths: &[PathBuf], cloned_into: Option<&Path>) -> Vec<PathBuf> {
    paths
        .iter()
        .filter(|p| Some(p.as_path()) != cloned_into)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_affinity_keeps_stage1_out_of_the_cgroup() {
        // A directory without `tasks` stands for a cgroup2 one.
        let dir = tempfile::tempdir().unwrap();
        let paths = vec![dir.path().to_path_buf()];
        let p = |a: serde_json::Value| -> Process {
            let mut v = serde_json::to_value(Process::default()).unwrap();
            v["execCPUAffinity"] = a;
            serde_json::from_value(v).unwrap()
        };
        let by = JoinBy::SelfV1;
        assert!(Target::for_process(&paths, by, None).is_some());
        let fin = p(serde_json::json!({"final": "0"}));
        assert!(Target::for_process(&paths, by, Some(&fin)).is_some());
        let init = p(serde_json::json!({"initial": "0", "final": "0"}));
        assert!(Target::for_process(&paths, by, Some(&init)).is_none());
    }
}
