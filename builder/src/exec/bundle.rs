//! The OCI runtime bundle of a RUN step: config.json next to the overlay rootfs.

use crate::error::{Error, IoContext, Result};
use berth_common::inroot::Root;
use serde_json::json;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// New network namespace (`--network=none`) instead of the host's.
    pub network_none: bool,
    pub hostname: String,
    /// More OCI mounts (RUN --mount), appended after the standard ones.
    pub extra_mounts: Vec<serde_json::Value>,
}

/// Host files bind-mounted into networked RUN steps.
pub const NAME_FILES: [&str; 2] = ["/etc/resolv.conf", "/etc/hosts"];

pub const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// /sys: sysfs, except in a rootless build on the host's network, where the kernel
/// refuses sysfs (the network namespace is not ours) and the host's is bound read-only,
/// as rootless podman does.
fn sys_mount(network_none: bool) -> serde_json::Value {
    if crate::rootless::in_userns() && !network_none {
        return json!({"destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
    }
    json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]})
}

/// Write `bundle/config.json` for running `p` in `rootfs`.
pub fn write_config(bundle: &Path, rootfs: &Path, p: &ProcessSpec) -> Result<()> {
    let mut ns = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if p.network_none {
        ns.push(json!({"type": "network"}));
    }
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        sys_mount(p.network_none),
    ];
    // The host's name resolution for networked steps. Where the image lacks the file,
    // the runtime creates an empty mount point, which the builder removes afterwards
    // (see NAME_FILES); a symlink in the image is left alone.
    // Probed in the rootfs's own root: an image's /etc -> /host/dir is the image's /host/dir.
    if !p.network_none {
        let root = Root::open(rootfs)?;
        for f in NAME_FILES {
            let inside = Path::new(f);
            let usable = match root.lstat(inside) {
                Ok(Some(st)) => st.is_file(),
                Ok(None) => !inside
                    .parent()
                    .is_some_and(|d| matches!(root.lstat(d), Ok(Some(st)) if st.is_symlink())),
                Err(_) => false,
            };
            if Path::new(f).is_file() && usable {
                mounts.push(json!({"destination": f, "type": "bind", "source": f, "options": ["rbind", "ro"]}));
            }
        }
    }
    mounts.extend(p.extra_mounts.iter().cloned());
    let caps: Vec<&str> = CAPS.to_vec();
    let cfg = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": p.uid, "gid": p.gid, "additionalGids": p.additional_gids},
            "args": p.args,
            "env": p.env,
            "cwd": p.cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": false
        },
        "root": {"path": rootfs, "readonly": false},
        "hostname": p.hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": ns,
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    let path = bundle.join("config.json");
    let data = serde_json::to_vec_pretty(&cfg).map_err(|e| Error::Build(e.to_string()))?;
    std::fs::write(&path, data).at(&path)
}
