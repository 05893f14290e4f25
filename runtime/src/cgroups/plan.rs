//! What linux.resources becomes on disk: the cgroup files to write, in order, with the config
//! field each one comes from. v1 hosts get one file per controller setting, v2 hosts the
//! unified equivalents. Planning reads the container's current values where the order or
//! the value depends on them (v1 memory+swap, v2 swap without a limit), and writes nothing.

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};
use std::path::PathBuf;

/// The container's cgroup directories as the planner sees them.
pub struct Host<'a> {
    pub dirs: &'a [PathBuf],
}

impl Host<'_> {
    /// The first directory's `file` that exists.
    pub fn find(&self, file: &str) -> Option<PathBuf> {
        self.dirs.iter().map(|d| d.join(file)).find(|p| p.exists())
    }
    pub fn has(&self, file: &str) -> bool {
        self.find(file).is_some()
    }
    pub fn read(&self, file: &str) -> Option<String> {
        let s = std::fs::read_to_string(self.find(file)?).ok()?;
        Some(s.trim().to_string())
    }
}

/// One write to do: `value` into `file`, for the config `field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub field: String,
    pub file: String,
    pub value: String,
}

fn w(field: String, file: &str, v: impl ToString) -> Write {
    Write {
        field,
        file: file.to_string(),
        value: v.to_string(),
    }
}

const MEMSW: &str = "memory.memsw.limit_in_bytes";
const MEM: &str = "linux.resources.memory";
const CPU: &str = "linux.resources.cpu";
const BLKIO: &str = "linux.resources.blockIO";

/// -1 (unlimited) as the largest byte count, for comparing limits.
fn bytes(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Whether the running kernel is at least `major.minor` (from /proc/sys/kernel/osrelease).
pub fn kernel_at_least(major: u32, minor: u32) -> bool {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = rel
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let v = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    v >= (major, minor)
}

/// The files a v1 host gets, in the order they must be written.
pub fn v1_writes(r: &LinuxResources, host: &Host) -> Vec<Write> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        v1_memory(m, host, &mut out);
    }
    if let Some(c) = r.cpu() {
        let f = |n: &str| format!("{CPU}.{n}");
        let set = [
            (c.shares().map(|v| v as i64), "shares", "cpu.shares"),
            (c.period().map(|v| v as i64), "period", "cpu.cfs_period_us"),
            (c.quota(), "quota", "cpu.cfs_quota_us"),
            (c.burst().map(|v| v as i64), "burst", "cpu.cfs_burst_us"),
            (
                c.realtime_period().map(|v| v as i64),
                "realtimePeriod",
                "cpu.rt_period_us",
            ),
            (c.realtime_runtime(), "realtimeRuntime", "cpu.rt_runtime_us"),
        ];
        for (v, name, file) in set {
            if let Some(v) = v {
                out.push(w(f(name), file, v));
            }
        }
    }
    shared_writes(r, &mut out);
    if let Some(b) = r.block_io() {
        v1_block_io(b, host, &mut out);
    }
    if let Some(n) = r.network() {
        if let Some(v) = n.class_id() {
            out.push(w(
                "linux.resources.network.classID".into(),
                "net_cls.classid",
                v,
            ));
        }
        for (i, p) in n.priorities().iter().flatten().enumerate() {
            out.push(w(
                format!("linux.resources.network.priorities[{i}]"),
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
            ));
        }
    }
    out
}

/// v1 memory. The kernel keeps limit <= memory+swap at every step, so raising the limit
/// above the current memsw needs memsw raised first, and otherwise the limit goes first (so
/// a lower memsw is not refused for being below the old limit), as runc orders them.
fn v1_memory(m: &LinuxMemory, host: &Host, out: &mut Vec<Write>) {
    let f = |n: &str| format!("{MEM}.{n}");
    let limit = m.limit().map(|v| w(f("limit"), "memory.limit_in_bytes", v));
    // A limit of -1 alone means memory and swap unlimited (runc): memsw may not stay below it.
    let swap_v = m
        .swap()
        .or_else(|| (m.limit() == Some(-1) && host.has(MEMSW)).then_some(-1));
    let swap = swap_v.map(|v| w(f("swap"), MEMSW, v));
    let cur_memsw = host.read(MEMSW).and_then(|s| s.parse::<u64>().ok());
    let swap_first = swap.is_some()
        && m.limit()
            .is_some_and(|l| bytes(l) > cur_memsw.unwrap_or(u64::MAX));
    if swap_first {
        out.extend(swap);
        out.extend(limit);
    } else {
        out.extend(limit);
        out.extend(swap);
    }
    if let Some(v) = m.kernel() {
        if kernel_at_least(5, 16) {
            crate::logger::warn(&format!(
                "{}: ignored: kernels since 5.16 no longer enforce kernel memory limits (memory.kmem.limit_in_bytes accepts the value and stays unlimited)",
                f("kernel")
            ));
        } else {
            out.push(w(f("kernel"), "memory.kmem.limit_in_bytes", v));
        }
    }
    if let Some(v) = m.kernel_tcp() {
        out.push(w(f("kernelTCP"), "memory.kmem.tcp.limit_in_bytes", v));
    }
    if let Some(v) = m.reservation() {
        out.push(w(f("reservation"), "memory.soft_limit_in_bytes", v));
    }
    if m.disable_oom_killer() == Some(true) {
        out.push(w(f("disableOOMKiller"), "memory.oom_control", 1));
    }
    if let Some(v) = m.swappiness() {
        out.push(w(f("swappiness"), "memory.swappiness", v));
    }
}

/// The first of `names` the host has, or the first name (so a missing file names it).
fn pick<'a>(host: &Host, names: &[&'a str]) -> &'a str {
    names
        .iter()
        .copied()
        .find(|n| host.has(n))
        .unwrap_or(names[0])
}

fn v1_block_io(b: &LinuxBlockIo, host: &Host, out: &mut Vec<Write>) {
    let f = |n: &str| format!("{BLKIO}.{n}");
    // CFQ's files, or BFQ's where CFQ is gone (kernels since 5.0), as runc picks them.
    let weight = pick(host, &["blkio.weight", "blkio.bfq.weight"]);
    let weight_dev = pick(host, &["blkio.weight_device", "blkio.bfq.weight_device"]);
    if let Some(v) = b.weight() {
        out.push(w(f("weight"), weight, v));
    }
    if let Some(v) = b.leaf_weight() {
        out.push(w(f("leafWeight"), "blkio.leaf_weight", v));
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let dev = format!("{}:{}", d.major(), d.minor());
        if let Some(v) = d.weight() {
            out.push(w(
                f(&format!("weightDevice[{i}]")),
                weight_dev,
                format!("{dev} {v}"),
            ));
        }
        if let Some(v) = d.leaf_weight() {
            out.push(w(
                f(&format!("weightDevice[{i}].leafWeight")),
                "blkio.leaf_weight_device",
                format!("{dev} {v}"),
            ));
        }
    }
    for (list, name, v1, _) in throttles(b) {
        for (i, (dev, rate)) in list.iter().enumerate() {
            out.push(w(f(&format!("{name}[{i}]")), v1, format!("{dev} {rate}")));
        }
    }
}

/// (devices as "major:minor" with their rate, field name, v1 file, v2 io.max key).
type Throttle = (Vec<(String, u64)>, &'static str, &'static str, &'static str);

fn throttles(b: &LinuxBlockIo) -> [Throttle; 4] {
    let l = |v: &Option<Vec<oci_spec::runtime::LinuxThrottleDevice>>| {
        v.iter()
            .flatten()
            .map(|d| (format!("{}:{}", d.major(), d.minor()), d.rate()))
            .collect::<Vec<_>>()
    };
    [
        (
            l(b.throttle_read_bps_device()),
            "throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            "rbps",
        ),
        (
            l(b.throttle_write_bps_device()),
            "throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            "wbps",
        ),
        (
            l(b.throttle_read_iops_device()),
            "throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            "riops",
        ),
        (
            l(b.throttle_write_iops_device()),
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            "wiops",
        ),
    ]
}

/// The unified-hierarchy files for the same settings (cgroup v2 hosts). Settings v2 has no
/// file for are refused with the field named, except kernel memory, which runc also only
/// warns about.
pub fn v2_writes(r: &LinuxResources, host: &Host) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        v2_memory(m, host, &mut out)?;
    }
    if let Some(c) = r.cpu() {
        v2_cpu(c, &mut out)?;
    }
    shared_writes(r, &mut out);
    if let Some(b) = r.block_io() {
        v2_block_io(b, host, &mut out);
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(v1_only(
                "linux.resources.network",
                "cgroup v2 has no net_cls/net_prio controllers (use eBPF on the network side)",
            ));
        }
    }
    Ok(out)
}

fn v1_only(field: &str, why: &str) -> Error {
    Error::Other(format!(
        "{field}: not supported on this cgroup v2 host: {why}"
    ))
}

/// "max" for -1 (and any negative), as v2 files spell unlimited.
fn max(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

fn v2_memory(m: &LinuxMemory, host: &Host, out: &mut Vec<Write>) -> Result<()> {
    let f = |n: &str| format!("{MEM}.{n}");
    if m.swappiness().is_some() {
        return Err(v1_only(&f("swappiness"), "v2 has no per-cgroup swappiness"));
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(v1_only(
            &f("disableOOMKiller"),
            "v2 has no memory.oom_control (the OOM killer cannot be turned off per cgroup)",
        ));
    }
    for (v, name) in [(m.kernel(), "kernel"), (m.kernel_tcp(), "kernelTCP")] {
        if v.is_some() {
            crate::logger::warn(&format!(
                "{}: ignored: cgroup v2 has no separate kernel memory limit (kernel memory counts in memory.max)",
                f(name)
            ));
        }
    }
    // v1's swap is memory+swap, v2's memory.swap.max swap alone.
    let swap = match (m.swap(), m.limit()) {
        (None, Some(-1)) if host.has("memory.swap.max") => Some("max".to_string()),
        (None, _) => None,
        (Some(s), _) if s < 0 => Some("max".into()),
        (Some(s), Some(l)) if l >= 0 => Some((s - l).max(0).to_string()),
        (Some(s), limit) => {
            // An update naming only the swap: the limit is the one in force.
            let cur = match limit {
                None => host.read("memory.max").and_then(|v| v.parse::<i64>().ok()),
                Some(_) => None,
            };
            let Some(l) = cur else {
                return Err(Error::Other(format!(
                    "{}: on cgroup v2 a memory+swap limit needs a memory limit too (swap = swap - limit), and memory.limit is unlimited",
                    f("swap")
                )));
            };
            Some((s - l).max(0).to_string())
        }
    };
    if let Some(v) = swap {
        out.push(w(f("swap"), "memory.swap.max", v));
    }
    if let Some(v) = m.limit() {
        out.push(w(f("limit"), "memory.max", max(v)));
    }
    if let Some(v) = m.reservation() {
        out.push(w(f("reservation"), "memory.low", max(v)));
    }
    Ok(())
}

fn v2_cpu(c: &LinuxCpu, out: &mut Vec<Write>) -> Result<()> {
    let f = |n: &str| format!("{CPU}.{n}");
    if c.realtime_period().is_some() || c.realtime_runtime().is_some() {
        return Err(v1_only(
            &f("realtimeRuntime"),
            "v2 has no realtime group scheduling files",
        ));
    }
    if let Some(s) = c.shares() {
        out.push(w(f("shares"), "cpu.weight", cpu_weight(s)));
    }
    if c.quota().is_some() || c.period().is_some() {
        let q = c
            .quota()
            .filter(|q| *q > 0)
            .map(|q| q.to_string())
            .unwrap_or_else(|| "max".into());
        let v = format!("{q} {}", c.period().unwrap_or(100_000));
        out.push(w(f("quota"), "cpu.max", v));
    }
    if let Some(b) = c.burst() {
        out.push(w(f("burst"), "cpu.max.burst", b));
    }
    Ok(())
}

/// runc's conversion of cpu shares [2, 262144] to cpu.weight [1, 10000].
pub fn cpu_weight(shares: u64) -> u64 {
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

/// blkio weight [10, 1000] to io.weight [1, 10000], as runc converts it.
pub fn io_weight(w: u16) -> u64 {
    1 + (u64::from(w.max(10)) - 10) * 9999 / 990
}

fn v2_block_io(b: &LinuxBlockIo, host: &Host, out: &mut Vec<Write>) {
    let f = |n: &str| format!("{BLKIO}.{n}");
    // BFQ takes blkio's own weights; io.weight (iocost) its wider range.
    let bfq = host.has("io.bfq.weight");
    let (file, conv): (&str, fn(u16) -> u64) = if bfq {
        ("io.bfq.weight", u64::from)
    } else {
        ("io.weight", io_weight)
    };
    if let Some(v) = b.weight() {
        out.push(w(f("weight"), file, conv(v)));
    }
    if b.leaf_weight().is_some() {
        crate::logger::warn(&format!(
            "{}: ignored: cgroup v2 has no leaf weights",
            f("leafWeight")
        ));
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        if let Some(v) = d.weight() {
            let dev = format!("{}:{}", d.major(), d.minor());
            out.push(w(
                f(&format!("weightDevice[{i}]")),
                file,
                format!("{dev} {}", conv(v)),
            ));
        }
    }
    for (list, name, _, key) in throttles(b) {
        for (i, (dev, rate)) in list.iter().enumerate() {
            // v1's rate 0 removes the limit; v2 spells that "max".
            let v = if *rate == 0 {
                "max".to_string()
            } else {
                rate.to_string()
            };
            out.push(w(
                f(&format!("{name}[{i}]")),
                "io.max",
                format!("{dev} {key}={v}"),
            ));
        }
    }
}

/// Settings whose files are named alike in v1 and v2: cpu.idle, cpuset.cpus/mems, pids.max.
fn shared_writes(r: &LinuxResources, out: &mut Vec<Write>) {
    if let Some(c) = r.cpu() {
        if let Some(v) = c.idle() {
            out.push(w(format!("{CPU}.idle"), "cpu.idle", v));
        }
        let sets = [
            (c.cpus(), "cpus", "cpuset.cpus"),
            (c.mems(), "mems", "cpuset.mems"),
        ];
        for (v, name, file) in sets {
            if let Some(v) = v.as_ref().filter(|s| !s.is_empty()) {
                out.push(w(format!("{CPU}.{name}"), file, v));
            }
        }
    }
    if let Some(p) = r.pids() {
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".into()
        };
        out.push(w("linux.resources.pids.limit".into(), "pids.max", v));
    }
}

#[cfg(test)]
mod tests {
    // No cgroup v2-only host is at hand here: the v2 plans are checked against a temporary
    // directory standing in for the container's cgroup2 directory.
    use super::*;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    fn dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for (f, v) in files {
            std::fs::write(t.path().join(f), v).unwrap();
        }
        t
    }

    fn plan(t: &tempfile::TempDir, v2: bool, r: &LinuxResources) -> Result<Vec<(String, String)>> {
        let dirs = [t.path().to_path_buf()];
        let host = Host { dirs: &dirs };
        let ws = if v2 {
            v2_writes(r, &host)?
        } else {
            v1_writes(r, &host)
        };
        Ok(ws.into_iter().map(|w| (w.file, w.value)).collect())
    }

    #[test]
    fn v1_memsw_goes_first_only_when_the_limit_rises_above_it() {
        let t = dir(&[
            (MEMSW, "134217728\n"),
            ("memory.limit_in_bytes", "67108864\n"),
        ]);
        let up = res(serde_json::json!({"memory": {"limit": 268435456, "swap": 536870912}}));
        let p = plan(&t, false, &up).unwrap();
        assert_eq!(p[0].0, MEMSW, "{p:?}");
        assert_eq!(p[1].0, "memory.limit_in_bytes");
        let down = res(serde_json::json!({"memory": {"limit": 33554432, "swap": 67108864}}));
        let p = plan(&t, false, &down).unwrap();
        assert_eq!(p[0].0, "memory.limit_in_bytes", "{p:?}");
        // -1 alone lifts memsw too, first.
        let unl = res(serde_json::json!({"memory": {"limit": -1}}));
        let p = plan(&t, false, &unl).unwrap();
        assert_eq!(p[0], (MEMSW.to_string(), "-1".to_string()), "{p:?}");
    }

    #[test]
    fn v1_weight_falls_back_to_bfq() {
        let t = dir(&[("blkio.bfq.weight", "100")]);
        let r = res(serde_json::json!({"blockIO": {"weight": 300}}));
        assert_eq!(plan(&t, false, &r).unwrap()[0].0, "blkio.bfq.weight");
    }

    #[test]
    fn v2_block_io_and_burst() {
        let t = dir(&[("io.weight", "default 100"), ("io.max", "")]);
        let r = res(serde_json::json!({
            "cpu": {"burst": 20000},
            "blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 1000}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 0}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 200}]}
        }));
        let p = plan(&t, true, &r).unwrap();
        let want = [
            ("cpu.max.burst", "20000"),
            ("io.weight", "4950"),
            ("io.weight", "8:0 10000"),
            ("io.max", "8:0 rbps=1048576"),
            ("io.max", "8:0 wbps=max"),
            ("io.max", "8:0 riops=100"),
            ("io.max", "8:16 wiops=200"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(p, want);
        // With BFQ the blkio weight goes as it is.
        let t = dir(&[("io.bfq.weight", "default 100")]);
        let r = res(serde_json::json!({"blockIO": {"weight": 500}}));
        assert_eq!(
            plan(&t, true, &r).unwrap(),
            [("io.bfq.weight".into(), "500".into())]
        );
    }

    #[test]
    fn v2_refuses_v1_only_settings_by_field() {
        let t = dir(&[]);
        for (r, field) in [
            (
                serde_json::json!({"memory": {"swappiness": 10}}),
                "memory.swappiness",
            ),
            (
                serde_json::json!({"memory": {"disableOOMKiller": true}}),
                "memory.disableOOMKiller",
            ),
            (
                serde_json::json!({"cpu": {"realtimeRuntime": 1000}}),
                "cpu.realtimeRuntime",
            ),
            (serde_json::json!({"network": {"classID": 1}}), "network"),
        ] {
            let e = plan(&t, true, &res(r)).unwrap_err().to_string();
            assert!(e.contains(&format!("linux.resources.{field}")), "{e}");
        }
        // Kernel memory is only warned about, as runc does.
        let r = res(serde_json::json!({"memory": {"kernel": 1048576, "kernelTCP": 1048576}}));
        assert!(plan(&t, true, &r).unwrap().is_empty());
    }

    #[test]
    fn v2_swap_alone_uses_the_limit_in_force() {
        let t = dir(&[("memory.max", "268435456\n"), ("memory.swap.max", "max")]);
        let r = res(serde_json::json!({"memory": {"swap": 536870912}}));
        assert_eq!(
            plan(&t, true, &r).unwrap(),
            [("memory.swap.max".into(), "268435456".into())]
        );
        std::fs::write(t.path().join("memory.max"), "max\n").unwrap();
        let e = plan(&t, true, &r).unwrap_err().to_string();
        assert!(e.contains("linux.resources.memory.swap"), "{e}");
    }
}
