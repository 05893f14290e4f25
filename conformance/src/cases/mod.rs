//! The cases, one module per spec area, each case naming its spec section.

pub mod config;
pub mod hooks;
pub mod linux_cgroups;
pub mod linux_devices;
pub mod linux_ns;
pub mod linux_security;
pub mod mount_ns_absent;
pub mod newer;
pub mod process;
pub mod runtime;
pub mod schema;

use crate::case::Case;
use serde_json::{json, Value};
use std::path::PathBuf;

/// Settings cases need when they are built.
pub struct Ctx {
    pub schema_dir: PathBuf,
}

/// Every case, in report order.
pub fn all(ctx: &Ctx) -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(runtime::cases());
    v.extend(schema::cases(ctx));
    v.extend(config::cases());
    v.extend(process::cases());
    v.extend(hooks::cases());
    v.extend(linux_ns::cases());
    v.extend(mount_ns_absent::cases());
    v.extend(linux_devices::cases());
    v.extend(linux_cgroups::cases());
    v.extend(linux_security::cases());
    v.extend(newer::cases());
    v
}

/// Set `pointer` in `cfg` to `value`, creating intermediate objects.
pub fn set(cfg: &mut Value, pointer: &str, value: Value) {
    let mut cur = cfg;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let obj = cur.as_object_mut().expect("object");
        if i == parts.len() - 1 {
            obj.insert(part.to_string(), value);
            return;
        }
        cur = obj.entry(part.to_string()).or_insert_with(|| json!({}));
    }
}

/// Append `value` to the array at `pointer`, creating it.
pub fn push(cfg: &mut Value, pointer: &str, value: Value) {
    if cfg.pointer(pointer).and_then(Value::as_array).is_none() {
        set(cfg, pointer, json!([]));
    }
    if let Some(a) = cfg.pointer_mut(pointer).and_then(Value::as_array_mut) {
        a.push(value);
    }
}

/// Remove a key at `pointer` (the last segment) if present.
pub fn unset(cfg: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    if let Some(obj) = cfg.pointer_mut(parent).and_then(Value::as_object_mut) {
        obj.remove(key);
    }
}

/// Set the container process args (after the probe path).
pub fn args(cfg: &mut Value, list: &[&str]) {
    set(cfg, "/process/args", json!(list));
}

/// Append probe arguments to a `report` process.
pub fn probe_args(cfg: &mut Value, extra: &[&str]) {
    for a in extra {
        push(cfg, "/process/args", json!(a));
    }
}

/// Drop namespace `kind` from linux.namespaces.
pub fn remove_ns(cfg: &mut Value, kind: &str) {
    if let Some(a) = cfg
        .pointer_mut("/linux/namespaces")
        .and_then(Value::as_array_mut)
    {
        a.retain(|n| n["type"] != kind);
    }
}

/// Add (or replace) namespace `kind`, optionally joining `path`.
pub fn add_ns(cfg: &mut Value, kind: &str, path: Option<&str>) {
    remove_ns(cfg, kind);
    let ns = match path {
        Some(p) => json!({ "type": kind, "path": p }),
        None => json!({ "type": kind }),
    };
    push(cfg, "/linux/namespaces", ns);
}

/// Compare two values, failing with a message naming `what`.
pub fn expect_eq<T: PartialEq + std::fmt::Debug>(
    what: &str,
    got: T,
    want: T,
) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

/// Require `cond`, failing with `msg`.
pub fn ensure(cond: bool, msg: impl Into<String>) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg.into())
    }
}

/// The last mount whose target is `target` in the probe's mount list.
pub fn mount_at<'a>(probe: &'a Value, target: &str) -> Option<&'a Value> {
    probe["mounts"]
        .as_array()?
        .iter()
        .rev()
        .find(|m| m["target"] == target)
}

/// Does a mount entry carry the per-mount or super option `opt`?
pub fn has_opt(mount: &Value, opt: &str) -> bool {
    let inm = |k: &str| {
        mount[k]
            .as_array()
            .is_some_and(|a| a.iter().any(|o| o == opt))
    };
    inm("options") || inm("superopts")
}

/// A device entry from the probe's /dev walk.
pub fn device<'a>(probe: &'a Value, path: &str) -> Option<&'a Value> {
    probe["devices"]
        .as_array()?
        .iter()
        .find(|d| d["path"] == path)
}

/// Capability name → bit number.
pub fn cap_bit(name: &str) -> Option<u32> {
    CAPS.iter().position(|c| *c == name).map(|i| i as u32)
}

pub const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Bit mask of a list of capability names.
pub fn cap_mask(names: &[&str]) -> u64 {
    names
        .iter()
        .filter_map(|n| cap_bit(n))
        .fold(0u64, |m, b| m | (1u64 << b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_creates_intermediate_objects() {
        let mut v = json!({});
        set(&mut v, "/linux/resources/memory/limit", json!(5));
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 5);
        push(&mut v, "/linux/namespaces", json!({"type": "pid"}));
        add_ns(&mut v, "pid", Some("/proc/1/ns/pid"));
        assert_eq!(
            v["linux"]["namespaces"],
            json!([{"type": "pid", "path": "/proc/1/ns/pid"}])
        );
        unset(&mut v, "/linux/resources");
        assert!(v["linux"].get("resources").is_none());
    }

    #[test]
    fn cap_masks() {
        assert_eq!(cap_mask(&["CAP_CHOWN", "CAP_KILL"]), 0b10_0001);
        assert_eq!(cap_bit("CAP_CHECKPOINT_RESTORE"), Some(40));
    }
}
