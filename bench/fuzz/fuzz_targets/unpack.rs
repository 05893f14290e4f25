//! A layer (plain, gzip or zstd tar) unpacked into a fresh temporary root, in both modes
//! (snapshot: overlay whiteouts; ADD: strict). The root sits in a sandbox directory beside
//! a sentinel tree; after every input the sandbox must hold exactly `root` and the
//! untouched sentinel: nothing may land outside the root, whatever the entries (symlinked
//! parents, `..`, absolute names, hard links, devices, whiteouts, xattrs).
#![no_main]
use berth_builder::layer::unpack::{decompress, unpack, UnpackOptions};
use berth_common::inroot::Root;
use libfuzzer_sys::fuzz_target;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// At most this much is read from a decompressed stream (a 4 KiB zstd input can
/// expand to gigabytes, which would test the disk, not the unpacker).
const MAX_STREAM: u64 = 8 << 20;

fn sandbox() -> &'static PathBuf {
    static S: OnceLock<PathBuf> = OnceLock::new();
    S.get_or_init(|| {
        let s = PathBuf::from(format!("/tmp/fuzz-unpack-{}", std::process::id()));
        let _ = fs::remove_dir_all(&s);
        fs::create_dir_all(s.join("sentinel/dir")).unwrap();
        fs::write(s.join("sentinel/file"), b"host").unwrap();
        s
    })
}

/// Every path under `dir` with its (mode, size, mtime, nlink); symlinks not followed.
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
    let Some((&mode, tar)) = data.split_first() else {
        return;
    };
    let sb = sandbox();
    let before = snapshot(&sb.join("sentinel"));
    let root_dir = sb.join("root");
    fs::create_dir(&root_dir).unwrap();
    let opts = UnpackOptions {
        overlay_whiteouts: mode & 1 == 1,
        strict: mode & 2 == 2,
    };
    let name = Path::new("layer.tar");
    if let Ok(r) = decompress(tar, name) {
        let root = Root::open(&root_dir).unwrap();
        let _ = unpack(r.take(MAX_STREAM), &root, opts, name);
    }
    let mut names: Vec<_> = fs::read_dir(sb)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["root", "sentinel"],
        "an entry landed beside the root"
    );
    assert_eq!(
        before,
        snapshot(&sb.join("sentinel")),
        "the sentinel tree changed"
    );
    fs::remove_dir_all(&root_dir).unwrap();
});
