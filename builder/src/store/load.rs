//! load: an oci-archive or docker-archive into the store. The archive is a stranger's:
//! it is extracted into a temporary tree with the in-root resolver, every member is
//! opened inside that tree (a symlink member reaches another member at most, never a host
//! file; docker < 25 links repeated layers that way), every digest is checked before it
//! names a path, and every image is checked whole (typed config, one layer per diff_id,
//! each layer a tar hashing to its diff_id) before anything is tagged.

use super::archive::DockerEntry;
use super::image::ref_name;
use super::types::*;
use super::Store;
use crate::digest::{digest_hex, HashReader};
use crate::error::{Error, IoContext, Result};
use crate::layer::snapshot::check_diff_id;
use crate::layer::unpack::{magic, open_tar, unpack, UnpackOptions};
use berth_common::inroot::{self, Root};
use std::fs::{self, File};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The largest JSON member read (manifest.json, index.json, a manifest or config).
const MAX_JSON: u64 = 16 << 20;

/// Load an oci-archive or docker-archive; returns the names tagged.
pub fn load(store: &Store, src: &Path) -> Result<Vec<String>> {
    let _lock = store.lock_shared()?;
    let tmp = store.tmp_path("load");
    fs::create_dir_all(&tmp).at(&tmp)?;
    let res = (|| {
        let root = Root::open(&tmp)?;
        let opts = UnpackOptions {
            overlay_whiteouts: false,
            strict: true,
        };
        unpack(open_tar(src)?, &root, opts, src)?;
        let ar = Archive { root, src };
        if ar.has("index.json") {
            load_oci(store, &ar)
        } else if ar.has("manifest.json") {
            load_docker(store, &ar)
        } else {
            Err(ar.err("neither an oci-archive (index.json) nor a docker-archive (manifest.json)"))
        }
    })();
    let _ = fs::remove_dir_all(&tmp);
    res
}

/// An extracted archive: members are named relative to its top and opened inside it.
struct Archive<'a> {
    root: Root,
    src: &'a Path,
}

impl Archive<'_> {
    fn err(&self, why: impl Into<String>) -> Error {
        Error::invalid(self.src.display().to_string(), why)
    }

    /// A member name as a path: ordinary components only (no `/…`, no `..`).
    fn member(&self, name: &str) -> Result<PathBuf> {
        let p = Path::new(name);
        let plain = p
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if name.is_empty() || !plain {
            return Err(self.err(format!("{name:?} is not a member path inside the archive")));
        }
        Ok(p.to_path_buf())
    }

    fn has(&self, name: &str) -> bool {
        matches!(self.root.lstat(Path::new(name)), Ok(Some(_)))
    }

    /// Opens a regular-file member, resolved (links too) inside the archive. The member is
    /// pinned with O_PATH and checked before it is opened: a device node member must never
    /// be opened (that acts on the host's device), nor a FIFO.
    fn open(&self, name: &str) -> Result<File> {
        let p = self.member(name)?;
        let bad = |e: std::io::Error| self.err(format!("member {name}: {e}"));
        let pinned = self.root.resolve(&p).map_err(bad)?;
        if !inroot::fstat(&pinned).map_err(bad)?.is_file() {
            return Err(self.err(format!("member {name} is not a regular file")));
        }
        File::open(inroot::fd_path(&pinned)).map_err(bad)
    }

    /// The member `blobs/sha256/<hex>` of a checked digest.
    fn blob(&self, digest: &str) -> Result<File> {
        let hex = digest_hex(digest)
            .ok_or_else(|| self.err(format!("{digest:?} is not a sha256 digest")))?;
        self.open(&format!("blobs/sha256/{hex}"))
    }

    fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T> {
        let mut data = vec![];
        let f = self.open(name)?;
        f.take(MAX_JSON + 1)
            .read_to_end(&mut data)
            .map_err(|e| self.err(format!("member {name}: {e}")))?;
        if data.len() as u64 > MAX_JSON {
            return Err(self.err(format!("member {name} is over {MAX_JSON} bytes")));
        }
        serde_json::from_slice(&data).map_err(|source| Error::Json {
            path: self.src.join(name),
            source,
        })
    }
}

/// Copies a member into the store, checking it hashes to `want` when given.
fn import(store: &Store, mut f: File, media_type: &str, want: Option<&str>) -> Result<Descriptor> {
    let mut w = store.blob_writer()?;
    std::io::copy(&mut f, &mut w).map_err(|e| Error::invalid("archive member", e.to_string()))?;
    w.commit_checked(media_type, want)
}

/// The image config (member `name`), typed: a malformed or wrong-typed one is refused
/// here, at load.
fn config(store: &Store, ar: &Archive, digest: &str, name: &str) -> Result<ImageConfig> {
    store.read_json(digest).map_err(|e| match e {
        Error::Json { source, .. } => ar.err(format!("image config {name}: {source}")),
        e => e,
    })
}

/// Every layer a tar whose uncompressed stream hashes to its diff_id, one per diff_id.
fn check_layers(store: &Store, config: &ImageConfig, layers: &[Descriptor]) -> Result<()> {
    let diff_ids = &config.rootfs.diff_ids;
    if layers.len() != diff_ids.len() {
        return Err(Error::invalid(
            "image config",
            format!(
                "{} layers but {} diff_ids in rootfs",
                layers.len(),
                diff_ids.len()
            ),
        ));
    }
    for (l, d) in layers.iter().zip(diff_ids) {
        if digest_hex(d).is_none() {
            return Err(Error::invalid(
                "image config",
                format!("diff_id {d:?} is not a sha256 digest"),
            ));
        }
        check_diff_id(&l.digest, &layer_diff_id(store, l)?, d)?;
    }
    Ok(())
}

/// Reads a layer blob through, entry by entry; the sha256 of its uncompressed stream.
pub(crate) fn layer_diff_id(store: &Store, l: &Descriptor) -> Result<String> {
    let p = store.blob_path(&l.digest)?;
    let bad = |e: std::io::Error| {
        Error::invalid(
            format!("layer {}", l.digest),
            format!("not a tar archive: {e}"),
        )
    };
    let mut r = HashReader::new(open_tar(&p)?);
    {
        let mut ar = tar::Archive::new(&mut r);
        for e in ar.entries().map_err(bad)? {
            let mut e = e.map_err(bad)?;
            std::io::copy(&mut e, &mut std::io::sink()).map_err(bad)?;
        }
    }
    r.finish().map_err(bad)
}

fn load_oci(store: &Store, ar: &Archive) -> Result<Vec<String>> {
    let index: Index = ar.json("index.json")?;
    let mut pending = vec![];
    for d in &index.manifests {
        let name = ref_name(d)
            .ok_or_else(|| ar.err("an image in the archive has no ref.name"))?
            .to_string();
        let md = import(store, ar.blob(&d.digest)?, &d.media_type, Some(&d.digest))?;
        let m: Manifest = store.read_json(&md.digest)?;
        let c = &m.config;
        import(store, ar.blob(&c.digest)?, &c.media_type, Some(&c.digest))?;
        let cfg = config(store, ar, &c.digest, &c.digest)?;
        for l in &m.layers {
            import(store, ar.blob(&l.digest)?, &l.media_type, Some(&l.digest))?;
        }
        check_layers(store, &cfg, &m.layers)?;
        pending.push((md, name));
    }
    let mut out = vec![];
    for (md, name) in pending {
        out.push(store.tag(&md, &name)?);
    }
    Ok(out)
}

fn load_docker(store: &Store, ar: &Archive) -> Result<Vec<String>> {
    let entries: Vec<DockerEntry> = ar.json("manifest.json")?;
    let mut pending = vec![];
    for e in &entries {
        for name in std::iter::once(&e.config).chain(&e.layers) {
            ar.member(name)?;
        }
    }
    for e in entries {
        let cdesc = import(store, ar.open(&e.config)?, MT_CONFIG, None)?;
        let cfg = config(store, ar, &cdesc.digest, &e.config)?;
        let mut layers = vec![];
        for l in &e.layers {
            let mut d = import(store, ar.open(l)?, MT_LAYER_TAR, None)?;
            d.media_type = match magic(&store.blob_path(&d.digest)?) {
                Some([0x1f, 0x8b, _, _]) => MT_LAYER_GZIP,
                Some([0x28, 0xb5, 0x2f, 0xfd]) => MT_LAYER_ZSTD,
                _ => MT_LAYER_TAR,
            }
            .to_string();
            layers.push(d);
        }
        check_layers(store, &cfg, &layers)?;
        let img = store.write_manifest(cdesc, &cfg, &layers)?;
        pending.push((img.manifest_desc, e.repo_tags.unwrap_or_default()));
    }
    let mut out = vec![];
    for (md, tags) in pending {
        for t in tags {
            out.push(store.tag(&md, &t)?);
        }
    }
    Ok(out)
}
