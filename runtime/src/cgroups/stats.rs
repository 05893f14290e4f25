//! Container statistics and OOM notification from its cgroups, in runc's `events` format
//! (runc's types/events.go: cpu, memory, pids, blkio; names and units as runc prints them),
//! so tools written for `runc events` read ours unchanged. v1 and v2 alike: each of the
//! container's cgroup directories is recognised by the files it has.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

fn num(p: &Path) -> Option<u64> {
    let s = read(p)?;
    let s = s.trim();
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// "key value" lines (memory.stat, cpu.stat, memory.events) as a map.
fn kv(p: &Path) -> BTreeMap<String, u64> {
    read(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn is_v2(dir: &Path) -> bool {
    dir.join("cgroup.controllers").exists()
}

/// The stats document (runc's `Stats`) for a container's cgroup directories.
pub fn stats(paths: &[PathBuf]) -> Value {
    let mut cpu = json!({"usage": {}, "throttling": {}});
    let mut memory = json!({});
    let mut pids = json!({});
    let mut blkio = json!({});
    for d in paths {
        if is_v2(d) {
            v2_stats(d, &mut cpu, &mut memory, &mut pids, &mut blkio);
        } else {
            v1_stats(d, &mut cpu, &mut memory, &mut pids, &mut blkio);
        }
    }
    json!({"cpu": cpu, "memory": memory, "pids": pids, "blkio": blkio, "hugetlb": {}})
}

fn throttling(st: &BTreeMap<String, u64>, time_ns: u64) -> Value {
    json!({
        "periods": st.get("nr_periods").copied().unwrap_or(0),
        "throttledPeriods": st.get("nr_throttled").copied().unwrap_or(0),
        "throttledTime": time_ns,
    })
}

fn v1_stats(d: &Path, cpu: &mut Value, memory: &mut Value, pids: &mut Value, blkio: &mut Value) {
    if let Some(total) = num(&d.join("cpuacct.usage")) {
        let percpu: Vec<u64> = read(&d.join("cpuacct.usage_percpu"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        // cpuacct.stat is in USER_HZ ticks; runc reports nanoseconds.
        let st = kv(&d.join("cpuacct.stat"));
        let ns = |k: &str| st.get(k).copied().unwrap_or(0) * 1_000_000_000 / 100;
        cpu["usage"] =
            json!({"total": total, "percpu": percpu, "kernel": ns("system"), "user": ns("user")});
    }
    if d.join("cpu.cfs_quota_us").exists() {
        let st = kv(&d.join("cpu.stat"));
        cpu["throttling"] = throttling(&st, st.get("throttled_time").copied().unwrap_or(0));
    }
    if d.join("memory.usage_in_bytes").exists() {
        let entry = |pre: &str| {
            let f = |s: &str| num(&d.join(format!("{pre}.{s}"))).unwrap_or(0);
            json!({"limit": f("limit_in_bytes"), "usage": f("usage_in_bytes"),
                   "max": f("max_usage_in_bytes"), "failcnt": f("failcnt")})
        };
        let raw = kv(&d.join("memory.stat"));
        *memory = json!({
            "cache": raw.get("cache").copied().unwrap_or(0),
            "usage": entry("memory"), "swap": entry("memory.memsw"),
            "kernel": entry("memory.kmem"), "kernelTCP": entry("memory.kmem.tcp"),
            "raw": raw,
        });
    }
    if let Some(cur) = num(&d.join("pids.current")) {
        let limit = num(&d.join("pids.max"))
            .filter(|m| *m != u64::MAX)
            .unwrap_or(0);
        *pids = json!({"current": cur, "limit": limit});
    }
    if d.join("blkio.throttle.io_service_bytes").exists() {
        *blkio = json!({
            "ioServiceBytesRecursive": blkio_v1(&d.join("blkio.throttle.io_service_bytes")),
            "ioServicedRecursive": blkio_v1(&d.join("blkio.throttle.io_serviced")),
        });
    }
}

/// blkio v1 lines "MAJ:MIN Op Value" (a last "Total N" line is skipped).
fn blkio_v1(p: &Path) -> Vec<Value> {
    read(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, op, v) = (f.next()?, f.next()?, f.next()?.parse::<u64>().ok()?);
            let (ma, mi) = dev.split_once(':')?;
            Some(json!({"major": ma.parse::<u64>().ok()?, "minor": mi.parse::<u64>().ok()?, "op": op, "value": v}))
        })
        .collect()
}

/// On a hybrid host the cgroup2 tree holds few controllers (here only hugetlb): only
/// the parts whose controller it has count, so v1's numbers are not overwritten.
fn v2_stats(d: &Path, cpu: &mut Value, memory: &mut Value, pids: &mut Value, blkio: &mut Value) {
    let ctrls = read(&d.join("cgroup.controllers")).unwrap_or_default();
    let has = |c: &str| ctrls.split_whitespace().any(|x| x == c);
    let st = kv(&d.join("cpu.stat"));
    if let Some(u) = st.get("usage_usec").filter(|_| has("cpu")) {
        let us = |k: &str| st.get(k).copied().unwrap_or(0) * 1000;
        cpu["usage"] =
            json!({"total": u * 1000, "kernel": us("system_usec"), "user": us("user_usec")});
        cpu["throttling"] = throttling(&st, us("throttled_usec"));
    }
    if let Some(usage) = num(&d.join("memory.current")).filter(|_| has("memory")) {
        let limit = num(&d.join("memory.max")).unwrap_or(u64::MAX);
        let ev = kv(&d.join("memory.events"));
        let swap = num(&d.join("memory.swap.current")).unwrap_or(0);
        let raw = kv(&d.join("memory.stat"));
        *memory = json!({
            "cache": raw.get("file").copied().unwrap_or(0),
            "usage": {"limit": limit, "usage": usage, "max": num(&d.join("memory.peak")).unwrap_or(0),
                      "failcnt": ev.get("max").copied().unwrap_or(0)},
            "swap": {"limit": num(&d.join("memory.swap.max")).unwrap_or(u64::MAX), "usage": swap, "failcnt": 0},
            "raw": raw,
        });
    }
    if let Some(cur) = num(&d.join("pids.current")) {
        let limit = num(&d.join("pids.max"))
            .filter(|m| *m != u64::MAX)
            .unwrap_or(0);
        *pids = json!({"current": cur, "limit": limit});
    }
    if let Some(io) = read(&d.join("io.stat")) {
        let mut bytes = Vec::new();
        let mut ios = Vec::new();
        for l in io.lines() {
            let mut f = l.split_whitespace();
            let Some((ma, mi)) = f.next().and_then(|d| d.split_once(':')) else {
                continue;
            };
            let (ma, mi) = (
                ma.parse::<u64>().unwrap_or(0),
                mi.parse::<u64>().unwrap_or(0),
            );
            for kv in f {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let v = v.parse::<u64>().unwrap_or(0);
                let e = |op: &str| json!({"major": ma, "minor": mi, "op": op, "value": v});
                match k {
                    "rbytes" => bytes.push(e("Read")),
                    "wbytes" => bytes.push(e("Write")),
                    "rios" => ios.push(e("Read")),
                    "wios" => ios.push(e("Write")),
                    _ => {}
                }
            }
        }
        *blkio = json!({"ioServiceBytesRecursive": bytes, "ioServicedRecursive": ios});
    }
}

/// Watches a container's memory cgroup for OOM kills.
pub enum OomWatch {
    /// v1: an eventfd registered on memory.oom_control through cgroup.event_control.
    /// It also fires when the cgroup is removed, which `poll` tells apart.
    V1 {
        efd: OwnedFd,
        dir: PathBuf,
    },
    /// v2: the oom_kill counter of memory.events (checked on each poll).
    V2 {
        dir: PathBuf,
        seen: u64,
    },
    None,
}

impl OomWatch {
    pub fn new(paths: &[PathBuf]) -> OomWatch {
        for d in paths {
            let memory_v2 = read(&d.join("cgroup.controllers"))
                .is_some_and(|c| c.split_whitespace().any(|x| x == "memory"));
            if memory_v2 && d.join("memory.events").exists() {
                let seen = kv(&d.join("memory.events"))
                    .get("oom_kill")
                    .copied()
                    .unwrap_or(0);
                return OomWatch::V2 {
                    dir: d.clone(),
                    seen,
                };
            }
            if d.join("memory.oom_control").exists() {
                if let Some(efd) = v1_register(d) {
                    return OomWatch::V1 {
                        efd,
                        dir: d.clone(),
                    };
                }
            }
        }
        OomWatch::None
    }

    /// The fd to poll for readability, if any.
    pub fn fd(&self) -> Option<i32> {
        match self {
            OomWatch::V1 { efd, .. } => Some(efd.as_raw_fd()),
            _ => None,
        }
    }

    /// After the fd polled readable (or on a tick for v2): how many OOM kills since the
    /// last check; `None` when the cgroup is gone (the container was deleted).
    pub fn check(&mut self, readable: bool) -> Option<u64> {
        match self {
            OomWatch::V1 { efd, dir } => {
                if !readable {
                    return Some(0);
                }
                let mut buf = [0u8; 8];
                // SAFETY: reading 8 bytes from our eventfd into a local buffer.
                let n = unsafe { libc::read(efd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
                if n != 8 || !dir.join("memory.oom_control").exists() {
                    return None;
                }
                Some(u64::from_ne_bytes(buf))
            }
            OomWatch::V2 { dir, seen } => {
                let now = kv(&dir.join("memory.events")).get("oom_kill").copied()?;
                let new = now.saturating_sub(*seen);
                *seen = now;
                Some(new)
            }
            OomWatch::None => Some(0),
        }
    }
}

fn v1_register(d: &Path) -> Option<OwnedFd> {
    let oc = std::fs::File::open(d.join("memory.oom_control")).ok()?;
    // SAFETY: eventfd returns a fresh descriptor or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fresh descriptor we own.
    let efd = unsafe { OwnedFd::from_raw_fd(fd) };
    let line = format!("{} {}", efd.as_raw_fd(), oc.as_raw_fd());
    std::fs::write(d.join("cgroup.event_control"), line).ok()?;
    Some(efd)
}

/// runc's event envelope.
pub fn event(kind: &str, id: &str, data: Option<Value>) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), kind.into());
    m.insert("id".into(), id.into());
    if let Some(d) = data {
        m.insert("data".into(), d);
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    // No cgroup v2-only host is at hand here: the v2 reading is checked against a
    // temporary directory standing in for a cgroup2 directory.
    use super::*;

    #[test]
    fn v2_files_become_runc_stats() {
        let t = tempfile::tempdir().unwrap();
        let w = |f: &str, s: &str| std::fs::write(t.path().join(f), s).unwrap();
        w("cgroup.controllers", "cpu memory pids io");
        w("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 4\nthrottled_usec 77\n");
        w("memory.current", "4096\n");
        w("memory.max", "max\n");
        w("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
        w("memory.stat", "anon 100\nfile 200\n");
        w("pids.current", "2\n");
        w("pids.max", "64\n");
        w(
            "io.stat",
            "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
        );
        let s = stats(&[t.path().to_path_buf()]);
        assert_eq!(s["cpu"]["usage"]["total"], 1_500_000);
        assert_eq!(s["cpu"]["throttling"]["throttledPeriods"], 4);
        assert_eq!(s["cpu"]["throttling"]["throttledTime"], 77_000);
        assert_eq!(s["memory"]["usage"]["usage"], 4096);
        assert_eq!(s["memory"]["usage"]["limit"], u64::MAX);
        assert_eq!(s["memory"]["usage"]["failcnt"], 3);
        assert_eq!(s["memory"]["cache"], 200);
        assert_eq!(s["pids"], json!({"current": 2, "limit": 64}));
        assert_eq!(s["blkio"]["ioServiceBytesRecursive"][1]["value"], 20);
        let mut w2 = OomWatch::new(&[t.path().to_path_buf()]);
        assert_eq!(w2.check(false), Some(0));
        w("memory.events", "oom 2\noom_kill 3\n");
        assert_eq!(w2.check(false), Some(2));
    }
}
