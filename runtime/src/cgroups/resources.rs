//! linux.resources written to the container's cgroup files: the v1 controllers one file
//! each, or the unified (v2) equivalents. Every failed write names the config field.

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};
use std::path::{Path, PathBuf};

/// A write to do: (config field, controller file, value).
type Write = (String, &'static str, String);

fn w(field: &str, file: &'static str, v: impl ToString) -> Write {
    (field.to_string(), file, v.to_string())
}

/// The files a v1 host gets, in the order they must be written.
pub fn v1_writes(r: &LinuxResources) -> Vec<Write> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        let f = "linux.resources.memory";
        m.limit()
            .map(|v| out.push(w(&format!("{f}.limit"), "memory.limit_in_bytes", v)));
        m.reservation().map(|v| {
            out.push(w(
                &format!("{f}.reservation"),
                "memory.soft_limit_in_bytes",
                v,
            ))
        });
        m.swap()
            .map(|v| out.push(w(&format!("{f}.swap"), "memory.memsw.limit_in_bytes", v)));
        m.kernel()
            .map(|v| out.push(w(&format!("{f}.kernel"), "memory.kmem.limit_in_bytes", v)));
        m.kernel_tcp().map(|v| {
            out.push(w(
                &format!("{f}.kernelTCP"),
                "memory.kmem.tcp.limit_in_bytes",
                v,
            ))
        });
        m.swappiness()
            .map(|v| out.push(w(&format!("{f}.swappiness"), "memory.swappiness", v)));
        if m.disable_oom_killer() == Some(true) {
            out.push(w(&format!("{f}.disableOOMKiller"), "memory.oom_control", 1));
        }
    }
    if let Some(c) = r.cpu() {
        let f = "linux.resources.cpu";
        c.shares()
            .map(|v| out.push(w(&format!("{f}.shares"), "cpu.shares", v)));
        c.period()
            .map(|v| out.push(w(&format!("{f}.period"), "cpu.cfs_period_us", v)));
        c.quota()
            .map(|v| out.push(w(&format!("{f}.quota"), "cpu.cfs_quota_us", v)));
        c.burst()
            .map(|v| out.push(w(&format!("{f}.burst"), "cpu.cfs_burst_us", v)));
        c.realtime_period()
            .map(|v| out.push(w(&format!("{f}.realtimePeriod"), "cpu.rt_period_us", v)));
        c.realtime_runtime()
            .map(|v| out.push(w(&format!("{f}.realtimeRuntime"), "cpu.rt_runtime_us", v)));
    }
    shared_writes(r, &mut out);
    if let Some(b) = r.block_io() {
        let f = "linux.resources.blockIO";
        b.weight()
            .map(|v| out.push(w(&format!("{f}.weight"), "blkio.weight", v)));
        b.leaf_weight()
            .map(|v| out.push(w(&format!("{f}.leafWeight"), "blkio.leaf_weight", v)));
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            d.weight().map(|v| {
                out.push(w(
                    &format!("{f}.weightDevice[{i}]"),
                    "blkio.weight_device",
                    format!("{}:{} {v}", d.major(), d.minor()),
                ))
            });
        }
        let lists = [
            (
                b.throttle_read_bps_device(),
                "throttleReadBpsDevice",
                "blkio.throttle.read_bps_device",
            ),
            (
                b.throttle_write_bps_device(),
                "throttleWriteBpsDevice",
                "blkio.throttle.write_bps_device",
            ),
            (
                b.throttle_read_iops_device(),
                "throttleReadIOPSDevice",
                "blkio.throttle.read_iops_device",
            ),
            (
                b.throttle_write_iops_device(),
                "throttleWriteIOPSDevice",
                "blkio.throttle.write_iops_device",
            ),
        ];
        for (list, name, file) in lists {
            for (i, d) in list.iter().flatten().enumerate() {
                out.push(w(
                    &format!("{f}.{name}[{i}]"),
                    file,
                    format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                ));
            }
        }
    }
    if let Some(n) = r.network() {
        n.class_id()
            .map(|v| out.push(w("linux.resources.network.classID", "net_cls.classid", v)));
        for (i, p) in n.priorities().iter().flatten().enumerate() {
            out.push(w(
                &format!("linux.resources.network.priorities[{i}]"),
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
            ));
        }
    }
    out
}

/// The unified-hierarchy files for the same settings (cgroup v2 hosts).
pub fn v2_writes(r: &LinuxResources) -> Vec<Write> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        let f = "linux.resources.memory";
        let max = |v: i64| {
            if v < 0 {
                "max".to_string()
            } else {
                v.to_string()
            }
        };
        m.limit()
            .map(|v| out.push(w(&format!("{f}.limit"), "memory.max", max(v))));
        m.reservation()
            .map(|v| out.push(w(&format!("{f}.reservation"), "memory.low", max(v))));
        if let (Some(s), Some(l)) = (m.swap(), m.limit()) {
            // v1 counts memory+swap, v2 swap alone.
            let v = if s < 0 {
                "max".to_string()
            } else {
                (s - l).max(0).to_string()
            };
            out.push(w(&format!("{f}.swap"), "memory.swap.max", v));
        }
    }
    if let Some(c) = r.cpu() {
        let f = "linux.resources.cpu";
        // runc's conversion of shares [2, 262144] to weight [1, 10000].
        c.shares().map(|s| {
            out.push(w(
                &format!("{f}.shares"),
                "cpu.weight",
                1 + ((s.clamp(2, 262_144) - 2) * 9999) / 262_142,
            ))
        });
        if c.quota().is_some() || c.period().is_some() {
            let q = c
                .quota()
                .filter(|q| *q > 0)
                .map(|q| q.to_string())
                .unwrap_or_else(|| "max".into());
            out.push(w(
                &format!("{f}.quota"),
                "cpu.max",
                format!("{q} {}", c.period().unwrap_or(100_000)),
            ));
        }
    }
    shared_writes(r, &mut out);
    out
}

/// Settings whose files are named alike in v1 and v2: cpu.idle, cpuset.cpus/mems, pids.max.
fn shared_writes(r: &LinuxResources, out: &mut Vec<Write>) {
    if let Some(c) = r.cpu() {
        let f = "linux.resources.cpu";
        c.idle()
            .map(|v| out.push(w(&format!("{f}.idle"), "cpu.idle", v)));
        let sets = [
            (c.cpus(), "cpus", "cpuset.cpus"),
            (c.mems(), "mems", "cpuset.mems"),
        ];
        for (v, name, file) in sets {
            if let Some(v) = v.as_ref().filter(|s| !s.is_empty()) {
                out.push(w(&format!("{f}.{name}"), file, v));
            }
        }
    }
    if let Some(p) = r.pids() {
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".into()
        };
        out.push(w("linux.resources.pids.limit", "pids.max", v));
    }
}

/// Writes one setting into the first of `dirs` that has the file.
fn write_one(dirs: &[PathBuf], (field, file, value): &Write) -> Result<()> {
    let Some(dir) = dirs.iter().find(|d| d.join(file).exists()) else {
        return Err(Error::Other(format!(
            "{field}: this kernel has no {file} (controller not mounted or not supported)"
        )));
    };
    std::fs::write(dir.join(file), value).map_err(|e| {
        Error::Other(format!(
            "{field}: write {value:?} to {}: {e}",
            dir.join(file).display()
        ))
    })
}

/// Applies linux.resources to the container's cgroup directories. `devices` is Some at create
/// (the device cgroup is always set up, with these extra allow rules for linux.devices); at
/// update the device rules are rewritten only when the update names some.
pub fn apply(
    dirs: &[PathBuf],
    v2_only: bool,
    r: &LinuxResources,
    devices: Option<&[String]>,
) -> Result<()> {
    let writes = if v2_only { v2_writes(r) } else { v1_writes(r) };
    for wr in &writes {
        write_one(dirs, wr)?;
    }
    for (k, v) in r.unified().iter().flatten() {
        let field = format!("linux.resources.unified.{k}");
        if !v2_only {
            return Err(Error::Other(format!(
                "{field}: needs a cgroup v2 host; this host runs cgroup v1 controllers"
            )));
        }
        if k.contains('/') || k.contains("..") {
            return Err(Error::Other(format!("{field}: not a cgroup file name")));
        }
        let f: &'static str = Box::leak(k.clone().into_boxed_str());
        write_one(dirs, &(field, f, v.clone()))?;
    }
    hugetlb(dirs, r)?;
    let extra = match devices {
        Some(extra) => Some(extra),
        None if r.devices().is_some() => Some(&[][..]),
        None => None,
    };
    let Some(extra) = extra else { return Ok(()) };
    let rules = r.devices().as_deref().unwrap_or(&[]);
    if !v2_only {
        if let Some(d) = dirs.iter().find(|d| d.join("devices.allow").exists()) {
            devices_v1(d, rules, extra)?;
        }
    } else if crate::rootless::is_rootless() {
        // As rootless runc and crun: loading a device program needs CAP_BPF and
        // CAP_SYS_ADMIN in the initial namespace, and a user namespace cannot make device
        // nodes anyway (they are bind-mounted from the host). On v1 the devices hierarchy
        // is never delegated, so it was skipped already.
    } else if let Some(d) = dirs.first() {
        super::devbpf::apply(d, &device_rules_v2(rules, extra)?)?;
    }
    Ok(())
}

/// The same rules, in the same order, as devices_v1 writes them.
fn device_rules_v2(
    rules: &[LinuxDeviceCgroup],
    extra: &[String],
) -> Result<Vec<super::devbpf::Rule>> {
    use super::devbpf::parse;
    let mut out = vec![parse(false, "a")?];
    for d in rules {
        out.push(parse(d.allow(), &device_rule(d))?);
    }
    for r in DEFAULT_ALLOW
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
    {
        out.push(parse(true, r)?);
    }
    Ok(out)
}

/// hugepageLimits: v1's hugetlb.SIZE.limit_in_bytes, or v2's hugetlb.SIZE.max. A hybrid host
/// (like this one) may have hugetlb only in its cgroup2 tree, where the controller must be
/// enabled in the parent's cgroup.subtree_control for the container's directory to get the
/// files, as runc's v2 manager enables the controllers it needs.
fn hugetlb(dirs: &[PathBuf], r: &LinuxResources) -> Result<()> {
    let limits = r.hugepage_limits().as_deref().unwrap_or(&[]);
    if limits.is_empty() {
        return Ok(());
    }
    for d in dirs {
        let ctrls = std::fs::read_to_string(d.join("cgroup.controllers")).ok();
        let has = |c: &Option<String>| {
            c.as_ref()
                .is_some_and(|c| c.split_whitespace().any(|x| x == "hugetlb"))
        };
        if ctrls.is_some() && !has(&ctrls) {
            if let Some(parent) = d.parent() {
                let avail = std::fs::read_to_string(parent.join("cgroup.controllers")).ok();
                if has(&avail) {
                    let _ = std::fs::write(parent.join("cgroup.subtree_control"), "+hugetlb");
                }
            }
        }
    }
    for (i, l) in limits.iter().enumerate() {
        let field = format!("linux.resources.hugepageLimits[{i}]");
        let size = l.page_size();
        if size.is_empty() || size.contains('/') || size.contains('.') {
            return Err(Error::Other(format!(
                "{field}.pageSize {size:?}: not a page size like 2MB"
            )));
        }
        let names = [
            format!("hugetlb.{size}.limit_in_bytes"),
            format!("hugetlb.{size}.max"),
        ];
        let Some(f) = dirs
            .iter()
            .flat_map(|d| names.iter().map(move |n| d.join(n)))
            .find(|f| f.exists())
        else {
            return Err(Error::Other(format!(
                "{field}: no hugetlb.{size} cgroup files (hugetlb controller not available, or page size {size} not supported by this kernel)"
            )));
        };
        std::fs::write(&f, l.limit().to_string()).map_err(|e| {
            Error::Other(format!(
                "{field}.limit {}: write {}: {e}",
                l.limit(),
                f.display()
            ))
        })?;
    }
    Ok(())
}

/// Devices every container may use (runc's default allow list): null, zero, full, random,
/// urandom, tty, console, ptmx and the pts, tun; plus mknod of anything.
const DEFAULT_ALLOW: [&str; 12] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

fn device_rule(d: &LinuxDeviceCgroup) -> String {
    let t = match d.typ() {
        Some(LinuxDeviceType::B) => "b",
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => "c",
        Some(LinuxDeviceType::P) => "p",
        _ => "a",
    };
    let n = |x: Option<i64>| {
        x.filter(|v| *v >= 0)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "*".into())
    };
    let access = d.access().clone().unwrap_or_else(|| "rwm".into());
    if t == "a" {
        format!("a *:* {access}")
    } else {
        format!("{t} {}:{} {access}", n(d.major()), n(d.minor()))
    }
}

/// v1 devices cgroup: deny everything, then the config's rules in order, then the defaults.
fn devices_v1(dir: &Path, rules: &[LinuxDeviceCgroup], extra: &[String]) -> Result<()> {
    let put = |file: &str, rule: &str, field: &str| {
        std::fs::write(dir.join(file), rule)
            .map_err(|e| Error::Other(format!("{field}: {file} {rule:?}: {e}")))
    };
    put("devices.deny", "a", "linux.resources.devices")?;
    for (i, d) in rules.iter().enumerate() {
        put(
            if d.allow() {
                "devices.allow"
            } else {
                "devices.deny"
            },
            &device_rule(d),
            &format!("linux.resources.devices[{i}]"),
        )?;
    }
    for r in DEFAULT_ALLOW {
        put("devices.allow", r, "linux.resources.devices (defaults)")?;
    }
    for r in extra {
        put("devices.allow", r, "linux.devices")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    // No cgroup v2-only host is at hand here: the v2 writes are checked against a temporary
    // directory standing in for the container's cgroup2 directory.
    use super::*;

    #[test]
    fn v2_files_are_written() {
        let t = tempfile::tempdir().unwrap();
        for f in [
            "memory.max",
            "memory.low",
            "memory.swap.max",
            "cpu.weight",
            "cpu.max",
            "pids.max",
            "io.weight",
        ] {
            std::fs::write(t.path().join(f), "").unwrap();
        }
        let r: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 1048576, "reservation": 524288, "swap": 2097152},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
            "pids": {"limit": 10},
            "unified": {"io.weight": "default 200"}
        }))
        .unwrap();
        apply(&[t.path().to_path_buf()], true, &r, None).unwrap();
        let rd = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap();
        assert_eq!(rd("memory.max"), "1048576");
        assert_eq!(rd("memory.low"), "524288");
        assert_eq!(rd("memory.swap.max"), "1048576");
        assert_eq!(rd("cpu.weight"), "39");
        assert_eq!(rd("cpu.max"), "50000 100000");
        assert_eq!(rd("pids.max"), "10");
        assert_eq!(rd("io.weight"), "default 200");
    }

    #[test]
    fn missing_file_names_the_field() {
        let t = tempfile::tempdir().unwrap();
        let r: LinuxResources =
            serde_json::from_value(serde_json::json!({"pids": {"limit": 10}})).unwrap();
        let e = apply(&[t.path().to_path_buf()], true, &r, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("linux.resources.pids.limit"), "{e}");
    }
}
