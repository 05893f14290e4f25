//! prune: remove blobs, cache records and snapshots nothing refers to. Which cache
//! records go first is `cachegc`'s policy (all, none, or bounded by size and age).

use super::cachegc::{self, CachePolicy};
use super::types::Manifest;
use super::Store;
use crate::digest::{chain_ids, digest_hex};
use crate::error::{IoContext, Result};
use std::collections::HashSet;
use std::fs;

#[derive(Debug, Default)]
pub struct PruneReport {
    pub blobs: usize,
    pub bytes: u64,
    pub snapshots: usize,
    pub cache_records: usize,
    /// The build cache's own bytes (see `cachegc`) before and after, for a bounded prune.
    pub cache_bytes: Option<(u64, u64)>,
}

/// What images and bundles need: blob digests and snapshot chain ids.
#[derive(Debug, Default)]
pub struct Roots {
    pub blobs: HashSet<String>,
    pub chains: HashSet<String>,
}

impl Store {
    /// Keep what tagged images (and, unless `cache` is set, build cache records)
    /// refer to; delete the rest. Holds the store lock exclusively.
    pub fn prune(&self, cache: bool) -> Result<PruneReport> {
        self.prune_with(&match cache {
            true => CachePolicy::All,
            false => CachePolicy::Keep,
        })
    }

    /// prune with `policy` for the build cache. Holds the store lock exclusively: it
    /// waits for running builds (they hold it shared) and no build starts meanwhile.
    pub fn prune_with(&self, policy: &CachePolicy) -> Result<PruneReport> {
        let _g = self.lock_exclusive()?;
        let mut rep = PruneReport::default();
        match policy {
            CachePolicy::Keep => {}
            CachePolicy::All => {
                rep.cache_records = crate::plan::cache::clear(self)?;
                // (hashcache.json: the sha256 digests of earlier versions.)
                for f in ["hashcache-b3.json", "hashcache.json"] {
                    let _ = fs::remove_file(self.berth_dir().join(f));
                }
            }
            CachePolicy::Bounded(b) => {
                let (n, before) = cachegc::drop_records(self, &self.roots()?, b)?;
                rep.cache_records = n;
                rep.cache_bytes = Some((before, 0));
            }
        }
        let Roots {
            blobs: mut keep,
            mut chains,
        } = self.roots()?;
        for rec in crate::plan::cache::all(self)? {
            keep.extend(rec.blobs());
            chains.insert(rec.chain_id.clone());
        }
        let dir = self.root().join("blobs/sha256");
        for e in fs::read_dir(&dir).at(&dir)? {
            let e = e.at(&dir)?;
            let name = e.file_name().to_string_lossy().to_string();
            if !keep.contains(&format!("sha256:{name}")) {
                rep.bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(e.path()).at(e.path())?;
                rep.blobs += 1;
            }
        }
        let snaps = self.snapshots_dir();
        for e in fs::read_dir(&snaps).at(&snaps)? {
            let e = e.at(&snaps)?;
            let name = e.file_name().to_string_lossy().to_string();
            if !chains.iter().any(|c| digest_hex(c) == Some(name.as_str())) {
                fs::remove_dir_all(e.path()).at(e.path())?;
                rep.snapshots += 1;
            }
        }
        self.prune_sizes();
        if let Some((before, _)) = rep.cache_bytes {
            rep.cache_bytes = Some((before, cachegc::usage(self, &self.roots()?)?));
        }
        // Nothing else runs now (we hold the lock exclusively): tmp/ is garbage.
        let tmp = self.tmp_root();
        for e in fs::read_dir(&tmp).at(&tmp)?.flatten() {
            let p = e.path();
            let _ = if p.is_dir() && !p.is_symlink() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
        Ok(rep)
    }

    /// What tagged images and registered bundles refer to (kept by every prune).
    pub fn roots(&self) -> Result<Roots> {
        let mut keep: HashSet<String> = HashSet::new();
        let mut chains: HashSet<String> = HashSet::new();
        for d in self.index()?.manifests {
            keep.insert(d.digest.clone());
            // A broken image keeps what it names; it never stops the prune of the rest.
            let Ok(m) = self.read_json::<Manifest>(&d.digest) else {
                continue;
            };
            keep.insert(m.config.digest.clone());
            keep.extend(m.layers.iter().map(|l| l.digest.clone()));
            if let Ok(img) = self.load_manifest(&d) {
                chains.extend(chain_ids(&img.config.rootfs.diff_ids));
            }
        }
        // Bundles use their image's layers as overlay lowerdirs.
        for dir in crate::bundle::registered(self) {
            if let Ok(m) = crate::bundle::Meta::load(&dir) {
                keep.insert(m.manifest_digest.clone());
                keep.insert(m.config_digest.clone());
                if let Ok(man) = self.read_json::<Manifest>(&m.manifest_digest) {
                    keep.extend(man.layers.iter().map(|l| l.digest.clone()));
                }
                chains.extend(chain_ids(&m.diff_ids));
            }
        }
        Ok(Roots {
            blobs: keep,
            chains,
        })
    }
}
