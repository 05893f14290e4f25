//! `run`: create, start and, in the foreground, wait for the init and delete the container,
//! as one call (crun's `libcrun_container_run`), so the CLI only parses and prints.

use super::create::{self, CreateOpts};
use super::{ops, supervise};
use crate::Result;

/// What `run` does after start: return at once (`detach`), or wait for the init, relaying
/// its terminal if it has one, and delete the container unless `keep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunMode {
    pub detach: bool,
    pub keep: bool,
}

/// Creates and starts the container; in the foreground returns the init's exit code. A
/// failure after create deletes what was made.
pub fn run(opts: CreateOpts, mode: RunMode) -> Result<i32> {
    if !mode.detach {
        supervise::become_subreaper();
    }
    // A foreground terminal without --console-socket: berth holds the pty itself, as runc does.
    let o = CreateOpts {
        relay_tty: !mode.detach,
        ..opts
    };
    let (root, id) = (o.root.clone(), o.id.clone());
    let mut created = create::create(&o)?;
    let pid = created.state.pid;
    let relay = created.console.take();
    drop(created);
    let master = relay.map(|r| r.recv_master()).transpose();
    if let Ok(Some(m)) = &master {
        crate::ttyproxy::copy_winsize(std::os::fd::AsRawFd::as_raw_fd(m));
    }
    let master = match master.and_then(|m| ops::start(&root, &id).map(|_| m)) {
        Ok(m) => m,
        Err(e) => {
            let _ = ops::delete(&root, &id, true);
            return Err(e);
        }
    };
    if mode.detach {
        return Ok(0);
    }
    let code = match master {
        Some(m) => crate::ttyproxy::proxy(pid, m),
        None => supervise::wait(pid),
    };
    if !mode.keep {
        ops::delete(&root, &id, true)?;
    }
    Ok(code)
}
