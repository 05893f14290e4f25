//! One container: its rootfs mounts, the berth commands of its lifecycle, and its processes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use containerd_shim::protos::api::CreateTaskRequest;
use containerd_shim::protos::events::task::{TaskExecStarted, TaskStart};
use containerd_shim::protos::types::task::Status;

use crate::error::{Error, Result};
use crate::events::{Events, Topic};
use crate::io::{self, ConsoleSocket, StdioPaths};
use crate::options::RuntimeOptions;
use crate::process::{ProcState, Process, Reaper};
use crate::rootfs;
use crate::runtime::{Berth, Launch};

/// Console sockets live here: short paths (sun_path has 108 bytes; bundle paths with
/// Kubernetes' 64-character ids do not fit).
const CONSOLE_DIR: &str = "/run/containerd/berth/console";

pub struct Exec {
    pub process: Arc<Process>,
    /// The runtime-spec `process` JSON containerd sent with Exec.
    spec: Vec<u8>,
}

pub struct Container {
    pub id: String,
    pub namespace: String,
    pub bundle: PathBuf,
    pub berth: Berth,
    pub init: Arc<Process>,
    pub execs: Mutex<HashMap<String, Exec>>,
    rootfs_mounted: bool,
}

impl Container {
    /// Create: mount the rootfs, `berth create`, then supervise the init pid.
    pub fn create(req: &CreateTaskRequest, namespace: &str, reaper: &Reaper) -> Result<Container> {
        if !req.checkpoint.is_empty() {
            return Err(Error::Unsupported("restoring from a checkpoint"));
        }
        let mut opts = RuntimeOptions::from_any(req.options.as_ref())?;
        let bundle = PathBuf::from(&req.bundle);
        opts.infer_systemd(cgroups_path(&bundle).as_deref());
        opts.save(&bundle)?;
        let berth = opts.berth(namespace, &bundle);
        let mounted = rootfs::mount_all(&req.rootfs, &bundle.join("rootfs"))?;
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let init = Process::new(&req.id, "", stdio);
        let pid_file = bundle.join("init.pid");
        let launched = launch(&init, namespace, &pid_file, |l| {
            berth.create(&req.id, &bundle, l)
        });
        let pid = match launched {
            Ok(pid) => pid,
            Err(e) => {
                init.close_stdin();
                if mounted {
                    rootfs::unmount(&bundle.join("rootfs"));
                }
                return Err(e);
            }
        };
        init.lock().pid = pid;
        if !own_pid_namespace(&bundle) {
            init.set_before_exit(kill_all_on_exit(berth.clone(), req.id.clone()));
        }
        reaper.register(pid, &init);
        Ok(Container {
            id: req.id.clone(),
            namespace: namespace.into(),
            bundle,
            berth,
            init,
            execs: Mutex::default(),
            rootfs_mounted: mounted,
        })
    }

    pub fn process(&self, exec_id: &str) -> Result<Arc<Process>> {
        if exec_id.is_empty() {
            return Ok(self.init.clone());
        }
        let execs = self.execs.lock().unwrap();
        let e = execs.get(exec_id);
        e.map(|e| e.process.clone())
            .ok_or_else(|| Error::ProcessNotFound(format!("{exec_id} in container {}", self.id)))
    }

    pub fn start_init(&self, events: &Events) -> Result<u32> {
        let mut st = self.init.lock();
        if st.status != Status::CREATED {
            return Err(Error::Precondition(format!(
                "container {} is not in the created state",
                self.id
            )));
        }
        self.berth.simple("start", &[&self.id])?;
        st.status = Status::RUNNING;
        TaskStart {
            container_id: self.id.clone(),
            pid: st.pid,
            ..Default::default()
        }
        .publish(events);
        Ok(st.pid)
    }

    pub fn add_exec(&self, exec_id: &str, stdio: StdioPaths, spec: Vec<u8>) -> Result<()> {
        if self.init.state().status == Status::STOPPED {
            return Err(Error::Precondition(format!(
                "container {} has stopped",
                self.id
            )));
        }
        let mut execs = self.execs.lock().unwrap();
        if execs.contains_key(exec_id) {
            return Err(Error::AlreadyExists(format!("exec {exec_id}")));
        }
        let process = Process::new(&self.id, exec_id, stdio);
        execs.insert(exec_id.into(), Exec { process, spec });
        Ok(())
    }

    pub fn start_exec(&self, exec_id: &str, events: &Events, reaper: &Reaper) -> Result<u32> {
        let (p, spec) = {
            let execs = self.execs.lock().unwrap();
            let e = execs
                .get(exec_id)
                .ok_or_else(|| Error::ProcessNotFound(exec_id.into()))?;
            (e.process.clone(), e.spec.clone())
        };
        if p.state().status != Status::CREATED {
            return Err(Error::Precondition(format!(
                "exec {exec_id} was already started"
            )));
        }
        let spec_path = self.bundle.join(format!("{exec_id}.process.json"));
        std::fs::write(&spec_path, &spec)
            .map_err(Error::io(format!("writing {}", spec_path.display())))?;
        let pid_file = self.bundle.join(format!("{exec_id}.pid"));
        let launched = launch(&p, &self.namespace, &pid_file, |l| {
            self.berth.exec(&self.id, &spec_path, l)
        });
        let _ = std::fs::remove_file(&spec_path);
        let pid = launched?;
        {
            let mut st = p.lock();
            st.pid = pid;
            st.status = Status::RUNNING;
        }
        TaskExecStarted {
            container_id: self.id.clone(),
            exec_id: exec_id.into(),
            pid,
            ..Default::default()
        }
        .publish(events);
        reaper.register(pid, &p);
        Ok(pid)
    }

    pub fn kill(&self, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        let p = self.process(exec_id)?;
        let st = p.state();
        if st.status == Status::STOPPED {
            return Err(Error::ProcessNotFound(format!(
                "{}: process already finished",
                p.id()
            )));
        }
        if !exec_id.is_empty() {
            if st.pid == 0 {
                return Err(Error::Precondition(format!(
                    "exec {exec_id} was not started"
                )));
            }
            // SAFETY: plain kill(2) of a pid we supervise (still unreaped, so not reused).
            if unsafe { libc::kill(st.pid as i32, signal as i32) } < 0 {
                return Err(Error::io(format!("signalling exec {exec_id}"))(
                    std::io::Error::last_os_error(),
                ));
            }
            return Ok(());
        }
        self.berth.kill(&self.id, signal, all).map_err(|e| {
            if p.state().status == Status::STOPPED {
                Error::ProcessNotFound(format!("{}: process already finished", self.id))
            } else {
                e
            }
        })
    }

    /// Delete an exec: it must have exited (or never started).
    pub fn delete_exec(&self, exec_id: &str) -> Result<ProcState> {
        let mut execs = self.execs.lock().unwrap();
        let e = execs
            .get(exec_id)
            .ok_or_else(|| Error::ProcessNotFound(exec_id.into()))?;
        let st = e.process.state();
        if st.status == Status::RUNNING {
            return Err(Error::Precondition(format!(
                "exec {exec_id} is still running"
            )));
        }
        if let Some(e) = execs.remove(exec_id) {
            e.process.close_stdin();
        }
        Ok(st)
    }

    /// Delete the container: `berth delete --force`, wait briefly for the init's exit to be
    /// reaped (a never-started container is killed here), unmount the rootfs.
    pub fn delete(&self) -> Result<ProcState> {
        // Execs outlive the init only in a shared PID namespace; they go with the container.
        for e in self.execs.lock().unwrap().values() {
            let st = e.process.state();
            if st.status == Status::RUNNING && st.pid > 0 {
                // SAFETY: plain kill(2) of a pid we supervise and have not reaped.
                unsafe { libc::kill(st.pid as i32, libc::SIGKILL) };
            }
        }
        let res = self.berth.simple("delete", &["--force", &self.id]);
        if let Err(e) = res {
            if self.berth.root.join(&self.id).exists() {
                return Err(e);
            }
        }
        for _ in 0..100 {
            if self.init.state().status == Status::STOPPED {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if self.rootfs_mounted {
            rootfs::unmount(&self.bundle.join("rootfs"));
        }
        self.init.close_stdin();
        for e in self.execs.lock().unwrap().values() {
            e.process.close_stdin();
        }
        let _ = std::fs::remove_file(self.bundle.join("init.pid"));
        Ok(self.init.state())
    }

    pub fn set_paused(&self, paused: bool) -> Result<()> {
        let mut st = self.init.lock();
        self.berth
            .simple(if paused { "pause" } else { "resume" }, &[&self.id])?;
        st.status = if paused {
            Status::PAUSED
        } else {
            Status::RUNNING
        };
        Ok(())
    }
}

/// Starts a process through `run` (berth create or exec) with its stdio wired up, and
/// returns its pid from the pid file.
fn launch(
    p: &Process,
    namespace: &str,
    pid_file: &Path,
    run: impl FnOnce(Launch) -> Result<()>,
) -> Result<u32> {
    let _ = std::fs::remove_file(pid_file);
    let who = io::LogOwner {
        id: p.id(),
        namespace,
    };
    if p.stdio.terminal {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let sock = ConsoleSocket::new(Path::new(CONSOLE_DIR), &name)?;
        run(Launch {
            pid_file,
            console_socket: Some(&sock.path),
            stdio: Default::default(),
        })?;
        let master = sock.receive()?;
        *p.stdin.lock().unwrap() = io::copy_console(&master, &p.stdio, &who)?;
        *p.console.lock().unwrap() = Some(master);
    } else {
        let (stdio, stdin) = io::pipe_stdio(&p.stdio, &who)?;
        run(Launch {
            pid_file,
            console_socket: None,
            stdio,
        })?;
        *p.stdin.lock().unwrap() = stdin;
    }
    read_pid(pid_file)
}

fn read_pid(pid_file: &Path) -> Result<u32> {
    let text = std::fs::read_to_string(pid_file)
        .map_err(Error::io(format!("reading {}", pid_file.display())))?;
    text.trim().parse().map_err(|_| Error::Runtime {
        cmd: "create".into(),
        msg: format!("{} holds no pid: {text:?}", pid_file.display()),
    })
}

/// Does config.json give the container a PID namespace of its own? Without one (a pod's
/// shared namespace, or the host's), the kernel does not kill the rest when the init dies.
/// The spec's `linux.cgroupsPath`, if the bundle has one.
fn cgroups_path(bundle: &Path) -> Option<String> {
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).ok()?).ok()?;
    spec["linux"]["cgroupsPath"].as_str().map(str::to_owned)
}

fn own_pid_namespace(bundle: &Path) -> bool {
    let spec: Option<serde_json::Value> = std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(spec) = spec else {
        return true;
    };
    let nss = spec["linux"]["namespaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    nss.iter()
        .any(|n| n["type"] == "pid" && n["path"].as_str().map_or(true, str::is_empty))
}

/// When an init without its own PID namespace dies, its orphans (background children) are
/// killed and gone before TaskExit is published, as containerd's runc shim does
/// (`shouldKillAllOnExit`): otherwise they outlive the task, write to stdio FIFOs containerd
/// has already closed ("Failed to pipe stdout … file already closed") and escape delete.
fn kill_all_on_exit(berth: Berth, id: String) -> crate::process::BeforeExit {
    Box::new(move || {
        let _ = berth.kill(&id, libc::SIGKILL as u32, true);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            match berth.ps(&id) {
                Ok(pids) if !pids.is_empty() => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                _ => break,
            }
        }
    })
}
