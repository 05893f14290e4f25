//! linux.resources applied to real cgroups, the default device rules, and `update`.
mod common;
use common::*;
use serde_json::json;

/// The container's directory for `controller` (its v1 hierarchy, or the v2 tree).
fn cg_dir(b: &Bundle, controller: &str) -> std::path::PathBuf {
    cgv::dir_of(b.pid(), controller)
}

fn cg_file(b: &Bundle, controller: &str, file: &str) -> String {
    cgv::read(b.pid(), controller, file)
}

#[test]
fn limits_are_written_and_update_changes_them() {
    let mut b = bundle(&["sleep", "100"]);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    b.config["linux"]["resources"]["pids"] = json!({"limit": 50});
    b.config["linux"]["resources"]["cpu"] =
        json!({"shares": 512, "period": 100000, "quota": 50000});
    b.create_ok();
    let pid = b.pid();
    assert_eq!(cgv::memory_limit(pid), "67108864");
    assert_eq!(cg_file(&b, "pids", "pids.max"), "50");
    cgv::assert_cpu_shares(pid, 512);
    assert_eq!(cgv::cpu_quota_period(pid).0, "50000");
    b.ok(&["start", &b.id]);
    b.ok(&["update", "--memory", "128m", "--pids-limit", "60", &b.id]);
    assert_eq!(cgv::memory_limit(pid), "134217728");
    assert_eq!(cg_file(&b, "pids", "pids.max"), "60");
    let mut c = b.cmd(&["update", "--resources", "-", &b.id]);
    c.stdin(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"cpu": {"shares": 256}}"#)
        .unwrap();
    assert!(child.wait().unwrap().success());
    cgv::assert_cpu_shares(pid, 256);
    // The update did not touch the device rules (v2 has no file to read them back from).
    if !cgv::v2_only() {
        assert!(cg_file(&b, "devices", "devices.list").contains("c 1:3 rwm"));
    }
}

#[test]
fn fork_bomb_stops_at_pids_limit() {
    let mut b = bundle(&["sleep", "100"]);
    b.config["linux"]["resources"]["pids"] = json!({"limit": 10});
    b.create_ok();
    b.ok(&["start", &b.id]);
    // The bomb runs beside the init: busybox sh gives up at the first refused fork.
    let _ = b.detached(&[
        "exec",
        &b.id,
        "sh",
        "-c",
        "while true; do sleep 30 & done 2>/dev/null",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    // busybox sh exits when a fork fails, so read the cgroup itself, not through the init.
    let dir = cgv::dir_of(b.pid(), "pids");
    let rd = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    let n: i32 = rd("pids.current").parse().unwrap();
    assert!((8..=10).contains(&n), "{n} processes with pids.limit 10");
    let refused: i64 = rd("pids.events")
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(refused > 0, "no fork was refused");
}

/// /dev/fuse (c 10:229) opens for root without any capability and outside the default
/// allow list, so only the device cgroup can refuse it (unlike /dev/kmsg, which
/// kernel.dmesg_restrict refuses anyway). The allowed run is the positive control.
#[test]
fn device_outside_the_allow_list_cannot_be_opened() {
    if !std::path::Path::new("/dev/fuse").exists() {
        eprintln!("no /dev/fuse on this host (fuse module not loaded): skipped");
        return;
    }
    let run = |allow: bool| {
        let mut b = bundle(&[
            "sh",
            "-c",
            "(exec 3<>/dev/fuse) 2>/dev/null && echo fuse-open || echo fuse-denied; head -c1 /dev/zero | wc -c",
        ]);
        b.config["linux"]["devices"] =
            json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}]);
        let mut rules = vec![json!({"allow": false, "access": "rwm"})];
        if allow {
            rules.push(
                json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}),
            );
        }
        b.config["linux"]["resources"]["devices"] = json!(rules);
        b.run_ok()
    };
    let out = run(false);
    assert!(out.contains("fuse-denied"), "{out}");
    assert!(
        out.trim().ends_with('1'),
        "default device /dev/zero not usable: {out}"
    );
    let out = run(true);
    assert!(out.contains("fuse-open"), "allowed device refused: {out}");
}

#[test]
fn update_of_stopped_container_and_bad_values_fail() {
    let b = bundle(&["true"]);
    b.create_ok();
    b.ok(&["kill", &b.id, "KILL"]);
    b.wait_status("stopped");
    let o = b.rt(&["update", "--pids-limit", "5", &b.id]);
    assert!(!o.status.success());
    if is_berth() {
        assert!(String::from_utf8_lossy(&o.stderr).contains("stopped"));
    }
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    let o = b.rt(&["update", "--cpuset-cpus", "99", &b.id]);
    assert!(!o.status.success(), "a cpuset the host lacks was accepted");
    if is_berth() {
        assert!(String::from_utf8_lossy(&o.stderr).contains("linux.resources.cpu.cpus"));
    }
    // A negative value other than -1, and a block device the host does not have: berth
    // refuses both up front. runc 1.1 passes -5 on (the kernel takes any negative quota as
    // unlimited), and its update ignores throttle devices in --resources, so both succeed.
    let o = b.rt(&["update", "--cpu-quota", "-5", &b.id]);
    let f = b.path().join("bad.json");
    std::fs::write(
        &f,
        r#"{"blockIO": {"throttleReadBpsDevice": [{"major": 4095, "minor": 4095, "rate": 1}]}}"#,
    )
    .unwrap();
    let o2 = b.rt(&["update", "--resources", f.to_str().unwrap(), &b.id]);
    if is_berth() {
        assert!(!o.status.success(), "a quota of -5 was accepted");
        assert!(!o2.status.success(), "an unknown block device was accepted");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("linux.resources.cpu.quota"), "{e}");
        let e = String::from_utf8_lossy(&o2.stderr);
        assert!(
            e.contains("linux.resources.blockIO.throttleReadBpsDevice[0]"),
            "{e}"
        );
    }
}

/// A failed update leaves the container as it was: a bad cpuset is refused before anything
/// is written, and a value only the kernel refuses (a CFS quota under 1 ms) undoes the
/// memory write made before it.
#[test]
fn failed_update_leaves_the_container_as_it_was() {
    let mut b = bundle(&["sleep", "100"]);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    b.create_ok();
    let o = b.rt(&["update", "--memory", "128m", "--cpuset-cpus", "99", &b.id]);
    assert!(!o.status.success(), "a cpuset the host lacks was accepted");
    let pid = b.pid();
    assert_eq!(cgv::memory_limit(pid), "67108864");
    if is_berth() {
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(e.trim().lines().count(), 1, "not one line: {e}");
        assert!(e.contains("linux.resources.cpu.cpus"), "{e}");
    }
    let quota = cgv::cpu_quota_period(pid);
    let o = b.rt(&["update", "--memory", "100m", "--cpu-quota", "500", &b.id]);
    assert!(!o.status.success(), "a 500 us CFS quota was accepted");
    assert_eq!(cgv::cpu_quota_period(pid), quota);
    // runc 1.1 writes memory before cpu and does not undo it.
    if is_berth() {
        assert_eq!(cgv::memory_limit(pid), "67108864");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("linux.resources.cpu.quota"), "{e}");
    }
}

/// v1 keeps memory.limit <= memory.memsw.limit at every write: raising both past the old
/// memsw needs memsw written first (runc orders them so; berth wrote the limit first).
#[test]
fn raising_memory_and_swap_above_the_old_swap_works() {
    if !std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        eprintln!("no swap accounting (memory.memsw.*) on this host: skipped");
        return;
    }
    let mut b = bundle(&["sleep", "100"]);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 67108864, "swap": 134217728});
    b.create_ok();
    b.ok(&["update", "--memory", "256m", "--memory-swap", "512m", &b.id]);
    assert_eq!(cg_file(&b, "memory", "memory.limit_in_bytes"), "268435456");
    assert_eq!(
        cg_file(&b, "memory", "memory.memsw.limit_in_bytes"),
        "536870912"
    );
    // And back down: the limit goes first then.
    b.ok(&["update", "--memory", "32m", "--memory-swap", "64m", &b.id]);
    assert_eq!(cg_file(&b, "memory", "memory.limit_in_bytes"), "33554432");
    assert_eq!(
        cg_file(&b, "memory", "memory.memsw.limit_in_bytes"),
        "67108864"
    );
}

/// runc's update flags not covered above, and --resources FILE.
#[test]
fn update_flags_reach_the_cgroup_files() {
    let mut b = bundle(&["sleep", "100"]);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 67108864, "swap": 134217728});
    b.create_ok();
    b.ok(&["start", &b.id]);
    let id = b.id.clone();
    let pid = b.pid();
    if cgv::v2_only() {
        // v2 keeps swap apart from memory: memory.swap.max = swap - limit.
        if cg_dir(&b, "memory").join("memory.swap.max").exists() {
            b.ok(&["update", "--memory-swap", "256m", &id]);
            assert_eq!(cg_file(&b, "memory", "memory.swap.max"), "201326592");
        }
    } else if std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        b.ok(&["update", "--memory-swap", "256m", &id]);
        assert_eq!(
            cg_file(&b, "memory", "memory.memsw.limit_in_bytes"),
            "268435456"
        );
    }
    // runc spells it --cpu-share; berth takes both.
    let shares = if is_berth() {
        "--cpu-shares"
    } else {
        "--cpu-share"
    };
    b.ok(&["update", shares, "300", &id]);
    cgv::assert_cpu_shares(pid, 300);
    b.ok(&[
        "update",
        "--cpu-period",
        "200000",
        "--cpu-quota",
        "100000",
        &id,
    ]);
    assert_eq!(
        cgv::cpu_quota_period(pid),
        ("100000".into(), "200000".into())
    );
    b.ok(&["update", "--cpu-quota", "-1", &id]);
    assert_eq!(cgv::cpu_quota_period(pid).0, "-1");
    // v2's cpuset.mems is empty until set (the parent's apply): read the effective set.
    let mems = if cgv::v2_only() {
        cg_file(&b, "cpuset", "cpuset.mems.effective")
    } else {
        cg_file(&b, "cpuset", "cpuset.mems")
    };
    let first_mem = mems.split([',', '-']).next().unwrap().to_string();
    b.ok(&["update", "--cpuset-mems", &first_mem, &id]);
    assert_eq!(cg_file(&b, "cpuset", "cpuset.mems"), first_mem);
    b.ok(&["update", "--cpuset-cpus", "0", &id]);
    assert_eq!(cg_file(&b, "cpuset", "cpuset.cpus"), "0");
    let f = b.path().join("resources.json");
    std::fs::write(
        &f,
        r#"{"pids": {"limit": 33}, "memory": {"reservation": 33554432}}"#,
    )
    .unwrap();
    b.ok(&["update", "--resources", f.to_str().unwrap(), &id]);
    assert_eq!(cg_file(&b, "pids", "pids.max"), "33");
    assert_eq!(cgv::memory_reservation(pid), "33554432");
    if cgv::v2_only() {
        return blkio_weight_v2(&b);
    }
    // CFQ's blkio.weight is gone from current kernels; BFQ's file takes its place.
    let blkio = cg_dir(&b, "blkio");
    let Some(wf) = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| blkio.join(f).exists())
    else {
        eprintln!("no blkio.weight or blkio.bfq.weight (no CFQ/BFQ): --blkio-weight skipped");
        return;
    };
    b.ok(&["update", "--blkio-weight", "300", &id]);
    let v = cg_file(&b, "blkio", wf);
    assert!(v == "300" || v.contains("default 300"), "{wf}: {v}");
}

/// --blkio-weight on v2: BFQ's io.bfq.weight takes blkio's own value, iocost's io.weight
/// runc's conversion of it (10..1000 to 1..10000).
fn blkio_weight_v2(b: &Bundle) {
    let dir = cg_dir(b, "io");
    let Some((wf, want)) = [("io.bfq.weight", "300"), ("io.weight", "2930")]
        .into_iter()
        .find(|(f, _)| dir.join(f).exists())
    else {
        eprintln!("no io.bfq.weight or io.weight (io controller off): --blkio-weight skipped");
        return;
    };
    b.ok(&["update", "--blkio-weight", "300", &b.id]);
    let v = cg_file(b, "io", wf);
    assert!(
        v == want || v.contains(&format!("default {want}")),
        "{wf}: {v}"
    );
}

/// hugepageLimits: on this hybrid host hugetlb lives only in the cgroup2 tree (berth enables
/// it in the parent's subtree_control, as runc's v2 manager does); runc 1.1's v1 manager
/// cannot reach it there, so the checks are berth's.
#[test]
fn hugepage_limits_are_written() {
    if !std::path::Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
        eprintln!("no 2 MB huge pages in this kernel: skipped");
        return;
    }
    let mut b = bundle(&["sleep", "100"]);
    b.config["linux"]["resources"]["hugepageLimits"] =
        json!([{"pageSize": "2MB", "limit": 4194304}]);
    let o = b.create();
    if !is_berth() {
        return;
    }
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let f = cgroup_dirs(&b.id)
        .into_iter()
        .flat_map(|d| {
            [
                d.join("hugetlb.2MB.max"),
                d.join("hugetlb.2MB.limit_in_bytes"),
            ]
        })
        .find(|f| f.exists())
        .expect("a hugetlb limit file in the container's cgroup");
    assert_eq!(std::fs::read_to_string(&f).unwrap().trim(), "4194304");
    let mut bad = bundle(&["true"]);
    bad.config["linux"]["resources"]["hugepageLimits"] =
        json!([{"pageSize": "3MB", "limit": 4194304}]);
    let o = bad.create();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("hugepageLimits[0]"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// On a cgroup v2 host device rules are an eBPF program on the container's cgroup. This host is
/// v1, so berth runs in a private mount namespace whose /sys/fs/cgroup is the cgroup2 tree only
/// (what a v2-only host shows); the device hook follows a task's v2 cgroup on any host.
#[test]
fn v2_device_program_denies_what_the_rules_do_not_allow() {
    if !is_berth() {
        return; // runc 1.1 on this layout would still use its v1 path
    }
    let run = |allow: bool| {
        let mut b = bundle(&[
            "sh",
            "-c",
            "head -c1 /dev/zero >/dev/null && echo zero-ok; (exec 3</dev/fuse) 2>/dev/null && echo fuse-open || echo fuse-denied; cat /proc/self/cgroup",
        ]);
        b.config["linux"]["devices"] =
            json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}]);
        if allow {
            b.config["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}]);
        }
        b.write();
        let script = format!(
            "umount -R /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec {} --root {} run --bundle {} {}",
            runtime(),
            b.root.display(),
            b.path().display(),
            b.id
        );
        let o = std::process::Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{out} {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(cgroup_dirs(&b.id).is_empty(), "cgroup left behind");
        out
    };
    let out = run(false);
    assert!(
        out.contains("zero-ok") && out.contains("fuse-denied"),
        "{out}"
    );
    let out = run(true);
    assert!(
        out.contains("zero-ok") && out.contains("fuse-open"),
        "{out}"
    );
}

/// Removes a sub-cgroup the test made, even when the test fails.
struct SubCgroup(std::path::PathBuf);
impl Drop for SubCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// `update` with device rules takes the v1 devices cgroup there by a transition, as runc's
/// device emulator computes it: a deny-all that is already in force is not written again
/// (the kernel refuses `a` with EINVAL while the cgroup has children, which a container
/// running systemd or its own sub-cgroups has), and an unchanged exception is left alone.
#[test]
fn update_device_rules_with_a_sub_cgroup_writes_only_the_transition() {
    if cgv::v2_only() {
        eprintln!("skipped: v2 has no devices.list (its device rules are an eBPF program)");
        return;
    }
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    let dir = cg_dir(&b, "devices");
    let sub = SubCgroup(dir.join("rtfix-sub"));
    std::fs::create_dir(&sub.0).unwrap();
    let rules = json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"},
        {"allow": false, "type": "c", "major": 4, "minor": 7, "access": "rwm"},
        {"allow": true, "type": "b", "major": 7, "minor": 0, "access": "r"}
    ]});
    let file = b.path().join("rtfix-devices.json");
    std::fs::write(&file, rules.to_string()).unwrap();
    // runc 1.1.5 accepts it too (its update leaves device rules as they are: measured).
    b.ok(&["update", "--resources", file.to_str().unwrap(), &b.id]);
    if !is_berth() {
        return;
    }
    let list = cg_file(&b, "devices", "devices.list");
    assert!(list.lines().any(|l| l == "b 7:0 r"), "{list}");
    // The defaults come after the config's rules, so c 1:3 keeps rwm.
    assert!(list.lines().any(|l| l == "c 1:3 rwm"), "{list}");
    assert!(!list.contains("a *:*"), "{list}");
    // Back to the create-time rules: the added exception goes, nothing else is touched.
    std::fs::write(&file, r#"{"devices": [{"allow": false, "access": "rwm"}]}"#).unwrap();
    b.ok(&["update", "--resources", file.to_str().unwrap(), &b.id]);
    let now = cg_file(&b, "devices", "devices.list");
    assert!(!now.contains("b 7:0"), "{now}");
    assert_eq!(now.lines().count(), list.lines().count() - 1, "{now}");
}

/// `update --memory-swap -1` (a negative number as its own argument) and `kill ID 0` (an
/// existence check that sends nothing) work as with runc 1.1.5 (measured: both exit 0).
#[test]
fn negative_update_values_and_signal_zero() {
    let mut b = bundle(&["sleep", "100"]);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 67108864, "swap": 134217728});
    b.create_ok();
    b.ok(&["start", &b.id]);
    b.ok(&["update", "--memory-swap", "-1", &b.id]);
    // Unlimited. v1: memsw is the kernel's largest page-aligned value, far above the old
    // 128 MiB; v2 (swap kept apart, runc's conversion): memory.swap.max is "max".
    let v1 = "memory.memsw.limit_in_bytes";
    if cgv::v2_only() && cg_dir(&b, "memory").join("memory.swap.max").exists() {
        assert_eq!(cg_file(&b, "memory", "memory.swap.max"), "max");
    } else if !cgv::v2_only() && cg_dir(&b, "memory").join(v1).exists() {
        let memsw = cg_file(&b, "memory", v1);
        assert!(memsw.parse::<u64>().unwrap() > 1 << 40, "{memsw}");
    } else {
        eprintln!("no swap accounting on this host: the unlimited swap check skipped");
    }
    b.ok(&["kill", &b.id, "0"]);
    assert_eq!(b.status(), "running");
}
