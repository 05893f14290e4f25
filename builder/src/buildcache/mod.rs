//! Build cache between machines (`build --cache-to/--cache-from`): `spec` parses the flags,
//! `artifact` is the cache as one OCI artifact, `local` keeps it in an OCI layout folder
//! (registry::cache in a registry), `session` is a build's view of the imported caches.
//! Import is never fatal: a cache that cannot be read is a warning and a build without it.

pub mod artifact;
pub mod local;
pub mod session;
pub mod spec;

use crate::error::Result;
use crate::plan::cache::{self, CacheRecord};
use crate::registry::RegistryOptions;
use crate::store::types::Descriptor;
use crate::store::{Image, Store};
use session::{Session, Source};
use spec::{CacheFrom, CacheTo, Location, Mode};
use std::collections::HashSet;
use std::sync::Arc;

/// The `--cache-to` and `--cache-from` of a build, parsed before it starts.
#[derive(Debug, Default)]
pub struct Caches {
    pub to: Option<CacheTo>,
    pub from: Vec<CacheFrom>,
    pub reg: RegistryOptions,
}

impl Caches {
    pub fn parse(to: Option<&str>, from: &[String], reg: RegistryOptions) -> Result<Caches> {
        Ok(Caches {
            to: to.map(CacheTo::parse).transpose()?,
            from: from
                .iter()
                .map(|f| CacheFrom::parse(f))
                .collect::<Result<_>>()?,
            reg,
        })
    }

    /// `store` with a session of the imported caches attached (unchanged without flags).
    pub fn attach(&self, store: &Store) -> Store {
        if self.to.is_none() && self.from.is_empty() {
            return store.clone();
        }
        let mut sources = vec![];
        for f in &self.from {
            let got = match &f.at {
                Location::Registry(r) => crate::registry::cache::import(store, r, &self.reg),
                Location::Local(d) => local::import(store, d),
            };
            match got {
                Ok(offer) => {
                    eprintln!(
                        "#0 importing cache from {}: {} records",
                        f.at,
                        offer.records.len()
                    );
                    if offer.refused > 0 {
                        eprintln!(
                            "berth-build: warning: --cache-from {}: {} malformed records skipped",
                            f.at, offer.refused
                        );
                    }
                    sources.push(Source {
                        at: f.at.clone(),
                        offer,
                    });
                }
                Err(e) => eprintln!(
                    "berth-build: warning: --cache-from {}: {e}; building without it",
                    f.at
                ),
            }
        }
        store
            .clone()
            .with_session(Arc::new(Session::new(sources, self.reg.clone())))
    }

    /// Writes this build's cache records to `--cache-to` (layers fetched if still remote).
    pub fn export(&self, store: &Store, img: &Image) -> Result<()> {
        let (Some(to), Some(s)) = (&self.to, store.session()) else {
            return Ok(());
        };
        let records = select(store, s, to.mode, img);
        let art = artifact::write(store, records.clone())?;
        // A layer still in a cache on the target's registry is mounted there (or found
        // present), not downloaded to be uploaded again; any other is fetched first.
        let remote = |l: &Descriptor| match &to.at {
            Location::Registry(t) => {
                !store.has_blob(&l.digest) && s.held_on(&t.registry, &l.digest)
            }
            Location::Local(_) => false,
        };
        let fetch_all = |all: bool| -> Result<()> {
            for r in &records {
                match &r.layer {
                    Some(l) if all || !remote(l) => store.ensure_layer(l, &r.diff_id)?,
                    _ => {}
                }
            }
            Ok(())
        };
        fetch_all(false)?;
        match &to.at {
            Location::Registry(r) => {
                let push = || {
                    crate::registry::cache::export(store, &art, r, &self.reg, &mut |l| {
                        eprintln!("{l}")
                    })
                };
                if push().is_err() {
                    // The registry declined a mount: send the bytes.
                    fetch_all(true)?;
                    push()?;
                }
            }
            Location::Local(d) => local::export(store, d, &art)?,
        }
        eprintln!(
            "#0 exported cache to {}: {} layers",
            to.at,
            art.layers.len()
        );
        Ok(())
    }
}

/// The records to export: every step of the build (`max`), or the final stage's and those
/// whose layers the image holds (`min`).
fn select(store: &Store, s: &Session, mode: Mode, img: &Image) -> Vec<CacheRecord> {
    let (used, target) = s.used();
    let mut seen = HashSet::new();
    let mut out = vec![];
    for (stage, key) in used {
        if !seen.insert(key.clone()) {
            continue;
        }
        let Some(r) = cache::read(store, &key).or_else(|| s.record(&key)) else {
            continue;
        };
        let in_image = r
            .layer
            .as_ref()
            .is_some_and(|l| img.manifest.layers.iter().any(|d| d.digest == l.digest));
        if mode == Mode::Max || target == Some(stage) || in_image {
            out.push(r);
        }
    }
    out
}
