//! The image store: an OCI image layout directory.
//!
//! ```text
//! STORE/oci-layout              {"imageLayoutVersion":"1.0.0"}
//! STORE/index.json              tags as org.opencontainers.image.ref.name = "name:tag"
//! STORE/blobs/sha256/<hex>      content-addressed blobs (written to tmp/, then renamed)
//! STORE/berth/cache/<key>.json  build cache records (see plan::cache)
//! STORE/berth/snapshots/<hex>   unpacked layers keyed by chain id (overlay lowerdirs)
//! STORE/berth/sizes/<hex>       a layer blob's uncompressed content size (see sizes)
//! STORE/berth/tmp/              in-flight files; anything here after a crash is garbage
//! STORE/berth/lock, index.lock  flock(2) files: builds hold `lock` shared, prune exclusive
//! ```

pub mod archive;
pub mod cachegc;
pub mod gc;
pub mod image;
pub mod load;
pub mod lock;
pub mod reference;
pub mod sizes;
pub mod types;

use crate::digest::{digest_hex, HashWriter};
use crate::error::{Error, IoContext, Result};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use types::{Descriptor, Index};

pub use image::Image;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Default store location: $BERTH_STORE, else /var/lib/berth for root and
/// $XDG_DATA_HOME/berth (~/.local/share/berth) for an ordinary user.
pub fn default_root() -> PathBuf {
    match std::env::var_os("BERTH_STORE") {
        Some(s) => PathBuf::from(s),
        None if crate::rootless::active() => crate::rootless::default_store(),
        None => PathBuf::from("/var/lib/berth"),
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// Imported build caches (--cache-from) whose layers are fetched on first use.
    session: Option<std::sync::Arc<crate::buildcache::session::Session>>,
}

impl Store {
    /// Open (creating if needed) the layout at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root: PathBuf = root.into();
        let s = Store {
            root,
            session: None,
        };
        for d in [
            s.root.join("blobs/sha256"),
            s.berth_dir().join("tmp"),
            s.berth_dir().join("cache"),
            s.berth_dir().join("snapshots"),
        ] {
            fs::create_dir_all(&d).at(&d)?;
        }
        // Absolute from here on: paths into the store go into bundles' config.json, which
        // the runtime reads relative to the bundle (`--store ./s` broke every RUN).
        let s = Store {
            root: fs::canonicalize(&s.root).at(&s.root)?,
            session: None,
        };
        let layout = s.root.join("oci-layout");
        if !layout.exists() {
            s.write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index = s.root.join("index.json");
        if !index.exists() {
            let _g = lock::Lock::exclusive(&s.berth_dir().join("index.lock"))?;
            if !index.exists() {
                s.write_atomic(&index, &types::to_json(&Index::default()))?;
            }
        }
        Ok(s)
    }

    /// This store with a build's imported caches attached.
    pub fn with_session(mut self, s: std::sync::Arc<crate::buildcache::session::Session>) -> Store {
        self.session = Some(s);
        self
    }

    pub fn session(&self) -> Option<&crate::buildcache::session::Session> {
        self.session.as_deref()
    }

    /// Makes sure a layer's blob is here, fetching it from an imported cache (checked
    /// against its digest and `diff_id`) if that is where it is.
    pub fn ensure_layer(&self, layer: &Descriptor, diff_id: &str) -> Result<()> {
        match &self.session {
            Some(s) if !self.has_blob(&layer.digest) => s.fetch(self, layer, diff_id),
            _ => Ok(()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn berth_dir(&self) -> PathBuf {
        self.root.join("berth")
    }
    pub fn tmp_root(&self) -> PathBuf {
        self.berth_dir().join("tmp")
    }
    pub fn snapshots_dir(&self) -> PathBuf {
        self.berth_dir().join("snapshots")
    }
    pub fn cache_dir(&self) -> PathBuf {
        self.berth_dir().join("cache")
    }

    /// A fresh unique path under tmp/ (not created).
    pub fn tmp_path(&self, prefix: &str) -> PathBuf {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        self.tmp_root()
            .join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()))
    }

    /// Shared lock held for the length of a build (prune takes it exclusively).
    pub fn lock_shared(&self) -> Result<lock::Lock> {
        lock::Lock::shared(&self.berth_dir().join("lock"))
    }
    pub fn lock_exclusive(&self) -> Result<lock::Lock> {
        lock::Lock::exclusive(&self.berth_dir().join("lock"))
    }

    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let hex =
            digest_hex(digest).ok_or_else(|| Error::invalid(digest, "not a sha256 digest"))?;
        Ok(self.root.join("blobs/sha256").join(hex))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).map(|p| p.exists()).unwrap_or(false)
    }

    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.blob_path(digest)?;
        fs::read(&p).at(&p)
    }

    pub fn read_json<T: serde::de::DeserializeOwned>(&self, digest: &str) -> Result<T> {
        let p = self.blob_path(digest)?;
        let data = fs::read(&p).at(&p)?;
        serde_json::from_slice(&data).map_err(|source| Error::Json { path: p, source })
    }

    /// Store bytes as a blob; returns its descriptor.
    pub fn put_blob(&self, media_type: &str, data: &[u8]) -> Result<Descriptor> {
        let mut w = self.blob_writer()?;
        w.write_all(data).at(&w.path)?;
        w.commit(media_type)
    }

    pub fn put_json<T: serde::Serialize>(&self, media_type: &str, v: &T) -> Result<Descriptor> {
        self.put_blob(media_type, &types::to_json(v))
    }

    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let path = self.tmp_path("blob");
        let f = File::create(&path).at(&path)?;
        Ok(BlobWriter {
            inner: Some(HashWriter::new(BufWriter::with_capacity(1 << 20, f))),
            path,
            store: self.clone(),
        })
    }

    /// Write a file atomically (tmp + fsync + rename).
    pub fn write_atomic(&self, dest: &Path, data: &[u8]) -> Result<()> {
        let tmp = self.tmp_path("file");
        let mut f = File::create(&tmp).at(&tmp)?;
        f.write_all(data).at(&tmp)?;
        f.sync_all().at(&tmp)?;
        fs::rename(&tmp, dest).at(dest)
    }

    pub fn index(&self) -> Result<Index> {
        let p = self.root.join("index.json");
        let data = fs::read(&p).at(&p)?;
        serde_json::from_slice(&data).map_err(|source| Error::Json { path: p, source })
    }

    /// Read-modify-write index.json under the index lock; replaced atomically.
    pub fn update_index<T>(&self, f: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let _g = lock::Lock::exclusive(&self.berth_dir().join("index.lock"))?;
        let mut idx = self.index()?;
        let out = f(&mut idx)?;
        self.write_atomic(&self.root.join("index.json"), &types::to_json(&idx))?;
        Ok(out)
    }
}

/// A blob being written: bytes go to a temp file while being hashed; `commit` renames
/// it to blobs/sha256/<digest>. Dropped without commit, the temp file is removed.
pub struct BlobWriter {
    inner: Option<HashWriter<BufWriter<File>>>,
    path: PathBuf,
    store: Store,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.as_mut().expect("live writer").write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.as_mut().expect("live writer").flush()
    }
}

impl BlobWriter {
    pub fn commit(self, media_type: &str) -> Result<Descriptor> {
        self.commit_checked(media_type, None)
    }

    /// Commit only if the content has the digest `expected` (else the temp file goes).
    pub fn commit_checked(
        mut self,
        media_type: &str,
        expected: Option<&str>,
    ) -> Result<Descriptor> {
        let (buf, digest, size) = self.inner.take().expect("live writer").finish();
        if let Some(want) = expected.filter(|w| *w != digest) {
            drop(buf);
            let _ = fs::remove_file(&self.path);
            return Err(Error::invalid(
                format!("blob {want}"),
                format!("digest mismatch: the content has digest {digest}"),
            ));
        }
        let f = buf
            .into_inner()
            .map_err(|e| e.into_error())
            .at(&self.path)?;
        f.sync_all().at(&self.path)?;
        drop(f);
        let dest = self.store.blob_path(&digest)?;
        fs::rename(&self.path, &dest).at(&dest)?;
        Ok(Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            annotations: None,
            platform: None,
        })
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.inner.is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}
