//! Exporters besides the store: --output type=oci|oci-archive|docker-archive,dest=…

use crate::error::{Error, Result};
use crate::store::archive::{save, ArchiveFormat};
use crate::store::{Image, Store};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputKind {
    OciDir,
    OciArchive,
    DockerArchive,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub kind: OutputKind,
    pub dest: PathBuf,
}

impl Output {
    /// Parse "type=oci,dest=DIR" (also "type=oci-archive,dest=F", "type=docker-archive,dest=F").
    pub fn parse(s: &str) -> Result<Output> {
        let bad = |why: &str| Error::invalid(format!("--output {s:?}"), why.to_string());
        let (mut kind, mut dest) = (None, None);
        for part in s.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| bad("expected key=value pairs"))?;
            match k {
                "type" => {
                    kind = Some(match v {
                        "oci" => OutputKind::OciDir,
                        "oci-archive" => OutputKind::OciArchive,
                        "docker-archive" | "docker" => OutputKind::DockerArchive,
                        _ => return Err(bad("type must be oci, oci-archive or docker-archive")),
                    })
                }
                "dest" => dest = Some(PathBuf::from(v)),
                _ => return Err(bad(&format!("unknown key {k:?}"))),
            }
        }
        Ok(Output {
            kind: kind.ok_or_else(|| bad("missing type="))?,
            dest: dest.ok_or_else(|| bad("missing dest="))?,
        })
    }
}

/// Export `img` (named `name`, default "latest"-less digest) to `o`.
pub fn export(store: &Store, img: &Image, name: Option<&str>, o: &Output) -> Result<()> {
    let name = name.unwrap_or("latest").to_string();
    match o.kind {
        OutputKind::OciArchive => save(store, &[(name, img.clone())], ArchiveFormat::Oci, &o.dest),
        OutputKind::DockerArchive => save(
            store,
            &[(name, img.clone())],
            ArchiveFormat::Docker,
            &o.dest,
        ),
        OutputKind::OciDir => {
            let dst = Store::open(&o.dest)?;
            let mut digests = vec![
                img.manifest.config.digest.clone(),
                img.manifest_desc.digest.clone(),
            ];
            digests.splice(0..0, img.manifest.layers.iter().map(|l| l.digest.clone()));
            for d in digests {
                if !dst.has_blob(&d) {
                    let data = store.blob_path(&d)?;
                    let mut w = dst.blob_writer()?;
                    let mut f = std::fs::File::open(&data).map_err(|e| Error::Io {
                        path: data.clone(),
                        source: e,
                    })?;
                    std::io::copy(&mut f, &mut w).map_err(|e| Error::Io {
                        path: data.clone(),
                        source: e,
                    })?;
                    w.commit("application/octet-stream")?;
                }
            }
            dst.tag(&img.manifest_desc, &name)?;
            Ok(())
        }
    }
}
