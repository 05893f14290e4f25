//! Directory → layer blob. Entries are written in byte order of their names, with
//! uid/gid kept, user/group names empty, atime/ctime zero and mtimes clamped to the
//! epoch when one is given, so equal trees give equal bytes.

use super::xattr;
use super::{Compression, PackOptions};
use crate::digest::HashWriter;
use crate::error::{Error, IoContext, Result};
use crate::store::types::Descriptor;
use crate::store::Store;
use berth_common::inroot::{fd_path, fstat, Dir, Stat};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use tar::{EntryType, Header};

/// The one xattr layers carry: file capabilities (e.g. ping's cap_net_raw).
const CAPABILITY: &str = "security.capability";

/// A layer written to the store.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    pub desc: Descriptor,
    pub diff_id: String,
    /// What the layer's files hold (see store::sizes): docker's size of the layer.
    pub content_size: u64,
}

/// Pack `dir` as a layer blob into the store.
pub fn pack_dir(store: &Store, dir: &Path, opts: PackOptions) -> Result<LayerBlob> {
    pack_dir_skipping(store, dir, opts, &[])
}

/// Pack `dir`, leaving out the entries at `skip` (paths relative to `dir`).
pub fn pack_dir_skipping(
    store: &Store,
    dir: &Path,
    opts: PackOptions,
    skip: &[PathBuf],
) -> Result<LayerBlob> {
    pack_dir_with(store, dir, opts, skip, &HashMap::new())
}

/// Pack `dir` minus `skip`; a regular file whose path (relative to `dir`) is a key of
/// `content` keeps its own metadata but takes its bytes from the file the key maps to.
pub fn pack_dir_with(
    store: &Store,
    dir: &Path,
    opts: PackOptions,
    skip: &[PathBuf],
    content: &HashMap<PathBuf, PathBuf>,
) -> Result<LayerBlob> {
    let blob = store.blob_writer()?;
    let mt = opts.compression.media_type();
    let (desc, diff_id, content_size) = match opts.compression {
        Compression::Gzip => {
            let gz = flate2::GzBuilder::new()
                .mtime(0)
                .operating_system(255)
                .write(blob, flate2::Compression::fast());
            let (hw, n) = write_tar_counting(dir, HashWriter::new(gz), opts, skip, content)?;
            let (gz, diff_id, _) = hw.finish();
            (gz.finish().at(dir)?.commit(mt)?, diff_id, n)
        }
        Compression::Zstd => {
            let zw = zstd::Encoder::new(blob, 3).at(dir)?;
            let (hw, n) = write_tar_counting(dir, HashWriter::new(zw), opts, skip, content)?;
            let (zw, diff_id, _) = hw.finish();
            (zw.finish().at(dir)?.commit(mt)?, diff_id, n)
        }
        Compression::None => {
            let (blob, n) = write_tar_counting(dir, blob, opts, skip, content)?;
            let desc = blob.commit(mt)?;
            (desc.clone(), desc.digest, n)
        }
    };
    store.record_layer_size(&desc.digest, content_size)?;
    Ok(LayerBlob {
        desc,
        diff_id,
        content_size,
    })
}

/// Write the tar stream of `dir` to `w` and return `w`.
pub fn write_tar<W: Write>(dir: &Path, w: W, opts: PackOptions) -> Result<W> {
    Ok(write_tar_counting(dir, w, opts, &[], &HashMap::new())?.0)
}

/// Write the tar stream of `dir` (minus `skip`) to `w`; returns `w` and the content size.
fn write_tar_counting<W: Write>(
    dir: &Path,
    w: W,
    opts: PackOptions,
    skip: &[PathBuf],
    content: &HashMap<PathBuf, PathBuf>,
) -> Result<(W, u64)> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    let top = Dir::open_host(dir)?;
    let mut walker = Walker {
        opts,
        links: HashMap::new(),
        skip,
        content,
        content_size: 0,
        buf: Vec::new(),
    };
    walker.walk(&mut b, &top, Path::new(""))?;
    Ok((b.into_inner().at(dir)?, walker.content_size))
}

struct Walker<'a> {
    opts: PackOptions,
    links: HashMap<(u64, u64), PathBuf>,
    skip: &'a [PathBuf],
    content: &'a HashMap<PathBuf, PathBuf>,
    content_size: u64,
    /// The one read buffer for file contents.
    buf: Vec<u8>,
}

impl Walker<'_> {
    fn header(&self, st: &Stat, kind: EntryType) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(st.mode() & 0o7777);
        h.set_uid(st.uid() as u64);
        h.set_gid(st.gid() as u64);
        let mut mtime = st.mtime().0.max(0);
        if let Some(e) = self.opts.epoch {
            mtime = mtime.min(e.max(0));
        }
        h.set_mtime(mtime as u64);
        h.set_size(0);
        h
    }

    /// A PAX extended header (for file capabilities, as docker writes them).
    fn pax<W: Write>(
        &self,
        b: &mut tar::Builder<W>,
        rel: &Path,
        recs: &[(String, Vec<u8>)],
    ) -> Result<()> {
        let mut data = vec![];
        for (k, v) in recs {
            let body = 1 + k.len() + 1 + v.len() + 1;
            let mut len = body + 1;
            while len != body + len.to_string().len() {
                len = body + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::XHeader);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.opts.epoch.unwrap_or(0).max(0) as u64);
        h.set_size(data.len() as u64);
        let name = format!(
            "PaxHeaders.0/{}",
            rel.file_name().unwrap_or_default().to_string_lossy()
        );
        let name: String = name.chars().take(99).collect();
        h.set_path(&name).at(rel)?;
        h.set_cksum();
        b.append(&h, data.as_slice()).at(rel)
    }

    fn whiteout<W: Write>(&self, b: &mut tar::Builder<W>, path: &Path) -> Result<()> {
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.opts.epoch.unwrap_or(0).max(0) as u64);
        h.set_size(0);
        b.append_data(&mut h, path, std::io::empty()).at(path)
    }

    /// Packs the entries of `dir` (at `rel` in the tree). Every entry is opened by name in
    /// its open parent, never followed: a tree a running container still writes to (commit
    /// --pause=false) can swap a directory or file for a symlink at any moment, and the
    /// swap must fail the pack or pack the link, never read the host through it.
    #[allow(clippy::disallowed_methods)] // `rel` only names tar entries; files open by fd
    fn walk<W: Write>(&mut self, b: &mut tar::Builder<W>, dir: &Dir, rel: &Path) -> Result<()> {
        for name in dir.entries()? {
            let rel_child = rel.join(&name);
            if self.skip.contains(&rel_child) {
                continue;
            }
            let Some(st) = dir.lstat(&name)? else {
                continue; // removed since the listing
            };
            let p = dir.display(&name);
            let ft = st.file_type();
            let file = match ft {
                libc::S_IFREG => Some(open_regular(dir, &name, &st)?),
                _ => None,
            };
            let wh_file = || {
                file.as_ref().is_some_and(|f| {
                    st.size() == 0 && xattr::fget(f, xattr::whiteout_name()).is_some()
                })
            };
            if self.opts.overlay_whiteouts && ((ft == libc::S_IFCHR && st.rdev() == 0) || wh_file())
            {
                let mut wh = OsString::from(".wh.");
                wh.push(&name);
                self.whiteout(b, &rel.join(wh))?;
            } else if ft == libc::S_IFDIR {
                let sub = dir.open_dir(&name)?;
                let mut h = self.header(&st, EntryType::Directory);
                b.append_data(&mut h, &rel_child, std::io::empty()).at(&p)?;
                let opaque = xattr::fget(&sub, xattr::opaque_name()).is_some_and(|v| v == b"y");
                if self.opts.overlay_whiteouts && opaque {
                    self.whiteout(b, &rel_child.join(".wh..wh..opq"))?;
                }
                self.walk(b, &sub, &rel_child)?;
            } else if let Some(f) = file {
                self.file(b, f, &p, &rel_child, &st)?;
            } else {
                self.other(b, dir, &name, &rel_child, &st)?;
            }
        }
        Ok(())
    }

    /// A regular file (already open): a hard link to one packed before, or its bytes.
    fn file<W: Write>(
        &mut self,
        b: &mut tar::Builder<W>,
        mut f: File,
        p: &Path,
        rel: &Path,
        st: &Stat,
    ) -> Result<()> {
        if st.nlink() > 1 {
            if let Some(first) = self.links.get(&(st.dev(), st.ino())) {
                let mut h = self.header(st, EntryType::Link);
                return b.append_link(&mut h, rel, first).at(p);
            }
            self.links.insert((st.dev(), st.ino()), rel.to_path_buf());
        }
        if let Some(cap) = xattr::fget(&f, CAPABILITY) {
            self.pax(b, rel, &[(format!("SCHILY.xattr.{CAPABILITY}"), cap)])?;
        }
        let (src, len) = match self.content.get(rel) {
            Some(src) => {
                let smd = fs::metadata(src).at(src)?;
                if !smd.is_file() {
                    return Err(Error::invalid(
                        src.display().to_string(),
                        "changed during the build: no longer a regular file",
                    ));
                }
                f = File::open(src).at(src)?;
                (src.as_path(), smd.len())
            }
            None => (p, st.size()),
        };
        let mut h = self.header(st, EntryType::Regular);
        h.set_size(len);
        self.content_size += len;
        // tar writes the header (and any long-name entry); the bytes go straight from one
        // 1 MiB buffer to the writer: tar's own copy would move them twice more, through
        // an 8 KiB stack buffer and the writer's buffer.
        b.append_data(&mut h, rel, std::io::empty()).at(src)?;
        copy_exact(&mut f, b.get_mut(), len, &mut self.buf).at(src)
    }

    /// A symlink (its target as written), a device node, a FIFO; sockets are left out.
    fn other<W: Write>(
        &mut self,
        b: &mut tar::Builder<W>,
        dir: &Dir,
        name: &OsStr,
        rel: &Path,
        st: &Stat,
    ) -> Result<()> {
        let p = dir.display(name);
        let kind = match st.file_type() {
            libc::S_IFLNK => {
                let target = dir.read_link(name)?;
                self.content_size += target.as_os_str().len() as u64;
                let mut h = self.header(st, EntryType::Symlink);
                return b.append_link(&mut h, rel, &target).at(&p);
            }
            libc::S_IFSOCK => return Ok(()), // sockets are not part of images, as in docker
            libc::S_IFCHR => EntryType::Char,
            libc::S_IFBLK => EntryType::Block,
            libc::S_IFIFO => EntryType::Fifo,
            _ => {
                return Err(Error::invalid(
                    p.display().to_string(),
                    "unsupported file type",
                ))
            }
        };
        let mut h = self.header(st, kind);
        let rdev = st.rdev();
        h.set_device_major(libc::major(rdev)).at(&p)?;
        h.set_device_minor(libc::minor(rdev)).at(&p)?;
        b.append_data(&mut h, rel, std::io::empty()).at(&p)
    }
}

/// Opens the regular file `name` of `dir` for reading, without following a symlink and
/// without opening anything else swapped in since `st` was taken (a device node's open
/// can act on the host's device): pinned by O_PATH, checked, then reopened.
fn open_regular(dir: &Dir, name: &OsStr, st: &Stat) -> Result<File> {
    let p = dir.display(name);
    let pinned = dir.open_path(name)?;
    let now = fstat(&pinned).at(&p)?;
    if !now.is_file() || now.ino() != st.ino() || now.dev() != st.dev() {
        return Err(Error::invalid(
            p.display().to_string(),
            "changed while being packed: no longer the regular file listed",
        ));
    }
    File::open(fd_path(&pinned)).at(&p)
}

/// Copies exactly `len` bytes of `src` into `dst` and pads them to tar's 512-byte blocks. A
/// file that ends early shrank since its size went into the header: the stream would be
/// corrupt, so that is an error. Bytes past `len` (it grew) are left out.
fn copy_exact(
    src: &mut File,
    dst: &mut impl Write,
    len: u64,
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    buf.resize(1 << 20, 0);
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match src.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "file shrank while being packed",
                ))
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        dst.write_all(&buf[..n])?;
        left -= n as u64;
    }
    let pad = (512 - len % 512) % 512;
    dst.write_all(&[0u8; 512][..pad as usize])
}
