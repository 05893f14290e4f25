//! The cache artifact: an OCI image manifest whose config (media type CACHE_CONFIG) lists
//! the cache records (step key → layer, diff id, creation time: what a hit restores; the
//! config changes and history text are recomputed from the Dockerfile), and whose layers
//! are the records' layers, so a registry keeps (and garbage-collects nothing of) them.
//! An imported artifact is a stranger's: records are checked before they are offered.

use crate::digest::digest_hex;
use crate::error::{Error, Result};
use crate::plan::cache::CacheRecord;
use crate::store::types::{to_json, Descriptor, Manifest, MT_MANIFEST};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub const CACHE_CONFIG: &str = "application/vnd.berth.build.cache.v1+json";
const CONFIG_LIMIT: u64 = 4 << 20;

#[derive(Debug, Serialize, Deserialize)]
pub struct CacheConfig {
    pub records: Vec<CacheRecord>,
}

/// An artifact written to the store: its manifest bytes, config and layers.
pub struct Artifact {
    pub manifest: Vec<u8>,
    pub manifest_desc: Descriptor,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// Writes the artifact for `records` (their layer blobs must be in the store).
pub fn write(store: &Store, mut records: Vec<CacheRecord>) -> Result<Artifact> {
    records.sort_by(|a, b| a.key.cmp(&b.key));
    records.dedup_by(|a, b| a.key == b.key);
    let mut layers: Vec<Descriptor> = vec![];
    for l in records.iter().filter_map(|r| r.layer.as_ref()) {
        if !layers.iter().any(|d| d.digest == l.digest) {
            layers.push(l.clone());
        }
    }
    let config = store.put_json(CACHE_CONFIG, &CacheConfig { records })?;
    let manifest = to_json(&Manifest {
        schema_version: 2,
        media_type: Some(MT_MANIFEST.into()),
        config: config.clone(),
        layers: layers.clone(),
        annotations: None,
    });
    let manifest_desc = store.put_blob(MT_MANIFEST, &manifest)?;
    Ok(Artifact {
        manifest,
        manifest_desc,
        config,
        layers,
    })
}

/// A fetched manifest that must be a berth cache artifact.
pub fn parse_manifest(what: &str, data: &[u8]) -> Result<Manifest> {
    let m: Manifest = serde_json::from_slice(data)
        .map_err(|e| Error::invalid(format!("cache {what}"), e.to_string()))?;
    if m.config.media_type != CACHE_CONFIG {
        return Err(Error::invalid(
            format!("cache {what}"),
            format!(
                "not a berth-build cache (config type {})",
                m.config.media_type
            ),
        ));
    }
    // The config is read whole into memory: bounded before it is fetched, as a manifest is.
    if m.config.size > CONFIG_LIMIT {
        return Err(Error::invalid(
            format!("cache {what}"),
            format!("config of {} bytes is over 4 MiB", m.config.size),
        ));
    }
    Ok(m)
}

/// What an imported artifact offers: its well-formed records whose layer it holds.
#[derive(Debug, Default)]
pub struct Offer {
    pub records: HashMap<String, CacheRecord>,
    /// The artifact's layers by digest (as its manifest describes them).
    pub layers: HashMap<String, Descriptor>,
    /// Records refused (malformed, or naming a layer the artifact does not hold).
    pub refused: usize,
}

fn is_digest(s: &str) -> bool {
    digest_hex(s).is_some()
}

/// A key names a file in the store's cache dir: 64 lowercase hex digits, nothing else.
pub(crate) fn is_key(k: &str) -> bool {
    k.len() == 64
        && k.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn offer(m: &Manifest, cfg: CacheConfig) -> Offer {
    let mut o = Offer {
        layers: m
            .layers
            .iter()
            .filter(|l| is_digest(&l.digest))
            .map(|l| (l.digest.clone(), l.clone()))
            .collect(),
        ..Default::default()
    };
    for mut r in cfg.records {
        let ok = is_key(&r.key)
            && match &r.layer {
                None => true,
                Some(l) => {
                    let held = o.layers.get(&l.digest);
                    let ok = held.is_some_and(|h| h.size == l.size)
                        && is_digest(&r.diff_id)
                        && is_digest(&r.chain_id);
                    // The manifest's descriptor is the one fetched and checked.
                    r.layer = held.cloned();
                    ok
                }
            };
        match ok {
            true => {
                o.records.insert(r.key.clone(), r);
            }
            false => o.refused += 1,
        }
    }
    o
}
