//! Layer → directory. Two modes: snapshots (OCI whiteouts become overlay whiteouts:
//! a 0/0 char device, or trusted.overlay.opaque=y; user.overlay.opaque=y in a
//! rootless build, see xattr), and ADD's archive extraction,
//! which refuses absolute paths, `..`, and links that leave the destination.

use super::xattr;
use crate::error::{Error, IoContext, Result};
use crate::store::types::Descriptor;
use crate::store::Store;
use nix::sys::stat::{mknod, Mode, SFlag};
use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};
use tar::EntryType;

#[derive(Debug, Clone, Copy)]
pub struct UnpackOptions {
    /// Turn OCI whiteouts into overlay whiteouts (snapshots).
    pub overlay_whiteouts: bool,
    /// Reject absolute paths, `..` and escaping links instead of normalising them.
    pub strict: bool,
}

/// Open a possibly gzip- or zstd-compressed tar (sniffed by magic).
pub fn open_tar(path: &Path) -> Result<Box<dyn Read>> {
    let mut f = BufReader::new(File::open(path).at(path)?);
    let magic = {
        use std::io::BufRead;
        f.fill_buf().at(path)?.get(..4).map(|m| m.to_vec())
    };
    Ok(match magic.as_deref() {
        Some([0x1f, 0x8b, ..]) => Box::new(flate2::read::MultiGzDecoder::new(f)),
        Some([0x28, 0xb5, 0x2f, 0xfd]) => Box::new(zstd::Decoder::with_buffer(f).at(path)?),
        _ => Box::new(f),
    })
}

/// Is the file a tar archive (plain or gzip)? Used by ADD to decide to extract.
pub fn is_archive(path: &Path) -> bool {
    let Ok(mut r) = open_tar(path) else {
        return false;
    };
    let mut block = [0u8; 512];
    if r.read_exact(&mut block).is_err() {
        return false;
    }
    &block[257..262] == b"ustar"
}

/// Relative, normalised path of an entry, or an error naming it.
fn clean_path(raw: &Path, strict: bool, archive: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::RootDir if !strict => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(Error::invalid(
                    archive.display().to_string(),
                    format!("archive entry {:?} escapes the destination", raw),
                ))
            }
        }
    }
    Ok(out)
}

/// Does a symlink at `rel` with `target` stay inside the tree?
fn link_stays_inside(rel: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return true; // resolved inside the container's root at run time
    }
    let mut depth: i64 = rel.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

fn remove_any(p: &Path) {
    if let Ok(md) = fs::symlink_metadata(p) {
        let _ = if md.is_dir() {
            fs::remove_dir_all(p)
        } else {
            fs::remove_file(p)
        };
    }
}

/// Unpack a tar stream into `dest` (which must exist).
pub fn unpack(r: impl Read, dest: &Path, opts: UnpackOptions, name: &Path) -> Result<()> {
    let mut ar = tar::Archive::new(r);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_preserve_ownerships(true);
    ar.set_unpack_xattrs(false);
    ar.set_overwrite(true);
    for entry in ar.entries().at(name)? {
        let mut e = entry.at(name)?;
        let raw = e.path().at(name)?.into_owned();
        let rel = clean_path(&raw, opts.strict, name)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = dest.join(&rel);
        let fname = rel
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if opts.overlay_whiteouts && fname.starts_with(".wh.") {
            whiteout(dest, &rel, &fname)?;
            continue;
        }
        let kind = e.header().entry_type();
        if opts.strict && (kind == EntryType::Symlink || kind == EntryType::Link) {
            let t = e.link_name().at(name)?.unwrap_or_default().into_owned();
            let ok = if kind == EntryType::Link {
                clean_path(&t, true, name).is_ok()
            } else {
                link_stays_inside(&rel, &t)
            };
            if !ok {
                return Err(Error::invalid(
                    name.display().to_string(),
                    format!("archive link {:?} -> {:?} escapes the destination", raw, t),
                ));
            }
        }
        if let Ok(md) = fs::symlink_metadata(&target) {
            if !(md.is_dir() && kind == EntryType::Directory) {
                remove_any(&target);
            }
        }
        if matches!(kind, EntryType::Char | EntryType::Block | EntryType::Fifo) {
            special(&e, &target, kind)?;
            continue;
        }
        let cap = if opts.strict {
            None
        } else {
            capability(&mut e)
        };
        if let Err(err) = e.unpack_in(dest) {
            return Err(unmapped(e.header(), &target).unwrap_or(Error::Io {
                path: target,
                source: err,
            }));
        }
        if let Some(cap) = cap {
            // Best effort: a filesystem without xattrs just loses the capability.
            let _ = xattr::set(&target, "security.capability", &cap);
        }
    }
    Ok(())
}

/// The file capability a layer entry carries (SCHILY.xattr.security.capability).
fn capability<R: Read>(e: &mut tar::Entry<R>) -> Option<Vec<u8>> {
    let exts = e.pax_extensions().ok()??;
    for ext in exts.flatten() {
        if ext.key().ok() == Some("SCHILY.xattr.security.capability") {
            return Some(ext.value_bytes().to_vec());
        }
    }
    None
}

fn whiteout(dest: &Path, rel: &Path, fname: &str) -> Result<()> {
    let parent = dest.join(rel.parent().unwrap_or(Path::new("")));
    fs::create_dir_all(&parent).at(&parent)?;
    if fname == ".wh..wh..opq" {
        return xattr::set(&parent, xattr::opaque_name(), b"y").at(&parent);
    }
    let t = parent.join(&fname[4..]);
    remove_any(&t);
    mknod(&t, SFlag::S_IFCHR, Mode::empty(), 0).at(&t)
}

fn special<R: Read>(e: &tar::Entry<R>, target: &Path, kind: EntryType) -> Result<()> {
    let h = e.header();
    let mode = Mode::from_bits_truncate(h.mode().at(target)?);
    let major = h.device_major().at(target)?.unwrap_or(0) as u64;
    let minor = h.device_minor().at(target)?.unwrap_or(0) as u64;
    let flag = match kind {
        EntryType::Char => SFlag::S_IFCHR,
        EntryType::Block => SFlag::S_IFBLK,
        _ => SFlag::S_IFIFO,
    };
    if let Some(p) = target.parent() {
        fs::create_dir_all(p).at(p)?;
    }
    mknod(
        target,
        flag,
        mode,
        libc::makedev(major as u32, minor as u32),
    )
    .at(target)?;
    let uid = h.uid().at(target)? as u32;
    let gid = h.gid().at(target)? as u32;
    std::os::unix::fs::lchown(target, Some(uid), Some(gid)).map_err(|err| {
        unmapped(h, target).unwrap_or(Error::Io {
            path: target.to_path_buf(),
            source: err,
        })
    })
}

/// The clear error for an entry owned by an id a rootless build cannot use.
fn unmapped(h: &tar::Header, target: &Path) -> Option<Error> {
    let (uid, gid) = (h.uid().ok()? as u32, h.gid().ok()? as u32);
    crate::rootless::chown_error(target, uid, gid).map(Error::from)
}

/// The snapshot directory of a layer, unpacking it once (atomically) if needed.
pub fn ensure_snapshot(store: &Store, chain_id: &str, layer: &Descriptor) -> Result<PathBuf> {
    let hex = crate::digest::digest_hex(chain_id)
        .ok_or_else(|| Error::invalid(chain_id, "bad chain id"))?;
    let dir = store.snapshots_dir().join(hex);
    if dir.exists() {
        return Ok(dir);
    }
    let tmp = store.tmp_path("snap");
    fs::create_dir_all(&tmp).at(&tmp)?;
    let blob = store.blob_path(&layer.digest)?;
    let res = open_tar(&blob).and_then(|r| {
        unpack(
            r,
            &tmp,
            UnpackOptions {
                overlay_whiteouts: true,
                strict: false,
            },
            &blob,
        )
    });
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

/// Adopt an already-unpacked directory (an overlay upper dir) as a snapshot.
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

/// The first four bytes of a file (compression magic).
pub fn magic(path: &Path) -> Option<[u8; 4]> {
    let mut m = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut m))
        .ok()?;
    Some(m)
}
