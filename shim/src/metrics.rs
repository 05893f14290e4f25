//! Stats (cgroup metrics of the container's init) and OOM events (v1 memory cgroup eventfd).

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use containerd_shim::cgroup::{collect_metrics, get_cgroup};
use containerd_shim::protos::events::task::TaskOOM;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::Message;

use crate::error::{Error, Result};
use crate::events::{Events, Topic};

fn stats_err(pid: u32) -> impl Fn(containerd_shim::Error) -> Error {
    move |e| Error::Io {
        what: format!("reading the cgroup metrics of pid {pid}"),
        source: std::io::Error::other(e.to_string()),
    }
}

/// containerd's cgroups v1 `Metrics` of the init's cgroups (containerd-shim 0.11 collects
/// v2 hosts into the same message).
pub fn stats(pid: u32) -> Result<Any> {
    let cg = get_cgroup(pid).map_err(stats_err(pid))?;
    let metrics = collect_metrics(&cg).map_err(stats_err(pid))?;
    Ok(Any {
        // named explicitly: asking reflection would build every descriptor (events.rs)
        type_url: "io.containerd.cgroups.v1.Metrics".into(),
        value: metrics
            .write_to_bytes()
            .map_err(|e| stats_err(pid)(e.into()))?,
        ..Default::default()
    })
}

/// The v1 memory cgroup directory of `pid`, from /proc/PID/cgroup.
fn memory_cgroup(pid: u32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        ctrls
            .split(',')
            .any(|c| c == "memory")
            .then(|| Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/')))
    })
}

struct Watch {
    container_id: String,
    cgroup: PathBuf,
    eventfd: OwnedFd,
    _oom_control: File,
}

/// One thread waits (epoll) on the OOM eventfds of all the shim's containers.
pub struct OomWatcher {
    epoll: Option<Arc<OwnedFd>>,
    watches: Arc<Mutex<HashMap<RawFd, Watch>>>,
}

impl OomWatcher {
    pub fn start(events: Events) -> OomWatcher {
        // SAFETY: plain syscall; the fd is owned right away.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        let watches: Arc<Mutex<HashMap<RawFd, Watch>>> = Arc::default();
        if fd < 0 {
            return OomWatcher {
                epoll: None,
                watches,
            };
        }
        // SAFETY: fd was just returned by epoll_create1.
        let epoll = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        let (ep, w) = (epoll.clone(), watches.clone());
        let _ = std::thread::Builder::new()
            .name("oom".into())
            .spawn(move || oom_loop(&ep, &w, &events));
        OomWatcher {
            epoll: Some(epoll),
            watches,
        }
    }

    /// Best effort: cgroup v2 hosts and odd layouts simply get no OOM events.
    pub fn watch(&self, container_id: &str, pid: u32) {
        let (Some(epoll), Some(cgroup)) = (&self.epoll, memory_cgroup(pid)) else {
            return;
        };
        let Ok(oom_control) = File::open(cgroup.join("memory.oom_control")) else {
            return;
        };
        // SAFETY: plain syscall; the fd is owned right away.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if efd < 0 {
            return;
        }
        // SAFETY: efd was just returned by eventfd.
        let eventfd = unsafe { OwnedFd::from_raw_fd(efd) };
        let line = format!("{} {}", efd, oom_control.as_raw_fd());
        if std::fs::write(cgroup.join("cgroup.event_control"), line).is_err() {
            return;
        }
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: efd as u64,
        };
        // SAFETY: both fds are open; ev lives across the call.
        if unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, efd, &mut ev) } < 0 {
            return;
        }
        let w = Watch {
            container_id: container_id.into(),
            cgroup,
            eventfd,
            _oom_control: oom_control,
        };
        self.watches.lock().unwrap().insert(efd, w);
    }
}

fn oom_loop(epoll: &OwnedFd, watches: &Mutex<HashMap<RawFd, Watch>>, events: &Events) {
    let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 8];
    loop {
        // SAFETY: evs is a valid buffer of 8 events.
        let n = unsafe { libc::epoll_wait(epoll.as_raw_fd(), evs.as_mut_ptr(), 8, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        for ev in &evs[..n as usize] {
            let fd = ev.u64 as RawFd;
            let mut map = watches.lock().unwrap();
            let Some(w) = map.get(&fd) else { continue };
            let mut count = [0u8; 8];
            // SAFETY: reads 8 bytes into count from an eventfd we own.
            unsafe { libc::read(w.eventfd.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
            // The eventfd also fires when the cgroup is removed: that ends the watch.
            if w.cgroup.exists() {
                TaskOOM {
                    container_id: w.container_id.clone(),
                    ..Default::default()
                }
                .publish(events);
            } else {
                map.remove(&fd);
            }
        }
    }
}
