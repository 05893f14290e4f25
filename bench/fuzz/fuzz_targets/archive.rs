//! `berth-build load` of a stranger's docker-archive or oci-archive (plain, gzip or zstd)
//! into a fresh store inside a sandbox. Afterwards, loaded or refused: nothing landed
//! beside the store, the sentinel tree is untouched, and the store still lists its images
//! (one bad image must never break the store).
#![no_main]
use berth_builder::store::{load::load, Store};
use libfuzzer_sys::fuzz_target;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn sandbox() -> &'static PathBuf {
    static S: OnceLock<PathBuf> = OnceLock::new();
    S.get_or_init(|| {
        let s = PathBuf::from(format!("/tmp/fuzz-archive-{}", std::process::id()));
        let _ = fs::remove_dir_all(&s);
        fs::create_dir_all(s.join("sentinel/dir")).unwrap();
        fs::write(s.join("sentinel/file"), b"host").unwrap();
        s
    })
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, u32, u64, i64, u64)> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let m = fs::symlink_metadata(&d).unwrap();
        out.push((d.clone(), m.mode(), m.size(), m.mtime(), m.nlink()));
        if m.is_dir() {
            for e in fs::read_dir(&d).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    out.sort();
    out
}

fuzz_target!(|data: &[u8]| {
    let sb = sandbox();
    let before = snapshot(&sb.join("sentinel"));
    let src = sb.join("in.tar");
    fs::write(&src, data).unwrap();
    let store = Store::open(sb.join("store")).unwrap();
    let loaded = load(&store, &src);
    if let Err(e) = store.list() {
        panic!("store broken after load ({loaded:?}): {e}");
    }
    let mut names: Vec<_> = fs::read_dir(sb)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["in.tar", "sentinel", "store"],
        "an entry landed beside the store"
    );
    assert_eq!(
        before,
        snapshot(&sb.join("sentinel")),
        "the sentinel tree changed"
    );
    fs::remove_dir_all(sb.join("store")).unwrap();
});
