//! `prune --cache --keep-storage SIZE` and `--filter until=DURATION` (issue 23): the build
//! cache bounded as BuildKit's gc policy bounds it, least recently used first, never
//! taking what a tagged image needs, and never racing a running build.

mod common;
use common::*;
use std::collections::HashSet;

/// An image kept by a tag: its layer is never the cache's to drop.
const KEEP: &str = "FROM busybox\nRUN echo ran-k && head -c 200000 /dev/urandom > /k\n";
/// Three steps of 300 kB each (random: their gzip layers are as large).
const STEPS: &str = "FROM busybox\n\
RUN echo ran-p1 && head -c 300000 /dev/urandom > /p1\n\
RUN echo ran-p2 && head -c 300000 /dev/urandom > /p2\n\
RUN echo ran-p3 && head -c 300000 /dev/urandom > /p3\n";

fn ran(log: &str) -> Vec<String> {
    let mut v: Vec<String> = log
        .lines()
        .filter_map(|l| l.trim_end().rsplit(' ').next())
        .filter(|w| w.starts_with("ran-"))
        .map(str::to_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Bytes of the blobs no tagged image refers to: what only the cache holds in blobs/.
fn unreferenced_blob_bytes(e: &Env) -> u64 {
    let mut keep = HashSet::new();
    for d in e.index()["manifests"].as_array().unwrap() {
        let m = d["digest"].as_str().unwrap().to_string();
        let hex = &m["sha256:".len()..];
        let man: serde_json::Value = serde_json::from_slice(
            &std::fs::read(e.store().join("blobs/sha256").join(hex)).unwrap(),
        )
        .unwrap();
        keep.insert(m.clone());
        keep.insert(man["config"]["digest"].as_str().unwrap().to_string());
        for l in man["layers"].as_array().unwrap() {
            keep.insert(l["digest"].as_str().unwrap().to_string());
        }
    }
    std::fs::read_dir(e.store().join("blobs/sha256"))
        .unwrap()
        .flatten()
        .filter(|f| !keep.contains(&format!("sha256:{}", f.file_name().to_string_lossy())))
        .map(|f| f.metadata().unwrap().len())
        .sum()
}

fn setup() -> (Env, std::path::PathBuf, std::path::PathBuf) {
    let e = Env::with_busybox();
    let k = e.context("k", &[("Dockerfile", KEEP)]);
    let p = e.context("p", &[("Dockerfile", STEPS)]);
    e.build(&k, &["-t", "keep"]);
    e.build(&p, &[]);
    (e, k, p)
}

#[test]
fn keep_storage_drops_least_recently_used_until_under_the_size() {
    let (e, k, p) = setup();
    let keep_id = e.inspect("keep")["Id"].clone();
    assert!(unreferenced_blob_bytes(&e) > 900_000);
    let out = e.ok(&["prune", "--cache", "--keep-storage", "1MB"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("Build cache: "))
        .expect(&out);
    let after: u64 = line["Build cache: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(after <= 1 << 20, "{out}");
    assert!(after > 0, "only what was needed went: {out}");
    assert!(unreferenced_blob_bytes(&e) <= 1 << 20);
    // The tagged image and its cache are untouched.
    assert_eq!(e.inspect("keep")["Id"], keep_id);
    let (_, log) = e.build(&k, &["-t", "keep"]);
    assert!(ran(&log).is_empty(), "{log}");
    // The last steps went first (a child before the step it builds on): they run again.
    let (_, log) = e.build(&p, &[]);
    assert_eq!(ran(&log), ["ran-p2", "ran-p3"], "{log}");
    // Everything still builds from an empty cache budget.
    e.ok(&["prune", "--cache", "--keep-storage", "0"]);
    assert_eq!(unreferenced_blob_bytes(&e), 0);
    let (_, log) = e.build(&p, &[]);
    assert_eq!(ran(&log).len(), 3, "{log}");
    let (_, log) = e.build(&k, &["-t", "keep"]);
    assert!(ran(&log).is_empty(), "{log}");
}

#[test]
fn filter_until_drops_records_unused_for_longer() {
    let (e, k, p) = setup();
    // Age every record by two hours; a cached build of k uses its records again.
    for f in std::fs::read_dir(e.store().join("berth/cache"))
        .unwrap()
        .flatten()
    {
        let st = std::process::Command::new("touch")
            .args(["-m", "-d", "2 hours ago"])
            .arg(f.path())
            .status()
            .unwrap();
        assert!(st.success());
    }
    let (_, log) = e.build(&k, &["-t", "keep"]);
    assert!(ran(&log).is_empty(), "{log}");
    let out = e.ok(&["prune", "--cache", "--filter", "until=1h"]);
    assert!(out.contains(", 3 cache records"), "{out}");
    let (_, log) = e.build(&k, &["-t", "keep"]);
    assert!(ran(&log).is_empty(), "{log}");
    let (_, log) = e.build(&p, &[]);
    assert_eq!(ran(&log).len(), 3, "{log}");
    // Nothing is older than 3h now: nothing goes.
    let out = e.ok(&[
        "prune",
        "--cache",
        "--filter",
        "until=3h",
        "--keep-storage",
        "0",
    ]);
    assert!(out.contains(", 0 cache records"), "{out}");
}

/// A prune started while a build runs waits for it: the build's layers and records are
/// all there when it ends, and the image runs.
#[test]
fn prune_waits_for_a_running_build() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "slow",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo a > /a\nRUN sleep 3 && echo b > /b\n",
        )],
    );
    let mut build = e.cmd(&["build", "-t", "slow", ctx.to_str().unwrap()]);
    let mut child = build
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let t = std::time::Instant::now();
    e.ok(&["prune", "--cache", "--keep-storage", "0"]);
    let waited = t.elapsed();
    let st = child.wait().unwrap();
    assert!(st.success());
    assert!(waited.as_millis() > 500, "prune did not wait: {waited:?}");
    let root = e.umoci_unpack("slow:latest", "u");
    assert_eq!(std::fs::read_to_string(root.join("b")).unwrap(), "b\n");
}

#[test]
fn bad_prune_flags_are_refused() {
    let e = Env::with_busybox();
    for (args, why) in [
        (vec!["prune", "--keep-storage", "1GB"], "add --cache"),
        (
            vec!["prune", "--cache", "--keep-storage", "ten"],
            "expected a size",
        ),
        (
            vec!["prune", "--cache", "--filter", "label=x"],
            "only filter is until=",
        ),
        (
            vec!["prune", "--cache", "--filter", "until=3d"],
            "expected a duration",
        ),
    ] {
        let err = e.fails(&args);
        assert!(err.contains(why), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    assert!(e.inspect("busybox")["Id"].is_string());
}
