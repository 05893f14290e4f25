//! linux.resources written to the container's cgroup files: the v1 controllers one file
//! each, or the unified (v2) equivalents. Every failed write names the config field.

use super::journal::Journal;
use super::plan::{self, Host, Write};
use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};
use std::path::{Path, PathBuf};

/// Applies linux.resources to the container's cgroup directories, at create and at update.
/// `devices` is Some at create (the device cgroup is always set up, with these extra allow
/// rules for linux.devices); at update the device rules are rewritten only when the update
/// names some. Bad values are refused before anything is written, and a write the kernel
/// refuses puts back every file written before it: a failed update leaves the container as
/// it was.
pub fn apply(
    dirs: &[PathBuf],
    v2_only: bool,
    r: &LinuxResources,
    devices: Option<&[String]>,
) -> Result<()> {
    let host = Host { dirs };
    super::validate::check(&host, v2_only, r)?;
    let mut writes = if v2_only {
        plan::v2_writes(r, &host)?
    } else {
        plan::v1_writes(r, &host)
    };
    for (k, v) in r.unified().iter().flatten() {
        writes.push(Write {
            field: format!("linux.resources.unified.{k}"),
            file: k.clone(),
            value: v.clone(),
        });
    }
    // At create (`devices` is Some) the cgroup is new and a failed create removes it, so
    // there is nothing to put back and no old value worth reading on the hot path.
    let mut journal = if devices.is_some() {
        Journal::off()
    } else {
        Journal::default()
    };
    let res = write_all(&host, v2_only, r, devices, &writes, &mut journal);
    if res.is_err() {
        journal.rollback();
    }
    res
}

fn write_all(
    host: &Host,
    v2_only: bool,
    r: &LinuxResources,
    devices: Option<&[String]>,
    writes: &[Write],
    journal: &mut Journal,
) -> Result<()> {
    for wr in writes {
        let Some(path) = host.find(&wr.file) else {
            let ctrl = wr.file.split('.').next().unwrap_or("");
            let why = host
                .dirs
                .first()
                .filter(|_| v2_only && !wr.file.starts_with("cgroup."))
                .and_then(|d| super::v2::missing_controller(d, ctrl));
            if let Some(why) = why {
                return Err(Error::Other(format!("{}: {why}", wr.field)));
            }
            return Err(Error::Other(format!(
                "{}: this kernel has no {} (controller not mounted or not supported)",
                wr.field, wr.file
            )));
        };
        journal.write(&wr.field, &path, &wr.value)?;
    }
    hugetlb(host.dirs, r, journal)?;
    let extra = match devices {
        Some(extra) => Some(extra),
        None if r.devices().is_some() => Some(&[][..]),
        None => None,
    };
    let Some(extra) = extra else { return Ok(()) };
    let rules = r.devices().as_deref().unwrap_or(&[]);
    if !v2_only {
        if let Some(d) = host.dirs.iter().find(|d| d.join("devices.allow").exists()) {
            journal.save_devices(d);
            devices_v1(d, rules, extra)?;
        }
    } else if crate::rootless::is_rootless() {
        // As rootless runc and crun: loading a device program needs CAP_BPF and
        // CAP_SYS_ADMIN in the initial namespace, and a user namespace cannot make device
        // nodes anyway (they are bind-mounted from the host). On v1 the devices hierarchy
        // is never delegated, so it was skipped already.
    } else if let Some(d) = host.dirs.first() {
        // The new program replaces the old one only once it is attached.
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
fn hugetlb(dirs: &[PathBuf], r: &LinuxResources, journal: &mut Journal) -> Result<()> {
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
        journal.write(&format!("{field}.limit"), &f, &l.limit().to_string())?;
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

/// The container's device rules in the order they are applied after "deny all": the
/// config's (allow, rule), then the defaults every container gets.
pub fn device_rules(r: &LinuxResources) -> Vec<(bool, String)> {
    let cfg = r.devices().iter().flatten();
    cfg.map(|d| (d.allow(), device_rule(d)))
        .chain(DEFAULT_ALLOW.iter().map(|d| (true, d.to_string())))
        .collect()
}

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

/// v1 devices cgroup: the state of "deny everything, then the config's rules in order, then
/// the defaults and linux.devices", reached by a transition from the cgroup's current rules
/// (devemu.rs), so only what changes is written.
fn devices_v1(dir: &Path, rules: &[LinuxDeviceCgroup], extra: &[String]) -> Result<()> {
    let mut target = super::devemu::State::default();
    let mut add = |allow: bool, rule: &str, field: &str| -> Result<()> {
        let r =
            super::devbpf::parse(allow, rule).map_err(|e| Error::Other(format!("{field}: {e}")))?;
        target
            .apply(&r)
            .map_err(|e| Error::Other(format!("{field}: {e}")))
    };
    add(false, "a", "linux.resources.devices")?;
    for (i, d) in rules.iter().enumerate() {
        add(
            d.allow(),
            &device_rule(d),
            &format!("linux.resources.devices[{i}]"),
        )?;
    }
    for r in DEFAULT_ALLOW {
        add(true, r, "linux.resources.devices (defaults)")?;
    }
    for r in extra {
        add(true, r, "linux.devices")?;
    }
    super::devemu::set(dir, &target)
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

    #[test]
    fn a_refused_write_puts_back_what_was_written_before_it() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("memory.max"), "max\n").unwrap();
        std::fs::write(t.path().join("cpu.weight"), "100\n").unwrap();
        // A directory where pids.max should be: its write fails as the kernel's EINVAL would.
        std::fs::create_dir(t.path().join("pids.max")).unwrap();
        let r: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 1048576}, "cpu": {"shares": 1024}, "pids": {"limit": 10}
        }))
        .unwrap();
        let e = apply(&[t.path().to_path_buf()], true, &r, None).unwrap_err();
        assert!(
            e.to_string().starts_with("linux.resources.pids.limit:"),
            "{e}"
        );
        let rd = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap();
        assert_eq!(rd("memory.max"), "max");
        assert_eq!(rd("cpu.weight"), "100");
    }

    #[test]
    fn unified_on_v1_is_refused_before_any_write() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("pids.max"), "max").unwrap();
        let r: LinuxResources = serde_json::from_value(serde_json::json!({
            "pids": {"limit": 10}, "unified": {"pids.max": "5"}
        }))
        .unwrap();
        let e = apply(&[t.path().to_path_buf()], false, &r, None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("linux.resources.unified.pids.max:"),
            "{e}"
        );
        assert_eq!(
            std::fs::read_to_string(t.path().join("pids.max")).unwrap(),
            "max"
        );
    }
}
