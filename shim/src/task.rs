//! The ttrpc Task API: each request finds its container/process and calls one method on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use containerd_shim::protos::api::*;
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskIO, TaskOOM, TaskPaused, TaskResumed,
};
use containerd_shim::protos::shim::shim_ttrpc::Task;
use containerd_shim::protos::ttrpc::{self, TtrpcContext};
use containerd_shim::protos::types::task::{ProcessInfo, Status};
use containerd_shim::ExitSignal;

use crate::container::Container;
use crate::error::{Error, Result};
use crate::events::{Events, Topic};
use crate::io::StdioPaths;
use crate::process::{ProcState, Reaper};
use crate::{oom, stats};

pub struct TaskService {
    pub namespace: String,
    containers: Mutex<HashMap<String, Arc<Container>>>,
    events: Events,
    reaper: Reaper,
    exit: Arc<ExitSignal>,
    oom: oom::OomWatcher,
}

type R<T> = ttrpc::Result<T>;

fn oom_watcher(events: Events) -> oom::OomWatcher {
    oom::OomWatcher::start(move |id| {
        TaskOOM {
            container_id: id.into(),
            ..Default::default()
        }
        .publish(&events)
    })
}

impl TaskService {
    pub fn new(namespace: String, events: Events, exit: Arc<ExitSignal>) -> TaskService {
        TaskService {
            namespace,
            containers: Mutex::default(),
            reaper: Reaper::start(events.clone()),
            oom: oom_watcher(events.clone()),
            events,
            exit,
        }
    }

    fn container(&self, id: &str) -> Result<Arc<Container>> {
        let cs = self.containers.lock().unwrap();
        cs.get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(id.to_string()))
    }

    fn do_create(&self, req: &CreateTaskRequest) -> Result<u32> {
        if self.containers.lock().unwrap().contains_key(&req.id) {
            return Err(Error::AlreadyExists(format!("container {}", req.id)));
        }
        let c = Arc::new(Container::create(req, &self.namespace, &self.reaper)?);
        let pid = c.init.state().pid;
        self.oom.watch(&c.id, pid);
        self.containers.lock().unwrap().insert(req.id.clone(), c);
        TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: Some(TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                ..Default::default()
            })
            .into(),
            pid,
            ..Default::default()
        }
        .publish(&self.events);
        Ok(pid)
    }

    fn do_delete(&self, req: &DeleteRequest) -> Result<ProcState> {
        let c = self.container(&req.id)?;
        if !req.exec_id.is_empty() {
            return c.delete_exec(&req.exec_id);
        }
        let st = c.delete()?;
        self.containers.lock().unwrap().remove(&req.id);
        TaskDelete {
            container_id: req.id.clone(),
            pid: st.pid,
            exit_status: st.exit_status,
            exited_at: st.exited_at.clone().into(),
            ..Default::default()
        }
        .publish(&self.events);
        Ok(st)
    }
}

impl Task for TaskService {
    fn create(&self, _: &TtrpcContext, req: CreateTaskRequest) -> R<CreateTaskResponse> {
        let pid = self.do_create(&req)?;
        Ok(CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    fn start(&self, _: &TtrpcContext, req: StartRequest) -> R<StartResponse> {
        let c = self.container(&req.id)?;
        let pid = if req.exec_id.is_empty() {
            c.start_init(&self.events)?
        } else {
            c.start_exec(&req.exec_id, &self.events, &self.reaper)?
        };
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }

    fn delete(&self, _: &TtrpcContext, req: DeleteRequest) -> R<DeleteResponse> {
        let st = self.do_delete(&req)?;
        Ok(DeleteResponse {
            pid: st.pid,
            exit_status: st.exit_status,
            exited_at: st.exited_at.into(),
            ..Default::default()
        })
    }

    fn exec(&self, _: &TtrpcContext, req: ExecProcessRequest) -> R<Empty> {
        let c = self.container(&req.id)?;
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let spec = req
            .spec
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        if spec.is_empty() {
            return Err(Error::InvalidArgument("exec without a process spec".into()).into());
        }
        c.add_exec(&req.exec_id, stdio, spec)?;
        TaskExecAdded {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        }
        .publish(&self.events);
        Ok(Empty::new())
    }

    fn state(&self, _: &TtrpcContext, req: StateRequest) -> R<StateResponse> {
        let c = self.container(&req.id)?;
        let p = c.process(&req.exec_id)?;
        let st = p.state();
        Ok(StateResponse {
            id: p.id().to_string(),
            bundle: c.bundle.display().to_string(),
            pid: st.pid,
            status: st.status.into(),
            stdin: p.stdio.stdin.clone(),
            stdout: p.stdio.stdout.clone(),
            stderr: p.stdio.stderr.clone(),
            terminal: p.stdio.terminal,
            exit_status: st.exit_status,
            exited_at: st.exited_at.into(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        })
    }

    fn wait(&self, _: &TtrpcContext, req: WaitRequest) -> R<WaitResponse> {
        let p = self.container(&req.id)?.process(&req.exec_id)?;
        let st = p.wait();
        Ok(WaitResponse {
            exit_status: st.exit_status,
            exited_at: st.exited_at.into(),
            ..Default::default()
        })
    }

    fn kill(&self, _: &TtrpcContext, req: KillRequest) -> R<Empty> {
        let c = self.container(&req.id)?;
        c.kill(&req.exec_id, req.signal, req.all)?;
        Ok(Empty::new())
    }

    fn pids(&self, _: &TtrpcContext, req: PidsRequest) -> R<PidsResponse> {
        let c = self.container(&req.id)?;
        let pids = c.berth.ps(&c.id)?;
        let processes = pids
            .into_iter()
            .map(|pid| ProcessInfo {
                pid,
                ..Default::default()
            })
            .collect();
        Ok(PidsResponse {
            processes,
            ..Default::default()
        })
    }

    fn pause(&self, _: &TtrpcContext, req: PauseRequest) -> R<Empty> {
        self.container(&req.id)?.set_paused(true)?;
        TaskPaused {
            container_id: req.id,
            ..Default::default()
        }
        .publish(&self.events);
        Ok(Empty::new())
    }

    fn resume(&self, _: &TtrpcContext, req: ResumeRequest) -> R<Empty> {
        self.container(&req.id)?.set_paused(false)?;
        TaskResumed {
            container_id: req.id,
            ..Default::default()
        }
        .publish(&self.events);
        Ok(Empty::new())
    }

    fn checkpoint(&self, _: &TtrpcContext, _: CheckpointTaskRequest) -> R<Empty> {
        Err(Error::Unsupported("checkpoint").into())
    }

    fn resize_pty(&self, _: &TtrpcContext, req: ResizePtyRequest) -> R<Empty> {
        let p = self.container(&req.id)?.process(&req.exec_id)?;
        let console = p.console.lock().unwrap();
        let master = console
            .as_ref()
            .ok_or_else(|| Error::Precondition(format!("{} has no terminal", p.id())))?;
        crate::io::resize(master, req.width, req.height)?;
        Ok(Empty::new())
    }

    fn close_io(&self, _: &TtrpcContext, req: CloseIORequest) -> R<Empty> {
        let p = self.container(&req.id)?.process(&req.exec_id)?;
        if req.stdin {
            p.close_stdin();
        }
        Ok(Empty::new())
    }

    fn update(&self, _: &TtrpcContext, req: UpdateTaskRequest) -> R<Empty> {
        let c = self.container(&req.id)?;
        let res = req.resources.as_ref().map(|a| a.value.as_slice());
        let res = res.ok_or_else(|| Error::InvalidArgument("update without resources".into()))?;
        c.berth.update(&c.id, res)?;
        Ok(Empty::new())
    }

    fn stats(&self, _: &TtrpcContext, req: StatsRequest) -> R<StatsResponse> {
        let c = self.container(&req.id)?;
        let st = c.init.state();
        if st.status == Status::STOPPED {
            return Err(Error::Precondition(format!("container {} has stopped", c.id)).into());
        }
        Ok(StatsResponse {
            stats: Some(stats::stats(st.pid)?).into(),
            ..Default::default()
        })
    }

    fn connect(&self, _: &TtrpcContext, req: ConnectRequest) -> R<ConnectResponse> {
        let task_pid = self.container(&req.id).map(|c| c.init.state().pid);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: task_pid.unwrap_or(0),
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _: &TtrpcContext, _: ShutdownRequest) -> R<Empty> {
        // One shim serves a whole pod: it leaves with the last container.
        if self.containers.lock().unwrap().is_empty() {
            self.events.flush();
            self.exit.signal();
        }
        Ok(Empty::new())
    }
}
