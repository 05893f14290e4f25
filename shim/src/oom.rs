//! OOM events. On cgroup v1 the memory cgroup's eventfd (cgroup.event_control on
//! memory.oom_control) fires on every OOM; on v2 memory.events changes (inotify IN_MODIFY) and
//! an OOM is an `oom_kill` count above the last one seen, as containerd's runc shim reports it.
//! One thread waits (epoll) on the fds of all the shim's containers.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::stats::Cgroups;

enum Source {
    V1 {
        eventfd: OwnedFd,
        _oom_control: File,
    },
    V2 {
        inotify: OwnedFd,
        kills: u64,
    },
}

struct Watch {
    container_id: String,
    cgroup: PathBuf,
    source: Source,
}

type Publish = Box<dyn Fn(&str) + Send>;

pub struct OomWatcher {
    epoll: Option<Arc<OwnedFd>>,
    watches: Arc<Mutex<HashMap<RawFd, Watch>>>,
}

fn owned(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: fd was just returned by the syscall that made it; we own it from here.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

impl OomWatcher {
    /// `publish` gets the id of each container that saw an OOM kill.
    pub fn start(publish: impl Fn(&str) + Send + 'static) -> OomWatcher {
        // SAFETY: plain syscall.
        let epoll = owned(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) }).map(Arc::new);
        let watches: Arc<Mutex<HashMap<RawFd, Watch>>> = Arc::default();
        if let Some(ep) = &epoll {
            let (ep, w) = (ep.clone(), watches.clone());
            let publish: Publish = Box::new(publish);
            let _ = std::thread::Builder::new()
                .name("oom".into())
                .spawn(move || oom_loop(&ep, &w, &publish));
        }
        OomWatcher { epoll, watches }
    }

    /// Best effort: a task without a memory cgroup simply gets no OOM events.
    pub fn watch(&self, container_id: &str, pid: u32) {
        if let Ok(cg) = crate::stats::cgroups_of(pid) {
            self.watch_cgroups(container_id, cg);
        }
    }

    fn watch_cgroups(&self, container_id: &str, cg: Cgroups) -> Option<()> {
        let epoll = self.epoll.as_ref()?;
        let (cgroup, source) = match cg {
            Cgroups::V1(mut dirs) => {
                let dir = dirs.remove("memory")?;
                let source = v1_source(&dir)?;
                (dir, source)
            }
            Cgroups::V2(dir) => {
                let source = v2_source(&dir)?;
                (dir, source)
            }
        };
        let fd = match &source {
            Source::V1 { eventfd, .. } => eventfd.as_raw_fd(),
            Source::V2 { inotify, .. } => inotify.as_raw_fd(),
        };
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        // SAFETY: both fds are open; ev lives across the call.
        if unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return None;
        }
        let w = Watch {
            container_id: container_id.into(),
            cgroup,
            source,
        };
        self.watches.lock().unwrap().insert(fd, w);
        Some(())
    }
}

fn v1_source(dir: &Path) -> Option<Source> {
    let oom_control = File::open(dir.join("memory.oom_control")).ok()?;
    // SAFETY: plain syscall.
    let eventfd = owned(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) })?;
    let line = format!("{} {}", eventfd.as_raw_fd(), oom_control.as_raw_fd());
    std::fs::write(dir.join("cgroup.event_control"), line).ok()?;
    Some(Source::V1 {
        eventfd,
        _oom_control: oom_control,
    })
}

fn v2_source(dir: &Path) -> Option<Source> {
    let events = dir.join("memory.events");
    let path = std::ffi::CString::new(events.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: plain syscall.
    let inotify = owned(unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) })?;
    // SAFETY: path is a valid C string; the fd is ours.
    let wd =
        unsafe { libc::inotify_add_watch(inotify.as_raw_fd(), path.as_ptr(), libc::IN_MODIFY) };
    (wd >= 0).then_some(())?;
    Some(Source::V2 {
        inotify,
        kills: oom_kills(&events).unwrap_or(0),
    })
}

/// The `oom_kill` count; `None` if the file could not be read whole (then the last count stays).
fn oom_kills(events: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(events).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
}

fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 4096];
    // SAFETY: reads into a buffer we own; the fd is non-blocking (inotify) or holds 8 bytes
    // (eventfd, read once).
    while unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 8 {}
}

fn oom_loop(epoll: &OwnedFd, watches: &Mutex<HashMap<RawFd, Watch>>, publish: &Publish) {
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
            let Some(w) = map.get_mut(&fd) else { continue };
            // Both fire once more when the cgroup is removed: that ends the watch.
            if !w.cgroup.exists() {
                map.remove(&fd);
                continue;
            }
            let oom = match &mut w.source {
                Source::V1 { eventfd, .. } => {
                    drain(eventfd);
                    true
                }
                Source::V2 { inotify, kills } => {
                    drain(inotify);
                    match oom_kills(&w.cgroup.join("memory.events")) {
                        Some(now) => std::mem::replace(kills, now) < now,
                        None => false,
                    }
                }
            };
            if oom {
                publish(&w.container_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn v2_reports_a_rising_oom_kill_count_once() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("memory.events");
        let counts = |kills: u32| format!("low 0\nhigh 0\nmax 3\noom 1\noom_kill {kills}\n");
        std::fs::write(&events, counts(1)).unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let tx = Mutex::new(tx);
        let w = OomWatcher::start(move |id| tx.lock().unwrap().send(id.into()).unwrap());
        w.watch_cgroups("c1", Cgroups::V2(dir.path().to_path_buf()))
            .unwrap();
        let wait = || rx.recv_timeout(Duration::from_millis(500));
        // a change that is no new kill (the count seen at watch time) is no event; a plain
        // file's rewrite is seen empty for a moment (truncation), which must not reset the count
        std::fs::write(&events, counts(1)).unwrap();
        assert!(wait().is_err());
        std::fs::write(&events, counts(2)).unwrap();
        assert_eq!(wait().unwrap(), "c1");
        std::fs::write(&events, counts(2)).unwrap();
        assert!(wait().is_err());
    }
}
