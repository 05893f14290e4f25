//! The operations on an existing container: start, kill, delete, pause/resume, and the
//! read-only ones (state, list, ps).

use super::state::{self, ContainerDir, State, Status};
use crate::cgroups;
use crate::error::{Context, Error, Result};
use nix::sys::signal::{kill as send, Signal};
use nix::unistd::Pid;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Opens a container locked for a change, with its state and live status.
pub fn open(root: &Path, id: &str) -> Result<(ContainerDir, State, Status)> {
    let dir = ContainerDir::open(root, id, true)?;
    let st = dir.load()?;
    let status = st.status(&dir);
    Ok((dir, st, status))
}

pub fn start(root: &Path, id: &str) -> Result<()> {
    let (dir, st, status) = open(root, id)?;
    if status != Status::Created {
        return Err(Error::state(
            id,
            format!("cannot start a container that is {status} (it must be created)"),
        ));
    }
    let fifo = dir.fifo();
    let mut f = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo)
        .ctx(|| fifo.display().to_string())?;
    let mut buf = [0u8; 1];
    let mut got = false;
    loop {
        let mut pfd = [nix::poll::PollFd::new(
            f.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let n = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(100u16)).unwrap_or(0);
        if n > 0 {
            // One byte: the startContainer hooks passed. Then EOF: the init exec'd.
            match f.read(&mut buf) {
                Ok(1) => got = true,
                Ok(0) if got => break,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                _ => return Err(Error::state(id, "container init failed before its program ran (see its stderr; a startContainer hook may have failed)")),
            }
            continue;
        }
        if !st.alive() {
            return Err(Error::state(id, "container init exited before start"));
        }
    }
    std::fs::remove_file(&fifo).ctx(|| fifo.display().to_string())?;
    crate::hooks::run_warn(st.hooks.as_ref(), "poststart", &st.to_oci(Status::Running));
    Ok(())
}

pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::Other(format!("invalid signal {s:?}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| Error::Other(format!("invalid signal {s:?}")))
}

/// `kill ID 0`: whether the container's init is there to signal, as runc's signal 0.
pub fn probe(root: &Path, id: &str) -> Result<()> {
    let (_dir, st, status) = open(root, id)?;
    if status == Status::Stopped {
        return Err(Error::state(id, "container not running"));
    }
    send(Pid::from_raw(st.pid), None).ctx(|| format!("signal 0 to pid {}", st.pid))
}

pub fn kill(root: &Path, id: &str, sig: Signal, all: bool) -> Result<()> {
    let (_dir, st, status) = open(root, id)?;
    // --all reaches what is left in the cgroup after the init died (orphans of an init that
    // shared its PID namespace), as runc's does.
    if all {
        return kill_all(&st, sig);
    }
    if status == Status::Stopped {
        return Err(Error::state(id, "container not running"));
    }
    send(Pid::from_raw(st.pid), sig).ctx(|| format!("signal {sig} to pid {}", st.pid))?;
    // A frozen process acts on SIGKILL only once thawed (cgroup v1): thaw, as runc does.
    if status == Status::Paused && sig == Signal::SIGKILL {
        st.cgroups().freeze(false)?;
    }
    Ok(())
}

/// Signals every process in the container's cgroup. The cgroup is frozen meanwhile so no
/// process can fork away from the signal. A cgroup that is not the container's own (a
/// hierarchy's root, or one holding berth or its caller) is neither frozen nor swept: only
/// the init is signalled.
fn kill_all(st: &State, sig: Signal) -> Result<()> {
    let cg = st.cgroups();
    if let Some(why) = cg.foreign() {
        crate::logger::warn(&format!(
            "{why}: not the container's own; only its init is signalled"
        ));
        if st.alive() {
            let _ = send(Pid::from_raw(st.pid), sig);
        }
        return Ok(());
    }
    let was_frozen = cg.is_frozen();
    let froze = !was_frozen && cg.freeze(true).is_ok();
    for pid in member_pids(st, cg.as_ref()) {
        let _ = send(Pid::from_raw(pid), sig);
    }
    if froze || (was_frozen && sig == Signal::SIGKILL) {
        cg.freeze(false)?;
    }
    Ok(())
}

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let (dir, st, status) = match open(root, id) {
        Err(Error::NotFound(_)) if force => {
            // A create that died before writing its state leaves just the directory.
            let _ = std::fs::remove_dir_all(root.join(id));
            return Ok(());
        }
        r => r?,
    };
    // runtime.md: deleting a container that is not stopped MUST fail (runc destroys a
    // created one; berth follows the spec). containerd's shim always passes --force.
    match status {
        Status::Stopped => {}
        _ if force => kill_all(&st, Signal::SIGKILL)?,
        s => {
            return Err(Error::Other(format!(
                "container {id} is {s}: delete --force to remove"
            )))
        }
    }
    destroy(dir, &st)
}

fn destroy(dir: ContainerDir, st: &State) -> Result<()> {
    if st.alive() {
        let _ = send(Pid::from_raw(st.pid), Signal::SIGKILL);
    }
    wait_gone(st.pid, Duration::from_secs(10));
    let cg = st.cgroups();
    for pid in member_pids(st, cg.as_ref()) {
        let _ = send(Pid::from_raw(pid), Signal::SIGKILL);
    }
    cg.remove(st.cgroup_made.as_deref())?;
    crate::netdev::restore(&dir.path);
    crate::hooks::run_warn(st.hooks.as_ref(), "poststop", &st.to_oci(Status::Stopped));
    dir.remove()
}

/// The container's processes: its cgroup's, or, for a rootless container without cgroups,
/// those in its init's pid namespace (when that is not ours).
fn member_pids(st: &State, cg: &dyn cgroups::Manager) -> Vec<i32> {
    if !cg.paths().is_empty() {
        return cg.pids();
    }
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(theirs) = ns(&st.pid.to_string()).filter(|n| Some(n) != ns("self").as_ref()) else {
        return if st.alive() { vec![st.pid] } else { vec![] };
    };
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| ns(&p.to_string()).as_ref() == Some(&theirs))
        .collect()
}

/// Waits until `pid` has exited (a zombie counts as exited), up to `limit`.
pub fn wait_gone(pid: i32, limit: Duration) {
    if pid <= 0 {
        return;
    }
    // SAFETY: pidfd_open returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd >= 0 {
        // SAFETY: fresh descriptor from the kernel.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let mut pfd = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = limit.as_millis().min(u16::MAX as u128) as u16;
        let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(ms));
        let _ = fd.as_raw_fd();
        return;
    }
    let end = Instant::now() + limit;
    while Instant::now() < end && crate::utils::proc_state(pid).is_some_and(|s| s != 'Z') {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Applies new linux.resources to a live container's cgroups.
pub fn update(root: &Path, id: &str, r: &oci_spec::runtime::LinuxResources) -> Result<()> {
    let (_d, st, status) = open(root, id)?;
    if matches!(status, Status::Stopped) {
        return Err(Error::state(id, "cannot update a stopped container"));
    }
    st.cgroups().update(r)
}

pub fn pause(root: &Path, id: &str) -> Result<()> {
    let (_d, st, status) = open(root, id)?;
    if status != Status::Running {
        return Err(Error::state(
            id,
            format!("cannot pause a container that is {status}"),
        ));
    }
    st.cgroups().freeze(true)
}

pub fn resume(root: &Path, id: &str) -> Result<()> {
    let (_d, st, status) = open(root, id)?;
    if status != Status::Paused {
        return Err(Error::state(
            id,
            format!("cannot resume a container that is {status}"),
        ));
    }
    st.cgroups().freeze(false)
}

/// The runtime-spec state document of one container.
pub fn state(root: &Path, id: &str) -> Result<serde_json::Value> {
    let dir = ContainerDir::open(root, id, false)?;
    let st = dir.load()?;
    Ok(st.to_oci(st.status(&dir)))
}

pub fn list(root: &Path) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    for id in state::list_ids(root)? {
        if let Ok(s) = state(root, &id) {
            out.push(s);
        }
    }
    Ok(out)
}

pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let dir = ContainerDir::open(root, id, false)?;
    let st = dir.load()?;
    Ok(member_pids(&st, st.cgroups().as_ref()))
}
