//! `berth spec` (a runc-compatible default config.json) and `berth features` (the
//! runtime-spec features document: what this build and kernel support).

use serde_json::{json, Value};

pub fn default_spec(rootless: bool) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut spec = json!({
        "ociVersion": crate::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if rootless {
        make_rootless(&mut spec);
    }
    if !unified_host() {
        // As runc's spec: a cgroup namespace only on a cgroup2 host. On v1 the container's
        // /sys/fs/cgroup binds show its own cgroups without one, and a user adding one to
        // the generated config must not get "duplicate cgroup namespace".
        let ns = spec["linux"]["namespaces"].as_array_mut();
        ns.into_iter()
            .for_each(|v| v.retain(|n| n["type"] != "cgroup"));
    }
    spec
}

/// runc's IsCgroup2UnifiedMode: /sys/fs/cgroup is a cgroup2 mount.
fn unified_host() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// What rootless runc's spec changes: a user namespace mapping the caller to root, no
/// network namespace of its own needed for sysfs (bind instead), no cgroup limits.
fn make_rootless(spec: &mut Value) {
    let (uid, gid) = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    );
    let linux = &mut spec["linux"];
    let mut uids = vec![json!({"containerID": 0, "hostID": uid, "size": 1})];
    let mut gids = vec![json!({"containerID": 0, "hostID": gid, "size": 1})];
    // The user's subordinate ranges become ids 1..N, so images with files of other owners work.
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten();
    let name = user.map(|u| u.name).unwrap_or_default();
    for (kind, own, maps) in [("uid", uid, &mut uids), ("gid", gid, &mut gids)] {
        if let Some((start, n)) = crate::rootless::subordinate(kind, &name, own) {
            maps.push(json!({"containerID": 1, "hostID": start, "size": n}));
        }
    }
    linux["uidMappings"] = json!(uids);
    linux["gidMappings"] = json!(gids);
    linux["namespaces"] = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}, {"type": "user"}]);
    linux.as_object_mut().map(|l| l.remove("resources"));
    let mounts = spec["mounts"].as_array_mut().expect("mounts is an array");
    mounts.retain(|m| m["type"] != "cgroup");
    for m in mounts.iter_mut() {
        if m["type"] == "sysfs" {
            *m = json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
        }
        // mqueue stays a mount of its own: the new IPC namespace belongs to the container's
        // user namespace, so the user may mount it (rootless runc binds the host's /dev/mqueue,
        // which not every host has).
        if m["type"] == "devpts" {
            m["options"] = json!([
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620"
            ]);
        }
    }
}

/// Whether the running kernel knows a syscall (ENOSYS otherwise). Called with invalid
/// arguments, so a syscall that exists fails with EBADF/EINVAL and changes nothing.
fn kernel_has_syscall(nr: libc::c_long) -> bool {
    // SAFETY: fd -1 and null pointers: the kernel rejects the call before acting.
    let r = unsafe { libc::syscall(nr, -1, std::ptr::null::<u8>(), 0, std::ptr::null::<u8>(), 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
}

/// The namespaces of the runtime-spec this kernel has (a /proc/self/ns entry each).
fn namespaces() -> Vec<&'static str> {
    let all = [
        ("cgroup", "cgroup"),
        ("ipc", "ipc"),
        ("mount", "mnt"),
        ("network", "net"),
        ("pid", "pid"),
        ("time", "time"),
        ("user", "user"),
        ("uts", "uts"),
    ];
    all.iter()
        .filter(|(_, f)| std::path::Path::new("/proc/self/ns").join(f).exists())
        .map(|(n, _)| *n)
        .collect()
}

/// Mount options that work here: the recursive ones and idmap need mount_setattr(2).
fn mount_options(setattr: bool) -> Vec<&'static str> {
    let mut all = crate::rootfs::options::known();
    if !setattr {
        all.retain(|o| !crate::rootfs::options::needs_setattr(o));
    }
    all
}

pub fn features() -> Value {
    let hooks = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ];
    let setattr = kernel_has_syscall(libc::SYS_mount_setattr);
    let (mpol_modes, mpol_flags) = crate::process::persona::supported_memory_policy();
    // Moving a device needs CAP_NET_ADMIN in the host's network namespace: root only.
    let net_devices = !crate::rootless::is_rootless();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::OCI_VERSION_MAX,
        "hooks": hooks,
        "mountOptions": mount_options(setattr),
        "linux": {
            "namespaces": namespaces(),
            "capabilities": crate::security::caps::known_names(),
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": true, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
            },
            // As runc: support is built in (the spec's meaning of `enabled`); whether this
            // host has the LSM is in the annotations below.
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            // No resctrl support: a config with linux.intelRdt is refused at create.
            "intelRdt": {"enabled": false, "schemata": false, "monitoring": false},
            "mountExtensions": {"idmap": {"enabled": setattr}},
            "netDevices": {"enabled": net_devices},
            "memoryPolicy": {"modes": mpol_modes, "flags": mpol_flags}
        },
        "annotations": {
            // runtime-spec's features document has no fields for these process settings yet.
            "io.github.berth.process.scheduler": "SCHED_OTHER,SCHED_FIFO,SCHED_RR,SCHED_BATCH,SCHED_IDLE,SCHED_DEADLINE",
            "io.github.berth.process.ioPriority": "IOPRIO_CLASS_RT,IOPRIO_CLASS_BE,IOPRIO_CLASS_IDLE",
            "io.github.berth.process.execCPUAffinity": "true",
            "io.github.berth.linux.personality": format!("LINUX,LINUX32;flags={}", crate::process::persona::personality_flag_names().join(",")),
            "io.github.berth.linux.timeOffsets": "monotonic,boottime",
            "io.github.berth.linux.apparmor.hostEnabled": crate::security::lsm::apparmor_enabled().to_string(),
            "io.github.berth.linux.selinux.hostEnabled": crate::security::lsm::selinux_enabled().to_string(),
            "io.github.berth.version": env!("CARGO_PKG_VERSION")
        }
    })
}
