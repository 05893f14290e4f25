//! A container's cgroup files on either cgroup layout: v1 (a hierarchy per controller, as on
//! the hybrid CI host) or pure v2 (one tree, as on a systemd host booted unified). A test
//! names what it checks once; these helpers pick the directory and file of the layout.

use std::path::{Path, PathBuf};

pub const CG: &str = "/sys/fs/cgroup";

/// Pure cgroup v2: /sys/fs/cgroup is the cgroup2 tree itself.
pub fn v2_only() -> bool {
    Path::new(CG).join("cgroup.controllers").exists()
}

/// Where test cgroups using `controller` are made: its v1 hierarchy, or the v2 root.
pub fn hierarchy(controller: &str) -> PathBuf {
    if v2_only() {
        PathBuf::from(CG)
    } else {
        Path::new(CG).join(controller)
    }
}

/// The directory of `pid`'s cgroup for `controller`: from its /proc/PID/cgroup line of that
/// v1 controller, or (v2) from its `0::` line.
pub fn dir_of(pid: i32, controller: &str) -> PathBuf {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let v2 = v2_only();
    let rel = cg
        .lines()
        .find_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, h, p) = (it.next()?, it.next()?, it.next()?);
            let hit = if v2 {
                h.is_empty()
            } else {
                h.split(',').any(|c| c == controller)
            };
            hit.then(|| p.to_string())
        })
        .unwrap_or_else(|| panic!("no {controller} line in /proc/{pid}/cgroup: {cg}"));
    let base = if v2 {
        PathBuf::from(CG)
    } else {
        hierarchy(controller)
    };
    base.join(rel.trim_start_matches('/'))
}

/// A file of `pid`'s cgroup, trimmed.
pub fn read(pid: i32, controller: &str, file: &str) -> String {
    let f = dir_of(pid, controller).join(file);
    std::fs::read_to_string(&f)
        .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
        .trim()
        .to_string()
}

/// runc's cpu.shares → cpu.weight conversion (berth uses the same).
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + ((shares - 2) * 9999) / 262142
}

/// The memory limit: memory.limit_in_bytes (v1) or memory.max (v2).
pub fn memory_limit(pid: i32) -> String {
    read(
        pid,
        "memory",
        if v2_only() {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        },
    )
}

/// The memory reservation: memory.soft_limit_in_bytes (v1) or memory.low (v2).
pub fn memory_reservation(pid: i32) -> String {
    read(
        pid,
        "memory",
        if v2_only() {
            "memory.low"
        } else {
            "memory.soft_limit_in_bytes"
        },
    )
}

/// The CFS (quota, period) in v1's spelling: v2's cpu.max "max" reads as "-1".
pub fn cpu_quota_period(pid: i32) -> (String, String) {
    if !v2_only() {
        return (
            read(pid, "cpu", "cpu.cfs_quota_us"),
            read(pid, "cpu", "cpu.cfs_period_us"),
        );
    }
    let m = read(pid, "cpu", "cpu.max");
    let (q, p) = m.split_once(' ').unwrap_or_else(|| panic!("cpu.max: {m}"));
    let q = if q == "max" { "-1" } else { q };
    (q.to_string(), p.to_string())
}

/// Asserts the cpu shares of `pid`'s cgroup are `shares` (v2: the weight runc converts to).
pub fn assert_cpu_shares(pid: i32, shares: u64) {
    if v2_only() {
        let w = read(pid, "cpu", "cpu.weight");
        assert_eq!(
            w,
            shares_to_weight(shares).to_string(),
            "cpu.weight for shares {shares}"
        );
    } else {
        assert_eq!(read(pid, "cpu", "cpu.shares"), shares.to_string());
    }
}
