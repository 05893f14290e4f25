//! save/load: oci-archive (a tarred OCI layout) and docker-archive (manifest.json +
//! config + uncompressed layer tars, as `docker save` writes and `docker load` reads).

use super::types::*;
use super::{Image, Store};
use crate::digest::digest_hex;
use crate::error::{Error, IoContext, Result};
use crate::layer::unpack::open_tar;
use serde::{Deserialize, Serialize};

pub use super::load::load;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    Oci,
    Docker,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DockerEntry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

fn tar_bytes<W: Write>(b: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data).at(path)
}

fn tar_file<W: Write>(b: &mut tar::Builder<W>, path: &str, src: &Path) -> Result<()> {
    let f = File::open(src).at(src)?;
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(f.metadata().at(src)?.len());
    b.append_data(&mut h, path, f).at(src)
}

/// `blobs/sha256/<hex>` of a checked digest (never a path a digest like
/// `sha256:../..` could shape).
fn blob_name(digest: &str) -> Result<String> {
    let hex = digest_hex(digest).ok_or_else(|| Error::invalid(digest, "not a sha256 digest"))?;
    Ok(format!("blobs/sha256/{hex}"))
}

/// Write `images` (with the names to record) to `dest` (written via tmp + rename).
/// Holds the store's shared lock so `prune` cannot remove blobs while they are read.
pub fn save(
    store: &Store,
    images: &[(String, Image)],
    fmt: ArchiveFormat,
    dest: &Path,
) -> Result<()> {
    let tmp = dest.with_file_name(format!(
        ".{}.tmp-{}",
        dest.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let _lock = store.lock_shared()?;
    let res = (|| {
        let f = File::create(&tmp).at(&tmp)?;
        let mut b = tar::Builder::new(std::io::BufWriter::new(f));
        match fmt {
            ArchiveFormat::Oci => save_oci(store, images, &mut b)?,
            ArchiveFormat::Docker => save_docker(store, images, &mut b)?,
        }
        b.into_inner().at(&tmp)?.flush().at(&tmp)
    })();
    match res {
        Ok(()) => fs::rename(&tmp, dest).at(dest),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn save_oci<W: Write>(
    store: &Store,
    images: &[(String, Image)],
    b: &mut tar::Builder<W>,
) -> Result<()> {
    tar_bytes(b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut index = Index::default();
    let mut blobs = BTreeSet::new();
    for (name, img) in images {
        let mut d = img.manifest_desc.clone();
        let mut ann = BTreeMap::new();
        ann.insert(ANN_REF_NAME.to_string(), name.clone());
        ann.insert("io.containerd.image.name".to_string(), name.clone());
        d.annotations = Some(ann);
        index.manifests.push(d);
        blobs.insert(img.manifest_desc.digest.clone());
        blobs.insert(img.manifest.config.digest.clone());
        blobs.extend(img.manifest.layers.iter().map(|l| l.digest.clone()));
    }
    tar_bytes(b, "index.json", &to_json(&index))?;
    for d in blobs {
        tar_file(b, &blob_name(&d)?, &store.blob_path(&d)?)?;
    }
    Ok(())
}

fn save_docker<W: Write>(
    store: &Store,
    images: &[(String, Image)],
    b: &mut tar::Builder<W>,
) -> Result<()> {
    let mut entries = vec![];
    let mut done = BTreeSet::new();
    for (name, img) in images {
        let cfg = &img.manifest.config.digest;
        if done.insert(cfg.clone()) {
            tar_file(b, &blob_name(cfg)?, &store.blob_path(cfg)?)?;
        }
        let mut layers = vec![];
        for (l, diff_id) in img.manifest.layers.iter().zip(&img.config.rootfs.diff_ids) {
            layers.push(blob_name(diff_id)?);
            if !done.insert(diff_id.clone()) {
                continue;
            }
            // docker-archive layers are uncompressed tars named by their diff_id.
            let tmp = store.tmp_path("layer");
            let res = (|| {
                let mut r = open_tar(&store.blob_path(&l.digest)?)?;
                let mut f = File::create(&tmp).at(&tmp)?;
                std::io::copy(&mut r, &mut f).at(&tmp)?;
                tar_file(b, &blob_name(diff_id)?, &tmp)
            })();
            let _ = fs::remove_file(&tmp);
            res?;
        }
        entries.push(DockerEntry {
            config: blob_name(cfg)?,
            repo_tags: Some(vec![name.clone()]),
            layers,
        });
    }
    let mj = serde_json::to_vec(&entries).map_err(|e| Error::Build(e.to_string()))?;
    tar_bytes(b, "manifest.json", &mj)
}
