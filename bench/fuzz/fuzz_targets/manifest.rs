//! A registry's or an archive's index, manifest and image config (strangers' JSON): typed
//! parsing, the platform pick, every descriptor's digest checked before it names a blob
//! (the path it names must stay in blobs/sha256), chain ids, and a serialise → parse
//! round trip that must give the same document.
#![no_main]
use berth_builder::digest::{chain_ids, digest_hex};
use berth_builder::store::types::{Descriptor, ImageConfig, Index, Manifest};
use berth_builder::store::Store;
use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn store() -> &'static (Store, PathBuf) {
    static S: OnceLock<(Store, PathBuf)> = OnceLock::new();
    S.get_or_init(|| {
        let p = PathBuf::from(format!("/tmp/fuzz-manifest-{}", std::process::id()));
        let s = Store::open(&p).unwrap();
        (s, p.join("blobs/sha256"))
    })
}

fn check(d: &Descriptor) {
    let (s, blobs) = store();
    match s.blob_path(&d.digest) {
        Ok(p) => {
            assert!(digest_hex(&d.digest).is_some());
            assert_eq!(
                p.parent(),
                Some(blobs.as_path()),
                "{:?} left the blobs",
                d.digest
            );
            assert!(!Path::new(p.file_name().unwrap())
                .components()
                .any(|c| c.as_os_str() == ".."));
        }
        Err(_) => assert!(digest_hex(&d.digest).is_none()),
    }
}

fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(v: &T) {
    let a = berth_builder::store::types::to_json(v);
    let back: T = serde_json::from_slice(&a).expect("own output parses");
    assert_eq!(
        a,
        berth_builder::store::types::to_json(&back),
        "round trip changed it"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(idx) = serde_json::from_slice::<Index>(data) {
        idx.manifests.iter().for_each(check);
        let _ = idx.manifests.iter().find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
        });
        round_trip(&idx);
    }
    if let Ok(m) = serde_json::from_slice::<Manifest>(data) {
        check(&m.config);
        m.layers.iter().for_each(check);
        round_trip(&m);
    }
    if let Ok(c) = serde_json::from_slice::<ImageConfig>(data) {
        if c.rootfs.diff_ids.iter().all(|d| digest_hex(d).is_some()) {
            assert_eq!(chain_ids(&c.rootfs.diff_ids).len(), c.rootfs.diff_ids.len());
        }
        round_trip(&c);
    }
});
