//! push and pull bad input against a real registry (tests/common/registry.rs): unknown
//! image, refusing, unreachable and unresolvable registries, blob and manifest digest
//! mismatches. Each fails with one line and leaves no image (and no blob) in the store.

mod common;
#[path = "common/registry.rs"]
mod server;
use common::*;
use server::*;
use std::time::{Duration, Instant};

/// Run; assert it fails with exactly one line on stderr; that line.
fn fails_one_line(e: &Env, args: &[&str]) -> String {
    let err = e.fails(args);
    assert_eq!(
        err.trim().lines().count(),
        1,
        "berth-build {args:?}: not one line:\n{err}"
    );
    err
}

/// The names of the blobs in the store.
fn blobs(e: &Env) -> Vec<String> {
    std::fs::read_dir(e.store().join("blobs/sha256"))
        .map(|rd| {
            rd.flatten()
                .map(|d| d.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The store holds no image and no blob (if it was made at all).
fn assert_empty(e: &Env) {
    if e.store().join("index.json").exists() {
        let idx = e.index();
        assert!(
            idx["manifests"].as_array().unwrap().is_empty(),
            "image left after a failed pull: {idx}"
        );
    }
    assert!(blobs(e).is_empty(), "blobs left: {:?}", blobs(e));
}

#[test]
fn registry_bad_input() {
    let e = Env::with_busybox();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A registry that refuses the connection (nothing listens on the port).
    let refusing = format!("127.0.0.1:{closed}/x/y:v1");
    let err = fails_one_line(&e, &["push", "busybox", &refusing]);
    assert!(err.starts_with("berth-build: registry 127.0.0.1:"), "{err}");
    let f = Env::empty();
    let err = fails_one_line(&f, &["pull", &refusing]);
    assert!(
        err.starts_with(&format!("berth-build: registry 127.0.0.1:{closed}: ")),
        "{err}"
    );
    assert_empty(&f);
    // A registry host with no route to it.
    let gone = UnreachableAddr::new();
    let unreachable = format!("{}:5000/x/y:v1", gone.ip);
    let err = fails_one_line(&f, &["pull", &unreachable]);
    assert!(
        err.starts_with(&format!("berth-build: registry {}:5000: ", gone.ip)),
        "{err}"
    );
    assert_empty(&f);
    let err = fails_one_line(&e, &["push", "busybox", &unreachable]);
    assert!(err.contains(&gone.ip), "{err}");
    // A running registry without the image, or without the repository.
    let reg = Registry::start(e.dir.path(), None);
    let h = reg.host();
    let err = fails_one_line(&e, &["push", "nosuch", &format!("{h}/x/y:v1")]);
    assert!(err.contains("nosuch"), "{err}");
    e.ok(&["push", "busybox", &format!("{h}/x/bb:v1")]);
    for unknown in [format!("{h}/x/bb:nope"), format!("{h}/x/none:v1")] {
        let err = fails_one_line(&f, &["pull", &unknown]);
        assert!(
            err.contains("MANIFEST_UNKNOWN") || err.contains("NAME_UNKNOWN"),
            "{err}"
        );
        assert_empty(&f);
    }
}

/// A name that does not resolve fails at once (no retries), with one line.
#[test]
fn unresolvable_registry_fails_fast() {
    let f = Env::empty();
    let start = Instant::now();
    let err = fails_one_line(&f, &["pull", "nosuch.invalid/x:y"]);
    let took = start.elapsed();
    assert!(
        err.starts_with("berth-build: registry nosuch.invalid: ") && err.contains("nosuch.invalid"),
        "{err}"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}: retried?");
    assert_empty(&f);
    let e = Env::with_busybox();
    let err = fails_one_line(&e, &["push", "busybox", "nosuch.invalid/x:y"]);
    assert!(err.contains("nosuch.invalid"), "{err}");
}

/// A layer corrupted in the registry's storage: the pull fails, the layer is not kept.
#[test]
fn blob_digest_mismatch() {
    let e = Env::with_busybox();
    let reg = Registry::start(e.dir.path(), None);
    let h = reg.host();
    e.ok(&["push", "busybox", &format!("{h}/x/bb:v1")]);
    let layer = layers(&e.inspect("busybox"))[0].clone();
    let data = reg.blob_data(&layer);
    let mut bytes = std::fs::read(&data).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    let f = Env::empty();
    let err = fails_one_line(&f, &["pull", &format!("{h}/x/bb:v1")]);
    assert!(
        err.contains("digest mismatch") && err.contains(layer.trim_start_matches("sha256:")),
        "{err}"
    );
    assert!(
        f.index()["manifests"].as_array().unwrap().is_empty(),
        "no image after a failed pull"
    );
    let hex = layer.trim_start_matches("sha256:");
    assert!(!f.store().join("blobs/sha256").join(hex).exists());
}

/// The manifest the registry serves is not the one the digest names (changed in its storage,
/// still valid JSON): pulls by tag (checked against Docker-Content-Digest) and by digest fail
/// with one line naming both digests; nothing is kept. A digest the registry does not have:
/// one line, nothing kept.
#[test]
fn manifest_digest_mismatch() {
    let e = Env::with_busybox();
    let reg = Registry::start(e.dir.path(), None);
    let h = reg.host();
    e.ok(&["push", "busybox", &format!("{h}/m/bb:v1")]);
    let digest = e.inspect("busybox")["Digest"].as_str().unwrap().to_string();
    let f = Env::empty();
    let wrong = format!("{h}/m/bb@sha256:{}", "0".repeat(64));
    let err = fails_one_line(&f, &["pull", &wrong]);
    assert!(err.contains("MANIFEST_UNKNOWN"), "{err}");
    assert_empty(&f);
    let data = reg.blob_data(&digest);
    let text = std::fs::read_to_string(&data).unwrap();
    assert!(text.starts_with('{'), "{text}");
    std::fs::write(&data, text.replacen('{', "{ ", 1)).unwrap();
    for r in [format!("{h}/m/bb:v1"), format!("{h}/m/bb@{digest}")] {
        let err = fails_one_line(&f, &["pull", &r]);
        assert!(
            err.contains("digest mismatch") && err.contains(&digest),
            "{r}: {err}"
        );
        assert_empty(&f);
    }
}
