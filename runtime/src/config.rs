//! Loading and validating a bundle's config.json. Parse errors name the JSON path
//! (`process.args[0]`), semantic errors name the field, so a user knows what to fix.

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A parsed bundle: its config and the absolute paths derived from it.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub rootfs: PathBuf,
    pub spec: Spec,
}

impl Bundle {
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
        let config_path = dir.join("config.json");
        let spec = parse_file(&config_path)?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| cfg_err(&config_path, "root", "is required"))?;
        let rootfs = dir.join(root.path());
        let rootfs = std::fs::canonicalize(&rootfs).map_err(|e| {
            cfg_err(
                &config_path,
                "root.path",
                &format!("{}: {e}", rootfs.display()),
            )
        })?;
        if !rootfs.is_dir() {
            let msg = format!("{} is not a directory", rootfs.display());
            return Err(cfg_err(&config_path, "root.path", &msg));
        }
        validate(&spec, &config_path)?;
        Ok(Bundle {
            dir,
            config_path,
            rootfs,
            spec,
        })
    }
}

pub fn parse_file(path: &Path) -> Result<Spec> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_bytes(&data, path)
}

pub fn parse_bytes(data: &[u8], path: &Path) -> Result<Spec> {
    let first = match crate::jsonpath::from_slice::<Spec>(data) {
        Ok(spec) => return Ok(spec),
        Err(e) => e,
    };
    // What oci-spec refuses and the runtime-spec allows: capabilities this build does not
    // know (ignored with a warning), scheduler flags spelled the spec's way. Rewritten, the
    // document is parsed again; else the first error stands.
    if let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(data) {
        let mut changed = drop_unknown_capabilities(&mut doc);
        if let Some(p) = doc.get_mut("process") {
            changed |= spell_scheduler_flags(p);
        }
        if changed {
            let text = serde_json::to_vec(&doc).unwrap_or_default();
            return crate::jsonpath::from_slice::<Spec>(&text)
                .map_err(|e| cfg_err(path, &e.field, &e.msg));
        }
    }
    Err(cfg_err(path, &first.field, &first.msg))
}

/// A `process` object on its own (`exec --process FILE`), checked like config.json's.
pub fn parse_process(data: &[u8], path: &Path) -> Result<oci_spec::runtime::Process> {
    use oci_spec::runtime::Process;
    // `exec -p`: a process without `user` runs as 0:0, as runc's.
    let with_user = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .filter(|d| d.is_object() && d.get("user").is_none())
        .map(|mut d| {
            d["user"] = serde_json::json!({"uid": 0, "gid": 0});
            serde_json::to_vec(&d).unwrap_or_default()
        });
    let data = with_user.as_deref().unwrap_or(data);
    let p = match crate::jsonpath::from_slice::<Process>(data) {
        Ok(p) => p,
        Err(first) => {
            let mut doc: serde_json::Value = serde_json::from_slice(data)
                .map_err(|_| cfg_err(path, &first.field, &first.msg))?;
            if !spell_scheduler_flags(&mut doc) {
                return Err(cfg_err(path, &first.field, &first.msg));
            }
            let text = serde_json::to_vec(&doc).unwrap_or_default();
            crate::jsonpath::from_slice::<Process>(&text)
                .map_err(|e| cfg_err(path, &e.field, &e.msg))?
        }
    };
    check_user(p.user()).map_err(|(f, m)| cfg_err(path, &f, &m))?;
    validate_process_sched(&p, path)?;
    Ok(p)
}

/// The largest uid/gid a process may get, as runc allows: setresuid(2) and friends take
/// -1 (4294967295) as "leave unchanged", so such an id would keep the process root.
pub const MAX_ID: u32 = i32::MAX as u32;

/// `process.user`'s ids are in 0..=MAX_ID: Err((field, why)) names the first that is not.
pub fn check_user(u: &oci_spec::runtime::User) -> std::result::Result<(), (String, String)> {
    let extra = u.additional_gids().iter().flatten().enumerate();
    let ids = [("uid".to_string(), u.uid()), ("gid".to_string(), u.gid())]
        .into_iter()
        .chain(extra.map(|(i, g)| (format!("additionalGids[{i}]"), *g)));
    for (name, id) in ids {
        if id > MAX_ID {
            let why = format!("{id} is out of range: uids and gids must be in range 0-{MAX_ID}");
            return Err((format!("process.user.{name}"), why));
        }
    }
    Ok(())
}

/// runtime-spec: capabilities that cannot be mapped to the kernel are logged as a warning,
/// not an error (a config written for a newer kernel must still run).
fn drop_unknown_capabilities(doc: &mut serde_json::Value) -> bool {
    let Some(caps) = doc
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return false;
    };
    let mut dropped = false;
    for (set, list) in caps.iter_mut() {
        let Some(list) = list.as_array_mut() else {
            continue;
        };
        list.retain(|c| {
            let known = serde_json::from_value::<oci_spec::runtime::Capability>(c.clone()).is_ok();
            if !known {
                crate::logger::warn(&format!(
                    "process.capabilities.{set}: ignoring unknown capability {c}"
                ));
                dropped = true;
            }
            known
        });
    }
    dropped
}

/// oci-spec 0.10 spells two scheduler flags differently from runtime-spec
/// (SCHED_RESET_ON_FORK, SCHED_FLAG_D_L_OVERRUN): map the spec's names onto its names.
fn spell_scheduler_flags(process: &mut serde_json::Value) -> bool {
    let Some(flags) = process
        .pointer_mut("/scheduler/flags")
        .and_then(|f| f.as_array_mut())
    else {
        return false;
    };
    let mut changed = false;
    for f in flags {
        let ours = match f.as_str() {
            Some("SCHED_FLAG_RESET_ON_FORK") => "SCHED_RESET_ON_FORK",
            Some("SCHED_FLAG_DL_OVERRUN") => "SCHED_FLAG_D_L_OVERRUN",
            _ => continue,
        };
        *f = ours.into();
        changed = true;
    }
    changed
}

fn cfg_err(file: &Path, field: &str, msg: &str) -> Error {
    Error::Config {
        file: file.to_path_buf(),
        field: field.to_string(),
        msg: msg.to_string(),
    }
}

/// The checks runc makes before touching the system, plus the spec's MUSTs on values.
pub fn validate(spec: &Spec, file: &Path) -> Result<()> {
    let err = |field: &str, msg: &str| Err(cfg_err(file, field, msg));
    let major = spec.version().split('.').next().unwrap_or("");
    if major != "1" {
        return err(
            "ociVersion",
            &format!("unsupported version {:?} (need 1.x)", spec.version()),
        );
    }
    let Some(process) = spec.process() else {
        return err("process", "is required");
    };
    match process.args() {
        Some(a) if !a.is_empty() && !a[0].is_empty() => {}
        _ => return err("process.args", "must name the program to run"),
    }
    if !process.cwd().is_absolute() {
        return err("process.cwd", "must be an absolute path");
    }
    for (i, e) in process.env().iter().flatten().enumerate() {
        if !e.contains('=') {
            return err(
                &format!("process.env[{i}]"),
                &format!("{e:?} is not KEY=VALUE"),
            );
        }
    }
    check_user(process.user()).map_err(|(f, m)| cfg_err(file, &f, &m))?;
    validate_process_sched(process, file)?;
    crate::security::lsm::check_process(process).map_err(|(f, m)| cfg_err(file, &f, &m))?;
    validate_linux(spec, file)?;
    validate_hooks(spec, file)
}

/// Scheduling values checked before anything is set up, so bad input leaves nothing behind.
pub fn validate_process_sched(p: &oci_spec::runtime::Process, file: &Path) -> Result<()> {
    use crate::process::sched;
    if let Some(s) = p.scheduler() {
        sched::check_scheduler(s).map_err(|(f, m)| cfg_err(file, f, &m))?;
    }
    if let Some(io) = p.io_priority() {
        sched::check_io_priority(io)
            .map_err(|m| cfg_err(file, "process.ioPriority.priority", &m))?;
    }
    if let Some(a) = p.exec_cpu_affinity() {
        for (name, list) in [("initial", a.initial()), ("final", a.cpu_affinity_final())] {
            if let Some(l) = list.as_deref().filter(|l| !l.is_empty()) {
                sched::check_cpus(l)
                    .map_err(|m| cfg_err(file, &format!("process.execCPUAffinity.{name}"), &m))?;
            }
        }
    }
    Ok(())
}

fn validate_linux(spec: &Spec, file: &Path) -> Result<()> {
    let err = |field: &str, msg: &str| Err(cfg_err(file, field, msg));
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let mut seen = HashSet::new();
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            return err(
                &format!("linux.namespaces[{i}]"),
                &format!("duplicate {} namespace", ns.typ()),
            );
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return err(&format!("linux.namespaces[{i}].path"), "must be absolute");
            }
        }
    }
    let new_ns = |t: LinuxNamespaceType| {
        linux
            .namespaces()
            .iter()
            .flatten()
            .any(|n| n.typ() == t && n.path().is_none())
    };
    let has_ns = |t: LinuxNamespaceType| linux.namespaces().iter().flatten().any(|n| n.typ() == t);
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if new_ns(LinuxNamespaceType::User) && !maps {
        return err(
            "linux.uidMappings",
            "a new user namespace needs uidMappings and gidMappings",
        );
    }
    if maps && !has_ns(LinuxNamespaceType::User) {
        return err("linux.uidMappings", "given without a user namespace");
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has_ns(LinuxNamespaceType::Uts) {
        return err("hostname", "cannot be set without a UTS namespace");
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !has_ns(LinuxNamespaceType::Uts)
    {
        return err("domainname", "cannot be set without a UTS namespace");
    }
    validate_time_offsets(linux, new_ns(LinuxNamespaceType::Time), file)?;
    validate_linux_attrs(linux, file)?;
    for key in linux.sysctl().iter().flat_map(|m| m.keys()) {
        let needs = if key.starts_with("net.") {
            Some(LinuxNamespaceType::Network)
        } else if key.starts_with("kernel.msg")
            || key.starts_with("kernel.sem")
            || key.starts_with("kernel.shm")
            || key.starts_with("fs.mqueue.")
        {
            Some(LinuxNamespaceType::Ipc)
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            Some(LinuxNamespaceType::Uts)
        } else {
            None
        };
        match needs {
            Some(t) if !has_ns(t) => {
                return err(
                    &format!("linux.sysctl.{key}"),
                    &format!("needs a {t} namespace of the container's own"),
                );
            }
            None => {
                return err(
                    &format!("linux.sysctl.{key}"),
                    "is not namespaced; setting it would change the host",
                )
            }
            _ => {}
        }
    }
    Ok(())
}

/// linux.timeOffsets: a new time namespace, and only the clocks it can offset.
fn validate_time_offsets(
    linux: &oci_spec::runtime::Linux,
    new_time_ns: bool,
    file: &Path,
) -> Result<()> {
    let Some(offs) = linux.time_offsets() else {
        return Ok(());
    };
    if !new_time_ns {
        return Err(cfg_err(
            file,
            "linux.timeOffsets",
            "needs a new time namespace",
        ));
    }
    // time_namespaces(7): CLOCK_REALTIME and the rest cannot be offset.
    match offs
        .keys()
        .find(|c| !matches!(c.as_str(), "monotonic" | "boottime"))
    {
        Some(c) => Err(cfg_err(
            file,
            &format!("linux.timeOffsets.{c}"),
            "only monotonic and boottime can be offset",
        )),
        None => Ok(()),
    }
}

/// linux.personality, linux.memoryPolicy and linux.intelRdt, checked before create starts.
fn validate_linux_attrs(linux: &oci_spec::runtime::Linux, file: &Path) -> Result<()> {
    use crate::process::persona;
    if let Some(p) = linux.personality() {
        persona::personality_value(p).map_err(|m| cfg_err(file, "linux.personality", &m))?;
    }
    if let Some(m) = linux.memory_policy() {
        persona::check_memory_policy(m).map_err(|(f, m)| cfg_err(file, f, &m))?;
    }
    let mut devs: Vec<_> = linux.net_devices().iter().flatten().collect();
    devs.sort_by_key(|(h, _)| h.as_str());
    let mut names = std::collections::HashMap::new();
    for (h, dev) in devs {
        let has_net = linux
            .namespaces()
            .iter()
            .flatten()
            .any(|n| n.typ() == LinuxNamespaceType::Network);
        if !has_net {
            let m = "needs a network namespace of the container's own";
            return Err(cfg_err(file, &format!("linux.netDevices.{h}"), m));
        }
        crate::netdev::check(h, dev)
            .map_err(|m| cfg_err(file, &format!("linux.netDevices.{h}"), &m))?;
        // Two devices under one name: the second move would fail halfway (spec: an error).
        let name = dev.name().as_deref().unwrap_or(h);
        if let Some(other) = names.insert(name, h) {
            let m = format!("name {name:?} is also taken by linux.netDevices.{other}");
            return Err(cfg_err(file, &format!("linux.netDevices.{h}"), &m));
        }
    }
    if linux.intel_rdt().is_some() {
        let why = if Path::new("/sys/fs/resctrl/schemata").exists() {
            "berth does not implement Intel RDT (resctrl) yet; remove the field"
        } else {
            "Intel RDT needs the resctrl filesystem, which this host does not have \
             (no /sys/fs/resctrl); remove the field"
        };
        return Err(cfg_err(file, "linux.intelRdt", why));
    }
    Ok(())
}

fn validate_hooks(spec: &Spec, file: &Path) -> Result<()> {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    for (stage, list) in crate::hooks::stages(hooks) {
        for (i, h) in list.iter().enumerate() {
            if !h.path().is_absolute() {
                return Err(cfg_err(
                    file,
                    &format!("hooks.{stage}[{i}].path"),
                    "must be absolute",
                ));
            }
            if h.timeout().is_some_and(|t| t <= 0) {
                return Err(cfg_err(
                    file,
                    &format!("hooks.{stage}[{i}].timeout"),
                    "must be greater than zero",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_names_the_json_path() {
        let doc =
            br#"{"ociVersion":"1.0.2","process":{"args":[1],"cwd":"/","user":{"uid":0,"gid":0}}}"#;
        let e = parse_bytes(doc, Path::new("/b/config.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("process.args[0]"), "{e}");
        assert!(e.contains("/b/config.json"), "{e}");
    }

    #[test]
    fn empty_args_is_rejected_with_field() {
        let doc = br#"{"ociVersion":"1.0.2","root":{"path":"r"},"process":{"args":[],"cwd":"/","user":{"uid":0,"gid":0}}}"#;
        let spec = parse_bytes(doc, Path::new("c.json")).unwrap();
        let e = validate(&spec, Path::new("c.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("process.args"), "{e}");
    }

    #[test]
    fn ids_past_i32_max_are_refused_naming_the_field() {
        let doc = |user: &str| {
            format!(
                r#"{{"ociVersion":"1.0.2","root":{{"path":"r"}},"process":{{"args":["sh"],"cwd":"/","user":{user}}}}}"#
            )
        };
        let check = |user: &str| {
            let spec = parse_bytes(doc(user).as_bytes(), Path::new("c.json")).unwrap();
            validate(&spec, Path::new("c.json")).map_err(|e| e.to_string())
        };
        assert!(check(r#"{"uid":2147483647,"gid":2147483647,"additionalGids":[0]}"#).is_ok());
        for (user, field) in [
            (r#"{"uid":4294967295,"gid":0}"#, "process.user.uid"),
            (r#"{"uid":0,"gid":2147483648}"#, "process.user.gid"),
            (
                r#"{"uid":0,"gid":0,"additionalGids":[1,4294967295]}"#,
                "process.user.additionalGids[1]",
            ),
        ] {
            let e = check(user).unwrap_err();
            assert!(e.contains(field) && e.contains("0-2147483647"), "{e}");
        }
    }

    #[test]
    fn wrong_major_version_is_rejected() {
        let doc = br#"{"ociVersion":"2.0.0","process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}}}"#;
        let spec = parse_bytes(doc, Path::new("c.json")).unwrap();
        assert!(validate(&spec, Path::new("c.json"))
            .unwrap_err()
            .to_string()
            .contains("ociVersion"));
    }

    #[test]
    fn time_offsets_only_for_monotonic_and_boottime() {
        let doc = |clock: &str| {
            format!(
                r#"{{"ociVersion":"1.2.0","root":{{"path":"r"}},"process":{{"args":["sh"],"cwd":"/","user":{{"uid":0,"gid":0}}}},
                "linux":{{"namespaces":[{{"type":"mount"}},{{"type":"time"}}],"timeOffsets":{{"{clock}":{{"secs":1}}}}}}}}"#
            )
        };
        let check = |clock: &str| {
            let spec = parse_bytes(doc(clock).as_bytes(), Path::new("c.json")).unwrap();
            validate(&spec, Path::new("c.json")).map_err(|e| e.to_string())
        };
        assert!(check("boottime").is_ok());
        assert!(check("monotonic").is_ok());
        let e = check("realtime").unwrap_err();
        assert!(e.contains("linux.timeOffsets.realtime"), "{e}");
    }
}
