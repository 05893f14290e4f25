//! A build's view of imported caches: records consulted after the store's own, layers
//! fetched only when a step needs their files or the output needs their bytes, each
//! checked (digest, then diff id) before use. A layer that fails is marked bad: every record
//! with it is skipped from then on and the build runs again without them (see build::build).

use super::artifact::Offer;
use super::spec::Location;
use crate::error::{Error, Result};
use crate::plan::cache::{self, CacheRecord};
use crate::registry::RegistryOptions;
use crate::store::types::Descriptor;
use crate::store::Store;
use std::collections::HashSet;
use std::sync::Mutex;

/// One imported artifact.
#[derive(Debug)]
pub struct Source {
    pub at: Location,
    pub offer: Offer,
}

#[derive(Debug, Default)]
pub struct Session {
    sources: Vec<Source>,
    reg: RegistryOptions,
    bad: Mutex<HashSet<String>>,
    /// (stage, key) of every layer step of the build, in order (for --cache-to).
    used: Mutex<Vec<(usize, String)>>,
    target: Mutex<Option<usize>>,
    /// One fetch at a time: stages run concurrently and may want the same layer.
    fetching: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Session {
    pub fn new(sources: Vec<Source>, reg: RegistryOptions) -> Session {
        Session {
            sources,
            reg,
            ..Default::default()
        }
    }

    /// The first imported record for `key` whose layer has not failed its checks.
    pub fn record(&self, key: &str) -> Option<CacheRecord> {
        let bad = lock(&self.bad);
        self.sources.iter().find_map(|s| {
            let r = s.offer.records.get(key)?;
            match &r.layer {
                Some(l) if bad.contains(&l.digest) => None,
                _ => Some(r.clone()),
            }
        })
    }

    /// Whether a cache in a registry named `registry` holds the layer `digest`.
    pub fn held_on(&self, registry: &str, digest: &str) -> bool {
        self.sources.iter().any(|s| {
            matches!(&s.at, Location::Registry(r) if r.registry == registry)
                && s.offer.layers.contains_key(digest)
        })
    }

    /// How many layers have failed so far (a build compares it before and after).
    pub fn failures(&self) -> usize {
        lock(&self.bad).len()
    }

    pub fn note_step(&self, stage: usize, key: &str) {
        lock(&self.used).push((stage, key.to_string()));
    }

    pub fn set_target(&self, stage: usize) {
        *lock(&self.target) = Some(stage);
    }

    /// Forgets the steps of a build attempt that is started again.
    pub fn restart(&self) {
        lock(&self.used).clear();
    }

    pub fn used(&self) -> (Vec<(usize, String)>, Option<usize>) {
        (lock(&self.used).clone(), *lock(&self.target))
    }

    /// Brings `layer` into the store from the first cache holding it, checked against its
    /// digest and `diff_id`; the records it backs become the store's own. A layer no cache
    /// holds is left alone (the caller's read of it reports the error).
    pub fn fetch(&self, store: &Store, layer: &Descriptor, diff_id: &str) -> Result<()> {
        let _one = lock(&self.fetching);
        if store.has_blob(&layer.digest) {
            return Ok(());
        }
        let Some(src) = self
            .sources
            .iter()
            .find(|s| s.offer.layers.contains_key(&layer.digest))
        else {
            return Ok(());
        };
        let d = &src.offer.layers[&layer.digest];
        let got = match &src.at {
            Location::Registry(r) => crate::registry::cache::fetch_layer(store, r, &self.reg, d),
            Location::Local(dir) => super::local::fetch_layer(store, dir, d),
        }
        .and_then(|_| crate::store::load::layer_diff_id(store, d));
        let res = got.and_then(|got| match got == diff_id {
            true => Ok(()),
            false => Err(Error::invalid(
                format!("layer {}", d.digest),
                format!("uncompressed content is {got}, the cache record says {diff_id}"),
            )),
        });
        if let Err(e) = res {
            lock(&self.bad).insert(layer.digest.clone());
            eprintln!(
                "berth-build: warning: cache {}: {e}; the steps it would restore run instead",
                src.at
            );
            return Err(Error::Build(format!("cache {}: {e}", src.at)));
        }
        for r in src.offer.records.values() {
            if r.layer.as_ref().is_some_and(|l| l.digest == d.digest) && r.diff_id == diff_id {
                cache::put(store, r)?;
            }
        }
        Ok(())
    }
}
