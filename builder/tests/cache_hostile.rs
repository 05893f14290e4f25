//! The build cache's surfaces fed by strangers (issue 23): a `--cache-from type=local`
//! folder restored from a CI cache, and record files in the store, must never make a
//! build hang on a host file or make prune delete outside the store.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DF: &str = "FROM busybox\nRUN echo ran-one > /one\n";

fn mkfifo(p: &Path) {
    let _ = std::fs::remove_file(p);
    let st = Command::new("mkfifo").arg(p).status().unwrap();
    assert!(st.success());
}

/// Runs `c` with a 60 s limit; (success, stderr). A hang is a test failure, not a hang.
fn within_a_minute(mut c: Command) -> (bool, String) {
    let mut child = c
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (st.success(), err);
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("berth-build hung (killed after 60 s)");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A FIFO (or any non-regular file) as index.json or as a layer blob of the folder is a
/// warning and a build without that cache, not a build blocked forever on open().
#[test]
fn fifo_in_a_local_cache_folder_does_not_hang_the_build() {
    let e = Env::with_busybox();
    let ctx = e.context("ctx", &[("Dockerfile", DF)]);
    let dir = e.path("cache");
    let to = format!("type=local,dest={},mode=max", dir.display());
    e.build(&ctx, &["-t", "a", "--cache-to", &to]);

    // Every layer blob replaced by a FIFO: the cached RUN must run again.
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let man_hex = idx["manifests"][0]["digest"].as_str().unwrap()[7..].to_string();
    let man: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(&man_hex)).unwrap())
            .unwrap();
    for l in man["layers"].as_array().unwrap() {
        mkfifo(
            &dir.join("blobs/sha256")
                .join(&l["digest"].as_str().unwrap()[7..]),
        );
    }
    let from = format!("type=local,src={}", dir.display());
    let fresh = Env::with_busybox();
    let mut c = fresh.cmd(&["build", "-t", "b", "--cache-from", &from]);
    c.arg(&ctx);
    let (ok, err) = within_a_minute(c);
    assert!(ok, "{err}");
    assert!(
        err.contains("ran-one"),
        "the RUN should have run again:\n{err}"
    );

    // index.json a FIFO: a one-line warning, the build goes on.
    mkfifo(&dir.join("index.json"));
    let fresh = Env::with_busybox();
    let mut c = fresh.cmd(&["build", "-t", "b", "--cache-from", &from]);
    c.arg(&ctx);
    let (ok, err) = within_a_minute(c);
    assert!(ok, "{err}");
    assert!(
        err.contains("warning: --cache-from") && err.contains("index.json"),
        "{err}"
    );
}

/// A record file in the store whose key climbs out (`../../../victim`), or that is a
/// symlink to a host file: prune removes store files only, and never the link's target.
#[test]
fn prune_never_deletes_outside_the_store() {
    let e = Env::with_busybox();
    let cache = e.store().join("berth/cache");
    std::fs::create_dir_all(&cache).unwrap();
    // STORE/berth/cache/../../../victim.json = the test dir's victim.json
    let victim = e.path("victim.json");
    std::fs::write(&victim, "keep me").unwrap();
    let rec = |key: &str| {
        serde_json::json!({
            "key": key,
            "layer": {"mediaType": "application/vnd.oci.image.layer.v1.tar",
                      "digest": format!("sha256:{}", "ab".repeat(32)), "size": 10},
            "diff_id": format!("sha256:{}", "cd".repeat(32)),
            "chain_id": format!("sha256:{}", "ef".repeat(32)),
            "created": "2020-01-01T00:00:00Z"
        })
        .to_string()
    };
    let evil = cache.join(format!("{}.json", "1".repeat(64)));
    std::fs::write(&evil, rec("../../../victim")).unwrap();
    // A record file that is a symlink to a JSON record outside the store.
    let outside = e.path("outside.json");
    std::fs::write(&outside, rec(&"2".repeat(64))).unwrap();
    let link = cache.join(format!("{}.json", "2".repeat(64)));
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    for f in [&evil, &outside, &victim] {
        std::fs::File::options()
            .write(true)
            .open(f)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    e.ok(&["prune", "--cache", "--filter", "until=1h"]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    assert!(outside.is_file(), "the link's target was removed");
    e.ok(&["prune", "--cache"]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    assert!(outside.is_file(), "the link's target was removed");
}
