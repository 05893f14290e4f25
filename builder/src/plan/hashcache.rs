//! Content digests of context files, remembered by (inode, size, mtime, ctime) so a
//! rebuild with nothing changed only stats the context. A touched file is re-hashed
//! (its ctime moved) and, same bytes, gives the same digest: the step stays cached.
//! BLAKE3, not sha256: these digests only key the build cache (never an image), and a cold
//! COPY pays sha256 over the same bytes anyway for the layer's digest.

use crate::digest::hex;
use crate::error::{IoContext, Result};
use crate::store::Store;
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

type Stamp = (u64, u64, u64, i64, i64, i64, i64);

fn stamp(md: &std::fs::Metadata) -> Stamp {
    (
        md.dev(),
        md.ino(),
        md.len(),
        md.mtime(),
        md.mtime_nsec(),
        md.ctime(),
        md.ctime_nsec(),
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

    /// BLAKE3 (hex) of a regular file's bytes.
    pub fn digest(&self, path: &Path, md: &std::fs::Metadata) -> Result<String> {
        let key = path.display().to_string();
        let st = stamp(md);
        if let Some((s, d)) = self.map.lock().expect("lock").get(&key) {
            if *s == st {
                return Ok(d.clone());
            }
        }
        let mut f = std::fs::File::open(path).at(path)?;
        let mut h = blake3::Hasher::new();
        // Read, not mapped: a context file truncated during the build must be an error, not a
        // SIGBUS.
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).at(path)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let d = hex(h.finalize().as_bytes());
        self.map.lock().expect("lock").insert(key, (st, d.clone()));
        *self.dirty.lock().expect("lock") = true;
        Ok(d)
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
