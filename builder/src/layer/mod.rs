//! Layers: a directory (an overlay upper dir, or a staged COPY) → a sorted, normalised
//! tar stream, compressed, hashed (diff_id before compression, digest after), and the
//! reverse: a layer blob → an unpacked snapshot directory in overlay format.

#![deny(clippy::disallowed_methods)] // paths in here are inside a root: see clippy.toml

pub mod pack;
pub mod snapshot;
pub mod unpack;
pub mod xattr;

use crate::store::types::{MT_LAYER_GZIP, MT_LAYER_TAR, MT_LAYER_ZSTD};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    None,
}

impl Compression {
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => MT_LAYER_GZIP,
            Compression::Zstd => MT_LAYER_ZSTD,
            Compression::None => MT_LAYER_TAR,
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "gzip" => Some(Compression::Gzip),
            "zstd" => Some(Compression::Zstd),
            "uncompressed" | "none" => Some(Compression::None),
            _ => None,
        }
    }
}

/// How to turn a directory into a layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackOptions {
    pub compression: Compression,
    /// Clamp every mtime to this (SOURCE_DATE_EPOCH).
    pub epoch: Option<i64>,
    /// Convert overlay whiteouts (0/0 char devices, opaque xattr) to OCI whiteouts.
    pub overlay_whiteouts: bool,
}
