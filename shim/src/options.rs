//! Runtime options containerd passes with Create (runc's `Options` message: BinaryName, Root),
//! remembered in the bundle so the `delete` subcommand finds the same binary and root.

use std::path::Path;

use containerd_shim::protos::protobuf::well_known_types::any::Any;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::runtime::{self, Berth};

const SAVED: &str = "berth-shim.json";

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeOptions {
    pub binary_name: Option<String>,
    pub root: Option<String>,
}

impl RuntimeOptions {
    /// Reads fields 6 (binary_name) and 7 (root) of `containerd.runc.v1.Options`; other
    /// option types carry nothing for berth.
    pub fn from_any(any: Option<&Any>) -> Result<RuntimeOptions> {
        let mut opts = RuntimeOptions::default();
        let Some(any) = any.filter(|a| a.type_url.ends_with("runc.v1.Options")) else {
            return Ok(opts);
        };
        let bad = || Error::InvalidArgument(format!("malformed runtime options {}", any.type_url));
        let mut buf = any.value.as_slice();
        while !buf.is_empty() {
            let tag = varint(&mut buf).ok_or_else(bad)?;
            let len = match tag & 7 {
                0 => {
                    varint(&mut buf).ok_or_else(bad)?;
                    continue;
                }
                1 => 8,
                5 => 4,
                2 => varint(&mut buf).ok_or_else(bad)? as usize,
                _ => return Err(bad()),
            };
            if len > buf.len() {
                return Err(bad());
            }
            let (field, rest) = buf.split_at(len);
            buf = rest;
            let text = || String::from_utf8(field.to_vec()).map_err(|_| bad());
            match tag >> 3 {
                6 if tag & 7 == 2 => opts.binary_name = Some(text()?),
                7 if tag & 7 == 2 => opts.root = Some(text()?),
                _ => {}
            }
        }
        Ok(opts)
    }

    pub fn berth(&self, namespace: &str, bundle: &Path) -> Berth {
        let root = match self.root.as_deref().filter(|r| !r.is_empty()) {
            Some(r) => Path::new(r).join(namespace),
            None => runtime::default_root(namespace),
        };
        Berth::new(runtime::locate(self.binary_name.as_deref()), root, bundle)
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

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for (i, b) in buf.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_binary_name_and_root() {
        // no_pivot_root=true (1), binary_name="berth" (6), root="/r" (7)
        let mut value = vec![0x08, 0x01, 0x32, 5];
        value.extend(b"berth");
        value.extend([0x3a, 2]);
        value.extend(b"/r");
        let any = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value,
            ..Default::default()
        };
        let o = RuntimeOptions::from_any(Some(&any)).unwrap();
        assert_eq!(o.binary_name.as_deref(), Some("berth"));
        assert_eq!(o.root.as_deref(), Some("/r"));
        assert_eq!(
            RuntimeOptions::from_any(None).unwrap(),
            RuntimeOptions::default()
        );
    }
}
