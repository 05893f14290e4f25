//! Layer → directory. Two modes: snapshots (OCI whiteouts become overlay whiteouts:
//! a 0/0 char device, or trusted.overlay.opaque=y; user.overlay.opaque=y in a
//! rootless build, see xattr), and ADD's archive extraction,
//! which refuses absolute paths, `..`, and links that leave the destination.
//!
//! Every entry is made through the in-root resolver (`berth_common::inroot`): its parent
//! is resolved with the destination as `/`, and the entry itself is made by name in that
//! open directory. A layer's `evil -> /host/dir` then `evil/f` lands in `dest/host/dir/f`,
//! never on the host, whatever the entry is (file, directory, device, hard link, whiteout).

use super::xattr;
use crate::digest::HashReader;
use crate::error::{Error, IoContext, Result};
use berth_common::inroot::{is_plain_name, Dir, Root};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
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
    decompress(File::open(path).at(path)?, path)
}

/// A possibly gzip- or zstd-compressed stream, decompressed (sniffed by magic).
pub fn decompress<'a>(r: impl Read + 'a, path: &Path) -> Result<Box<dyn Read + 'a>> {
    let mut f = BufReader::new(r);
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

/// What one unpack saw beyond its entries.
#[derive(Default)]
struct Notes {
    /// Device nodes a rootless build could not make (skipped, as podman does).
    skipped_devices: usize,
    /// Set when applying a layer onto the layers below it (see `apply_layer`).
    merge: Option<Merge>,
}

/// Applying a layer onto a tree holding its lower layers: whiteouts delete from the tree,
/// and only what lower layers left (OCI: a whiteout never hides its own layer's entries).
struct Merge {
    /// Keep the layer's owners (else everything stays owned by whoever writes it).
    chown: bool,
    /// Entries this layer wrote so far.
    written: HashSet<PathBuf>,
}

/// Unpack a tar stream into the tree `dest`; returns the diff_id ("sha256:…") of the
/// whole uncompressed stream, read to its end.
pub fn unpack(r: impl Read, dest: &Root, opts: UnpackOptions, name: &Path) -> Result<String> {
    unpack_noting(r, dest, opts, name, Notes::default())
}

/// Apply a layer onto `dest`, which holds the layers below it: the merged filesystem, as
/// an export writes it (no overlay whiteouts left behind). `chown`: keep the entries'
/// owners; else they belong to whoever runs this (BuildKit's local exporter).
pub fn apply_layer(r: impl Read, dest: &Root, chown: bool, name: &Path) -> Result<String> {
    let opts = UnpackOptions {
        overlay_whiteouts: false,
        strict: false,
    };
    let merge = Merge {
        chown,
        written: HashSet::new(),
    };
    let notes = Notes {
        merge: Some(merge),
        ..Notes::default()
    };
    unpack_noting(r, dest, opts, name, notes)
}

fn unpack_noting(
    r: impl Read,
    dest: &Root,
    opts: UnpackOptions,
    name: &Path,
    mut notes: Notes,
) -> Result<String> {
    let mut ar = tar::Archive::new(HashReader::new(r));
    for entry in ar.entries().at(name)? {
        let mut e = entry.at(name)?;
        unpack_entry(&mut e, dest, opts, name, &mut notes)?;
    }
    if notes.skipped_devices > 0 {
        eprintln!(
            "note: {}: skipped {} device node(s): not made in a rootless build or a local export",
            name.display(),
            notes.skipped_devices
        );
    }
    ar.into_inner().finish().at(name)
}

fn unpack_entry<R: Read>(
    e: &mut tar::Entry<R>,
    root: &Root,
    opts: UnpackOptions,
    name: &Path,
    notes: &mut Notes,
) -> Result<()> {
    let raw = e.path().at(name)?.into_owned();
    let rel = clean_path(&raw, opts.strict, name)?;
    let Some(fname) = rel.file_name().map(OsStr::to_owned) else {
        return Ok(()); // the top itself ("./")
    };
    let fname_s = fname.to_string_lossy();
    if opts.overlay_whiteouts && fname_s.starts_with(".wh.") {
        return whiteout(root, &rel, &fname_s);
    }
    if let Some(m) = notes.merge.as_mut() {
        if fname_s.starts_with(".wh.") {
            return merge_whiteout(root, &rel, &fname_s, &m.written);
        }
        m.written.insert(rel.clone());
    }
    let kind = e.header().entry_type();
    let link = e.link_name().at(name)?.map(|l| l.into_owned());
    if opts.strict && matches!(kind, EntryType::Symlink | EntryType::Link) {
        let t = link.clone().unwrap_or_default();
        let ok = match kind {
            EntryType::Link => clean_path(&t, true, name).is_ok(),
            _ => link_stays_inside(&rel, &t),
        };
        if !ok {
            return Err(Error::invalid(
                name.display().to_string(),
                format!("archive link {:?} -> {:?} escapes the destination", raw, t),
            ));
        }
    }
    let (dir, leaf) = root.parent_all(&rel, 0o755)?;
    let h = e.header().clone();
    let mode = h.mode().at(root.display(&rel))? & 0o7777;
    match kind {
        EntryType::Directory => {
            if dir.lstat(&leaf)?.is_some_and(|st| !st.is_dir()) {
                dir.remove_all(&leaf)?;
            }
            dir.mkdir(&leaf, mode)?;
        }
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            let mut f = dir.replace_file(&leaf, 0o600)?;
            std::io::copy(e, &mut f).at(dir.display(&leaf))?;
        }
        EntryType::Symlink => {
            dir.remove_all(&leaf)?;
            dir.symlink(&leaf, &link.unwrap_or_default())?;
        }
        EntryType::Link => {
            let src = clean_path(&link.unwrap_or_default(), opts.strict, name)?;
            if src == rel {
                return Ok(()); // a link to itself: already there
            }
            let (sdir, sname) = root.parent(&src)?;
            dir.remove_all(&leaf)?;
            dir.hardlink(&leaf, &sdir, &sname)?;
            return Ok(()); // shares the source's inode, owner and mode
        }
        // A device in a user's export (files as the invoking user) would hand whoever can
        // reach the dest the host's device (an image's 0666 `b 8 0` is the host's disk).
        EntryType::Char | EntryType::Block if notes.merge.as_ref().is_some_and(|m| !m.chown) => {
            notes.skipped_devices += 1;
            return Ok(());
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            if !special(&dir, &leaf, &h, kind, notes)? {
                return Ok(());
            }
        }
        _ => return Ok(()), // pax/GNU headers the tar crate did not fold in, and the like
    }
    let chown = notes.merge.as_ref().is_none_or(|m| m.chown);
    finish_entry(e, &dir, &leaf, &h, kind, opts, mode, chown)
}

/// Owner (if `chown`), mode (again after chown, which drops setuid), capability and mtime.
#[allow(clippy::too_many_arguments)]
fn finish_entry<R: Read>(
    e: &mut tar::Entry<R>,
    dir: &Dir,
    leaf: &OsStr,
    h: &tar::Header,
    kind: EntryType,
    opts: UnpackOptions,
    mode: u32,
    chown: bool,
) -> Result<()> {
    let at = dir.display(leaf);
    let (uid, gid) = (h.uid().at(&at)? as u32, h.gid().at(&at)? as u32);
    if chown {
        if let Err(err) = dir.chown(leaf, uid, gid) {
            return Err(unmapped(&at, uid, gid).unwrap_or(err.into()));
        }
    }
    if kind != EntryType::Symlink {
        // Owned by the invoking user (not the image's owner): no setuid/setgid, or a
        // stranger's binary would run as the user, root for a root build.
        let mode = if chown { mode } else { mode & !0o6000 };
        dir.chmod(leaf, mode)?;
    }
    if !opts.strict && kind.is_file() {
        if let Some(cap) = capability(e) {
            // Best effort: a filesystem without xattrs just loses the capability.
            let _ = dir.set_xattr(leaf, "security.capability", &cap);
        }
    }
    let mtime = h.mtime().unwrap_or(0) as i64;
    // Best effort, as tar does: a timestamp is never worth failing a layer for.
    let _ = dir.set_times(leaf, (mtime, 0), (mtime, 0));
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

/// `.wh.NAME` deletes NAME from the lower layers (an overlay 0/0 char device here), and
/// `.wh..wh..opq` hides everything below its directory (the opaque xattr on it).
fn whiteout(root: &Root, rel: &Path, fname: &str) -> Result<()> {
    let parent = rel.parent().unwrap_or(Path::new(""));
    root.mkdir_all(parent, 0o755)?;
    let dir = root.dir(parent)?;
    if fname == ".wh..wh..opq" {
        return Ok(dir.set_xattr_self(xattr::opaque_name(), b"y")?);
    }
    let victim = OsStr::new(&fname[4..]);
    if !is_plain_name(victim) {
        return Ok(()); // ".wh." alone names nothing
    }
    dir.remove_all(victim)?;
    Ok(dir.mknod(victim, libc::S_IFCHR, 0, 0)?)
}

/// A whiteout applied to the merged tree: `.wh.NAME` removes NAME, `.wh..wh..opq` empties
/// its directory, each sparing what this layer itself wrote (`written`).
#[allow(clippy::disallowed_methods)] // joined paths only name set members; access is by fd
fn merge_whiteout(root: &Root, rel: &Path, fname: &str, written: &HashSet<PathBuf>) -> Result<()> {
    let parent = rel.parent().unwrap_or(Path::new(""));
    let dir = match root.dir(parent) {
        Ok(d) => d,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
            return Ok(()); // nothing below to hide
        }
        Err(e) => return Err(e.into()),
    };
    if fname == ".wh..wh..opq" {
        return clear_lower(&dir, parent, written);
    }
    let victim = OsStr::new(&fname[4..]);
    if !is_plain_name(victim) || written.contains(&parent.join(victim)) {
        return Ok(());
    }
    Ok(dir.remove_all(victim)?)
}

/// Removes what is under `dir` (at `rel`) except this layer's own entries.
#[allow(clippy::disallowed_methods)] // joined paths only name set members; access is by fd
fn clear_lower(dir: &Dir, rel: &Path, written: &HashSet<PathBuf>) -> Result<()> {
    for name in dir.entries()? {
        let child = rel.join(&name);
        if !written.contains(&child) {
            dir.remove_all(&name)?;
        } else if dir.lstat(&name)?.is_some_and(|st| st.is_dir()) {
            clear_lower(&dir.open_dir(&name)?, &child, written)?;
        }
    }
    Ok(())
}

/// Makes a device node or FIFO with exactly the entry's mode (no umask). Ok(false) when a
/// rootless build cannot make a device: it is skipped and counted for a note.
fn special(
    dir: &Dir,
    leaf: &OsStr,
    h: &tar::Header,
    kind: EntryType,
    notes: &mut Notes,
) -> Result<bool> {
    let at = dir.display(leaf);
    let mode = h.mode().at(&at)? & 0o7777;
    let major = h.device_major().at(&at)?.unwrap_or(0);
    let minor = h.device_minor().at(&at)?.unwrap_or(0);
    let flag = match kind {
        EntryType::Char => libc::S_IFCHR,
        EntryType::Block => libc::S_IFBLK,
        _ => libc::S_IFIFO,
    };
    dir.remove_all(leaf)?;
    match dir.mknod(leaf, flag, mode, libc::makedev(major, minor)) {
        Ok(()) => Ok(true),
        Err(e)
            if flag != libc::S_IFIFO
                && e.raw_os_error() == Some(libc::EPERM)
                && crate::rootless::in_userns() =>
        {
            notes.skipped_devices += 1;
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// The clear error for an entry owned by an id a rootless build cannot use.
fn unmapped(target: &Path, uid: u32, gid: u32) -> Option<Error> {
    crate::rootless::chown_error(target, uid, gid).map(Error::from)
}

/// The first four bytes of a file (compression magic).
pub fn magic(path: &Path) -> Option<[u8; 4]> {
    let mut m = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut m))
        .ok()?;
    Some(m)
}
