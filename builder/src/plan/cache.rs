//! Build cache records: cache key → the layer a step produced.
//!
//! A key is a hash chain: key(step) = H(key(parent step), instruction after expansion,
//! build args in use, content hash of copied files). Records live in
//! STORE/berth/cache/<key>.json and are roots for `prune` (unless `prune --cache`).

use crate::error::{Error, IoContext, Result};
use crate::store::types::Descriptor;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::fs;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheRecord {
    pub key: String,
    /// None: the step changed nothing (no layer, an empty_layer history entry).
    pub layer: Option<Descriptor>,
    pub diff_id: String,
    pub chain_id: String,
    pub created: String,
}

impl CacheRecord {
    pub fn blobs(&self) -> Vec<String> {
        self.layer.iter().map(|l| l.digest.clone()).collect()
    }
}

fn path(store: &Store, key: &str) -> std::path::PathBuf {
    store.cache_dir().join(format!("{key}.json"))
}

/// The record for `key`: the store's own if its blob still exists (marked used now, by its
/// mtime: `prune --keep-storage/--filter until=` drop the least recently used first), else
/// one of the imported caches' (--cache-from, its layer fetched only when needed).
pub fn get(store: &Store, key: &str) -> Option<CacheRecord> {
    let own = read(store, key).filter(|rec| rec.layer.iter().all(|l| store.has_blob(&l.digest)));
    if own.is_some() {
        crate::store::cachegc::mark_used(&path(store, key));
        return own;
    }
    store.session()?.record(key)
}

/// The store's record for `key`, whether or not its blob is there.
pub fn read(store: &Store, key: &str) -> Option<CacheRecord> {
    let data = fs::read(path(store, key)).ok()?;
    serde_json::from_slice(&data).ok()
}

pub fn put(store: &Store, rec: &CacheRecord) -> Result<()> {
    let data = serde_json::to_vec(rec).map_err(|e| Error::Build(e.to_string()))?;
    store.write_atomic(&path(store, &rec.key), &data)?;
    crate::store::cachegc::mark_used(&path(store, &rec.key));
    Ok(())
}

pub fn all(store: &Store) -> Result<Vec<CacheRecord>> {
    let dir = store.cache_dir();
    let mut out = vec![];
    for e in fs::read_dir(&dir).at(&dir)? {
        let e = e.at(&dir)?;
        // Only regular files (never a link out of the store, never a FIFO), and only
        // records whose key is their file's name: prune removes `<key>.json`.
        if !e.file_type().at(e.path())?.is_file() {
            continue;
        }
        let Ok(data) = fs::read(e.path()) else {
            continue;
        };
        if let Ok(r) = serde_json::from_slice::<CacheRecord>(&data) {
            let named = e.file_name().to_str() == Some(&format!("{}.json", r.key));
            if named && crate::buildcache::artifact::is_key(&r.key) {
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// Remove every record; returns how many.
pub fn clear(store: &Store) -> Result<usize> {
    let dir = store.cache_dir();
    let mut n = 0;
    for e in fs::read_dir(&dir).at(&dir)? {
        let e = e.at(&dir)?;
        fs::remove_file(e.path()).at(e.path())?;
        n += 1;
    }
    Ok(n)
}
