//! Test support: real bundles (busybox-static rootfs), a runtime binary (berth, or any
//! runc-compatible one via RUNTIME=path), unique ids and a private --root per test.
#![allow(dead_code)]

pub mod cgv;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

static SEQ: AtomicUsize = AtomicUsize::new(0);

pub fn runtime() -> String {
    std::env::var("RUNTIME").unwrap_or_else(|_| env!("CARGO_BIN_EXE_berth").to_string())
}

pub fn is_berth() -> bool {
    std::env::var("RUNTIME")
        .map(|r| r.contains("berth"))
        .unwrap_or(true)
}

pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub id: String,
    pub config: Value,
}

fn busybox() -> &'static str {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            return p;
        }
    }
    panic!("busybox-static is required (apt-get install busybox-static)");
}

/// A fresh bundle with a busybox rootfs and runc's default config (terminal off).
pub fn bundle(args: &[&str]) -> Bundle {
    let dir = tempfile::Builder::new()
        .prefix("berth-test-")
        .tempdir()
        .unwrap();
    let rootfs = dir.path().join("rootfs");
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(busybox(), rootfs.join("bin/busybox")).unwrap();
    // Retried: a fork in another test thread may briefly hold our copy open for writing,
    // and exec of a file open for writing fails with ETXTBSY.
    let ok = (0..50).any(|_| {
        let st = Command::new("chroot")
            .arg(&rootfs)
            .args(["/bin/busybox", "--install", "-s", "/bin"])
            .stderr(Stdio::null())
            .status();
        st.is_ok_and(|s| s.success()) || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            false
        }
    });
    assert!(ok, "busybox --install failed");
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    let mut config = berth::features::default_spec(false);
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(args);
    config["root"]["readonly"] = json!(false);
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let id = format!("t{}-{}", std::process::id(), n);
    let root = dir.path().join("state");
    Bundle {
        dir,
        root,
        id,
        config,
    }
}

impl Bundle {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }
    pub fn write(&self) {
        std::fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }
    /// `RUNTIME --root R ARGS…` with the bundle's config written first.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.write();
        let mut c = Command::new(runtime());
        c.arg("--root")
            .arg(&self.root)
            .args(args)
            .current_dir(self.path());
        c.stdin(Stdio::null());
        c
    }
    pub fn rt(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
    /// `run` in the foreground: (exit code, stdout, stderr).
    pub fn run(&self) -> (i32, String, String) {
        let o = self.rt(&["run", "--bundle", self.path().to_str().unwrap(), &self.id]);
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into(),
            String::from_utf8_lossy(&o.stderr).into(),
        )
    }
    /// Runs and asserts success, returning stdout.
    pub fn run_ok(&self) -> String {
        let (code, out, err) = self.run();
        assert_eq!(code, 0, "run failed: stdout={out} stderr={err}");
        out
    }
    /// `create`: the init inherits stdio, so it goes to files (a pipe would never close).
    pub fn create(&self) -> Output {
        self.detached(&[
            "create",
            "--bundle",
            self.path().to_str().unwrap(),
            &self.id,
        ])
    }
    /// Runs a command whose children outlive it, capturing stdio through files.
    pub fn detached(&self, args: &[&str]) -> Output {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let (o, e) = (
            self.path().join(format!("stdout.{n}")),
            self.path().join(format!("stderr.{n}")),
        );
        let status = self
            .cmd(args)
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(&o).unwrap(),
            stderr: std::fs::read(&e).unwrap(),
        }
    }
    pub fn create_ok(&self) {
        let o = self.create();
        assert!(
            o.status.success(),
            "create failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.rt(args);
        assert!(
            o.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into()
    }
    pub fn state(&self) -> Option<Value> {
        let o = self.rt(&["state", &self.id]);
        o.status
            .success()
            .then(|| serde_json::from_slice(&o.stdout).unwrap())
    }
    pub fn status(&self) -> String {
        self.state()
            .map(|s| s["status"].as_str().unwrap().to_string())
            .unwrap_or_else(|| "gone".into())
    }
    pub fn pid(&self) -> i32 {
        self.state().unwrap()["pid"].as_i64().unwrap() as i32
    }
    pub fn wait_status(&self, want: &str) {
        for _ in 0..500 {
            if self.status() == want {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("container never became {want}, is {}", self.status());
    }
    /// A path in the bundle dir visible inside the container at /out (bind mount).
    pub fn share_out(&mut self) -> PathBuf {
        let host = self.path().join("out");
        std::fs::create_dir_all(&host).unwrap();
        self.config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/out", "type": "bind", "source": host, "options": ["rbind", "rw"]}));
        host
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = Command::new(runtime())
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "--force", &self.id])
            .stderr(Stdio::null())
            .status();
    }
}

pub fn host_ns(name: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into()
}

/// Every cgroup directory named `id` under /sys/fs/cgroup (there must be none after delete).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let out = Command::new("find")
        .args([
            "/sys/fs/cgroup",
            "-maxdepth",
            "6",
            "-type",
            "d",
            "-name",
            id,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect()
}

/// Compiles tests/common/NAME.c (static) once per test binary; the binary's path.
fn static_c(name: &'static str) -> PathBuf {
    static BINS: std::sync::Mutex<Vec<(&str, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut bins = BINS.lock().unwrap();
    if let Some((_, p)) = bins.iter().find(|(n, _)| *n == name) {
        return p.clone();
    }
    // Named after the source's hash and shared by test runs, so none leaves a copy behind;
    // built under a private name and renamed, so concurrent test binaries never see half a file.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/common/{name}.c"));
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&std::fs::read(&src).unwrap(), &mut h);
    let out = std::env::temp_dir().join(format!(
        "berth-{name}-{:016x}",
        std::hash::Hasher::finish(&h)
    ));
    if !out.exists() {
        let tmp = out.with_extension(std::process::id().to_string());
        let st = Command::new("gcc")
            .args(["-static", "-pthread", "-O2", "-o"])
            .arg(&tmp)
            .arg(&src)
            .status()
            .expect("gcc is required for the test probes (apt-get install gcc libc6-dev)");
        assert!(st.success(), "compiling {} failed", src.display());
        std::fs::rename(&tmp, &out).unwrap();
    }
    bins.push((name, out.clone()));
    out
}

/// Copies tests/common/probe.c, built static, into the bundle as /bin/probe: it prints the
/// process's scheduling, I/O priority, CPU affinity, personality and memory policy as
/// key=value lines, read with the syscalls that report them.
pub fn install_probe(b: &Bundle) {
    std::fs::copy(static_c("probe"), b.rootfs().join("bin/probe")).unwrap();
}

/// Copies tests/common/sysprobe.c, built static, into the bundle as /bin/sysprobe: it makes
/// one raw system call (`sysprobe NR ARGS…`) and prints its result or errno.
pub fn install_sysprobe(b: &Bundle) {
    std::fs::copy(static_c("sysprobe"), b.rootfs().join("bin/sysprobe")).unwrap();
}

/// key=value lines of the probe's output.
pub fn probe_values(out: &str) -> std::collections::HashMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}
