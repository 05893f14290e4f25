//! Kubernetes' path, as kubelet drives it: containerd's CRI plugin with the runtime handler
//! `berth` (runtime_type io.containerd.berth.v2), spoken to over the real CRI gRPC API
//! (k8s-cri's generated client; Debian 12 has no crictl), with real CNI plugins giving the pod
//! its network. A pod sandbox (a pause image), a container in it with limits, its CRI log,
//! ExecSync, stop with a grace period, removal, and nothing left behind.
//!
//! `CRI_CGROUP_PARENT` sets the pod's cgroup parent: by default a cgroupfs path; the VM suite
//! passes a systemd slice (`kubepods-besteffort-pod<uid>.slice`, what kubelet's systemd
//! driver sends) on a systemd host, where CRI writes `slice:cri-containerd:id` cgroups paths.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{image_tar, Containerd};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tonic::transport::{Channel, Endpoint, Uri};

const CRI_NS: &str = "k8s.io";
const PAUSE: &str = "localhost/berth-pause:1";
const BUSYBOX: &str = "localhost/berth-busybox:1";
const BRIDGE: &str = "berthcri0";
const SUBNET: &str = "10.213.251";

fn cri_config() -> String {
    format!(
        r#"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE}"
  stream_server_port = "0"
  # this machine lacks CAP_SYS_RESOURCE: the pause container's -998 cannot be set
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "berth"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth]
      runtime_type = "io.containerd.berth.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/net.d"
"#
    )
}

fn cni_config(dir: &Path) -> String {
    format!(
        r#"{{"cniVersion": "0.4.0", "name": "berth-cri", "plugins": [
  {{"type": "bridge", "bridge": "{BRIDGE}", "isGateway": true,
    "ipam": {{"type": "host-local", "ranges": [[{{"subnet": "{SUBNET}.0/24"}}]],
              "dataDir": "{}"}}}}]}}"#,
        dir.join("ipam").display()
    )
}

/// Tears down what CRI made if the test fails half-way: tasks and containers in k8s.io, the
/// bridge, network namespaces that appeared during the test, the cgroup parent.
struct Cleanup<'a> {
    c: &'a Containerd,
    netns_before: Vec<PathBuf>,
    cgroup_parent: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let ctr = |args: &[&str]| {
            Command::new("timeout")
                .args(["30", "ctr", "--address"])
                .arg(&self.c.sock)
                .args(["-n", CRI_NS])
                .args(args)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        for id in ctr(&["task", "ls", "-q"]).lines() {
            ctr(&["task", "kill", "-s", "KILL", id.trim()]);
            ctr(&["task", "rm", "-f", id.trim()]);
        }
        for id in ctr(&["container", "ls", "-q"]).lines() {
            ctr(&["container", "rm", id.trim()]);
        }
        for ns in netns() {
            if !self.netns_before.contains(&ns) {
                let _ = nix::mount::umount2(&ns, nix::mount::MntFlags::MNT_DETACH);
                let _ = fs::remove_file(&ns);
            }
        }
        let _ = Command::new("ip").args(["link", "del", BRIDGE]).output();
        if !self.cgroup_parent.ends_with(".slice") {
            for ctl in [
                "memory", "cpu", "pids", "cpuset", "blkio", "devices", "freezer",
            ] {
                let top = self
                    .cgroup_parent
                    .trim_start_matches('/')
                    .split('/')
                    .next()
                    .unwrap();
                let _ = Command::new("find")
                    .arg(format!("/sys/fs/cgroup/{ctl}/{top}"))
                    .args(["-depth", "-type", "d", "-delete"])
                    .output();
            }
        }
    }
}

fn netns() -> Vec<PathBuf> {
    fs::read_dir("/var/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect()
}

async fn connect(sock: PathBuf) -> RuntimeServiceClient<Channel> {
    let channel = Endpoint::try_from("http://[::]:50051")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let sock = sock.clone();
            async move {
                let s = tokio::net::UnixStream::connect(sock).await?;
                Ok::<_, std::io::Error>(TokioIo::new(s))
            }
        }))
        .await
        .expect("connecting to containerd's CRI socket");
    RuntimeServiceClient::new(channel)
}

fn pod_config(dir: &Path, parent: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "berth-pod".into(),
            uid: "berth-pod-uid-1".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "berth-pod".into(),
        log_directory: dir.join("pods").display().to_string(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: parent.into(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Pod as i32,
                    pid: NamespaceMode::Pod as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn app_config() -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "app".into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: BUSYBOX.into(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into()],
        args: vec!["echo hello from berth; echo oops >&2; exec sleep 100000".into()],
        envs: vec![KeyValue {
            key: "GREETING".into(),
            value: "hi-cri".into(),
        }],
        log_path: "app.log".into(),
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Pod as i32,
                    pid: NamespaceMode::Pod as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            resources: Some(LinuxContainerResources {
                memory_limit_in_bytes: 64 << 20,
                cpu_shares: 256,
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// Polls `f` until it returns Some, for up to 30 s.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn exec_sync(
    cri: &mut RuntimeServiceClient<Channel>,
    id: &str,
    cmd: &[&str],
) -> ExecSyncResponse {
    let req = ExecSyncRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        timeout: 20,
    };
    cri.exec_sync(req).await.expect("ExecSync").into_inner()
}

#[test]
fn a_pod_runs_under_berth_through_the_cri() {
    let c = Containerd::start_cri("cri", &cri_config());
    let parent = std::env::var("CRI_CGROUP_PARENT")
        .unwrap_or_else(|_| format!("/berth-cri-{}/pod-berth-pod-uid-1", std::process::id()));
    let _cleanup = Cleanup {
        c: &c,
        netns_before: netns(),
        cgroup_parent: parent.clone(),
    };
    fs::create_dir_all(c.dir.join("net.d")).unwrap();
    fs::create_dir_all(c.dir.join("pods")).unwrap();
    fs::write(c.dir.join("net.d/10-berth.conflist"), cni_config(&c.dir)).unwrap();
    for (name, change) in [
        (PAUSE, r#"CMD ["sleep", "2147483647"]"#),
        (BUSYBOX, r#"CMD ["sh"]"#),
    ] {
        let tar = image_tar(&c.dir, name, change);
        let out = Command::new("ctr")
            .arg("--address")
            .arg(&c.sock)
            .args(["-n", CRI_NS, "image", "import"])
            .arg(&tar)
            .output()
            .unwrap();
        assert!(out.status.success(), "ctr image import {name}: {out:?}");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(pod_lifecycle(&c, &parent));
}

async fn pod_lifecycle(c: &Containerd, parent: &str) {
    let mut cri = connect(c.sock.clone()).await;
    let version = cri.version(VersionRequest::default()).await.unwrap();
    assert_eq!(version.into_inner().runtime_name, "containerd");
    let pod_cfg = pod_config(&c.dir, parent);
    // CNI config is read asynchronously after start; the first pod may race it.
    let pod = eventually("RunPodSandbox", || {
        let mut cri = cri.clone();
        let req = RunPodSandboxRequest {
            config: Some(pod_cfg.clone()),
            runtime_handler: "berth".into(),
        };
        async move { cri.run_pod_sandbox(req).await.ok() }
    })
    .await
    .into_inner()
    .pod_sandbox_id;
    let status = cri
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(status.state, PodSandboxState::SandboxReady as i32);
    let ip = status.network.unwrap().ip;
    assert!(
        ip.starts_with(SUBNET),
        "pod IP {ip} from the bridge's subnet"
    );

    let ctr = cri
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(app_config()),
            sandbox_config: Some(pod_cfg.clone()),
        })
        .await
        .unwrap_or_else(|e| panic!("CreateContainer: {e}\n{}", c.diagnose()))
        .into_inner()
        .container_id;
    cri.start_container(StartContainerRequest {
        container_id: ctr.clone(),
    })
    .await
    .unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", c.diagnose()));

    // The CRI log: one line per write, `TIME STREAM F TEXT`.
    let log = c.dir.join("pods/app.log");
    let text = eventually("the container's CRI log", || {
        let t = fs::read_to_string(&log).unwrap_or_default();
        async move { (t.contains("stderr F oops")).then_some(t) }
    })
    .await;
    assert!(text.contains(" stdout F hello from berth\n"), "{text}");

    // ExecSync joins the container: its env, the pod's network and hostname, exit codes.
    let r = exec_sync(
        &mut cri,
        &ctr,
        &[
            "sh",
            "-c",
            "echo $GREETING; hostname; tr '\\0' ' ' </proc/1/cmdline; echo; ip -4 addr",
        ],
    )
    .await;
    let out = String::from_utf8_lossy(&r.stdout);
    assert_eq!(
        r.exit_code,
        0,
        "{out} {}",
        String::from_utf8_lossy(&r.stderr)
    );
    // the pod's pid namespace (the sandbox asked for it), whose PID 1 is the pause process
    assert!(
        out.starts_with("hi-cri\nberth-pod\nsleep 2147483647 \n"),
        "{out}"
    );
    assert!(out.contains(&format!("inet {ip}/24")), "{out}");
    let r = exec_sync(&mut cri, &ctr, &["sh", "-c", "echo err >&2; exit 3"]).await;
    assert_eq!((r.exit_code, r.stderr.as_slice()), (3, &b"err\n"[..]));

    check_cgroup(c, parent, &pod, &ctr);

    // Stop: SIGTERM ends sleep at once (it is not the pid namespace's init, which would
    // ignore it), so the exit status is 143, well inside the 2 s grace period.
    cri.stop_container(StopContainerRequest {
        container_id: ctr.clone(),
        timeout: 2,
    })
    .await
    .unwrap();
    let st = cri
        .container_status(ContainerStatusRequest {
            container_id: ctr.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(st.state, ContainerState::ContainerExited as i32);
    assert_eq!(st.exit_code, 143, "{st:?}");
    cri.remove_container(RemoveContainerRequest {
        container_id: ctr.clone(),
    })
    .await
    .unwrap();
    cri.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    cri.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    let left = cri
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(left.is_empty(), "{left:?}");
    check_gone(c, parent, &pod, &ctr);
}

/// The container's memory limit is on its cgroup under the pod's parent (cgroupfs v1 here,
/// v2 or a systemd scope in the guest).
fn check_cgroup(c: &Containerd, parent: &str, pod: &str, ctr: &str) {
    let dir = cgroup_dir(parent, ctr, "memory");
    let file = ["memory.limit_in_bytes", "memory.max"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no cgroup at {}\n{}", dir.display(), c.diagnose()));
    assert_eq!(fs::read_to_string(&file).unwrap().trim(), "67108864");
    assert!(
        cgroup_dir(parent, pod, "memory").is_dir(),
        "the sandbox's cgroup"
    );
}

fn cgroup_dir(parent: &str, id: &str, ctl: &str) -> PathBuf {
    let v2 = !Path::new("/sys/fs/cgroup/memory").is_dir();
    let base = if v2 {
        PathBuf::from("/sys/fs/cgroup")
    } else {
        Path::new("/sys/fs/cgroup").join(ctl)
    };
    match parent.strip_suffix(".slice") {
        // systemd: kubepods-besteffort-podX.slice nests as kubepods.slice/kubepods-besteffort.slice/…
        Some(name) => {
            let mut p = base;
            let parts: Vec<&str> = name.split('-').collect();
            for i in 1..=parts.len() {
                p.push(format!("{}.slice", parts[..i].join("-")));
            }
            p.join(format!("cri-containerd-{id}.scope"))
        }
        None => base.join(parent.trim_start_matches('/')).join(id),
    }
}

fn check_gone(c: &Containerd, parent: &str, pod: &str, ctr: &str) {
    for id in [pod, ctr] {
        let dir = cgroup_dir(parent, id, "memory");
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    for id in [pod, ctr] {
        assert!(!mounts.contains(id), "a mount of {id} left behind");
    }
    let alloc: Vec<_> = fs::read_dir(c.dir.join("ipam/berth-cri"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(SUBNET))
        .collect();
    assert!(
        alloc.is_empty(),
        "the pod's IP is still allocated: {alloc:?}"
    );
    let shims = c.shim_pids();
    assert!(shims.is_empty(), "shims still running: {shims:?}");
}
