//! import: rootfs directory or tarball → one-layer base image.

use crate::build::import::{import_rootfs, ImportOptions};
use crate::error::{Error, Result};
use crate::layer::Compression;
use crate::store::Store;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A rootfs directory, or a tar / tar.gz of one
    pub source: PathBuf,
    /// NAME[:TAG] for the image
    pub reference: String,
    /// Apply a Dockerfile instruction to the config (CMD, ENV, …); repeatable
    #[arg(short, long)]
    pub change: Vec<String>,
    /// History comment
    #[arg(short, long)]
    pub message: Option<String>,
    /// Unix time for every timestamp (default: $SOURCE_DATE_EPOCH, else now)
    #[arg(long)]
    pub timestamp: Option<i64>,
    /// gzip, zstd or uncompressed
    #[arg(long, default_value = "gzip")]
    pub compression: String,
}

pub fn run(store: &Store, a: ImportArgs) -> Result<i32> {
    let compression = Compression::parse(&a.compression)
        .ok_or_else(|| Error::invalid("--compression", "expected gzip, zstd or uncompressed"))?;
    let opts = ImportOptions {
        epoch: a.timestamp.or_else(crate::build::epoch_from_env),
        compression,
        changes: a.change,
        message: a.message,
    };
    let name = crate::store::reference::normalize(&a.reference)?;
    let img = import_rootfs(store, &a.source, &opts)?;
    store.tag(&img.manifest_desc, &name)?;
    println!("{}", img.id());
    Ok(0)
}
