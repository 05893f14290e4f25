//! Bundles: a template rootfs (static busybox + the probe) copied per case, and the
//! baseline config.json every case starts from (runc's default spec, terminal false).

use crate::error::{io, Error, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the probe lives inside every rootfs.
pub const PROBE_IN_ROOTFS: &str = "/berth-probe";

/// The busybox-static binary the rootfs is made from.
pub const BUSYBOX: &str = "/bin/busybox";

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .map_err(|e| Error::Bundle(format!("{cmd:?}: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Bundle(format!("{cmd:?}: {}", err.trim())));
    }
    Ok(())
}

/// Build the template rootfs once: /bin/busybox with its applets, the probe at /berth-probe
/// (plus its shared libraries when it is not a static binary), and the usual empty dirs.
pub fn make_template(dir: &Path, probe: &Path) -> Result<()> {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).map_err(io(&bin))?;
    if !Path::new(BUSYBOX).exists() {
        return Err(Error::Bundle(format!(
            "{BUSYBOX} missing: install the busybox-static package"
        )));
    }
    std::fs::copy(BUSYBOX, bin.join("busybox")).map_err(io(BUSYBOX))?;
    run(Command::new("chroot")
        .arg(dir)
        .args(["/bin/busybox", "--install", "-s", "/bin"]))?;
    for d in ["proc", "sys", "dev", "tmp", "etc", "root", "mnt"] {
        let p = dir.join(d);
        std::fs::create_dir_all(&p).map_err(io(&p))?;
    }
    run(Command::new("chmod").arg("1777").arg(dir.join("tmp")))?;
    let passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n";
    std::fs::write(dir.join("etc/passwd"), passwd).map_err(io(dir.join("etc/passwd")))?;
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")
        .map_err(io(dir.join("etc/group")))?;
    let target = dir.join(PROBE_IN_ROOTFS.trim_start_matches('/'));
    std::fs::copy(probe, &target).map_err(io(probe))?;
    copy_shared_libs(probe, dir)
}

/// If the probe is dynamically linked, copy what `ldd` lists into the rootfs at the same
/// paths, so that the glibc build works without a musl target. A static probe needs nothing.
fn copy_shared_libs(probe: &Path, root: &Path) -> Result<()> {
    let out = Command::new("ldd").arg(probe).output();
    let Ok(out) = out else { return Ok(()) };
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        let path = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(PathBuf::from);
        let Some(path) = path else { continue };
        let dest = root.join(path.strip_prefix("/").unwrap_or(&path));
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let real = std::fs::canonicalize(&path).map_err(io(&path))?;
        std::fs::copy(&real, &dest).map_err(io(&real))?;
    }
    Ok(())
}

/// A bundle directory for one case run.
#[derive(Debug)]
pub struct Bundle {
    pub dir: PathBuf,
}

impl Bundle {
    /// Copy the template rootfs into `dir/rootfs`.
    pub fn new(dir: PathBuf, template: &Path) -> Result<Self> {
        if dir.exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        run(Command::new("chmod").arg("755").arg(&dir))?;
        run(Command::new("cp")
            .arg("-a")
            .arg(template)
            .arg(dir.join("rootfs")))?;
        Ok(Self { dir })
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn write_config(&self, config: &Value) -> Result<()> {
        let p = self.dir.join("config.json");
        let text = serde_json::to_string_pretty(config).map_err(|source| Error::Json {
            what: "config.json".into(),
            source,
        })?;
        std::fs::write(&p, text).map_err(io(&p))
    }

    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// runc 1.1's `runc spec` output with terminal false, the probe as the process, and an
/// explicit cgroupsPath so cgroup cases can find the container's cgroup.
pub fn baseline(id: &str) -> Value {
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": [PROBE_IN_ROOTFS, "report"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "runc",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "cgroupsPath": format!("/berth-conformance/{id}"),
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}
