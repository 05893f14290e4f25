//! `events`: cgroup statistics in runc's format, and OOM kills reported as they happen,
//! checked with real workloads (a CPU spinner under a quota, a memory hog under a limit).
mod common;
use common::*;
use serde_json::{json, Value};
use std::io::BufRead;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

fn stats(b: &Bundle) -> Value {
    let out = b.ok(&["events", "--stats", &b.id]);
    let v: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["type"], "stats", "{v}");
    assert_eq!(v["id"], b.id.as_str());
    v["data"].clone()
}

#[test]
fn stats_report_usage_and_limits() {
    let mut b = bundle(&["sleep", "100"]);
    b.config["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    b.config["linux"]["resources"]["pids"] = json!({"limit": 50});
    b.create_ok();
    b.ok(&["start", &b.id]);
    let d = stats(&b);
    assert_eq!(d["memory"]["usage"]["limit"], 67108864, "{d}");
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{d}");
    assert_eq!(d["pids"]["limit"], 50, "{d}");
    assert!(d["pids"]["current"].as_u64().unwrap() >= 1, "{d}");
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{d}");
}

#[test]
fn cpu_quota_throttles() {
    let mut b = bundle(&["sh", "-c", "while :; do :; done"]);
    // 10% of one CPU: a spinning shell is throttled in every period.
    b.config["linux"]["resources"]["cpu"] = json!({"period": 100000, "quota": 10000});
    b.create_ok();
    b.ok(&["start", &b.id]);
    std::thread::sleep(Duration::from_millis(1200));
    let d = stats(&b);
    let t = &d["cpu"]["throttling"];
    assert!(t["periods"].as_u64().unwrap() >= 5, "{d}");
    assert!(t["throttledPeriods"].as_u64().unwrap() >= 3, "{t}");
    assert!(t["throttledTime"].as_u64().unwrap() > 0, "{t}");
    // The container got about its share: well under half a CPU over the run.
    let used = d["cpu"]["usage"]["total"].as_u64().unwrap();
    assert!(
        used < 600_000_000,
        "used {used} ns of CPU in 1.2 s under a 10% quota"
    );
}

#[test]
fn oom_kill_is_reported() {
    let mut b = bundle(&["sh", "-c", "x=aaaaaaaa; while :; do x=$x$x; done"]);
    // 32 MiB and no swap beyond it: the doubling string is OOM-killed within a second.
    b.config["linux"]["resources"]["memory"] = json!({"limit": 33554432, "swap": 33554432});
    b.create_ok();
    let mut ev = b
        .cmd(&["events", "--interval", "1s", &b.id])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = ev.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    // The first stats event says the stream is watching before the hog starts.
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a first event");
    assert!(first.contains("\"stats\""), "{first}");
    b.ok(&["start", &b.id]);
    let mut seen = vec![];
    let got = loop {
        match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(l) => {
                let v: Value = serde_json::from_str(&l).unwrap();
                if v["type"] == "oom" {
                    break v;
                }
                seen.push(l);
            }
            Err(_) => panic!("no oom event; saw {seen:?}"),
        }
    };
    assert_eq!(got["id"], b.id.as_str());
    // v1's memory.oom_control and v2's memory.events both count "oom_kill N".
    let file = if cgv::v2_only() {
        "memory.events"
    } else {
        "memory.oom_control"
    };
    let dir = cgroup_dirs(&b.id)
        .into_iter()
        .find(|d| d.join(file).exists())
        .unwrap_or_else(|| panic!("no {file} in {:?}", cgroup_dirs(&b.id)));
    // The eventfd fires when the cgroup goes under OOM, a moment before the kill is counted.
    let mut oc = String::new();
    for _ in 0..100 {
        oc = std::fs::read_to_string(dir.join(file)).unwrap();
        if !oc.contains("oom_kill 0") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!oc.contains("oom_kill 0"), "{oc}");
    let _ = ev.kill();
    let _ = ev.wait();
}

#[test]
fn events_of_unknown_container_fail_clearly() {
    let b = bundle(&["true"]);
    let o = b.rt(&["events", "--stats", "no-such-container-xyz"]);
    assert!(!o.status.success());
    // runc 1.1 says only "container does not exist"; berth names the id.
    if is_berth() {
        assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-container-xyz"));
    }
}
