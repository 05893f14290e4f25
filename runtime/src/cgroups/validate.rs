//! Checks on linux.resources made before any cgroup file is written, so that a bad value is
//! refused with its field named and the container left as it was: negative numbers other
//! than -1 (unlimited), out-of-range weights, block devices the host does not have, cpusets
//! outside what the parent cgroup may use, unified keys on a v1 host.

use super::plan::Host;
use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxResources};
use std::collections::BTreeSet;
use std::path::Path;

fn bad(field: &str, msg: impl std::fmt::Display) -> Error {
    Error::Other(format!("{field}: {msg}"))
}

/// -1 means unlimited; anything lower is a mistake the kernel would report as EINVAL.
fn not_below_minus_one(field: &str, v: Option<i64>) -> Result<()> {
    match v {
        Some(n) if n < -1 => Err(bad(
            field,
            format!("{n} is negative (only -1, unlimited, may be)"),
        )),
        _ => Ok(()),
    }
}

pub fn check(host: &Host, v2_only: bool, r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        let f = |n: &str| format!("linux.resources.memory.{n}");
        for (v, n) in [
            (m.limit(), "limit"),
            (m.reservation(), "reservation"),
            (m.swap(), "swap"),
            (m.kernel(), "kernel"),
            (m.kernel_tcp(), "kernelTCP"),
        ] {
            not_below_minus_one(&f(n), v)?;
        }
        if let (Some(l), Some(s)) = (m.limit(), m.swap()) {
            if l >= 0 && s >= 0 && s < l {
                return Err(bad(
                    &f("swap"),
                    format!("{s} is below memory.limit {l} (swap is memory+swap, so at least the limit)"),
                ));
            }
        }
        if let Some(s) = m.swappiness().filter(|s| *s > 100) {
            return Err(bad(&f("swappiness"), format!("{s} is not in 0-100")));
        }
    }
    if let Some(c) = r.cpu() {
        cpu(host, c)?;
    }
    if let Some(p) = r.pids() {
        not_below_minus_one("linux.resources.pids.limit", Some(p.limit()))?;
    }
    if let Some(b) = r.block_io() {
        block_io(b)?;
    }
    for k in r.unified().iter().flatten().map(|(k, _)| k) {
        let field = format!("linux.resources.unified.{k}");
        if !v2_only {
            return Err(bad(
                &field,
                "needs a cgroup v2 host; this host runs cgroup v1 controllers",
            ));
        }
        if k.contains('/') || k.contains("..") || k.is_empty() {
            return Err(bad(&field, "not a cgroup file name"));
        }
    }
    Ok(())
}

fn cpu(host: &Host, c: &LinuxCpu) -> Result<()> {
    let f = |n: &str| format!("linux.resources.cpu.{n}");
    not_below_minus_one(&f("quota"), c.quota())?;
    not_below_minus_one(&f("realtimeRuntime"), c.realtime_runtime())?;
    if let Some(i) = c.idle().filter(|i| !matches!(i, 0 | 1)) {
        return Err(bad(&f("idle"), format!("{i} is not 0 or 1")));
    }
    let sets = [
        (
            c.cpus(),
            "cpus",
            [
                "cpuset.effective_cpus",
                "cpuset.cpus.effective",
                "cpuset.cpus",
            ],
        ),
        (
            c.mems(),
            "mems",
            [
                "cpuset.effective_mems",
                "cpuset.mems.effective",
                "cpuset.mems",
            ],
        ),
    ];
    for (want, name, parent_files) in sets {
        let Some(want) = want.as_deref().filter(|s| !s.is_empty()) else {
            continue;
        };
        let field = f(name);
        let asked = parse_list(want)
            .ok_or_else(|| bad(&field, format!("{want:?} is not a list like 0-3,5")))?;
        // The parent's effective set: what the kernel lets this cgroup take.
        let Some(parent) = host
            .find("cpuset.cpus")
            .and_then(|p| p.parent()?.parent().map(Path::to_path_buf))
        else {
            continue;
        };
        let Some((file, have)) = parent_files.iter().find_map(|pf| {
            let s = std::fs::read_to_string(parent.join(pf)).ok()?;
            Some((parent.join(pf), s.trim().to_string()))
        }) else {
            continue;
        };
        let avail = parse_list(&have).unwrap_or_default();
        let missing: Vec<String> = asked.difference(&avail).map(u32::to_string).collect();
        if !missing.is_empty() {
            return Err(bad(
                &field,
                format!(
                    "{want:?}: {} {} not in the parent cgroup's set {have:?} ({})",
                    missing.join(","),
                    if missing.len() == 1 { "is" } else { "are" },
                    file.display()
                ),
            ));
        }
    }
    Ok(())
}

/// "0-3,5" → {0,1,2,3,5}; None when malformed.
fn parse_list(s: &str) -> Option<BTreeSet<u32>> {
    let mut out = BTreeSet::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b): (u32, u32) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let n = part.trim().parse().ok()?;
                (n, n)
            }
        };
        if a > b || b - a > 65_536 {
            return None;
        }
        out.extend(a..=b);
    }
    Some(out)
}

fn block_io(b: &LinuxBlockIo) -> Result<()> {
    let f = |n: &str| format!("linux.resources.blockIO.{n}");
    let weight = |field: String, v: Option<u16>| match v {
        Some(w) if !(10..=1000).contains(&w) => Err(bad(&field, format!("{w} is not in 10-1000"))),
        _ => Ok(()),
    };
    weight(f("weight"), b.weight())?;
    weight(f("leafWeight"), b.leaf_weight())?;
    let mut devs: Vec<(String, i64, i64)> = Vec::new();
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let field = f(&format!("weightDevice[{i}]"));
        weight(format!("{field}.weight"), d.weight())?;
        weight(format!("{field}.leafWeight"), d.leaf_weight())?;
        devs.push((field, d.major(), d.minor()));
    }
    let lists = [
        (b.throttle_read_bps_device(), "throttleReadBpsDevice"),
        (b.throttle_write_bps_device(), "throttleWriteBpsDevice"),
        (b.throttle_read_iops_device(), "throttleReadIOPSDevice"),
        (b.throttle_write_iops_device(), "throttleWriteIOPSDevice"),
    ];
    for (list, name) in lists {
        for (i, d) in list.iter().flatten().enumerate() {
            devs.push((f(&format!("{name}[{i}]")), d.major(), d.minor()));
        }
    }
    for (field, major, minor) in devs {
        // Every block device the kernel knows is in /sys/dev/block as MAJOR:MINOR.
        if !Path::new(&format!("/sys/dev/block/{major}:{minor}")).exists() {
            return Err(bad(
                &field,
                format!("no block device {major}:{minor} on this host"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn check_json(dirs: &[PathBuf], v: serde_json::Value) -> Result<()> {
        let r: LinuxResources = serde_json::from_value(v).unwrap();
        check(&Host { dirs }, false, &r)
    }

    #[test]
    fn lists_parse() {
        assert_eq!(
            parse_list("0-2,5").unwrap().into_iter().collect::<Vec<_>>(),
            [0, 1, 2, 5]
        );
        assert!(parse_list("2-1").is_none());
        assert!(parse_list("x").is_none());
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (serde_json::json!({"memory": {"limit": -2}}), "memory.limit"),
            (
                serde_json::json!({"memory": {"limit": 100, "swap": 50}}),
                "memory.swap",
            ),
            (
                serde_json::json!({"memory": {"swappiness": 101}}),
                "memory.swappiness",
            ),
            (serde_json::json!({"cpu": {"quota": -5}}), "cpu.quota"),
            (serde_json::json!({"cpu": {"idle": 3}}), "cpu.idle"),
            (serde_json::json!({"pids": {"limit": -7}}), "pids.limit"),
            (
                serde_json::json!({"blockIO": {"weight": 5}}),
                "blockIO.weight",
            ),
            (
                serde_json::json!({"blockIO": {"throttleReadBpsDevice": [{"major": 4095, "minor": 4095, "rate": 1}]}}),
                "blockIO.throttleReadBpsDevice[0]",
            ),
            (
                serde_json::json!({"unified": {"memory.max": "1"}}),
                "unified.memory.max",
            ),
        ];
        for (v, field) in cases {
            let e = check_json(&[], v).unwrap_err().to_string();
            assert!(e.starts_with(&format!("linux.resources.{field}:")), "{e}");
        }
        assert!(check_json(
            &[],
            serde_json::json!({"memory": {"limit": -1, "swap": -1}, "cpu": {"quota": -1}})
        )
        .is_ok());
    }

    #[test]
    fn cpuset_outside_the_parent_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let child = t.path().join("c");
        std::fs::create_dir(&child).unwrap();
        std::fs::write(t.path().join("cpuset.effective_cpus"), "0-1\n").unwrap();
        std::fs::write(t.path().join("cpuset.effective_mems"), "0\n").unwrap();
        std::fs::write(child.join("cpuset.cpus"), "0-1").unwrap();
        let dirs = [child];
        let e = check_json(&dirs, serde_json::json!({"cpu": {"cpus": "1,99"}})).unwrap_err();
        assert!(
            e.to_string().starts_with("linux.resources.cpu.cpus:"),
            "{e}"
        );
        assert!(e.to_string().contains("99 is not"), "{e}");
        let e = check_json(&dirs, serde_json::json!({"cpu": {"mems": "1"}})).unwrap_err();
        assert!(
            e.to_string().starts_with("linux.resources.cpu.mems:"),
            "{e}"
        );
        assert!(check_json(
            &dirs,
            serde_json::json!({"cpu": {"cpus": "1", "mems": "0"}})
        )
        .is_ok());
    }
}
