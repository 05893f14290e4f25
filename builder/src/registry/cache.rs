//! Build cache through a registry (`build --cache-to/--cache-from REGISTRY/REPO:TAG`):
//! the cache is an OCI manifest whose config (media type CACHE_CONFIG) lists the build
//! cache records — key → layer — of the image just built, and whose layers are those
//! records' layers. `--cache-from` pulls the manifest and the layers the store lacks
//! and adds the records, so the build's steps hit the cache as if built here.

use super::client::Client;
use super::pull::{get_blob, get_manifest};
use super::push::{push_parts, Parts};
use super::{RegistryOptions, RemoteRef};
use crate::error::{Error, Result};
use crate::plan::cache::{self, CacheRecord};
use crate::store::types::{Descriptor, Manifest, MT_MANIFEST};
use crate::store::{Image, Store};
use serde::{Deserialize, Serialize};

pub const CACHE_CONFIG: &str = "application/vnd.berth.build.cache.v1+json";

#[derive(Debug, Serialize, Deserialize)]
struct CacheConfig {
    records: Vec<CacheRecord>,
}

/// Export the cache records that produced `img`'s layers to `target`.
pub fn export(
    store: &Store,
    img: &Image,
    target: &RemoteRef,
    o: &RegistryOptions,
    out: &mut dyn FnMut(&str),
) -> Result<usize> {
    let mut records: Vec<CacheRecord> = cache::all(store)?
        .into_iter()
        .filter(|r| {
            r.layer
                .as_ref()
                .is_some_and(|l| img.manifest.layers.contains(l))
        })
        .collect();
    records.sort_by(|a, b| a.key.cmp(&b.key));
    let mut layers: Vec<Descriptor> = vec![];
    for l in &img.manifest.layers {
        if records.iter().any(|r| r.layer.as_ref() == Some(l)) && !layers.contains(l) {
            layers.push(l.clone());
        }
    }
    let config = store.put_json(CACHE_CONFIG, &CacheConfig { records })?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MT_MANIFEST.into()),
        config: config.clone(),
        layers: layers.clone(),
        annotations: None,
    };
    let bytes = crate::store::types::to_json(&manifest);
    store.put_blob(MT_MANIFEST, &bytes)?;
    let parts = Parts {
        layers: &layers,
        config: &config,
        manifest: &bytes,
        media_type: MT_MANIFEST,
    };
    push_parts(store, &parts, target, o, out)?;
    Ok(layers.len())
}

/// Import the records (and missing layers) of the cache at `from`; returns how many.
pub fn import(store: &Store, from: &RemoteRef, o: &RegistryOptions) -> Result<usize> {
    let mut c = Client::new(from, o)?;
    let (_, data) = get_manifest(&mut c, &from.reference)?;
    let m: Manifest = serde_json::from_slice(&data)
        .map_err(|e| Error::invalid(format!("cache {}", from.display()), e.to_string()))?;
    if m.config.media_type != CACHE_CONFIG {
        return Err(Error::invalid(
            format!("cache {}", from.display()),
            format!(
                "not a berth-build cache (config type {})",
                m.config.media_type
            ),
        ));
    }
    if !store.has_blob(&m.config.digest) {
        get_blob(&mut c, store, &m.config)?;
    }
    let cfg: CacheConfig = store.read_json(&m.config.digest)?;
    for l in &m.layers {
        if !store.has_blob(&l.digest) {
            get_blob(&mut c, store, l)?;
        }
    }
    for r in &cfg.records {
        if r.layer.as_ref().is_some_and(|l| store.has_blob(&l.digest)) {
            cache::put(store, r)?;
        }
    }
    Ok(cfg.records.len())
}
