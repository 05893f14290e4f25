//! Runtime options containerd passes with Create (runc's `Options` message: BinaryName, Root,
//! SystemdCgroup, NoPivotRoot),
//! remembered in the bundle so the `delete` subcommand finds the same binary and root.

use std::path::Path;

use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::Message;
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
        let Some(any) = any.filter(|a| a.type_url.ends_with("runc.v1.Options")) else {
            return Ok(RuntimeOptions::default());
        };
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
}
