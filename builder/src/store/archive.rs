//! save/load: oci-archive (a tarred OCI layout) and docker-archive (manifest.json +
//! config + uncompressed layer tars, as `docker save` writes and `docker load` reads).

use super::image::ref_name;
use super::types::*;
use super::{Image, Store};
use crate::error::{Error, IoContext, Result};
use crate::layer::unpack::{open_tar, unpack, UnpackOptions};
use serde::{Deserialize, Serialize};
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
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
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

fn blob_name(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
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
        tar_file(b, &blob_name(&d), &store.blob_path(&d)?)?;
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
            tar_file(b, &blob_name(cfg), &store.blob_path(cfg)?)?;
        }
        let mut layers = vec![];
        for (l, diff_id) in img.manifest.layers.iter().zip(&img.config.rootfs.diff_ids) {
            layers.push(blob_name(diff_id));
            if !done.insert(diff_id.clone()) {
                continue;
            }
            // docker-archive layers are uncompressed tars named by their diff_id.
            let tmp = store.tmp_path("layer");
            let res = (|| {
                let mut r = open_tar(&store.blob_path(&l.digest)?)?;
                let mut f = File::create(&tmp).at(&tmp)?;
                std::io::copy(&mut r, &mut f).at(&tmp)?;
                tar_file(b, &blob_name(diff_id), &tmp)
            })();
            let _ = fs::remove_file(&tmp);
            res?;
        }
        entries.push(DockerEntry {
            config: blob_name(cfg),
            repo_tags: Some(vec![name.clone()]),
            layers,
        });
    }
    let mj = serde_json::to_vec(&entries).map_err(|e| Error::Build(e.to_string()))?;
    tar_bytes(b, "manifest.json", &mj)
}

/// Load an oci-archive or docker-archive; returns the names tagged.
pub fn load(store: &Store, src: &Path) -> Result<Vec<String>> {
    let _lock = store.lock_shared()?;
    let tmp = store.tmp_path("load");
    fs::create_dir_all(&tmp).at(&tmp)?;
    let res = (|| {
        let opts = UnpackOptions {
            overlay_whiteouts: false,
            strict: true,
        };
        unpack(
            open_tar(src)?,
            &berth_common::inroot::Root::open(&tmp)?,
            opts,
            src,
        )?;
        if tmp.join("index.json").exists() {
            load_oci(store, &tmp, src)
        } else if tmp.join("manifest.json").exists() {
            load_docker(store, &tmp, src)
        } else {
            Err(Error::invalid(
                src.display().to_string(),
                "neither an oci-archive (index.json) nor a docker-archive (manifest.json)",
            ))
        }
    })();
    let _ = fs::remove_dir_all(&tmp);
    res
}

/// Copy a file into the store, checking it hashes to `want` when given.
fn import_blob(
    store: &Store,
    path: &Path,
    media_type: &str,
    want: Option<&str>,
) -> Result<Descriptor> {
    let mut w = store.blob_writer()?;
    let mut f = File::open(path).at(path)?;
    std::io::copy(&mut f, &mut w).at(path)?;
    let d = w.commit(media_type)?;
    if let Some(want) = want {
        if d.digest != want {
            return Err(Error::invalid(
                path.display().to_string(),
                format!("content is {} but should be {want}", d.digest),
            ));
        }
    }
    Ok(d)
}

fn read_json<T: serde::de::DeserializeOwned>(p: &Path) -> Result<T> {
    let data = fs::read(p).at(p)?;
    serde_json::from_slice(&data).map_err(|source| Error::Json {
        path: p.to_path_buf(),
        source,
    })
}

fn load_oci(store: &Store, dir: &Path, src: &Path) -> Result<Vec<String>> {
    let index: Index = read_json(&dir.join("index.json"))?;
    let mut pending = vec![];
    for d in &index.manifests {
        let mp = dir.join(blob_name(&d.digest));
        let m: Manifest = read_json(&mp)?;
        for l in m.layers.iter().chain(std::iter::once(&m.config)) {
            let p = dir.join(blob_name(&l.digest));
            import_blob(store, &p, &l.media_type, Some(&l.digest))?;
        }
        let md = import_blob(store, &mp, &d.media_type, Some(&d.digest))?;
        let name = ref_name(d).map(|s| s.to_string()).ok_or_else(|| {
            Error::invalid(
                src.display().to_string(),
                "an image in the archive has no ref.name",
            )
        })?;
        pending.push((md, name));
    }
    let mut out = vec![];
    for (md, name) in pending {
        out.push(store.tag(&md, &name)?);
    }
    Ok(out)
}

fn load_docker(store: &Store, dir: &Path, src: &Path) -> Result<Vec<String>> {
    let entries: Vec<DockerEntry> = read_json(&dir.join("manifest.json"))?;
    let mut out = vec![];
    for e in entries {
        let cp = dir.join(&e.config);
        let config: ImageConfig = read_json(&cp)?;
        let mut layers = vec![];
        for l in &e.layers {
            let p = dir.join(l);
            let mt = match crate::layer::unpack::magic(&p) {
                Some([0x1f, 0x8b, _, _]) => MT_LAYER_GZIP,
                Some([0x28, 0xb5, 0x2f, 0xfd]) => MT_LAYER_ZSTD,
                _ => MT_LAYER_TAR,
            };
            layers.push(import_blob(store, &p, mt, None)?);
        }
        if layers.len() != config.rootfs.diff_ids.len() {
            return Err(Error::invalid(
                src.display().to_string(),
                "layer count does not match the config's diff_ids",
            ));
        }
        let cdesc = import_blob(store, &cp, MT_CONFIG, None)?;
        let img = store.write_manifest(cdesc, &config, &layers)?;
        for t in e.repo_tags.unwrap_or_default() {
            out.push(store.tag(&img.manifest_desc, &t)?);
        }
    }
    Ok(out)
}
