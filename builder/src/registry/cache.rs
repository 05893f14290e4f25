//! Build cache in a registry (`--cache-to/--cache-from type=registry,ref=…`): the artifact
//! of buildcache::artifact pushed as an ordinary OCI manifest. Import reads the manifest
//! and its config only; layers are fetched one by one when the build needs them.

use super::client::Client;
use super::pull::{get_blob, get_manifest};
use super::push::{push_parts, Parts};
use super::{RegistryOptions, RemoteRef};
use crate::buildcache::artifact::{self, Artifact, CacheConfig, Offer};
use crate::error::Result;
use crate::store::types::{Descriptor, MT_MANIFEST};
use crate::store::Store;

/// Push `art` (its blobs in the store) to `target`.
pub fn export(
    store: &Store,
    art: &Artifact,
    target: &RemoteRef,
    o: &RegistryOptions,
    out: &mut dyn FnMut(&str),
) -> Result<()> {
    let parts = Parts {
        layers: &art.layers,
        config: &art.config,
        manifest: &art.manifest,
        media_type: MT_MANIFEST,
    };
    push_parts(store, &parts, target, o, out)?;
    Ok(())
}

/// The records the cache at `from` offers (its manifest and config fetched and checked).
pub fn import(store: &Store, from: &RemoteRef, o: &RegistryOptions) -> Result<Offer> {
    let mut c = Client::new(from, o)?;
    let (_, data) = get_manifest(&mut c, &from.reference)?;
    let m = artifact::parse_manifest(&from.display(), &data)?;
    if !store.has_blob(&m.config.digest) {
        get_blob(&mut c, store, &m.config)?;
    }
    let cfg: CacheConfig = store.read_json(&m.config.digest)?;
    // Where its layers are: an export to this registry mounts them, never downloads them.
    let digests: Vec<String> = m.layers.iter().map(|l| l.digest.clone()).collect();
    super::push::remember(store, &from.registry, &from.repo, &digests)?;
    Ok(artifact::offer(&m, cfg))
}

/// One layer of the cache at `from` into the store (its digest checked by get_blob).
pub fn fetch_layer(
    store: &Store,
    from: &RemoteRef,
    o: &RegistryOptions,
    d: &Descriptor,
) -> Result<()> {
    let mut c = Client::new(from, o)?;
    get_blob(&mut c, store, d)
}
