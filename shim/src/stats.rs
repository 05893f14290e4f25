//! Stats: the cgroup metrics of a container's init, read straight from its cgroup files and
//! reported as containerd's cgroups library does (what `ctr task metrics`, the CRI and so
//! `kubectl top` read): `io.containerd.cgroups.v1.Metrics` on v1 and hybrid hosts,
//! `io.containerd.cgroups.v2.Metrics` where /sys/fs/cgroup is the unified hierarchy.
//!
//! Not containerd-shim's `collect_metrics`: on v1 it leaves CPU usage and the memory limit at
//! zero (it reads v2 file names), which a kubelet would show as an idle, unlimited container.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use containerd_shim::protos::cgroups::metrics as v1;
use containerd_shim::protos::cgroups_v2::metrics as v2;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{Message, MessageField};

use crate::error::{Error, Result};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

fn stats_err(pid: u32, e: impl std::fmt::Display) -> Error {
    Error::Io {
        what: format!("reading the cgroup metrics of pid {pid}"),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Where a task's cgroups are: a directory per v1 controller, or its one v2 directory.
pub enum Cgroups {
    V1(HashMap<String, PathBuf>),
    V2(PathBuf),
}

pub fn cgroups_of(pid: u32) -> Result<Cgroups> {
    let cgroup =
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| stats_err(pid, e))?;
    if unified(Path::new(CGROUP_ROOT)) {
        let rel = cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .ok_or_else(|| stats_err(pid, "no cgroup v2 entry in /proc/PID/cgroup"))?;
        return Ok(Cgroups::V2(
            Path::new(CGROUP_ROOT).join(rel.trim_start_matches('/')),
        ));
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    Ok(Cgroups::V1(v1_dirs(&cgroup, &mounts)))
}

/// The metrics of `pid`'s cgroups, packed as containerd expects them.
pub fn stats(pid: u32) -> Result<Any> {
    let (type_url, value) = match cgroups_of(pid)? {
        Cgroups::V2(dir) => (
            "io.containerd.cgroups.v2.Metrics",
            v2_metrics(&dir).write_to_bytes(),
        ),
        Cgroups::V1(dirs) => (
            "io.containerd.cgroups.v1.Metrics",
            v1_metrics(&dirs).write_to_bytes(),
        ),
    };
    Ok(Any {
        // named explicitly: asking reflection would build every descriptor (events.rs)
        type_url: type_url.into(),
        value: value.map_err(|e| stats_err(pid, e))?,
        ..Default::default()
    })
}

fn unified(root: &Path) -> bool {
    nix::sys::statfs::statfs(root)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// Controller → the task's directory in that v1 hierarchy, from /proc/PID/cgroup and the
/// cgroup mounts in mountinfo (a mount's root is stripped, as for a bind-mounted hierarchy).
fn v1_dirs(cgroup: &str, mountinfo: &str) -> HashMap<String, PathBuf> {
    let mut mounts: HashMap<&str, (&str, &str)> = HashMap::new();
    for l in mountinfo.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let Some(dash) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        if f.get(dash + 1) != Some(&"cgroup") || f.len() < dash + 4 || f.len() < 5 {
            continue;
        }
        for opt in f[dash + 3].split(',') {
            mounts.entry(opt).or_insert((f[3], f[4]));
        }
    }
    let mut dirs = HashMap::new();
    for l in cgroup.lines() {
        let mut parts = l.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        for c in ctrls.split(',').filter(|c| !c.is_empty()) {
            let key = c.trim_start_matches("name=");
            if let Some((root, point)) = mounts.get(c).or_else(|| mounts.get(key)) {
                let rel = path.strip_prefix(root).unwrap_or(path);
                let dir = Path::new(point).join(rel.trim_start_matches('/'));
                dirs.insert(key.to_string(), dir);
            }
        }
    }
    dirs
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

/// A single number; "max" (no limit) reads as `max`.
fn num(dir: &Path, file: &str, max: u64) -> u64 {
    read(dir, file).map_or(0, |t| match t.trim() {
        "max" => max,
        v => v.parse().unwrap_or(0),
    })
}

/// "key value" lines (memory.stat, cpu.stat, cpuacct.stat, memory.events, …).
fn flat(dir: &Path, file: &str) -> HashMap<String, u64> {
    let text = read(dir, file).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Huge page sizes the kernel offers, as cgroup file infixes: "2MB", "1GB".
fn hugepage_sizes() -> Vec<String> {
    let mut sizes: Vec<(u64, String)> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some((kb, hugepage_name(kb)))
        })
        .collect();
    sizes.sort();
    sizes.into_iter().map(|s| s.1).collect()
}

fn hugepage_name(kb: u64) -> String {
    match kb {
        kb if kb >= 1 << 20 && kb % (1 << 20) == 0 => format!("{}GB", kb >> 20),
        kb if kb >= 1 << 10 && kb % (1 << 10) == 0 => format!("{}MB", kb >> 10),
        kb => format!("{kb}KB"),
    }
}

fn v1_metrics(dirs: &HashMap<String, PathBuf>) -> v1::Metrics {
    let mut m = v1::Metrics::new();
    if let Some(d) = dirs.get("pids") {
        m.pids = MessageField::some(v1::PidsStat {
            current: num(d, "pids.current", 0),
            limit: num(d, "pids.max", 0),
            ..Default::default()
        });
    }
    let mut cpu = v1::CPUStat::new();
    if let Some(d) = dirs.get("cpuacct") {
        // cpuacct.stat counts USER_HZ ticks; containerd reports nanoseconds.
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let ticks = flat(d, "cpuacct.stat");
        let percpu = read(d, "cpuacct.usage_percpu").unwrap_or_default();
        cpu.usage = MessageField::some(v1::CPUUsage {
            total: num(d, "cpuacct.usage", 0),
            user: ticks.get("user").copied().unwrap_or(0) * (1_000_000_000 / hz),
            kernel: ticks.get("system").copied().unwrap_or(0) * (1_000_000_000 / hz),
            per_cpu: percpu
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect(),
            ..Default::default()
        });
    }
    if let Some(d) = dirs.get("cpu") {
        let s = flat(d, "cpu.stat");
        let get = |k: &str| s.get(k).copied().unwrap_or(0);
        cpu.throttling = MessageField::some(v1::Throttle {
            periods: get("nr_periods"),
            throttled_periods: get("nr_throttled"),
            throttled_time: get("throttled_time"),
            ..Default::default()
        });
    }
    m.cpu = MessageField::some(cpu);
    if let Some(d) = dirs.get("memory") {
        m.memory = MessageField::some(v1_memory(d));
        let oom = flat(d, "memory.oom_control");
        let get = |k: &str| oom.get(k).copied().unwrap_or(0);
        m.memory_oom_control = MessageField::some(v1::MemoryOomControl {
            oom_kill_disable: get("oom_kill_disable"),
            under_oom: get("under_oom"),
            oom_kill: get("oom_kill"),
            ..Default::default()
        });
    }
    if let Some(d) = dirs.get("blkio") {
        m.blkio = MessageField::some(v1::BlkIOStat {
            io_service_bytes_recursive: blkio(d, "blkio.throttle.io_service_bytes_recursive"),
            io_serviced_recursive: blkio(d, "blkio.throttle.io_serviced_recursive"),
            ..Default::default()
        });
    }
    if let Some(d) = dirs.get("hugetlb") {
        m.hugetlb = hugepage_sizes()
            .into_iter()
            .map(|size| v1::HugetlbStat {
                usage: num(d, &format!("hugetlb.{size}.usage_in_bytes"), 0),
                max: num(d, &format!("hugetlb.{size}.max_usage_in_bytes"), 0),
                failcnt: num(d, &format!("hugetlb.{size}.failcnt"), 0),
                pagesize: size,
                ..Default::default()
            })
            .collect();
    }
    m
}

fn v1_memory(d: &Path) -> v1::MemoryStat {
    let mut s = v1::MemoryStat::new();
    for (k, v) in flat(d, "memory.stat") {
        let (total, key) = match k.strip_prefix("total_") {
            Some(rest) => (true, rest),
            None => (false, k.as_str()),
        };
        if let Some(f) = v1_memory_field(&mut s, key, total) {
            *f = v;
        }
    }
    let entry = |prefix: &str| {
        let f = |name: &str| num(d, &format!("{prefix}.{name}"), 0);
        d.join(format!("{prefix}.usage_in_bytes"))
            .exists()
            .then(|| v1::MemoryEntry {
                limit: f("limit_in_bytes"),
                usage: f("usage_in_bytes"),
                max: f("max_usage_in_bytes"),
                failcnt: f("failcnt"),
                ..Default::default()
            })
    };
    s.usage = entry("memory").into();
    s.swap = entry("memory.memsw").into();
    s.kernel = entry("memory.kmem").into();
    s.kernel_tcp = entry("memory.kmem.tcp").into();
    s
}

/// The field a memory.stat key fills (`total_` keys are the hierarchical sums).
fn v1_memory_field<'a>(s: &'a mut v1::MemoryStat, key: &str, total: bool) -> Option<&'a mut u64> {
    Some(match (key, total) {
        ("cache", false) => &mut s.cache,
        ("rss", false) => &mut s.rss,
        ("rss_huge", false) => &mut s.rss_huge,
        ("mapped_file", false) => &mut s.mapped_file,
        ("dirty", false) => &mut s.dirty,
        ("writeback", false) => &mut s.writeback,
        ("pgpgin", false) => &mut s.pg_pg_in,
        ("pgpgout", false) => &mut s.pg_pg_out,
        ("pgfault", false) => &mut s.pg_fault,
        ("pgmajfault", false) => &mut s.pg_maj_fault,
        ("inactive_anon", false) => &mut s.inactive_anon,
        ("active_anon", false) => &mut s.active_anon,
        ("inactive_file", false) => &mut s.inactive_file,
        ("active_file", false) => &mut s.active_file,
        ("unevictable", false) => &mut s.unevictable,
        ("hierarchical_memory_limit", false) => &mut s.hierarchical_memory_limit,
        ("hierarchical_memsw_limit", false) => &mut s.hierarchical_swap_limit,
        ("cache", true) => &mut s.total_cache,
        ("rss", true) => &mut s.total_rss,
        ("rss_huge", true) => &mut s.total_rss_huge,
        ("mapped_file", true) => &mut s.total_mapped_file,
        ("dirty", true) => &mut s.total_dirty,
        ("writeback", true) => &mut s.total_writeback,
        ("pgpgin", true) => &mut s.total_pg_pg_in,
        ("pgpgout", true) => &mut s.total_pg_pg_out,
        ("pgfault", true) => &mut s.total_pg_fault,
        ("pgmajfault", true) => &mut s.total_pg_maj_fault,
        ("inactive_anon", true) => &mut s.total_inactive_anon,
        ("active_anon", true) => &mut s.total_active_anon,
        ("inactive_file", true) => &mut s.total_inactive_file,
        ("active_file", true) => &mut s.total_active_file,
        ("unevictable", true) => &mut s.total_unevictable,
        _ => return None,
    })
}

/// "MAJ:MIN Op value" lines; the closing "Total value" line has no device.
fn blkio(d: &Path, file: &str) -> Vec<v1::BlkIOEntry> {
    let text = read(d, file).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, op, value) = (f.next()?, f.next()?, f.next()?);
            let (major, minor) = dev.split_once(':')?;
            let (major, minor) = (major.parse().ok()?, minor.parse().ok()?);
            Some(v1::BlkIOEntry {
                op: op.into(),
                device: device_name(major, minor),
                major,
                minor,
                value: value.parse().ok()?,
                ..Default::default()
            })
        })
        .collect()
}

/// /dev/NAME of a block device, from sysfs ("" if unknown), as containerd names them.
fn device_name(major: u64, minor: u64) -> String {
    let uevent = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/uevent"));
    uevent
        .ok()
        .and_then(|u| {
            u.lines()
                .find_map(|l| l.strip_prefix("DEVNAME=").map(|n| format!("/dev/{n}")))
        })
        .unwrap_or_default()
}

fn v2_metrics(d: &Path) -> v2::Metrics {
    let mut m = v2::Metrics::new();
    if d.join("pids.current").exists() {
        m.pids = MessageField::some(v2::PidsStat {
            current: num(d, "pids.current", 0),
            limit: num(d, "pids.max", u64::MAX),
            ..Default::default()
        });
    }
    let c = flat(d, "cpu.stat");
    let get = |k: &str| c.get(k).copied().unwrap_or(0);
    m.cpu = MessageField::some(v2::CPUStat {
        usage_usec: get("usage_usec"),
        user_usec: get("user_usec"),
        system_usec: get("system_usec"),
        nr_periods: get("nr_periods"),
        nr_throttled: get("nr_throttled"),
        throttled_usec: get("throttled_usec"),
        nr_bursts: get("nr_bursts"),
        burst_usec: get("burst_usec"),
        ..Default::default()
    });
    if d.join("memory.current").exists() {
        m.memory = MessageField::some(v2_memory(d));
        let e = flat(d, "memory.events");
        let get = |k: &str| e.get(k).copied().unwrap_or(0);
        m.memory_events = MessageField::some(v2::MemoryEvents {
            low: get("low"),
            high: get("high"),
            max: get("max"),
            oom: get("oom"),
            oom_kill: get("oom_kill"),
            oom_group_kill: get("oom_group_kill"),
            ..Default::default()
        });
    }
    if let Some(text) = read(d, "io.stat") {
        m.io = MessageField::some(v2::IOStat {
            usage: text.lines().filter_map(io_entry).collect(),
            ..Default::default()
        });
    }
    m.hugetlb = hugepage_sizes()
        .into_iter()
        .filter(|size| d.join(format!("hugetlb.{size}.current")).exists())
        .map(|size| {
            let events = flat(d, &format!("hugetlb.{size}.events"));
            v2::HugeTlbStat {
                current: num(d, &format!("hugetlb.{size}.current"), 0),
                max: num(d, &format!("hugetlb.{size}.max"), u64::MAX),
                failcnt: events.get("max").copied().unwrap_or(0),
                pagesize: size,
                ..Default::default()
            }
        })
        .collect();
    m
}

fn v2_memory(d: &Path) -> v2::MemoryStat {
    let mut s = v2::MemoryStat::new();
    for (k, v) in flat(d, "memory.stat") {
        if let Some(f) = v2_memory_field(&mut s, &k) {
            *f = v;
        }
    }
    s.usage = num(d, "memory.current", 0);
    s.usage_limit = num(d, "memory.max", u64::MAX);
    s.swap_usage = num(d, "memory.swap.current", 0);
    s.swap_limit = num(d, "memory.swap.max", u64::MAX);
    s.max_usage = num(d, "memory.peak", 0);
    s.swap_max_usage = num(d, "memory.swap.peak", 0);
    s
}

fn v2_memory_field<'a>(s: &'a mut v2::MemoryStat, key: &str) -> Option<&'a mut u64> {
    Some(match key {
        "anon" => &mut s.anon,
        "file" => &mut s.file,
        "kernel_stack" => &mut s.kernel_stack,
        "slab" => &mut s.slab,
        "sock" => &mut s.sock,
        "shmem" => &mut s.shmem,
        "file_mapped" => &mut s.file_mapped,
        "file_dirty" => &mut s.file_dirty,
        "file_writeback" => &mut s.file_writeback,
        "anon_thp" => &mut s.anon_thp,
        "inactive_anon" => &mut s.inactive_anon,
        "active_anon" => &mut s.active_anon,
        "inactive_file" => &mut s.inactive_file,
        "active_file" => &mut s.active_file,
        "unevictable" => &mut s.unevictable,
        "slab_reclaimable" => &mut s.slab_reclaimable,
        "slab_unreclaimable" => &mut s.slab_unreclaimable,
        "pgfault" => &mut s.pgfault,
        "pgmajfault" => &mut s.pgmajfault,
        "workingset_refault" | "workingset_refault_anon" => &mut s.workingset_refault,
        "workingset_activate" | "workingset_activate_anon" => &mut s.workingset_activate,
        "workingset_nodereclaim" => &mut s.workingset_nodereclaim,
        "pgrefill" => &mut s.pgrefill,
        "pgscan" => &mut s.pgscan,
        "pgsteal" => &mut s.pgsteal,
        "pgactivate" => &mut s.pgactivate,
        "pgdeactivate" => &mut s.pgdeactivate,
        "pglazyfree" => &mut s.pglazyfree,
        "pglazyfreed" => &mut s.pglazyfreed,
        "thp_fault_alloc" => &mut s.thp_fault_alloc,
        "thp_collapse_alloc" => &mut s.thp_collapse_alloc,
        _ => return None,
    })
}

/// One io.stat line: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N".
fn io_entry(line: &str) -> Option<v2::IOEntry> {
    let mut f = line.split_whitespace();
    let (major, minor) = f.next()?.split_once(':')?;
    let mut e = v2::IOEntry {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        ..Default::default()
    };
    for kv in f {
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        let v = v.parse().unwrap_or(0);
        match k {
            "rbytes" => e.rbytes = v,
            "wbytes" => e.wbytes = v,
            "rios" => e.rios = v,
            "wios" => e.wios = v,
            _ => {}
        }
    }
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_dirs_follow_mountinfo_and_strip_a_mount_root() {
        let mounts = "30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n\
                      31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                      32 25 0:28 /outer /mnt/pids rw - cgroup cgroup rw,pids\n";
        let cgroup = "5:memory:/berth/c1\n4:cpu,cpuacct:/berth/c1\n3:pids:/outer/c1\n0::/\n";
        let d = v1_dirs(cgroup, mounts);
        assert_eq!(d["memory"], Path::new("/sys/fs/cgroup/memory/berth/c1"));
        assert_eq!(
            d["cpuacct"],
            Path::new("/sys/fs/cgroup/cpu,cpuacct/berth/c1")
        );
        assert_eq!(d["pids"], Path::new("/mnt/pids/c1"));
    }

    #[test]
    fn v1_files_fill_containerds_fields() {
        let d = tempfile::tempdir().unwrap();
        let w = |f: &str, t: &str| std::fs::write(d.path().join(f), t).unwrap();
        w(
            "memory.stat",
            "cache 4096\nrss 8192\npgpgin 3\ntotal_rss 12288\nhierarchical_memory_limit 67108864\n",
        );
        w("memory.usage_in_bytes", "12288\n");
        w("memory.limit_in_bytes", "67108864\n");
        w("memory.max_usage_in_bytes", "20480\n");
        w("memory.failcnt", "2\n");
        w(
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        );
        w("cpuacct.usage", "123456789\n");
        w("cpuacct.usage_percpu", "100000000 23456789 \n");
        w("cpuacct.stat", "user 5\nsystem 7\n");
        w(
            "cpu.stat",
            "nr_periods 10\nnr_throttled 4\nthrottled_time 999\n",
        );
        w("pids.current", "3\n");
        w("pids.max", "max\n");
        w(
            "blkio.throttle.io_service_bytes_recursive",
            "8:0 Read 512\n8:0 Write 1024\nTotal 1536\n",
        );
        let dirs: HashMap<String, PathBuf> = ["memory", "cpuacct", "cpu", "pids", "blkio"]
            .iter()
            .map(|c| (c.to_string(), d.path().to_path_buf()))
            .collect();
        let m = v1_metrics(&dirs);
        let mem = m.memory.as_ref().unwrap();
        assert_eq!(
            (mem.cache, mem.rss, mem.pg_pg_in, mem.total_rss),
            (4096, 8192, 3, 12288)
        );
        assert_eq!(mem.hierarchical_memory_limit, 67108864);
        let u = mem.usage.as_ref().unwrap();
        assert_eq!(
            (u.usage, u.limit, u.max, u.failcnt),
            (12288, 67108864, 20480, 2)
        );
        assert!(mem.swap.is_none());
        assert_eq!(m.memory_oom_control.oom_kill, 1);
        let cpu = m.cpu.usage.as_ref().unwrap();
        assert_eq!(cpu.total, 123456789);
        assert_eq!(cpu.per_cpu, vec![100000000, 23456789]);
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        assert_eq!(cpu.user, 5 * (1_000_000_000 / hz));
        assert_eq!(m.cpu.throttling.throttled_time, 999);
        assert_eq!((m.pids.current, m.pids.limit), (3, 0));
        let io = &m.blkio.io_service_bytes_recursive;
        assert_eq!(io.len(), 2);
        assert_eq!(
            (io[1].op.as_str(), io[1].major, io[1].value),
            ("Write", 8, 1024)
        );
    }

    #[test]
    fn v2_files_fill_containerds_fields() {
        let d = tempfile::tempdir().unwrap();
        let w = |f: &str, t: &str| std::fs::write(d.path().join(f), t).unwrap();
        w(
            "cpu.stat",
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 2\n",
        );
        w("memory.current", "65536\n");
        w("memory.max", "max\n");
        w("memory.swap.current", "0\n");
        w("memory.swap.max", "1048576\n");
        w(
            "memory.stat",
            "anon 4096\nfile 8192\nworkingset_refault_anon 7\npgfault 9\n",
        );
        w("memory.events", "low 0\nhigh 1\nmax 2\noom 3\noom_kill 4\n");
        w("pids.current", "2\n");
        w("pids.max", "100\n");
        w(
            "io.stat",
            "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
        );
        let m = v2_metrics(d.path());
        assert_eq!(
            (m.cpu.usage_usec, m.cpu.user_usec, m.cpu.nr_periods),
            (1500, 1000, 2)
        );
        let mem = m.memory.as_ref().unwrap();
        assert_eq!(
            (mem.usage, mem.usage_limit, mem.swap_limit),
            (65536, u64::MAX, 1048576)
        );
        assert_eq!(
            (mem.anon, mem.file, mem.workingset_refault, mem.pgfault),
            (4096, 8192, 7, 9)
        );
        assert_eq!((m.memory_events.oom, m.memory_events.oom_kill), (3, 4));
        assert_eq!((m.pids.current, m.pids.limit), (2, 100));
        std::fs::write(d.path().join("pids.max"), "max\n").unwrap();
        assert_eq!(v2_metrics(d.path()).pids.limit, u64::MAX);
        let io = &m.io.usage;
        assert_eq!((io[0].major, io[0].rbytes, io[0].wios), (8, 10, 2));
    }

    #[test]
    fn hugepage_names_match_the_cgroup_files() {
        assert_eq!(hugepage_name(2048), "2MB");
        assert_eq!(hugepage_name(1 << 20), "1GB");
        assert_eq!(hugepage_name(64), "64KB");
    }
}
