//! `events`: a container's cgroup statistics, once or every interval, and its OOM kills as
//! they happen (runc's `events` output, one JSON object per line).

use super::state::{ContainerDir, Status};
use crate::cgroups::stats::{self, OomWatch};
use crate::error::{Error, Result};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// How often the stream checks that the container still runs (and v2 OOM counters).
const TICK: Duration = Duration::from_millis(200);

/// Calls `emit` with a stats event once (`interval` None), or streams stats every
/// `interval` and OOM events until the container stops or is deleted.
pub fn events(
    root: &Path,
    id: &str,
    interval: Option<Duration>,
    emit: &mut dyn FnMut(Value),
) -> Result<()> {
    let dir = ContainerDir::open(root, id, false)?;
    let st = dir.load()?;
    let status = st.status(&dir);
    if status == Status::Stopped {
        return Err(Error::state(id, "container is stopped: no events"));
    }
    let cg = st.cgroups();
    let Some(every) = interval else {
        emit(stats::event("stats", id, Some(cg.stats())));
        return Ok(());
    };
    let mut oom = OomWatch::new(cg.paths());
    let mut next = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next {
            emit(stats::event("stats", id, Some(cg.stats())));
            next = now + every;
        }
        let wait = (next - Instant::now()).min(TICK);
        let readable = match oom.fd() {
            Some(fd) => poll_in(fd, wait),
            None => {
                std::thread::sleep(wait);
                false
            }
        };
        match oom.check(readable) {
            None => return Ok(()), // the cgroup was removed: the container is gone
            Some(0) => {}
            Some(_) => emit(stats::event("oom", id, None)),
        }
        if !st.alive() {
            return Ok(());
        }
    }
}

fn poll_in(fd: i32, wait: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd on the stack, valid for the call.
    let n = unsafe { libc::poll(&mut p, 1, wait.as_millis() as i32) };
    n > 0 && p.revents & libc::POLLIN != 0
}
