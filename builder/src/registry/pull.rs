//! pull: the manifest (an index is resolved to this platform's manifest), then the
//! config and layers the store lacks, each streamed into a blob whose digest is
//! checked before it is kept; the name is tagged only when everything is there, so a
//! failed pull leaves no image.

use super::client::{Body, Client};
use super::push::{remember, short};
use super::{RegistryOptions, RemoteRef};
use crate::digest::sha256_digest;
use crate::error::{Error, IoContext, Result};
use crate::store::types::*;
use crate::store::{Image, Store};
use std::io::Read;

const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const LIMIT: u64 = 4 << 20;

fn accept() -> String {
    [MT_MANIFEST, MT_DOCKER_MANIFEST, MT_INDEX, MT_DOCKER_LIST].join(", ")
}

/// GET a manifest; (media type, bytes), its digest checked against `reference` (when
/// a digest) and the registry's Docker-Content-Digest header.
pub fn get_manifest(c: &mut Client, reference: &str) -> Result<(String, Vec<u8>)> {
    let path = format!("/v2/{}/manifests/{reference}", c.repo);
    let acc = accept();
    let r = c.send("GET", &path, &[("Accept", acc.as_str())], Body::Empty)?;
    if r.status() != 200 {
        return Err(c.status_error(&format!("manifest {}:{reference}", c.repo), r));
    }
    let header = r.header("Docker-Content-Digest").map(str::to_string);
    let ct = r.header("Content-Type").unwrap_or_default().to_string();
    let mut data = vec![];
    r.into_reader()
        .take(LIMIT + 1)
        .read_to_end(&mut data)
        .at(&path)?;
    if data.len() as u64 > LIMIT {
        return Err(Error::invalid(
            format!("manifest {}:{reference}", c.repo),
            "over 4 MiB (the limit registries keep to)",
        ));
    }
    let digest = sha256_digest(&data);
    for want in [
        reference.starts_with("sha256:").then_some(reference),
        header.as_deref(),
    ]
    .into_iter()
    .flatten()
    {
        if want != digest {
            return Err(Error::invalid(
                format!("manifest {}@{want}", c.repo),
                format!("digest mismatch: the registry sent content with digest {digest}"),
            ));
        }
    }
    let v: serde_json::Value = serde_json::from_slice(&data)
        .map_err(|e| Error::invalid(format!("manifest {}:{reference}", c.repo), e.to_string()))?;
    let mt = v["mediaType"].as_str().map(str::to_string).unwrap_or(ct);
    Ok((mt, data))
}

/// The manifest for this platform from an index.
fn pick_platform(c: &Client, data: &[u8]) -> Result<String> {
    let idx: Index = serde_json::from_slice(data)
        .map_err(|e| Error::invalid(format!("index of {}", c.repo), e.to_string()))?;
    idx.manifests
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == host_arch())
        })
        .map(|d| d.digest.clone())
        .ok_or_else(|| {
            Error::invalid(
                format!("image {}", c.repo),
                format!("no manifest for linux/{}", host_arch()),
            )
        })
}

pub fn get_blob(c: &mut Client, store: &Store, d: &Descriptor) -> Result<()> {
    let path = format!("/v2/{}/blobs/{}", c.repo, d.digest);
    let r = c.send("GET", &path, &[], Body::Empty)?;
    if r.status() != 200 {
        return Err(c.status_error(&format!("blob {}", d.digest), r));
    }
    let mut w = store.blob_writer()?;
    // The descriptor's size bounds the body: an endless one stops there (then the digest
    // check refuses it).
    std::io::copy(&mut r.into_reader().take(d.size), &mut w)
        .map_err(|e| Error::invalid(format!("blob {}", d.digest), e.to_string()))?;
    w.commit_checked(&d.media_type, Some(&d.digest))?;
    Ok(())
}

/// Pull `r` into the store, named REGISTRY/REPO:TAG; progress lines go to `out`.
pub fn pull(
    store: &Store,
    r: &RemoteRef,
    o: &RegistryOptions,
    out: &mut dyn FnMut(&str),
) -> Result<Image> {
    let mut c = Client::new(r, o)?;
    let _lock = store.lock_shared()?;
    out(&format!("{}: Pulling from {}", r.reference, r.repo));
    let (mut mt, mut data) = get_manifest(&mut c, &r.reference)?;
    if mt == MT_INDEX || mt == MT_DOCKER_LIST {
        let d = pick_platform(&c, &data)?;
        (mt, data) = get_manifest(&mut c, &d)?;
    }
    if mt != MT_MANIFEST && mt != MT_DOCKER_MANIFEST {
        return Err(Error::invalid(
            format!("image {}", r.display()),
            format!("unsupported manifest type {mt:?}"),
        ));
    }
    let m: Manifest = serde_json::from_slice(&data)
        .map_err(|e| Error::invalid(format!("manifest of {}", r.display()), e.to_string()))?;
    let mut all = vec![m.config.clone()];
    all.extend(m.layers.iter().cloned());
    for (i, d) in all.iter().enumerate() {
        let have = store.has_blob(&d.digest);
        if !have {
            get_blob(&mut c, store, d)?;
        }
        if i > 0 {
            let what = if have {
                "Already exists"
            } else {
                "Pull complete"
            };
            out(&format!("{}: {what}", short(&d.digest)));
        }
    }
    let mdesc = store.put_blob(&mt, &data)?;
    let img = store.load_manifest(&mdesc)?;
    if img.config.rootfs.diff_ids.len() != img.manifest.layers.len() {
        return Err(Error::invalid(
            format!("image {}", r.display()),
            "config and manifest disagree on the layers",
        ));
    }
    // Snapshots are keyed by diff_id: a layer must be what the config says it is.
    for (l, d) in img.manifest.layers.iter().zip(&img.config.rootfs.diff_ids) {
        let got = crate::store::load::layer_diff_id(store, l)?;
        crate::layer::snapshot::check_diff_id(&l.digest, &got, d)?;
    }
    let digests: Vec<String> = all.iter().map(|d| d.digest.clone()).collect();
    remember(store, &r.registry, &r.repo, &digests)?;
    let name = store.tag(&mdesc, &r.local_name())?;
    out(&format!("Digest: {}", mdesc.digest));
    out(&format!("Status: Downloaded newer image for {name}"));
    Ok(img)
}
