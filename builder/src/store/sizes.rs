//! Image sizes as docker reports them (`docker images` SIZE, `docker image inspect` Size):
//! the sum of the image's layers' uncompressed sizes, where a layer's size is what its
//! files hold (docker's overlay2 `DiffSize`): regular files' lengths, hard links counted
//! once, symlinks their target's length, directories, devices and whiteouts nothing. Not
//! the compressed blob sizes (what a pull downloads) and not the tar stream's length.
//!
//! Each layer's size is remembered in `STORE/berth/sizes/<blob hex>`: written when we pack
//! a layer, otherwise computed once from the blob (imported, pulled or loaded layers).

use super::types::Descriptor;
use super::{Image, Store};
use crate::digest::digest_hex;
use crate::error::{Error, IoContext, Result};
use std::fs;
use std::io::Read;
use std::path::PathBuf;
use tar::EntryType;

impl Store {
    fn size_path(&self, layer_digest: &str) -> Result<PathBuf> {
        let hex = digest_hex(layer_digest)
            .ok_or_else(|| Error::invalid(layer_digest, "bad layer digest"))?;
        Ok(self.berth_dir().join("sizes").join(hex))
    }

    /// Remember a layer's content size (a cache: written without fsync, and a missing
    /// or unreadable record is simply computed again).
    pub fn record_layer_size(&self, layer_digest: &str, size: u64) -> Result<()> {
        let p = self.size_path(layer_digest)?;
        let dir = self.berth_dir().join("sizes");
        fs::create_dir_all(&dir).at(&dir)?;
        let tmp = self.tmp_path("size");
        fs::write(&tmp, size.to_string()).at(&tmp)?;
        fs::rename(&tmp, &p).at(&p)
    }

    /// A layer's content size (see the module doc).
    pub fn layer_size(&self, layer: &Descriptor) -> Result<u64> {
        let p = self.size_path(&layer.digest)?;
        if let Some(n) = fs::read_to_string(&p).ok().and_then(|s| s.parse().ok()) {
            return Ok(n);
        }
        let blob = self.blob_path(&layer.digest)?;
        let n = content_size(crate::layer::unpack::open_tar(&blob)?)
            .map_err(|e| Error::invalid(blob.display().to_string(), e.to_string()))?;
        let _ = self.record_layer_size(&layer.digest, n);
        Ok(n)
    }

    /// Docker's image size: the sum of the layers' content sizes.
    pub fn image_size(&self, img: &Image) -> Result<u64> {
        img.manifest.layers.iter().map(|l| self.layer_size(l)).sum()
    }

    /// Forget sizes of layers whose blobs are gone (prune).
    pub fn prune_sizes(&self) {
        let dir = self.berth_dir().join("sizes");
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !self.root().join("blobs/sha256").join(&name).exists() {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// Content size of a (decompressed) layer tar stream.
pub fn content_size(r: impl Read) -> std::io::Result<u64> {
    let mut ar = tar::Archive::new(r);
    let mut n = 0;
    for e in ar.entries()? {
        let e = e?;
        let h = e.header();
        n += match h.entry_type() {
            EntryType::Regular | EntryType::Continuous => {
                let whiteout = e
                    .path()?
                    .file_name()
                    .is_some_and(|f| f.as_encoded_bytes().starts_with(b".wh."));
                if whiteout {
                    0
                } else {
                    e.size()
                }
            }
            EntryType::Symlink => e.link_name_bytes().map(|l| l.len() as u64).unwrap_or(0),
            _ => 0,
        };
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::content_size;

    #[test]
    fn content_size_counts_files_and_link_targets_once() {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |kind: tar::EntryType, path: &str, data: &[u8], link: Option<&str>| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            h.set_path(path).unwrap();
            h.set_cksum();
            b.append(&h, data).unwrap();
        };
        add(tar::EntryType::Directory, "d/", b"", None);
        add(tar::EntryType::Regular, "d/a", &[7; 1000], None);
        add(tar::EntryType::Link, "d/hard", b"", Some("d/a"));
        add(tar::EntryType::Symlink, "d/s", b"", Some("a-target"));
        add(tar::EntryType::Regular, "d/.wh.gone", b"", None);
        add(tar::EntryType::Regular, "e", &[1; 24], None);
        let tar = b.into_inner().unwrap();
        // 1000 + 24 bytes of files, 8 of symlink target; the tar itself is ~4 KiB.
        assert_eq!(content_size(tar.as_slice()).unwrap(), 1032);
    }
}
