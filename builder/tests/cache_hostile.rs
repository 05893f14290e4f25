//! The surfaces issue 23 added, fed by strangers: a `--cache-from type=local` folder
//! restored from a CI cache, a cache registry, record files in the store and an output
//! dest in a shared directory must never make a build hang on a host file, fill the disk,
//! write outside its dest, or make prune delete outside the store.

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

/// A cache registry: GET /v2/ answers 200, the manifest is `manifest`, any blob is 5 MiB
/// of junk. Returns the port and the paths requested.
fn cache_registry(manifest: Vec<u8>) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let (m, seen) = (manifest.clone(), s2.clone());
            std::thread::spawn(move || {
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut w = c;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut h = String::new();
                    while r.read_line(&mut h).unwrap_or(0) > 0 && h != "\r\n" {
                        h.clear();
                    }
                    seen.lock().unwrap().push(path.clone());
                    let (ct, body) = if path.contains("/manifests/") {
                        ("application/vnd.oci.image.manifest.v1+json", m.clone())
                    } else if path.contains("/blobs/") {
                        ("application/octet-stream", vec![b'x'; 5 << 20])
                    } else {
                        ("application/json", b"{}".to_vec())
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    if w.write_all(head.as_bytes()).is_err() || w.write_all(&body).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, seen)
}

/// A cache manifest whose config claims 100 GB: refused before a byte of it is fetched
/// (the config is read whole into memory), a warning, and the build goes on.
#[test]
fn registry_cache_config_is_bounded_before_it_is_fetched() {
    let config = format!("sha256:{}", "ab".repeat(32));
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.berth.build.cache.v1+json",
                   "digest": config, "size": 100_000_000_000u64},
        "layers": []
    });
    let (port, seen) = cache_registry(serde_json::to_vec(&m).unwrap());
    let e = Env::with_busybox();
    let ctx = e.context("ctx", &[("Dockerfile", DF)]);
    let from = format!("type=registry,ref=127.0.0.1:{port}/x/cache:latest");
    let mut c = e.cmd(&["build", "-t", "b", "--cache-from", &from]);
    c.arg(&ctx);
    let (ok, err) = within_a_minute(c);
    assert!(ok, "{err}");
    assert!(
        err.contains("warning: --cache-from") && err.contains("4 MiB"),
        "{err}"
    );
    let seen = seen.lock().unwrap().clone();
    assert!(
        !seen.iter().any(|p| p.contains("/blobs/")),
        "config fetched: {seen:?}"
    );
}

/// `--output type=local,dest=D` where D is a symlink another user planted (in a shared
/// directory, say): not followed, a one-line error, its target untouched. The invoking
/// user's own link is followed as before.
#[test]
fn local_output_does_not_follow_a_strangers_symlink() {
    let e = Env::with_busybox();
    let ctx = e.context("ctx", &[("Dockerfile", DF)]);
    let target = e.path("host-etc");
    std::fs::create_dir(&target).unwrap();
    let dest = e.path("out");
    std::os::unix::fs::symlink(&target, &dest).unwrap();
    std::os::unix::fs::lchown(&dest, Some(4242), Some(4242)).unwrap();
    let out = format!("type=local,dest={}", dest.display());
    let o = e.run(&["build", "--output", &out, ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("symlink owned by uid 4242"), "{err}");
    assert_eq!(
        std::fs::read_dir(&target).unwrap().count(),
        0,
        "wrote through the link"
    );
    // The user's own link: followed.
    std::os::unix::fs::lchown(&dest, Some(0), Some(0)).unwrap();
    e.ok(&["build", "--output", &out, ctx.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(target.join("one")).unwrap(),
        "ran-one\n"
    );
}

/// A stranger's image exported as root with `type=local`: its files become the invoking
/// user's, so no setuid/setgid bit (a setuid-root binary in the dest) and no device node
/// (a 0666 `b 8 0` is the host's disk); a note counts the skipped devices.
#[test]
fn local_output_makes_no_setuid_files_and_no_devices() {
    use std::os::unix::fs::PermissionsExt;
    let e = Env::empty();
    let rootfs = e.path("rootfs");
    make_busybox_rootfs(&rootfs);
    let st = Command::new("mknod")
        .arg(rootfs.join("dev/sdx"))
        .args(["b", "8", "0"])
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::copy("/bin/busybox", rootfs.join("suid")).unwrap();
    std::fs::set_permissions(rootfs.join("suid"), std::fs::Permissions::from_mode(0o6755)).unwrap();
    e.ok(&["import", rootfs.to_str().unwrap(), "evil"]);
    let ctx = e.context("ctx", &[("Dockerfile", "FROM evil\n")]);
    let out = e.path("out");
    let (_, err) = e.build(
        &ctx,
        &["--output", &format!("type=local,dest={}", out.display())],
    );
    assert!(err.contains("skipped 1 device node"), "{err}");
    assert!(std::fs::symlink_metadata(out.join("dev/sdx"))
        .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound));
    let mode = std::fs::metadata(out.join("suid"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755, "{mode:o}");
    // The tar export keeps both (an archive, not files on the host).
    let tar = e.path("x.tar");
    e.build(
        &ctx,
        &["--output", &format!("type=tar,dest={}", tar.display())],
    );
    let list = Command::new("tar").arg("tvf").arg(&tar).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.lines()
            .any(|l| l.starts_with("b") && l.contains("dev/sdx")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("-rwsr-sr-x") && l.ends_with("suid")),
        "{list}"
    );
}
