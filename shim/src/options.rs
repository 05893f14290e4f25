//! Runtime options containerd passes with Create (runc's `Options` message: BinaryName, Root,
//! SystemdCgroup, NoPivotRoot), remembered in the bundle so the `delete` subcommand finds the
//! same binary and root.
//!
//! containerd's CRI plugin sends runc's message only to runtime type `io.containerd.runc.v2`;
//! every other type (ours) gets the generic `runtimeoptions.v1.Options`, whose `config_body`
//! (containerd 1.7+) is the TOML of the runtime's `options` table and whose `config_path`
//! names a TOML file (1.6, where the body is not sent). Both are read here with runc's keys,
//! so `SystemdCgroup = true` under `runtimes.berth.options` works as it does for runc.

use std::path::Path;

use containerd_shim::protos::protobuf::rt::WireType;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{CodedInputStream, Message};
use containerd_shim::protos::shim::oci::Options;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::runtime::{self, Berth};

const SAVED: &str = "berth-shim.json";

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeOptions {
    pub binary_name: Option<String>,
    pub root: Option<String>,
    /// `SystemdCgroup = true`: every berth call gets --systemd-cgroup (the config's
    /// cgroupsPath is then containerd's `slice:prefix:name`).
    #[serde(default)]
    pub systemd_cgroup: bool,
    /// `NoPivotRoot = true`: create gets --no-pivot.
    #[serde(default)]
    pub no_pivot_root: bool,
}

impl RuntimeOptions {
    /// Decodes containerd's runc options (`containerd.runc.v1.Options`, the generated
    /// type): binary_name, root, systemd_cgroup and no_pivot_root; other option types carry
    /// nothing for berth.
    pub fn from_any(any: Option<&Any>) -> Result<RuntimeOptions> {
        let Some(any) = any else {
            return Ok(RuntimeOptions::default());
        };
        if any.type_url.ends_with("runtimeoptions.v1.Options") {
            return from_generic(&any.value);
        }
        if !any.type_url.ends_with("runc.v1.Options") {
            return Ok(RuntimeOptions::default());
        }
        let o = Options::parse_from_bytes(&any.value).map_err(|e| {
            Error::InvalidArgument(format!("malformed runtime options {}: {e}", any.type_url))
        })?;
        let some = |s: String| Some(s).filter(|s| !s.is_empty());
        Ok(RuntimeOptions {
            binary_name: some(o.binary_name),
            root: some(o.root),
            systemd_cgroup: o.systemd_cgroup,
            no_pivot_root: o.no_pivot_root,
        })
    }

    /// The CRI plugin writes `cgroupsPath` as `PARENT.slice:cri-containerd:ID` exactly when
    /// the pod's cgroup parent is a systemd slice (kubelet's systemd driver); with containerd
    /// 1.6 that is all a non-runc runtime learns of `SystemdCgroup`, so such a path turns the
    /// systemd driver on, as runc's shim would have been told to.
    pub fn infer_systemd(&mut self, cgroups_path: Option<&str>) {
        let Some(path) = cgroups_path else { return };
        let parts: Vec<&str> = path.split(':').collect();
        if parts.len() == 3 && parts[0].ends_with(".slice") && !path.contains('/') {
            self.systemd_cgroup = true;
        }
    }

    pub fn berth(&self, namespace: &str, bundle: &Path) -> Berth {
        let root = match self.root.as_deref().filter(|r| !r.is_empty()) {
            Some(r) => Path::new(r).join(namespace),
            None => runtime::default_root(namespace),
        };
        let mut b = Berth::new(runtime::locate(self.binary_name.as_deref()), root, bundle);
        b.systemd_cgroup = self.systemd_cgroup;
        b.no_pivot = self.no_pivot_root;
        b
    }

    pub fn save(&self, bundle: &Path) -> Result<()> {
        let path = bundle.join(SAVED);
        let json = serde_json::to_vec(self).unwrap_or_default();
        std::fs::write(&path, json).map_err(Error::io(format!("writing {}", path.display())))
    }

    /// What Create saved; the defaults if the bundle has nothing (Create never ran).
    pub fn load(bundle: &Path) -> RuntimeOptions {
        std::fs::read(bundle.join(SAVED))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}

/// Decodes `runtimeoptions.v1.Options` (type_url = 1, config_path = 2, config_body = 3);
/// containerd-shim-protos has no generated type for it, so the three fields are read with
/// protobuf's own stream reader.
fn from_generic(value: &[u8]) -> Result<RuntimeOptions> {
    let bad =
        |e: String| Error::InvalidArgument(format!("malformed runtimeoptions.v1.Options: {e}"));
    let mut is = CodedInputStream::from_bytes(value);
    let (mut path, mut body) = (String::new(), Vec::new());
    while let Some(tag) = is.read_raw_tag_or_eof().map_err(|e| bad(e.to_string()))? {
        let read = match tag >> 3 {
            2 => is.read_string().map(|s| path = s),
            3 => is.read_bytes().map(|b| body = b),
            _ => match WireType::new(tag & 7) {
                Some(w) => is.skip_field(w),
                None => return Err(bad(format!("wire type {}", tag & 7))),
            },
        };
        read.map_err(|e| bad(e.to_string()))?;
    }
    if body.is_empty() && !path.is_empty() {
        body = std::fs::read(&path).map_err(Error::io(format!(
            "reading runtime options ConfigPath {path}"
        )))?;
    }
    let text = String::from_utf8(body).map_err(|e| bad(e.to_string()))?;
    from_toml(&text, if path.is_empty() { "ConfigBody" } else { &path })
}

/// runc's option keys in the runtime's TOML; unknown keys are ignored, as the runc shim's
/// TOML decoding ignores them, but a known key of the wrong type is an error.
fn from_toml(text: &str, what: &str) -> Result<RuntimeOptions> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Toml {
        binary_name: Option<String>,
        root: Option<String>,
        #[serde(default)]
        systemd_cgroup: bool,
        #[serde(default)]
        no_pivot_root: bool,
    }
    let t: Toml = toml::from_str(text).map_err(|e| {
        let first = e.to_string().lines().next().unwrap_or_default().to_string();
        Error::InvalidArgument(format!("runtime options {what}: {first}"))
    })?;
    let some = |s: Option<String>| s.filter(|s| !s.is_empty());
    Ok(RuntimeOptions {
        binary_name: some(t.binary_name),
        root: some(t.root),
        systemd_cgroup: t.systemd_cgroup,
        no_pivot_root: t.no_pivot_root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_binary_name_and_root() {
        // no_pivot_root=true (1), binary_name="berth" (6), root="/r" (7), systemd_cgroup (9)
        let mut value = vec![0x08, 0x01, 0x32, 5];
        value.extend(b"berth");
        value.extend([0x3a, 2]);
        value.extend(b"/r");
        value.extend([0x48, 0x01]);
        let any = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value,
            ..Default::default()
        };
        let o = RuntimeOptions::from_any(Some(&any)).unwrap();
        assert_eq!(o.binary_name.as_deref(), Some("berth"));
        assert_eq!(o.root.as_deref(), Some("/r"));
        assert!(o.systemd_cgroup && o.no_pivot_root);
        let b = o.berth("default", Path::new("/b"));
        assert!(b.systemd_cgroup && b.no_pivot);
        assert_eq!(
            RuntimeOptions::from_any(None).unwrap(),
            RuntimeOptions::default()
        );
    }

    fn generic(path: &str, body: &str) -> Any {
        let mut value = vec![0x0a, 3];
        value.extend(b"x/y");
        if !path.is_empty() {
            value.extend([0x12, path.len() as u8]);
            value.extend(path.as_bytes());
        }
        if !body.is_empty() {
            value.extend([0x1a, body.len() as u8]);
            value.extend(body.as_bytes());
        }
        Any {
            type_url: "runtimeoptions.v1.Options".into(),
            value,
            ..Default::default()
        }
    }

    #[test]
    fn reads_cri_generic_options_body_and_path() {
        let body = "BinaryName = \"/opt/berth\"\nSystemdCgroup = true\nShimCgroup = \"\"\n";
        let o = RuntimeOptions::from_any(Some(&generic("", body))).unwrap();
        assert_eq!(o.binary_name.as_deref(), Some("/opt/berth"));
        assert!(o.systemd_cgroup && !o.no_pivot_root);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.toml");
        std::fs::write(&file, "NoPivotRoot = true\n").unwrap();
        let o = RuntimeOptions::from_any(Some(&generic(file.to_str().unwrap(), ""))).unwrap();
        assert!(o.no_pivot_root && !o.systemd_cgroup);

        let e = RuntimeOptions::from_any(Some(&generic("", "SystemdCgroup = \"yes\"")));
        assert!(e.unwrap_err().to_string().contains("ConfigBody"));
        let e = RuntimeOptions::from_any(Some(&generic("/nonexistent/berth.toml", "")));
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/berth.toml"));
    }

    #[test]
    fn a_cri_systemd_cgroups_path_turns_the_systemd_driver_on() {
        let mut o = RuntimeOptions::default();
        o.infer_systemd(Some("/kubepods/besteffort/pod1/abc"));
        o.infer_systemd(Some("a:b:c"));
        o.infer_systemd(None);
        assert!(!o.systemd_cgroup);
        o.infer_systemd(Some("kubepods-besteffort-pod1.slice:cri-containerd:abc"));
        assert!(o.systemd_cgroup);
    }
}
