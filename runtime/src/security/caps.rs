//! The five capability sets of process.capabilities, applied with the `caps` crate.

use crate::error::{Error, Result};
use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};
use std::str::FromStr;

fn convert(set: Option<&Capabilities>) -> CapsHashSet {
    let mut out = CapsHashSet::new();
    for c in set.into_iter().flatten() {
        let name = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        match Capability::from_str(&name) {
            // Capabilities this kernel does not know cannot be granted; runc ignores them too.
            Ok(cap)
                if cap.index()
                    <= caps::runtime::thread_all_supported()
                        .iter()
                        .map(|c| c.index())
                        .max()
                        .unwrap_or(40) =>
            {
                out.insert(cap);
            }
            _ => crate::logger::debug(&format!(
                "ignoring capability {name} unknown to this kernel"
            )),
        }
    }
    out
}

/// Drops everything outside the bounding set. Needs CAP_SETPCAP, so it runs while the
/// process is still fully privileged (before the uid change).
pub fn apply_bounding(c: Option<&LinuxCapabilities>) -> Result<()> {
    let keep = convert(c.and_then(|c| c.bounding().as_ref()));
    for cap in caps::runtime::thread_all_supported() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| Error::Other(format!("drop {cap} from bounding set: {e}")))?;
        }
    }
    Ok(())
}

/// Sets permitted, inheritable, effective, then raises ambient (which needs the first two).
pub fn apply_sets(c: Option<&LinuxCapabilities>) -> Result<()> {
    let get =
        |f: fn(&LinuxCapabilities) -> &Option<Capabilities>| convert(c.and_then(|c| f(c).as_ref()));
    let (eff, perm, inh, amb) = (
        get(|c| c.effective()),
        get(|c| c.permitted()),
        get(|c| c.inheritable()),
        get(|c| c.ambient()),
    );
    let err = |what: &str, e: caps::errors::CapsError| {
        Error::Other(format!("process.capabilities.{what}: {e}"))
    };
    caps::set(None, CapSet::Inheritable, &inh).map_err(|e| err("inheritable", e))?;
    // Effective must stay a subset of permitted at every step.
    caps::set(
        None,
        CapSet::Effective,
        &eff.intersection(&perm).cloned().collect(),
    )
    .map_err(|e| err("effective", e))?;
    caps::set(None, CapSet::Permitted, &perm).map_err(|e| err("permitted", e))?;
    caps::set(None, CapSet::Effective, &eff).map_err(|e| err("effective", e))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| err("ambient", e))?;
    for cap in amb {
        // Ambient caps need to be permitted and inheritable; the kernel refuses others.
        if perm.contains(&cap) && inh.contains(&cap) {
            caps::raise(None, CapSet::Ambient, cap).map_err(|e| err("ambient", e))?;
        }
    }
    Ok(())
}

/// Every capability this kernel supports, by name (for `berth features`).
pub fn known_names() -> Vec<String> {
    let mut v: Vec<String> = caps::runtime::thread_all_supported()
        .iter()
        .map(|c| c.to_string())
        .collect();
    v.sort();
    v
}
