//! `ctr task metrics` of berth containers: containerd's cgroups v1 metrics on this host, and v2
//! metrics where /sys/fs/cgroup is the unified hierarchy.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::Containerd;

/// A container that burns some CPU, then sleeps.
const BUSY: &str = "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; exec sleep 1000";

/// The METRIC/VALUE table of `ctr task metrics`.
fn table(c: &Containerd, id: &str) -> HashMap<String, String> {
    let out = c.ok(&["task", "metrics", id]);
    out.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect()
}

fn number(t: &HashMap<String, String>, key: &str) -> u64 {
    let v = t.get(key).unwrap_or_else(|| panic!("no {key} in {t:?}"));
    v.parse().unwrap_or_else(|_| panic!("{key} = {v:?}"))
}

fn wait_busy_done(c: &Containerd, id: &str) {
    // the loop's CPU time is charged once it is over, when sh has become sleep
    let pid = c.pid(id);
    for _ in 0..200 {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "sleep" {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{id} never reached its sleep");
}

#[test]
fn v1_metrics_report_cpu_memory_limit_and_pids() {
    let c = Containerd::start("metrics1");
    c.run_detached("m1", &["--memory-limit", "67108864"], &["sh", "-c", BUSY]);
    wait_busy_done(&c, "m1");
    let t = table(&c, "m1");
    assert_eq!(number(&t, "memory.limit_in_bytes"), 67108864, "{t:?}");
    assert!(number(&t, "memory.usage_in_bytes") > 0, "{t:?}");
    assert!(number(&t, "cpuacct.usage") > 1_000_000, "{t:?}");
    assert_eq!(number(&t, "pids.current"), 1, "{t:?}");
    // the whole message: per-CPU usage, user time and memory.stat come through too
    let json = c.ok(&["task", "metrics", "--format", "json", "m1"]);
    let m: serde_json::Value = serde_json::from_str(&json).unwrap();
    let usage = &m["cpu"]["usage"];
    assert!(
        usage["per_cpu"].as_array().is_some_and(|a| !a.is_empty()),
        "{json}"
    );
    let cpu_total = usage["total"].as_u64().unwrap();
    let split = usage["user"].as_u64().unwrap_or(0) + usage["kernel"].as_u64().unwrap_or(0);
    assert!(split > 0 && split <= cpu_total * 2, "{json}");
    assert!(m["memory"]["total_rss"].as_u64().unwrap_or(0) > 0, "{json}");
    c.remove("m1");
}

#[test]
fn v2_metrics_report_cpu_usage_on_a_unified_hierarchy() {
    let c = Containerd::start_in("metrics2", true);
    // ctr asks for cpu shares 1024 by default: no cpu controller on this v2 tree
    c.run_detached("m2", &["--cpu-shares", "0"], &["sh", "-c", BUSY]);
    wait_busy_done(&c, "m2");
    let t = table(&c, "m2");
    // v2's table (memory and pids are bound to v1 on this host, so their files do not exist)
    assert!(number(&t, "cpu.usage_usec") > 1000, "{t:?}");
    assert!(
        number(&t, "cpu.user_usec") + number(&t, "cpu.system_usec") > 0,
        "{t:?}"
    );
    c.remove("m2");
}
