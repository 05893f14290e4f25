//! `import`: a rootfs (directory or tarball) becomes a one-layer image.

use crate::error::{Error, IoContext, Result};
use crate::layer::pack::pack_dir;
use crate::layer::unpack::{open_tar, unpack, UnpackOptions};
use crate::layer::{Compression, PackOptions};
use crate::store::types::{History, ImageConfig};
use crate::store::{Image, Store};
use crate::timefmt;
use std::fs;
use std::path::Path;

#[derive(Debug, Default, Clone)]
pub struct ImportOptions {
    pub epoch: Option<i64>,
    pub compression: Compression,
    /// Dockerfile config instructions applied to the image config.
    pub changes: Vec<String>,
    pub message: Option<String>,
}

pub fn import_rootfs(store: &Store, src: &Path, opts: &ImportOptions) -> Result<Image> {
    let md = fs::metadata(src).at(src)?;
    let _lock = store.lock_shared()?;
    let pack = PackOptions {
        compression: opts.compression,
        epoch: opts.epoch,
        overlay_whiteouts: false,
    };
    let mut config = ImageConfig::empty();
    for c in &opts.changes {
        super::config::apply_change(&mut config.config, c)?;
    }
    let layer = if md.is_dir() {
        pack_dir(store, src, pack)?
    } else {
        let tmp = store.tmp_path("import");
        fs::create_dir_all(&tmp).at(&tmp)?;
        let strict = UnpackOptions {
            overlay_whiteouts: false,
            strict: false,
        };
        let res = open_tar(src)
            .and_then(|r| unpack(r, &berth_common::inroot::Root::open(&tmp)?, strict, src))
            .and_then(|_| pack_dir(store, &tmp, pack));
        let _ = fs::remove_dir_all(&tmp);
        res.map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::InvalidData => {
                Error::invalid(src.display().to_string(), "not a tar archive or directory")
            }
            e => e,
        })?
    };
    let created = timefmt::rfc3339(opts.epoch.unwrap_or_else(timefmt::now_unix));
    config.created = Some(created.clone());
    config.rootfs.diff_ids.push(layer.diff_id.clone());
    let name = src.file_name().unwrap_or_default().to_string_lossy();
    config.history.push(History {
        created: Some(created),
        created_by: Some(format!("berth-build import {name}")),
        comment: opts.message.clone(),
        ..Default::default()
    });
    store.write_image(&config, &[layer.desc])
}
