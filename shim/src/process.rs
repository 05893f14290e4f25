//! Init and exec processes: their state, waiting for their exit, and the exit dispatcher that
//! matches reaped pids to them.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use containerd_shim::monitor::{monitor_subscribe, Subject, Topic as MonitorTopic};
use containerd_shim::protos::events::task::TaskExit;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::types::task::Status;

use crate::events::{Events, Topic};
use crate::io::{StdinWriter, StdioPaths};

#[derive(Clone, Debug)]
pub struct ProcState {
    pub pid: u32,
    pub status: Status,
    pub exit_status: u32,
    pub exited_at: Option<Timestamp>,
}

/// Work that must finish between a process's death and its TaskExit (see `Reaper::exited`).
pub type BeforeExit = Box<dyn FnOnce() + Send>;

pub struct Process {
    pub container_id: String,
    /// Empty for the container's init process.
    pub exec_id: String,
    pub stdio: StdioPaths,
    state: Mutex<ProcState>,
    exited: Condvar,
    pub console: Mutex<Option<File>>,
    pub stdin: Mutex<Option<StdinWriter>>,
    before_exit: Mutex<Option<BeforeExit>>,
}

pub fn now() -> Timestamp {
    containerd_shim::util::timestamp().unwrap_or_default()
}

impl Process {
    pub fn new(container_id: &str, exec_id: &str, stdio: StdioPaths) -> Arc<Process> {
        Arc::new(Process {
            container_id: container_id.into(),
            exec_id: exec_id.into(),
            stdio,
            state: Mutex::new(ProcState {
                pid: 0,
                status: Status::CREATED,
                exit_status: 0,
                exited_at: None,
            }),
            exited: Condvar::new(),
            console: Mutex::new(None),
            stdin: Mutex::new(None),
            before_exit: Mutex::new(None),
        })
    }

    /// The state lock; Start holds it across `berth start` and the TaskStart event so an
    /// immediate exit is recorded (and published) after them.
    pub fn lock(&self) -> MutexGuard<'_, ProcState> {
        self.state.lock().unwrap()
    }

    pub fn state(&self) -> ProcState {
        self.lock().clone()
    }

    /// Task/event id: the exec id, or the container id for init.
    pub fn id(&self) -> &str {
        if self.exec_id.is_empty() {
            &self.container_id
        } else {
            &self.exec_id
        }
    }

    /// Run `f` after this process dies and before its exit is recorded and published.
    pub fn set_before_exit(&self, f: BeforeExit) {
        *self.before_exit.lock().unwrap() = Some(f);
    }

    /// Record the exit; with a before-exit task, on a thread of its own (the task may run
    /// berth, whose own exit comes through the dispatcher that called us).
    fn finish(self: &Arc<Self>, code: i32, events: &Events) {
        match self.before_exit.lock().unwrap().take() {
            None => self.set_exited(code, events),
            Some(f) => {
                let (p, ev) = (self.clone(), events.clone());
                let spawned = std::thread::Builder::new()
                    .name("before-exit".into())
                    .spawn(move || {
                        f();
                        p.set_exited(code, &ev);
                    });
                if spawned.is_err() {
                    self.set_exited(code, events);
                }
            }
        }
    }

    fn set_exited(&self, code: i32, events: &Events) {
        let mut st = self.lock();
        st.status = Status::STOPPED;
        st.exit_status = code as u32;
        st.exited_at = Some(now());
        TaskExit {
            container_id: self.container_id.clone(),
            id: self.id().to_string(),
            pid: st.pid,
            exit_status: st.exit_status,
            exited_at: st.exited_at.clone().into(),
            ..Default::default()
        }
        .publish(events);
        drop(st);
        self.exited.notify_all();
    }

    /// Blocks until the process has exited (Wait).
    pub fn wait(&self) -> ProcState {
        let mut st = self.lock();
        while st.status != Status::STOPPED {
            st = self.exited.wait(st).unwrap();
        }
        st.clone()
    }

    /// CloseIO: the container's stdin sees EOF.
    pub fn close_stdin(&self) {
        if let Some(w) = self.stdin.lock().unwrap().take() {
            w.lock().unwrap().take();
            crate::io::release_stdin_fifo(&self.stdio.stdin);
        }
    }
}

const EARLY_EXITS: usize = 256;
/// An early exit older than this is no process we are about to register, but a pid reused
/// since (most early exits are berth CLI children, waited for through their own subscription).
const EARLY_EXIT_TTL: Duration = Duration::from_secs(30);

/// Pids the shim supervises, and exits reaped before their pid was known (a process that
/// ends before `berth exec --detach` returned its pid file).
#[derive(Default)]
struct Table {
    running: HashMap<i32, Arc<Process>>,
    early: VecDeque<(i32, i32, Instant)>,
}

#[derive(Clone)]
pub struct Reaper {
    table: Arc<Mutex<Table>>,
    events: Events,
}

impl Reaper {
    /// Starts the dispatcher: every exit the SIGCHLD handler reaps comes through here.
    pub fn start(events: Events) -> Reaper {
        let reaper = Reaper {
            table: Arc::default(),
            events,
        };
        let sub = monitor_subscribe(MonitorTopic::Pid).expect("monitor subscription");
        let r = reaper.clone();
        std::thread::Builder::new()
            .name("exits".into())
            .spawn(move || {
                let _keep = &sub;
                while let Ok(ev) = sub.rx.recv() {
                    if let Subject::Pid(pid) = ev.subject {
                        r.exited(pid, ev.exit_code);
                    }
                }
            })
            .expect("spawn exit dispatcher");
        reaper
    }

    fn exited(&self, pid: i32, code: i32) {
        let mut t = self.table.lock().unwrap();
        match t.running.remove(&pid) {
            Some(p) => {
                drop(t);
                p.finish(code, &self.events);
            }
            None => {
                // Most are runtime CLI children, waited for by their own subscription.
                while t.early.len() >= EARLY_EXITS
                    || t.early
                        .front()
                        .is_some_and(|e| e.2.elapsed() > EARLY_EXIT_TTL)
                {
                    t.early.pop_front();
                }
                t.early.push_back((pid, code, Instant::now()));
            }
        }
    }

    /// Supervise `p` as `pid`; its exit may already have been reaped.
    pub fn register(&self, pid: u32, p: &Arc<Process>) {
        let pid = pid as i32;
        let mut t = self.table.lock().unwrap();
        let early = |e: &(i32, i32, Instant)| e.0 == pid && e.2.elapsed() <= EARLY_EXIT_TTL;
        if let Some(i) = t.early.iter().position(early) {
            let (_, code, _) = t.early.remove(i).unwrap();
            drop(t);
            p.finish(code, &self.events);
            return;
        }
        t.running.insert(pid, p.clone());
    }
}
