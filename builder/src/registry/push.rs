//! push: blobs first (HEAD → "Layer already exists"; a blob this store has seen in
//! another repository of the same registry → cross-repository mount, "Mounted from
//! REPO"; else an upload session, monolithic or chunked → "Pushed"), then the
//! manifest, byte for byte as stored (so the digest is the local one).

use super::client::{Body, Client};
use super::{RegistryOptions, RemoteRef};
use crate::error::{Error, Result};
use crate::store::types::{Descriptor, Index, MT_INDEX};

const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
use crate::store::Store;
use std::collections::BTreeMap;

/// Which repository of which registry holds which blob, as far as this store knows
/// (from earlier pushes and pulls): STORE/berth/registry-blobs.json.
pub type Known = BTreeMap<String, BTreeMap<String, String>>;

fn known_path(store: &Store) -> std::path::PathBuf {
    store.berth_dir().join("registry-blobs.json")
}

pub fn load_known(store: &Store) -> Known {
    std::fs::read(known_path(store))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_default()
}

/// Remember that `repo` on `registry` has these blobs.
pub fn remember(store: &Store, registry: &str, repo: &str, digests: &[String]) -> Result<()> {
    let _g = crate::store::lock::Lock::exclusive(&store.berth_dir().join("registry.lock"))?;
    let mut k = load_known(store);
    let m = k.entry(registry.to_string()).or_default();
    for d in digests {
        m.insert(d.clone(), repo.to_string());
    }
    let data = serde_json::to_vec(&k).map_err(|e| Error::Build(e.to_string()))?;
    store.write_atomic(&known_path(store), &data)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Exists,
    Mounted(String),
    Uploaded,
}

pub fn short(digest: &str) -> &str {
    let h = digest.trim_start_matches("sha256:");
    &h[..h.len().min(12)]
}

fn with_query(loc: &str, q: &str) -> String {
    format!("{loc}{}{q}", if loc.contains('?') { '&' } else { '?' })
}

fn location(c: &Client, resp: &ureq::Response) -> Result<String> {
    resp.header("Location").map(str::to_string).ok_or_else(|| {
        Error::invalid(
            format!("registry upload for {}", c.repo),
            "no Location header",
        )
    })
}

/// One blob to the registry.
pub fn push_blob(
    c: &mut Client,
    store: &Store,
    d: &Descriptor,
    from: Option<&str>,
    chunk: usize,
) -> Result<Pushed> {
    let path = format!("/v2/{}/blobs/{}", c.repo, d.digest);
    let r = c.send("HEAD", &path, &[], Body::Empty)?;
    if r.status() == 200 {
        return Ok(Pushed::Exists);
    }
    let mut start = format!("/v2/{}/blobs/uploads/", c.repo);
    if let Some(other) = from.filter(|o| *o != c.repo) {
        c.extra_scopes = vec![format!("repository:{other}:pull")];
        start = format!("{start}?mount={}&from={other}", d.digest);
    }
    let r = c.send("POST", &start, &[("Content-Length", "0")], Body::Empty)?;
    if r.status() == 201 {
        return Ok(Pushed::Mounted(from.unwrap_or_default().to_string()));
    }
    if r.status() != 202 {
        return Err(c.status_error(&format!("start upload of {}", d.digest), r));
    }
    let mut loc = location(c, &r)?;
    let file = store.blob_path(&d.digest)?;
    let mut off = 0u64;
    if chunk > 0 && d.size > chunk as u64 {
        while off < d.size {
            let len = (chunk as u64).min(d.size - off);
            let range = format!("{off}-{}", off + len - 1);
            let h = [
                ("Content-Type", "application/octet-stream"),
                ("Content-Range", range.as_str()),
            ];
            let body = Body::File {
                path: file.clone(),
                offset: off,
                len,
            };
            let r = c.send("PATCH", &loc, &h, body)?;
            if r.status() != 202 {
                return Err(c.status_error(&format!("upload chunk {range} of {}", d.digest), r));
            }
            loc = location(c, &r)?;
            off += len;
        }
    }
    let put = with_query(&loc, &format!("digest={}", d.digest));
    let body = Body::File {
        path: file,
        offset: off,
        len: d.size - off,
    };
    let r = c.send(
        "PUT",
        &put,
        &[("Content-Type", "application/octet-stream")],
        body,
    )?;
    if r.status() != 201 {
        return Err(c.status_error(&format!("upload {}", d.digest), r));
    }
    Ok(Pushed::Uploaded)
}

/// Push the local image `local` as `target`; progress lines go to `out`. A name
/// that points at an image index pushes each platform's manifest (by digest), then
/// the index. Returns (manifest digest, size).
pub fn push(
    store: &Store,
    local: &str,
    target: &RemoteRef,
    o: &RegistryOptions,
    out: &mut dyn FnMut(&str),
) -> Result<(String, u64)> {
    if let Some(idx) = local_index(store, local)? {
        return push_index(store, &idx, target, o, out);
    }
    let img = store.resolve(local)?;
    push_image(store, &img, target, o, out)
}

fn push_image(
    store: &Store,
    img: &crate::store::Image,
    target: &RemoteRef,
    o: &RegistryOptions,
    out: &mut dyn FnMut(&str),
) -> Result<(String, u64)> {
    let mt = img
        .manifest
        .media_type
        .clone()
        .unwrap_or_else(|| img.manifest_desc.media_type.clone());
    let parts = Parts {
        layers: &img.manifest.layers,
        config: &img.manifest.config,
        manifest: &store.read_blob(&img.manifest_desc.digest)?,
        media_type: &mt,
    };
    push_parts(store, &parts, target, o, out)
}

/// The index descriptor `name` points at, if it points at an index.
fn local_index(store: &Store, name: &str) -> Result<Option<Descriptor>> {
    let Ok(n) = crate::store::reference::normalize(name) else {
        return Ok(None);
    };
    Ok(store.index()?.manifests.into_iter().find(|d| {
        crate::store::image::ref_name(d) == Some(n.as_str())
            && (d.media_type == MT_INDEX || d.media_type == MT_DOCKER_LIST)
    }))
}

fn push_index(
    store: &Store,
    idx: &Descriptor,
    target: &RemoteRef,
    o: &RegistryOptions,
    out: &mut dyn FnMut(&str),
) -> Result<(String, u64)> {
    let bytes = store.read_blob(&idx.digest)?;
    let index: Index = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
        path: store.blob_path(&idx.digest).unwrap_or_default(),
        source,
    })?;
    for m in &index.manifests {
        let mut d = m.clone();
        d.annotations = None;
        d.platform = None;
        let img = store.load_manifest(&d)?;
        let mut by_digest = target.clone();
        by_digest.reference = m.digest.clone();
        push_image(store, &img, &by_digest, o, out)?;
    }
    let mut c = Client::new(target, o)?;
    let path = format!("/v2/{}/manifests/{}", target.repo, target.reference);
    let h = [("Content-Type", idx.media_type.as_str())];
    let r = c.send("PUT", &path, &h, Body::Bytes(&bytes))?;
    if r.status() != 201 {
        return Err(c.status_error(&format!("push index {}", target.reference), r));
    }
    out(&format!(
        "{}: digest: {} size: {}",
        target.reference,
        idx.digest,
        bytes.len()
    ));
    Ok((idx.digest.clone(), bytes.len() as u64))
}

/// A manifest and the blobs it names, all in the store.
pub struct Parts<'a> {
    pub layers: &'a [Descriptor],
    pub config: &'a Descriptor,
    pub manifest: &'a [u8],
    pub media_type: &'a str,
}

/// Push blobs (layers top-most first, then the config) and the manifest.
pub fn push_parts(
    store: &Store,
    p: &Parts,
    target: &RemoteRef,
    o: &RegistryOptions,
    out: &mut dyn FnMut(&str),
) -> Result<(String, u64)> {
    let mut c = Client::new(target, o)?;
    out(&format!(
        "The push refers to repository [{}]",
        target.display()
    ));
    let known = load_known(store);
    let seen = known.get(&target.registry);
    let mut blobs: Vec<&Descriptor> = p.layers.iter().rev().collect();
    blobs.push(p.config);
    for (i, d) in blobs.iter().enumerate() {
        let from = seen.and_then(|m| m.get(&d.digest)).map(String::as_str);
        let res = push_blob(&mut c, store, d, from, o.chunk_size)?;
        if i + 1 == blobs.len() {
            break; // docker prints no line for the config blob
        }
        out(&match res {
            Pushed::Exists => format!("{}: Layer already exists", short(&d.digest)),
            Pushed::Mounted(r) => format!("{}: Mounted from {r}", short(&d.digest)),
            Pushed::Uploaded => format!("{}: Pushed", short(&d.digest)),
        });
    }
    let path = format!("/v2/{}/manifests/{}", target.repo, target.reference);
    let h = [("Content-Type", p.media_type)];
    let r = c.send("PUT", &path, &h, Body::Bytes(p.manifest))?;
    if r.status() != 201 {
        return Err(c.status_error(&format!("push manifest {}", target.reference), r));
    }
    let digests: Vec<String> = blobs.iter().map(|d| d.digest.clone()).collect();
    remember(store, &target.registry, &target.repo, &digests)?;
    let digest = crate::digest::sha256_digest(p.manifest);
    let tag = if target.is_digest() {
        ""
    } else {
        target.reference.as_str()
    };
    out(&format!(
        "{tag}: digest: {digest} size: {}",
        p.manifest.len()
    ));
    Ok((digest, p.manifest.len() as u64))
}
