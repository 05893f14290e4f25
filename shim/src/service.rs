//! The shim's own lifecycle as containerd drives it: `start` (spawn or reuse the daemon of a
//! pod), serving (the Task service), and `delete` (clean up after a shim that died).

use std::path::PathBuf;
use std::sync::Arc;

use containerd_shim::api::DeleteResponse;
use containerd_shim::protos::ttrpc::Client;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::util::write_address;
use containerd_shim::{socket_address, spawn, Config, ExitSignal, Flags, Shim, StartOpts};

use crate::events::Events;
use crate::options::RuntimeOptions;
use crate::process::now;
use crate::rootfs;
use crate::task::TaskService;

/// Containers with this annotation share one shim (a Kubernetes pod), as runc's shim does.
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

pub struct Service {
    namespace: String,
    id: String,
    bundle: String,
    debug: bool,
    /// `-socket` when serving: removed on exit here, as containerd-shim looks for it through
    /// the bundle's `address` file, which containerd may have deleted by then.
    socket: String,
    exit: Arc<ExitSignal>,
}

/// The id whose socket this container's shim listens on: its pod's sandbox id, or its own.
fn grouping(id: &str) -> String {
    let spec: Option<serde_json::Value> = std::fs::read("config.json")
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    spec.as_ref()
        .and_then(|s| s.get("annotations")?.get(SANDBOX_ID)?.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(id)
        .to_string()
}

/// Removes the socket of a shim that died (SIGKILL leaves it behind); a pod's shim that still
/// serves other containers answers, and keeps its socket.
fn remove_dead_socket(bundle: &std::path::Path) {
    let Ok(address) = std::fs::read_to_string(bundle.join("address")) else {
        return;
    };
    let address = address.trim();
    let Some(path) = address.strip_prefix("unix://") else {
        return;
    };
    let refused = std::os::unix::net::UnixStream::connect(path)
        .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
    if refused {
        let _ = std::fs::remove_file(path);
    }
}

impl Shim for Service {
    type T = TaskService;

    fn new(_runtime_id: &str, args: &Flags, config: &mut Config) -> Self {
        // Our own logger (logger.rs), set up when serving.
        config.no_setup_logger = true;
        Service {
            namespace: args.namespace.clone(),
            id: args.id.clone(),
            bundle: args.bundle.clone(),
            debug: args.debug,
            socket: args.socket.clone(),
            exit: Arc::default(),
        }
    }

    fn start_shim(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        let group = grouping(&opts.id);
        let address = socket_address(&opts.address, &opts.namespace, &group);
        if group != opts.id && Client::connect(&address).is_ok() {
            write_address(&address)?;
            return Ok(address);
        }
        let (_, address) = spawn(opts, &group, Vec::new())?;
        write_address(&address)?;
        Ok(address)
    }

    /// containerd runs this in the bundle after the shim went away (e.g. SIGKILL).
    fn delete_shim(&mut self) -> containerd_shim::Result<DeleteResponse> {
        let bundle = match self.bundle.as_str() {
            "" => std::env::current_dir().unwrap_or_default(),
            b => PathBuf::from(b),
        };
        let berth = RuntimeOptions::load(&bundle).berth(&self.namespace, &bundle);
        // containerd runs this after every shim exit, also after a clean Delete: only call
        // berth if the container is still there.
        if berth.root.join(&self.id).exists() {
            if let Err(e) = berth.simple("delete", &["--force", &self.id]) {
                log::warn!("cleaning up {}: {e}", self.id);
            }
        }
        rootfs::unmount(&bundle.join("rootfs"));
        remove_dead_socket(&bundle);
        Ok(DeleteResponse {
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: Some(now()).into(),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.exit.wait();
        if let Some(path) = self.socket.strip_prefix("unix://") {
            let _ = std::fs::remove_file(path);
        }
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> TaskService {
        crate::logger::init(self.debug);
        drop(publisher); // events.rs keeps its own, reflection-free connection
        let events = Events::start(self.namespace.clone());
        TaskService::new(self.namespace.clone(), events, self.exit.clone())
    }
}
