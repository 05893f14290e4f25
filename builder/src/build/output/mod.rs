//! Exporters besides the store (`--output`): an OCI layout directory, an oci- or
//! docker-archive, the final stage's filesystem as a directory (`local`) or a tar; and
//! pushes to registries after the build (`publish`). `spec` parses the flags.

mod publish;
mod rootfs;
pub mod spec;

use crate::error::{Error, Result};
use crate::store::archive::{save, ArchiveFormat};
use crate::store::{Image, Store};
use std::path::{Path, PathBuf};

pub use spec::Outputs;

/// Where a `type=tar` output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TarDest {
    Stdout,
    File(PathBuf),
}

/// One file or directory a build writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    OciDir(PathBuf),
    OciArchive(PathBuf),
    DockerArchive(PathBuf),
    /// The final stage's filesystem, written into a directory.
    Local(PathBuf),
    /// The final stage's filesystem as one tar.
    Tar(TarDest),
}

impl Output {
    /// Where it goes, for progress lines.
    pub fn dest(&self) -> String {
        match self {
            Output::OciDir(p)
            | Output::OciArchive(p)
            | Output::DockerArchive(p)
            | Output::Local(p)
            | Output::Tar(TarDest::File(p)) => p.display().to_string(),
            Output::Tar(TarDest::Stdout) => "stdout".into(),
        }
    }
}

/// Export `img` (named `name`, default "latest") to `o`.
pub fn export(store: &Store, img: &Image, name: Option<&str>, o: &Output) -> Result<()> {
    let name = name.unwrap_or("latest").to_string();
    match o {
        Output::OciArchive(d) => save(store, &[(name, img.clone())], ArchiveFormat::Oci, d),
        Output::DockerArchive(d) => save(store, &[(name, img.clone())], ArchiveFormat::Docker, d),
        Output::OciDir(d) => oci_dir(store, img, &name, d),
        Output::Local(d) => rootfs::local(store, img, d),
        Output::Tar(d) => rootfs::tar(store, img, d),
    }
}

fn oci_dir(store: &Store, img: &Image, name: &str, dest: &Path) -> Result<()> {
    let dst = Store::open(dest)?;
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
    dst.tag(&img.manifest_desc, name)?;
    Ok(())
}
