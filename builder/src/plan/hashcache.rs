//! Content digests of context files, remembered by (inode, size, mtime, ctime) so a
//! rebuild with nothing changed only stats the context. A touched file is re-hashed
//! (its ctime moved) and, same bytes, gives the same digest: the step stays cached.
//! BLAKE3, not sha256: these digests only key the build cache (never an image), and a cold
//! COPY pays sha256 over the same bytes anyway for the layer's digest.

use crate::digest::hex;
use crate::error::{IoContext, Result};
use crate::store::Store;
use berth_common::inroot::Stat;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

type Stamp = (u64, u64, u64, i64, i64, i64, i64);

fn stamp(st: &Stat) -> Stamp {
    let (m, mn) = st.mtime();
    (
        st.dev(),
        st.ino(),
        st.size(),
        m,
        mn,
        st.0.st_ctime,
        st.0.st_ctime_nsec,
    )
}

#[derive(Debug)]
pub struct HashCache {
    file: PathBuf,
    map: Mutex<HashMap<String, (Stamp, String)>>,
    dirty: Mutex<bool>,
}

impl HashCache {
    /// Load the store's cache (an unreadable or missing one is just empty).
    pub fn load(store: &Store) -> HashCache {
        let file = store.berth_dir().join("hashcache-b3.json");
        let map = std::fs::read(&file)
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .unwrap_or_default();
        HashCache {
            file,
            map: Mutex::new(map),
            dirty: Mutex::new(false),
        }
    }

    /// BLAKE3 (hex) of the regular file `key` (its host path) whose lstat is `st`; `open`
    /// opens it (by descriptor, in its tree) when the digest is not known for that stamp.
    pub fn digest(
        &self,
        key: &Path,
        st: &Stat,
        open: impl FnOnce() -> Result<File>,
    ) -> Result<String> {
        let k = key.display().to_string();
        let st = stamp(st);
        if let Some((s, d)) = self.map.lock().expect("lock").get(&k) {
            if *s == st {
                return Ok(d.clone());
            }
        }
        let d = self.digest_uncached(key, open)?;
        self.map.lock().expect("lock").insert(k, (st, d.clone()));
        *self.dirty.lock().expect("lock") = true;
        Ok(d)
    }

    /// BLAKE3 (hex) of what `open` opens, not remembered (a download's temporary file).
    pub fn digest_uncached(
        &self,
        key: &Path,
        open: impl FnOnce() -> Result<File>,
    ) -> Result<String> {
        let mut f = open()?;
        let mut h = blake3::Hasher::new();
        // Read, not mapped: a context file truncated during the build must be an error, not a
        // SIGBUS.
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).at(key)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(hex(h.finalize().as_bytes()))
    }

    /// Write the cache back (atomically) if it changed.
    pub fn save(&self, store: &Store) -> Result<()> {
        if !*self.dirty.lock().expect("lock") {
            return Ok(());
        }
        let data = serde_json::to_vec(&*self.map.lock().expect("lock")).unwrap_or_default();
        store.write_atomic(&self.file, &data)
    }
}
