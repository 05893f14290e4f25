//! Build cache in a folder (`type=local`): the artifact as an OCI image layout, the form CI
//! cache actions save and restore. Export adds blobs (each written to a temp name and
//! renamed), then replaces index.json in one rename, then removes blobs nothing refers to:
//! a runner killed at any point leaves the old cache or the new one, whole. Import treats
//! the folder as a stranger's: read through the in-root resolver, every blob checked.

use super::artifact::{self, Artifact, CacheConfig, Offer};
use crate::digest::{digest_hex, sha256_digest};
use crate::error::{Error, IoContext, Result};
use crate::store::types::{to_json, Descriptor, Index, ANN_REF_NAME};
use crate::store::Store;
use berth_common::inroot::{Dir, Root};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

const LIMIT: u64 = 4 << 20;

fn blob_rel(d: &str) -> Result<std::path::PathBuf> {
    let hex = digest_hex(d).ok_or_else(|| Error::invalid(d, "not a sha256 digest"))?;
    Ok(Path::new("blobs/sha256").join(hex))
}

/// Opens a file of the folder that must be a regular file: non-blocking, so a FIFO or a
/// device planted in a restored cache is refused instead of blocking or streaming forever.
fn open_regular(root: &Root, rel: &Path) -> Result<std::fs::File> {
    let fd = root
        .open_in(rel, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .at(root.display(rel))?;
    let f = std::fs::File::from(fd);
    if !f.metadata().at(root.display(rel))?.is_file() {
        return Err(Error::invalid(
            root.display(rel).display().to_string(),
            "not a regular file",
        ));
    }
    Ok(f)
}

/// A small document of the folder (index.json, a manifest, a config), at most 4 MiB.
fn read_small(root: &Root, rel: &Path) -> Result<Vec<u8>> {
    let f = open_regular(root, rel)?;
    let mut data = vec![];
    f.take(LIMIT + 1)
        .read_to_end(&mut data)
        .at(root.display(rel))?;
    if data.len() as u64 > LIMIT {
        return Err(Error::invalid(
            root.display(rel).display().to_string(),
            "over 4 MiB",
        ));
    }
    Ok(data)
}

/// A blob of the folder, refused unless its content has its digest.
fn read_blob(root: &Root, d: &Descriptor) -> Result<Vec<u8>> {
    let data = read_small(root, &blob_rel(&d.digest)?)?;
    let got = sha256_digest(&data);
    if got != d.digest {
        return Err(Error::invalid(
            format!("blob {}", d.digest),
            format!("digest mismatch: the content has digest {got}"),
        ));
    }
    Ok(data)
}

/// The records the folder `dir` offers.
pub fn import(store: &Store, dir: &Path) -> Result<Offer> {
    let root = Root::open(dir)?;
    let index: Index = serde_json::from_slice(&read_small(&root, Path::new("index.json"))?)
        .map_err(|e| Error::invalid(dir.join("index.json").display().to_string(), e.to_string()))?;
    let md = index.manifests.first().ok_or_else(|| {
        Error::invalid(dir.join("index.json").display().to_string(), "no manifest")
    })?;
    let m = artifact::parse_manifest(&dir.display().to_string(), &read_blob(&root, md)?)?;
    let cfg = read_blob(&root, &m.config)?;
    store.put_blob(&m.config.media_type, &cfg)?;
    let cfg: CacheConfig = store.read_json(&m.config.digest)?;
    Ok(artifact::offer(&m, cfg))
}

/// One layer of the folder into the store, streamed and checked against its digest.
pub fn fetch_layer(store: &Store, dir: &Path, d: &Descriptor) -> Result<()> {
    let root = Root::open(dir)?;
    let f = open_regular(&root, &blob_rel(&d.digest)?)?;
    let mut w = store.blob_writer()?;
    std::io::copy(&mut f.take(d.size), &mut w)
        .map_err(|e| Error::invalid(format!("blob {}", d.digest), e.to_string()))?;
    w.commit_checked(&d.media_type, Some(&d.digest))?;
    Ok(())
}

/// Renames `from` over `to`, both names in `dir`.
fn rename_in(dir: &Dir, from: &OsStr, to: &OsStr) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c =
        |n: &OsStr| std::ffi::CString::new(n.as_bytes()).map_err(|e| Error::Build(e.to_string()));
    let (f, t) = (c(from)?, c(to)?);
    // SAFETY: both names are NUL-terminated plain names relative to the open directory.
    let r = unsafe { libc::renameat(dir.as_raw_fd(), f.as_ptr(), dir.as_raw_fd(), t.as_ptr()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).at(dir.display(to));
    }
    Ok(())
}

/// Writes `data` as `name` in `dir`: a temp name, fsync, rename.
fn put_file(dir: &Dir, name: &str, data: &mut dyn Read) -> Result<()> {
    let tmp = format!(".tmp-{}-{name}", std::process::id());
    let tmp = OsStr::new(&tmp);
    dir.remove_all(tmp)?;
    let mut f = dir.create(tmp, 0o644)?;
    std::io::copy(data, &mut f).at(dir.display(tmp))?;
    f.flush().at(dir.display(tmp))?;
    f.sync_all().at(dir.display(tmp))?;
    rename_in(dir, tmp, OsStr::new(name))
}

/// Writes `art` (its blobs in the store) into the folder `dir`, replacing its cache.
pub fn export(store: &Store, dir: &Path, art: &Artifact) -> Result<()> {
    std::fs::create_dir_all(dir).at(dir)?;
    let root = Root::open(dir)?;
    root.mkdir_all(Path::new("blobs/sha256"), 0o755)?;
    let blobs = root.dir(Path::new("blobs/sha256"))?;
    let mut keep = HashSet::new();
    for d in art.layers.iter().chain([&art.config, &art.manifest_desc]) {
        let hex = digest_hex(&d.digest).unwrap_or_default().to_string();
        if blobs.lstat(OsStr::new(&hex))?.is_none() {
            let p = store.blob_path(&d.digest)?;
            put_file(&blobs, &hex, &mut std::fs::File::open(&p).at(&p)?)?;
        }
        keep.insert(std::ffi::OsString::from(hex));
    }
    fsync_dir(&blobs)?;
    let top = root.top()?;
    put_file(
        &top,
        "oci-layout",
        &mut &br#"{"imageLayoutVersion":"1.0.0"}"#[..],
    )?;
    let mut md = art.manifest_desc.clone();
    md.annotations = Some([(ANN_REF_NAME.to_string(), "latest".to_string())].into());
    let index = Index {
        manifests: vec![md],
        ..Default::default()
    };
    put_file(&top, "index.json", &mut &to_json(&index)[..])?;
    fsync_dir(&top)?;
    // Only now is the old artifact unreferenced.
    for name in blobs.entries()? {
        if !keep.contains(&name) {
            blobs.remove_all(&name)?;
        }
    }
    Ok(())
}

fn fsync_dir(d: &Dir) -> Result<()> {
    // SAFETY: fsync of a descriptor this Dir owns.
    match unsafe { libc::fsync(d.as_raw_fd()) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()).at(d.path()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::cache::CacheRecord;

    fn rec(store: &Store, n: u8, held: bool) -> CacheRecord {
        let data = vec![n; 100];
        let layer = match held {
            true => store
                .put_blob("application/vnd.oci.image.layer.v1.tar", &data)
                .unwrap(),
            false => Descriptor {
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
                digest: sha256_digest(&data),
                size: 100,
                annotations: None,
                platform: None,
            },
        };
        CacheRecord {
            key: format!("{n:064x}"),
            layer: Some(layer),
            diff_id: format!("sha256:{n:064x}"),
            chain_id: format!("sha256:{n:064x}"),
            created: "2026-01-01T00:00:00Z".into(),
        }
    }

    /// An export that fails half way (a blob it cannot read) leaves the old cache whole.
    #[test]
    fn interrupted_export_keeps_the_old_cache() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path().join("store")).unwrap();
        let dir = t.path().join("cache");
        let one = rec(&store, 1, true);
        export(
            &store,
            &dir,
            &artifact::write(&store, vec![one.clone()]).unwrap(),
        )
        .unwrap();
        let broken = vec![rec(&store, 2, true), rec(&store, 3, false)];
        assert!(export(&store, &dir, &artifact::write(&store, broken).unwrap()).is_err());
        let o = import(&store, &dir).unwrap();
        assert_eq!(o.records.keys().collect::<Vec<_>>(), vec![&one.key]);
        fetch_layer(&store, &dir, one.layer.as_ref().unwrap()).unwrap();
        // The next whole export replaces it and drops what nothing refers to.
        let two = rec(&store, 2, true);
        export(
            &store,
            &dir,
            &artifact::write(&store, vec![two.clone()]).unwrap(),
        )
        .unwrap();
        let o = import(&store, &dir).unwrap();
        assert_eq!(o.records.keys().collect::<Vec<_>>(), vec![&two.key]);
        assert_eq!(
            std::fs::read_dir(dir.join("blobs/sha256")).unwrap().count(),
            3
        );
    }

    /// Records are a stranger's: a key that is not a plain hex name (it names a file in the
    /// store) or a layer the artifact does not hold is refused.
    #[test]
    fn malformed_records_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path().join("store")).unwrap();
        let dir = t.path().join("cache");
        let mut evil = rec(&store, 4, true);
        evil.key = "../../../etc/x".into();
        let good = rec(&store, 5, true);
        let mut art = artifact::write(&store, vec![good.clone(), evil]).unwrap();
        export(&store, &dir, &art).unwrap();
        let o = import(&store, &dir).unwrap();
        assert_eq!((o.records.len(), o.refused), (1, 1));
        // A layer the manifest does not list.
        let stray = rec(&store, 6, true);
        art = artifact::write(&store, vec![good, stray.clone()]).unwrap();
        let mut m: crate::store::types::Manifest = serde_json::from_slice(&art.manifest).unwrap();
        m.layers.retain(|l| Some(l) != stray.layer.as_ref());
        let data = to_json(&m);
        art.manifest_desc = store
            .put_blob(&art.manifest_desc.media_type, &data)
            .unwrap();
        art.layers = m.layers.clone();
        export(&store, &dir, &art).unwrap();
        let o = import(&store, &dir).unwrap();
        assert_eq!((o.records.len(), o.refused), (1, 1));
    }
}
