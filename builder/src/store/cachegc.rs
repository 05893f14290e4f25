//! The build cache's garbage-collection policy, BuildKit's for `prune --keep-storage SIZE`
//! and `--filter until=DURATION`:
//!
//! - A record's last use is its file's mtime (set when written and by every cache hit,
//!   see `mark_used`).
//! - The cache's size is what only the cache holds: the layer blobs and snapshots of its
//!   records that no tagged image or bundle needs (those are never removed anyway).
//! - `until=D` makes only records unused for longer than D candidates; `--keep-storage S`
//!   drops candidates, least recently used first, until the cache is at most S bytes (a
//!   record whose layer an image holds frees nothing and is kept). Without S, every
//!   candidate goes.
//! - A dropped record takes the records built on top of its layer with it, so a later
//!   hit never puts a kept layer onto a re-run (possibly different) parent.
//!
//! The blobs and snapshots of dropped records go in prune's sweep after this, which keeps
//! whatever an image, a bundle or a remaining record still refers to.

use super::gc::Roots;
use super::Store;
use crate::digest::{digest_hex, sha256_digest};
use crate::error::Result;
use crate::plan::cache::{self, CacheRecord};
use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// What prune does with the build cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CachePolicy {
    /// Records are roots: nothing they need goes.
    Keep,
    /// Every record goes.
    All,
    /// Records go by age and size.
    Bounded(Bounds),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bounds {
    /// `--keep-storage`: the cache's size to get under.
    pub keep_bytes: Option<u64>,
    /// `--filter until=`: only records unused for longer than this go.
    pub until: Option<Duration>,
}

/// Records this process used, in order (see `stamp_used`).
static USED: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Marks a record file used now (best effort: a record that cannot be touched just looks
/// older than it is) and remembers it for `stamp_used`.
pub fn mark_used(record: &Path) {
    touch(record, SystemTime::now());
    if let Ok(mut v) = USED.lock() {
        v.push(record.to_path_buf());
    }
}

fn touch(record: &Path, when: SystemTime) {
    use std::os::unix::fs::OpenOptionsExt;
    // Not through a link, not blocking on a FIFO: a record file is the store's own.
    let f = fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(record);
    if let Ok(f) = f {
        let _ = f.set_modified(when);
    }
}

/// At the end of a build: every record it used counts as used now, less a microsecond
/// per record used before it, so a later step's record is slightly less recent than the
/// ones it builds on and LRU drops a child before its parent (BuildKit keeps a parent
/// while a child needs it).
pub fn stamp_used() {
    let list = USED
        .lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default();
    let end = SystemTime::now();
    for (i, p) in list.iter().enumerate() {
        touch(
            p,
            end.checked_sub(Duration::from_micros(i as u64))
                .unwrap_or(end),
        );
    }
}

/// A record with when it was last used and what of the store only the cache holds.
struct Entry {
    rec: CacheRecord,
    used: SystemTime,
    /// Blob digests and snapshot names ("snap:<chain id>") no image or bundle needs.
    items: Vec<String>,
}

/// The bytes of a blob, or of a snapshot's files (regular files' lengths, symlinks'
/// targets: what they hold, as store::sizes counts a layer).
fn item_size(store: &Store, item: &str) -> u64 {
    let path = match item.strip_prefix("snap:") {
        Some(chain) => match digest_hex(chain) {
            Some(hex) => store.snapshots_dir().join(hex),
            None => return 0,
        },
        None => match store.blob_path(item) {
            Ok(p) => return fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            Err(_) => return 0,
        },
    };
    walkdir::WalkDir::new(path)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file() || m.is_symlink())
        .map(|m| m.len())
        .sum()
}

fn entries(store: &Store, roots: &Roots) -> Result<Vec<Entry>> {
    let mut out = vec![];
    for rec in cache::all(store)? {
        let file = store.cache_dir().join(format!("{}.json", rec.key));
        let used = fs::metadata(&file)
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut items: Vec<String> = rec
            .blobs()
            .into_iter()
            .filter(|b| !roots.blobs.contains(b))
            .collect();
        let chain = &rec.chain_id;
        if !chain.is_empty() && !roots.chains.contains(chain) {
            items.push(format!("snap:{chain}"));
        }
        out.push(Entry { rec, used, items });
    }
    out.sort_by(|a, b| a.used.cmp(&b.used).then(a.rec.key.cmp(&b.rec.key)));
    Ok(out)
}

/// The cache's size: the bytes of every item some record holds and no root does.
pub fn usage(store: &Store, roots: &Roots) -> Result<u64> {
    let items: HashSet<String> = entries(store, roots)?
        .into_iter()
        .flat_map(|e| e.items)
        .collect();
    Ok(items.iter().map(|i| item_size(store, i)).sum())
}

/// Drops the records `b` selects (their files only: prune's sweep removes what they
/// held). Returns (records dropped, the cache's size before).
pub fn drop_records(store: &Store, roots: &Roots, b: &Bounds) -> Result<(usize, u64)> {
    let list = entries(store, roots)?;
    let mut refs: HashMap<&str, usize> = HashMap::new();
    for e in &list {
        for i in &e.items {
            *refs.entry(i.as_str()).or_default() += 1;
        }
    }
    let sizes: HashMap<&str, u64> = refs.keys().map(|i| (*i, item_size(store, i))).collect();
    let before: u64 = sizes.values().sum();
    let mut size = before;
    let cutoff = b.until.and_then(|d| SystemTime::now().checked_sub(d));
    let mut gone: HashSet<usize> = HashSet::new();
    for (n, e) in list.iter().enumerate() {
        if cutoff.is_some_and(|c| e.used >= c) || gone.contains(&n) {
            continue;
        }
        if let Some(keep) = b.keep_bytes {
            if size <= keep {
                break;
            }
            if e.items.is_empty() {
                continue; // frees nothing: an image holds what it made
            }
        }
        for d in with_descendants(&list, n, &gone) {
            if gone.insert(d) {
                for i in &list[d].items {
                    let r = refs.get_mut(i.as_str()).expect("counted above");
                    *r -= 1;
                    if *r == 0 {
                        size -= sizes[i.as_str()];
                    }
                }
            }
        }
    }
    for &n in &gone {
        let key = &list[n].rec.key;
        let file = store.cache_dir().join(format!("{key}.json"));
        let _ = fs::remove_file(file);
    }
    Ok((gone.len(), before))
}

/// `n` and every record whose layer sits on it (chain id = H(parent chain + " " + diff)).
/// (Those already `gone` are not looked at again.)
fn with_descendants(list: &[Entry], n: usize, gone: &HashSet<usize>) -> Vec<usize> {
    let mut out = vec![n];
    let mut i = 0;
    while i < out.len() {
        let parent = &list[out[i]].rec.chain_id;
        i += 1;
        if parent.is_empty() {
            continue;
        }
        for (c, e) in list.iter().enumerate() {
            let r = &e.rec;
            if r.layer.is_some()
                && !gone.contains(&c)
                && !out.contains(&c)
                && sha256_digest(format!("{parent} {}", r.diff_id).as_bytes()) == r.chain_id
            {
                out.push(c);
            }
        }
    }
    out
}
