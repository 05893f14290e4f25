//! The runtime-spec 1.2/1.3 features runc 1.1 lacks: process.scheduler, process.ioPriority,
//! process.execCPUAffinity, linux.personality, linux.memoryPolicy, timeOffsets for exec,
//! linux.intelRdt's error. Each test reads the effect back inside a real container with
//! tests/common/probe.c (sched_getattr, ioprio_get, sched_getaffinity, personality,
//! get_mempolicy), and bad input must fail with one line naming the field, leaving no state.
//!
//! runc 1.1 (RUNTIME=/usr/sbin/runc) silently ignores all of these fields, so the effect tests
//! are berth-only: they return early under runc, with nothing to compare against.
mod common;
use common::*;
use serde_json::{json, Value};

/// A bundle running the probe, with `edit` applied to its config; returns the probe's values.
fn probe_run(edit: impl FnOnce(&mut Value)) -> std::collections::HashMap<String, String> {
    let mut b = bundle(&["/bin/probe"]);
    install_probe(&b);
    edit(&mut b.config);
    probe_values(&b.run_ok())
}

/// `create` must fail naming `field`, and leave no container behind.
fn create_fails_naming(edit: impl FnOnce(&mut Value), field: &str) {
    let mut b = bundle(&["true"]);
    edit(&mut b.config);
    let o = b.create();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "create succeeded; expected an error on {field}"
    );
    assert!(err.contains(field), "error does not name {field}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert_eq!(b.status(), "gone", "a failed create left state behind");
    assert_eq!(
        cgroup_dirs(&b.id),
        Vec::<std::path::PathBuf>::new(),
        "cgroups left"
    );
}

fn running(args: &[&str], edit: impl FnOnce(&mut Value)) -> Bundle {
    let mut b = bundle(args);
    install_probe(&b);
    edit(&mut b.config);
    b.create_ok();
    b.ok(&["start", &b.id]);
    b
}

/// `exec --process FILE` of the probe with `edit` applied to the container's process.
fn exec_probe(
    b: &Bundle,
    edit: impl FnOnce(&mut Value),
) -> std::collections::HashMap<String, String> {
    let mut p = b.config["process"].clone();
    p["args"] = json!(["/bin/probe"]);
    edit(&mut p);
    let f = b.path().join("process.json");
    std::fs::write(&f, p.to_string()).unwrap();
    probe_values(&b.ok(&["exec", "--process", f.to_str().unwrap(), &b.id]))
}

#[test]
fn scheduler_batch_with_nice_and_reset_on_fork() {
    if !is_berth() {
        return; // runc 1.1 ignores process.scheduler (added in runc 1.2)
    }
    let v = probe_run(|c| {
        // The spec's flag name (oci-spec 0.10 spells it SCHED_RESET_ON_FORK): both accepted.
        c["process"]["scheduler"] =
            json!({"policy": "SCHED_BATCH", "nice": 5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]});
    });
    assert_eq!(v["sched.policy"], "3", "{v:?}"); // SCHED_BATCH
    assert_eq!(v["sched.nice"], "5", "{v:?}");
    assert_eq!(v["sched.flags"].parse::<u64>().unwrap() & 1, 1, "{v:?}");
}

#[test]
fn scheduler_fifo_priority_and_idle() {
    if !is_berth() {
        return; // runc 1.1 ignores process.scheduler
    }
    let v = probe_run(|c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_FIFO", "priority": 10});
        rt_budget(c);
    });
    assert_eq!(
        (v["sched.policy"].as_str(), v["sched.priority"].as_str()),
        ("1", "10"),
        "{v:?}"
    );
    let v = probe_run(|c| c["process"]["scheduler"] = json!({"policy": "SCHED_IDLE"}));
    assert_eq!(v["sched.policy"], "5", "{v:?}");
}

#[test]
fn scheduler_deadline_reads_back() {
    if !is_berth() {
        return; // runc 1.1 ignores process.scheduler
    }
    // 1 ms of every 100 ms, due within 50 ms (sched_setattr takes nanoseconds).
    let v = probe_run(|c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_DEADLINE",
            "runtime": 1_000_000, "deadline": 50_000_000, "period": 100_000_000});
    });
    assert_eq!(v["sched.policy"], "6", "{v:?}"); // SCHED_DEADLINE
    assert_eq!(
        (
            v["sched.runtime"].as_str(),
            v["sched.deadline"].as_str(),
            v["sched.period"].as_str()
        ),
        ("1000000", "50000000", "100000000"),
        "{v:?}"
    );
}

#[test]
fn scheduler_and_memory_policy_in_an_exec_process() {
    if !is_berth() {
        return; // runc 1.1 ignores process.scheduler and linux.memoryPolicy
    }
    // berth forks the exec'd process from itself, on the host's defaults: what the probe
    // reads was set for it, not inherited from the container's init.
    let b = running(&["sleep", "100"], |c| {
        c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    });
    let v = exec_probe(&b, |p| {
        p["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
    });
    assert_eq!(
        (v["sched.policy"].as_str(), v["sched.nice"].as_str()),
        ("3", "7"),
        "{v:?}"
    );
    assert_eq!(
        (v["mempolicy.mode"].as_str(), v["mempolicy.nodes"].as_str()),
        ("2", "1"),
        "{v:?}"
    );
}

/// On a cgroup v1 host with RT group scheduling (this one) a new cpu cgroup has no realtime
/// budget and sched_setattr(SCHED_FIFO) fails with EPERM, under runc as well: give the
/// container a top-level cgroup (the root has budget to share) and a realtimeRuntime.
fn rt_budget(c: &mut Value) {
    if std::path::Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists() {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        c["linux"]["cgroupsPath"] = json!(format!("/berth-rt{}-{n}", std::process::id()));
        c["linux"]["resources"]["cpu"] =
            json!({"realtimeRuntime": 10000, "realtimePeriod": 1000000});
    }
}

#[test]
fn scheduler_fifo_without_rt_budget_explains() {
    if !is_berth() || !std::path::Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists() {
        return; // runc 1.1 ignores process.scheduler; hosts without RT group scheduling allow it
    }
    let mut b = bundle(&["true"]);
    b.config["process"]["scheduler"] = json!({"policy": "SCHED_RR", "priority": 3});
    let (code, _, err) = b.run();
    assert_ne!(code, 0);
    assert!(
        err.contains("process.scheduler") && err.contains("realtimeRuntime"),
        "{err}"
    );
}

#[test]
fn scheduler_bad_input_names_the_field() {
    if !is_berth() {
        return; // runc 1.1 ignores process.scheduler, so it accepts any value
    }
    create_fails_naming(
        |c| c["process"]["scheduler"] = json!({"policy": "SCHED_NOPE"}),
        "process.scheduler.policy",
    );
    create_fails_naming(
        |c| c["process"]["scheduler"] = json!({"policy": "SCHED_RR"}),
        "process.scheduler.priority",
    );
    create_fails_naming(
        |c| c["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "nice": 40}),
        "process.scheduler.nice",
    );
}

#[test]
fn io_priority_classes_for_create_and_exec() {
    if !is_berth() {
        return; // runc 1.1 ignores process.ioPriority (added in runc 1.2)
    }
    let v = probe_run(|c| {
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_RT", "priority": 3})
    });
    assert_eq!(
        (v["ioprio.class"].as_str(), v["ioprio.level"].as_str()),
        ("1", "3"),
        "{v:?}"
    );
    let b = running(&["sleep", "100"], |c| {
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6})
    });
    let v = exec_probe(&b, |_| {});
    assert_eq!(
        (v["ioprio.class"].as_str(), v["ioprio.level"].as_str()),
        ("2", "6"),
        "{v:?}"
    );
    let v = exec_probe(&b, |p| {
        p["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0})
    });
    assert_eq!(v["ioprio.class"], "3", "{v:?}");
    create_fails_naming(
        |c| c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 9}),
        "process.ioPriority.priority",
    );
}

#[test]
fn personality_linux32_with_flag_in_init_and_exec() {
    if !is_berth() {
        return; // runc 1.1 ignores linux.personality (added in runc 1.2)
    }
    let pers = json!({"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]});
    let v = probe_run(|c| c["linux"]["personality"] = pers.clone());
    // PER_LINUX32 (0x8) | ADDR_NO_RANDOMIZE (0x40000)
    assert_eq!(v["personality"], (0x8 | 0x40000).to_string(), "{v:?}");
    let b = running(&["sleep", "100"], |c| c["linux"]["personality"] = pers);
    assert_eq!(b.ok(&["exec", &b.id, "uname", "-m"]).trim(), "i686");
    create_fails_naming(
        |c| c["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["NO_SUCH_FLAG"]}),
        "linux.personality",
    );
    create_fails_naming(
        |c| c["linux"]["personality"] = json!({"domain": "LINUX64"}),
        "linux.personality.domain",
    );
}

#[test]
fn exec_cpu_affinity_initial_and_final() {
    if !is_berth() {
        return; // runc 1.1 ignores process.execCPUAffinity (added in runc 1.2)
    }
    let cpus = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    if cpus.trim() == "0" {
        eprintln!("one CPU only: an affinity cannot differ from the default");
        return;
    }
    let v = probe_run(|c| c["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "1"}));
    assert_eq!(v["affinity"], "1", "{v:?}");
    // Without final, the kernel decides: since 6.2 ("sched: Always preserve the user
    // requested cpumask") the initial set, requested before the cgroup move, is kept; older
    // kernels (Debian 12's 6.1, the VM suite's guest) reset it to the cpuset's CPUs when the
    // process joins the container's cpuset cgroup. runc (1.2+) does the same for exec.
    let v = probe_run(|c| c["process"]["execCPUAffinity"] = json!({"initial": "1"}));
    let want = if kernel_at_least(6, 2) {
        "1".to_string()
    } else {
        cpu_list(cpus.trim())
    };
    assert_eq!(v["affinity"], want, "{v:?}");
    let b = running(&["sleep", "100"], |_| {});
    let v = exec_probe(&b, |p| {
        p["execCPUAffinity"] = json!({"initial": "1", "final": "0"})
    });
    assert_eq!(v["affinity"], "0", "{v:?}");
    create_fails_naming(
        |c| c["process"]["execCPUAffinity"] = json!({"final": "4095"}),
        "process.execCPUAffinity.final",
    );
}

/// Is the running kernel at least `major.minor`?
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut it = r.split(|c: char| !c.is_ascii_digit());
    let v: (u32, u32) = (
        it.next().and_then(|x| x.parse().ok()).unwrap_or(0),
        it.next().and_then(|x| x.parse().ok()).unwrap_or(0),
    );
    v >= (major, minor)
}

/// A CPU list as the kernel prints it ("0-2,4") as the probe prints one ("0,1,2,4").
fn cpu_list(ranges: &str) -> String {
    let mut cpus = vec![];
    for part in ranges.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        cpus.extend(a.parse::<u32>().unwrap()..=b.parse::<u32>().unwrap());
    }
    cpus.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `exec --process FILE` with `edit` applied to the container's process: (ok, stderr).
fn exec_process(b: &Bundle, edit: impl FnOnce(&mut Value)) -> (bool, String) {
    let mut p = b.config["process"].clone();
    p["args"] = json!(["true"]);
    edit(&mut p);
    let f = b.path().join("process-bad.json");
    std::fs::write(&f, p.to_string()).unwrap();
    let o = b.rt(&["exec", "--process", f.to_str().unwrap(), &b.id]);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

#[test]
fn exec_cpu_affinity_initial_outside_the_container_cpuset() {
    // The spec applies `initial` before the process moves into the container's cgroup and
    // `final` after. Here the container's cpuset is CPU 0 and `initial` names CPU 1. On a
    // cgroup v2 host, a process born in the cgroup (clone3 CLONE_INTO_CGROUP) could not take
    // CPU 1 (EINVAL); this test guards that order there. On this host the cpuset is v1, which
    // stage 1 joins after `initial` either way, so it shows the outcome: the cgroup's CPU 0.
    // runc 1.1 ignores execCPUAffinity and gives the cpuset's CPU 0 too, so it runs for both.
    let cpus = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    if cpus.trim() == "0" {
        eprintln!("one CPU only: initial cannot lie outside the container's cpuset");
        return;
    }
    let aff = json!({"initial": "1", "final": "0"});
    let v = probe_run(|c| {
        c["linux"]["resources"]["cpu"] = json!({"cpus": "0"});
        c["process"]["execCPUAffinity"] = aff.clone();
    });
    assert_eq!(v["affinity"], "0", "create: {v:?}");
    let b = running(&["sleep", "100"], |c| {
        c["linux"]["resources"]["cpu"] = json!({"cpus": "0"});
    });
    let v = exec_probe(&b, |p| p["execCPUAffinity"] = aff);
    assert_eq!(v["affinity"], "0", "exec: {v:?}");
}

#[test]
fn exec_cpu_affinity_initial_on_a_missing_cpu_names_the_field() {
    if !is_berth() {
        return; // runc 1.1 ignores process.execCPUAffinity
    }
    let field = "process.execCPUAffinity.initial";
    create_fails_naming(
        |c| c["process"]["execCPUAffinity"] = json!({"initial": "4095"}),
        field,
    );
    let b = running(&["sleep", "100"], |_| {});
    let (ok, err) = exec_process(&b, |p| {
        p["execCPUAffinity"] = json!({"initial": "4095", "final": "0"})
    });
    assert!(!ok, "exec succeeded");
    assert!(err.contains(field), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
}

#[test]
fn memory_policy_bind_and_interleave() {
    if !is_berth() {
        return; // runc 1.1 ignores linux.memoryPolicy (added in runc 1.3)
    }
    let v = probe_run(|c| c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"}));
    assert_eq!(
        (v["mempolicy.mode"].as_str(), v["mempolicy.nodes"].as_str()),
        ("2", "1"),
        "{v:?}"
    );
    let v = probe_run(|c| {
        c["linux"]["memoryPolicy"] =
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]})
    });
    // MPOL_INTERLEAVE (3) | MPOL_F_STATIC_NODES (1 << 15)
    assert_eq!(v["mempolicy.mode"], (3 | 1 << 15).to_string(), "{v:?}");
    create_fails_naming(
        |c| c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_SOMETIMES", "nodes": "0"}),
        "linux.memoryPolicy.mode",
    );
    create_fails_naming(
        |c| c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "63"}),
        "linux.memoryPolicy.nodes",
    );
}

#[test]
fn time_offsets_apply_to_exec_too() {
    if !is_berth() {
        return; // runc 1.1 has no time namespace
    }
    let b = running(&["sleep", "100"], |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000, "nanosecs": 0}});
    });
    let out = b.ok(&[
        "exec",
        &b.id,
        "sh",
        "-c",
        "readlink /proc/self/ns/time; cat /proc/self/timens_offsets /proc/uptime",
    ]);
    let ns = std::fs::read_link(format!("/proc/{}/ns/time", b.pid())).unwrap();
    assert_eq!(out.lines().next().unwrap(), ns.to_str().unwrap(), "{out}");
    assert!(out.contains("boottime") && out.contains("864000"), "{out}");
    // Ten days of extra boot time: /proc/uptime is read through the offset.
    let up: f64 = out
        .lines()
        .last()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(up >= 864000.0, "{out}");
}

#[test]
fn time_offsets_bad_clock_is_refused_before_create() {
    if !is_berth() {
        return; // runc 1.1 has no time namespace
    }
    let field = "linux.timeOffsets.realtime";
    create_fails_naming(
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "time"}));
            c["linux"]["timeOffsets"] = json!({"realtime": {"secs": 10, "nanosecs": 0}});
        },
        field,
    );
    // Refused by config validation ("config FILE: field: …"), not by the container's stage 1.
    let mut b = bundle(&["true"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    b.config["linux"]["timeOffsets"] = json!({"realtime": {"secs": 10}});
    let err = String::from_utf8_lossy(&b.create().stderr).into_owned();
    assert!(err.starts_with("berth: error: config "), "{err}");
}

#[test]
fn intel_rdt_without_resctrl_is_a_clear_error() {
    if std::path::Path::new("/sys/fs/resctrl/schemata").exists() {
        eprintln!("this host has resctrl; the error path cannot be shown");
        return;
    }
    // runc 1.1 refuses too ("intelRdt is specified in config, but Intel RDT is not supported").
    let mut b = bundle(&["true"]);
    b.config["linux"]["intelRdt"] = json!({"closID": "c1", "l3CacheSchema": "L3:0=f"});
    let o = b.create();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("intelRdt"), "{err}");
    if is_berth() {
        assert!(err.contains("linux.intelRdt"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    }
    assert_eq!(b.status(), "gone");
    assert_eq!(
        cgroup_dirs(&b.id),
        Vec::<std::path::PathBuf>::new(),
        "cgroups left"
    );
}

/// `berth features` as `Value`, run by root or, with `uid`, by that user.
fn features_as(uid: Option<u32>) -> Option<Value> {
    let mut c = match uid {
        Some(u) => {
            let mut c = std::process::Command::new("setpriv");
            let u = u.to_string();
            c.args(["--reuid", &u, "--regid", &u, "--clear-groups", &runtime()]);
            c
        }
        None => std::process::Command::new(runtime()),
    };
    let o = c.arg("features").output().ok()?;
    serde_json::from_slice(&o.stdout).ok()
}

#[test]
fn features_lists_the_newer_settings_truthfully() {
    if !is_berth() {
        return; // runc 1.1's features document predates these fields
    }
    let f = features_as(None).unwrap();
    let l = &f["linux"];
    // memoryPolicy and netDevices, both accepted, are runtime-spec 1.3 fields.
    assert_eq!(f["ociVersionMax"], json!("1.3.0"));
    assert_eq!(l["mountExtensions"]["idmap"]["enabled"], json!(true), "{l}");
    // Moving a host device needs root: as root it is on, for another user off.
    assert_eq!(l["netDevices"]["enabled"], json!(true), "{l}");
    let nobody = features_as(Some(65534)).expect("features as uid 65534");
    assert_eq!(nobody["linux"]["netDevices"]["enabled"], json!(false));
    // No resctrl on this host and no implementation: never claimed.
    assert_eq!(l["intelRdt"]["enabled"], json!(false), "{l}");
    let modes = l["memoryPolicy"]["modes"].as_array().unwrap();
    assert!(modes.contains(&json!("MPOL_BIND")) && modes.contains(&json!("MPOL_LOCAL")));
    // Probed, not a fixed list: weighted interleave (Linux 6.9) comes with this sysfs dir.
    let weighted = std::path::Path::new("/sys/kernel/mm/mempolicy/weighted_interleave").exists();
    assert_eq!(
        modes.contains(&json!("MPOL_WEIGHTED_INTERLEAVE")),
        weighted,
        "{modes:?}"
    );
    let ns: Vec<&str> = l["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let time = std::path::Path::new("/proc/self/ns/time").exists();
    assert_eq!(ns.contains(&"time"), time, "{ns:?}");
    // Every recursive option works (newspec_mounts.rs shows all 16); tmpcopyup is ignored.
    let opts = f["mountOptions"].as_array().unwrap();
    for o in [
        "rro",
        "rrw",
        "rnosuid",
        "rsuid",
        "rnodev",
        "rdev",
        "rnoexec",
        "rexec",
        "rrelatime",
        "rnorelatime",
        "rnoatime",
        "ratime",
        "rstrictatime",
        "rnostrictatime",
        "rnosymfollow",
        "rsymfollow",
        "idmap",
        "ridmap",
    ] {
        assert!(opts.contains(&json!(o)), "{o}");
    }
    assert!(!opts.contains(&json!("tmpcopyup")));
    let a = &f["annotations"];
    assert!(a["io.github.berth.process.scheduler"]
        .as_str()
        .unwrap()
        .contains("SCHED_DEADLINE"));
    assert!(a["io.github.berth.linux.personality"]
        .as_str()
        .unwrap()
        .contains("LINUX32"));
}

#[test]
fn features_into_a_closed_pipe_does_not_panic() {
    // The reader is gone before berth writes (`berth features | head -1` on a long document).
    let sh = format!("(sleep 0.2; {} features; echo rc=$? >&2) | true", runtime());
    let o = std::process::Command::new("bash")
        .args(["-c", &sh])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    if is_berth() {
        assert_eq!(err.trim(), "rc=0", "{err}");
    }
}
