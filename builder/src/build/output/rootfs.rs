//! The final stage's filesystem out of the store, as BuildKit's `local` and `tar`
//! exporters write it: the image's layers applied in order (whiteouts delete), each entry
//! made through the in-root resolver with the destination as `/`, so a symlink in the
//! image (`etc -> /etc`, `x -> ../../host`) is written as a symlink and never followed.
//!
//! `local`: files belong to whoever runs the build (BuildKit's client writes them so).
//! A new directory is filled beside its final name and renamed into place; an existing
//! one is written into (merged, as BuildKit does). `tar`: the owners are kept; the tar is
//! written beside FILE and renamed over it, so a failed export leaves no partial FILE.

use super::TarDest;
use crate::error::{Error, IoContext, Result};
use crate::layer::unpack::{apply_layer, open_tar};
use crate::layer::{Compression, PackOptions};
use crate::store::{Image, Store};
use berth_common::inroot::Root;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Apply every layer of `img` onto the directory `dir`.
fn apply_all(store: &Store, img: &Image, dir: &Path, chown: bool) -> Result<()> {
    let root = Root::open(dir)?;
    for l in &img.manifest.layers {
        let blob = store.blob_path(&l.digest)?;
        apply_layer(open_tar(&blob)?, &root, chown, &blob)?;
    }
    Ok(())
}

/// `DIR/.NAME.berth-tmp-PID`: a sibling of `dest`, so the final rename stays on one
/// filesystem.
fn sibling(dest: &Path) -> Result<PathBuf> {
    let name = dest
        .file_name()
        .ok_or_else(|| Error::invalid(dest.display().to_string(), "output needs a file name"))?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".berth-tmp-{}", std::process::id()));
    Ok(dest.with_file_name(tmp))
}

/// `type=local,dest=DIR`.
pub fn local(store: &Store, img: &Image, dest: &Path) -> Result<()> {
    let resolved = trusted_link(dest)?;
    let dest = resolved.as_deref().unwrap_or(dest);
    match fs::metadata(dest) {
        Ok(m) if m.is_dir() => return apply_all(store, img, dest, false),
        Ok(_) => {
            return Err(Error::invalid(
                dest.display().to_string(),
                "output dest exists and is not a directory",
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(Error::Io {
                path: dest.into(),
                source,
            })
        }
    }
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).at(parent)?;
    }
    let tmp = sibling(dest)?;
    fs::create_dir(&tmp).at(&tmp)?;
    let r = apply_all(store, img, &tmp, false).and_then(|()| fs::rename(&tmp, dest).at(dest));
    if r.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    r.map_err(|e| at_output(dest, e))
}

/// A `dest` that is a symlink is followed (to the path returned) only if it is the invoking
/// user's or its directory owner's (the kernel's protected_symlinks rule): a link someone
/// else planted in a shared directory (`/tmp/out -> /etc`) must not steer the image's
/// files onto the host.
fn trusted_link(dest: &Path) -> Result<Option<PathBuf>> {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = fs::symlink_metadata(dest) else {
        return Ok(None);
    };
    if !m.file_type().is_symlink() {
        return Ok(None);
    }
    let parent = match dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p,
        None => Path::new("."),
    };
    let dir_owner = fs::metadata(parent).at(parent)?.uid();
    let me = nix::unistd::geteuid().as_raw();
    if m.uid() == me || m.uid() == dir_owner {
        return fs::canonicalize(dest).at(dest).map(Some);
    }
    Err(Error::invalid(
        format!("--output {}", dest.display()),
        format!(
            "a symlink owned by uid {} (neither yours nor its directory's owner's): not followed",
            m.uid()
        ),
    ))
}

/// An export's error names the output it was writing.
fn at_output(dest: &Path, e: Error) -> Error {
    Error::invalid(format!("--output {}", dest.display()), e.to_string())
}

/// `type=tar,dest=FILE|-`.
pub fn tar(store: &Store, img: &Image, dest: &TarDest) -> Result<()> {
    let tree = store.tmp_path("export");
    fs::create_dir(&tree).at(&tree)?;
    let r = apply_all(store, img, &tree, true).and_then(|()| match dest {
        TarDest::Stdout => {
            let out = std::io::stdout().lock();
            let mut out = write_tar(&tree, std::io::BufWriter::new(out))?;
            out.flush().at("stdout")
        }
        TarDest::File(f) => write_file(&tree, f).map_err(|e| at_output(f, e)),
    });
    let _ = fs::remove_dir_all(&tree);
    r
}

fn write_tar<W: Write>(tree: &Path, w: W) -> Result<W> {
    let opts = PackOptions {
        compression: Compression::None,
        epoch: None,
        overlay_whiteouts: false,
    };
    crate::layer::pack::write_tar(tree, w, opts)
}

/// The tar of `tree` at `dest`, whole or not at all.
fn write_file(tree: &Path, dest: &Path) -> Result<()> {
    let tmp = sibling(dest)?;
    let f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .at(&tmp)?;
    let r = (|| {
        let w = write_tar(tree, std::io::BufWriter::new(f))?;
        let f = w.into_inner().map_err(|e| e.into_error()).at(&tmp)?;
        f.sync_all().at(&tmp)?;
        fs::rename(&tmp, dest).at(dest)
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}
