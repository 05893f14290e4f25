//! Snapshots: a layer unpacked once into the store, keyed by its chain id. The key comes
//! from the image config's diff_ids, so a snapshot is published only after the unpacked
//! stream hashed to that diff_id: one image cannot plant content under another's key.

use super::unpack::{open_tar, unpack, UnpackOptions};
use crate::error::{Error, IoContext, Result};
use crate::store::types::Descriptor;
use crate::store::Store;
use berth_common::inroot::Root;
use std::fs;
use std::path::{Path, PathBuf};

/// The snapshot directory of a layer, unpacking it once (atomically) if needed: into a
/// temporary directory, checked against `diff_id`, then renamed into place.
#[allow(clippy::disallowed_methods)] // store-internal: a checked 64-hex chain id
pub fn ensure_snapshot(
    store: &Store,
    chain_id: &str,
    diff_id: &str,
    layer: &Descriptor,
) -> Result<PathBuf> {
    let hex = crate::digest::digest_hex(chain_id)
        .ok_or_else(|| Error::invalid(chain_id, "bad chain id"))?;
    let dir = store.snapshots_dir().join(hex);
    if dir.exists() {
        return Ok(dir);
    }
    store.ensure_layer(layer, diff_id)?;
    let tmp = store.tmp_path("snap");
    fs::create_dir_all(&tmp).at(&tmp)?;
    let blob = store.blob_path(&layer.digest)?;
    let res = (|| {
        let opts = UnpackOptions {
            overlay_whiteouts: true,
            strict: false,
        };
        let got = unpack(open_tar(&blob)?, &Root::open(&tmp)?, opts, &blob)?;
        check_diff_id(&layer.digest, &got, diff_id)
    })();
    if let Err(e) = res {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if fs::rename(&tmp, &dir).is_err() {
        // Another build made it first.
        let _ = fs::remove_dir_all(&tmp);
    }
    Ok(dir)
}

/// Refuses a layer whose uncompressed content is not what the image config says.
pub fn check_diff_id(layer: &str, got: &str, want: &str) -> Result<()> {
    if got == want {
        return Ok(());
    }
    Err(Error::invalid(
        format!("layer {layer}"),
        format!("uncompressed content is {got} but the image config's diff_id is {want}"),
    ))
}

/// Adopt an already-unpacked directory (an overlay upper dir) as a snapshot.
#[allow(clippy::disallowed_methods)] // store-internal: a checked 64-hex chain id
pub fn adopt_snapshot(store: &Store, chain_id: &str, dir: &Path) -> Result<PathBuf> {
    let hex = crate::digest::digest_hex(chain_id)
        .ok_or_else(|| Error::invalid(chain_id, "bad chain id"))?;
    let dest = store.snapshots_dir().join(hex);
    if !dest.exists() && fs::rename(dir, &dest).is_ok() {
        return Ok(dest);
    }
    let _ = fs::remove_dir_all(dir);
    Ok(dest)
}
