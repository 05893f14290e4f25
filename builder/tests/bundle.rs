//! Bundles: config.json from the image, overlay rootfs over shared snapshots, runs
//! under berth and runc; --rm leaves nothing; commit of a running container.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static N: AtomicU32 = AtomicU32::new(0);

fn berth() -> String {
    common::berth_bin()
}

fn cid(what: &str) -> String {
    format!(
        "berth-build-test-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Run `RUNTIME run --bundle DIR ID` in the foreground; (exit ok, stdout+stderr).
fn run_bundle(runtime: &str, dir: &Path, id: &str) -> (bool, String) {
    let o = Command::new(runtime)
        .args(["run", "--bundle"])
        .arg(dir)
        .arg(id)
        .output()
        .unwrap();
    let _ = Command::new(runtime).args(["delete", "-f", id]).output();
    let s = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), s)
}

fn mounted(p: &Path) -> bool {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mi.contains(&format!(" {} ", p.display()))
}

fn image_env() -> Env {
    let e = Env::with_busybox();
    e.ok(&[
        "import",
        e.path("rootfs").to_str().unwrap(),
        "app",
        "-c",
        "ENV GREETING=hello",
        "-c",
        "WORKDIR /root",
        "-c",
        "USER app:extra",
        "-c",
        "LABEL org.example.team=berth",
        "-c",
        "EXPOSE 8080",
        "-c",
        "STOPSIGNAL SIGQUIT",
        "-c",
        r#"ENTRYPOINT ["/bin/sh", "-c"]"#,
        "-c",
        r#"CMD ["echo $GREETING from $(pwd) as $(id -u):$(id -g) groups $(id -G)"]"#,
    ]);
    e
}

#[test]
fn bundle_from_image_config_runs_under_berth_and_runc() {
    let e = image_env();
    let dir = e.path("b1");
    e.ok(&["bundle", "app", dir.to_str().unwrap()]);
    assert!(mounted(&dir.join("rootfs")), "rootfs is an overlay mount");
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let ann = &cfg["annotations"];
    assert_eq!(ann["org.example.team"], "berth");
    assert_eq!(ann["org.opencontainers.image.exposedPorts"], "8080/tcp");
    assert_eq!(ann["org.opencontainers.image.stopSignal"], "SIGQUIT");
    assert_eq!(ann["io.berth.image.name"], "app:latest");
    assert!(ann["io.berth.image.digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(cfg["process"]["user"]["uid"], 1000);
    assert_eq!(cfg["process"]["user"]["gid"], 2000);
    let want = "hello from /root as 1000:2000 groups 2000";
    for rt in [berth(), RUNC.to_string()] {
        let (ok, out) = run_bundle(&rt, &dir, &cid("cfg"));
        assert!(ok && out.contains(want), "{rt}: {out}");
    }
    let mounts = e.ok(&["mounts", dir.to_str().unwrap()]);
    assert!(
        mounts.contains("lowerdir1:") && mounts.contains("berth/snapshots/"),
        "{mounts}"
    );
    assert!(mounts.contains(&format!("upperdir:  {}", dir.join("upper").display())));
    e.ok(&["bundle", "--rm", dir.to_str().unwrap()]);
    assert!(!dir.exists());
    assert!(!mounted(&dir.join("rootfs")));
}

#[test]
fn bundle_overrides() {
    let e = image_env();
    let dir = e.path("b2");
    let vol = e.path("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("f"), "from host\n").unwrap();
    let v = format!("{}:/data:ro", vol.display());
    e.ok(&[
        "bundle", "--env", "GREETING=bye", "--env", "EXTRA=1", "--hostname", "box1",
        "--volume", &v, "--user", "root", "--workdir", "/tmp", "--entrypoint", "/bin/sh",
        "app", dir.to_str().unwrap(), "-c",
        "echo $GREETING $EXTRA $(hostname) $(pwd) $(id -u) $(cat /data/f); touch /data/x 2>/dev/null || echo ro",
    ]);
    let (ok, out) = run_bundle(&berth(), &dir, &cid("ovr"));
    assert!(ok, "{out}");
    assert!(out.contains("bye 1 box1 /tmp 0 from host\nro"), "{out}");
    // Both layers of a second bundle share the same snapshot dir.
    let dir2 = e.path("b3");
    e.ok(&["bundle", "app", dir2.to_str().unwrap()]);
    let m1 = e.ok(&["mounts", dir.to_str().unwrap()]);
    let m2 = e.ok(&["mounts", dir2.to_str().unwrap()]);
    let lower = |m: &str| {
        m.lines()
            .find(|l| l.starts_with("lowerdir1"))
            .unwrap()
            .to_string()
    };
    assert_eq!(lower(&m1), lower(&m2));
    for d in [&dir, &dir2] {
        e.ok(&["bundle", "--rm", d.to_str().unwrap()]);
    }
}

#[test]
fn bundle_bad_input() {
    let e = Env::with_busybox();
    let dir = e.path("bad");
    let err = e.fails(&["bundle", "nosuchimage", dir.to_str().unwrap()]);
    assert!(
        err.starts_with("berth-build: ") && err.contains("nosuchimage"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!dir.exists(), "nothing left behind");
    let err = e.fails(&[
        "bundle",
        "--user",
        "nobodyhere",
        "busybox",
        dir.to_str().unwrap(),
        "true",
    ]);
    assert!(err.contains("nobodyhere"), "{err}");
    assert!(!dir.exists() && !mounted(&dir.join("rootfs")));
    let err = e.fails(&["bundle", "busybox", dir.to_str().unwrap()]);
    assert!(err.contains("no command"), "{err}");
    let err = e.fails(&["bundle", "--rm", e.path("rootfs").to_str().unwrap()]);
    assert!(err.contains("not a berth-build bundle"), "{err}");
    assert!(e.path("rootfs").exists());
}

/// Deletes the container and removes the bundle, even when the test fails.
struct Cleanup {
    id: String,
    dir: std::path::PathBuf,
    store: std::path::PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new(berth())
            .args(["delete", "-f", &self.id])
            .output();
        if self.dir.exists() {
            let _ = Command::new(bin())
                .arg("--store")
                .arg(&self.store)
                .args(["bundle", "--rm"])
                .arg(&self.dir)
                .output();
        }
    }
}

/// Layer tar entries (path names) of the last layer of `image`.
fn last_layer_entries(e: &Env, image: &str) -> Vec<String> {
    let i = e.inspect(image);
    let d = i["Manifest"]["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let o = Command::new("tar")
        .arg("tzf")
        .arg(e.store().join("blobs/sha256").join(d))
        .output()
        .unwrap();
    assert!(o.status.success());
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        .collect()
}

#[test]
fn commit_running_container() {
    let e = Env::with_busybox();
    let dir = e.path("c1");
    let vol = e.path("vol");
    let v = format!("{}:/mnt/data", vol.display());
    e.ok(&[
        "bundle",
        "--volume",
        &v,
        "busybox",
        dir.to_str().unwrap(),
        "sleep",
        "60",
    ]);
    let id = cid("commit");
    let _g = Cleanup {
        id: id.clone(),
        dir: dir.clone(),
        store: e.store(),
    };
    let st = Command::new(berth())
        .args(["run", "-d", "--bundle"])
        .arg(&dir)
        .arg(&id)
        .status()
        .unwrap();
    assert!(st.success());
    let ex = Command::new(berth())
        .args(["exec", &id, "sh", "-c"])
        .arg("mkdir /app && echo hi > /app/test.txt && rm /usr/bin/wget && rm -rf /root && mkdir /root && touch /root/new && echo v > /mnt/data/inside")
        .output()
        .unwrap();
    assert!(
        ex.status.success(),
        "{}",
        String::from_utf8_lossy(&ex.stderr)
    );
    e.ok(&[
        "commit",
        dir.to_str().unwrap(),
        "busybox:v2",
        "--change",
        r#"CMD ["cat", "/app/test.txt"]"#,
        "--change",
        "ENV MODE=committed",
        "--message",
        "add test.txt",
        "--pause",
        &id,
        "--runtime",
        &berth(),
    ]);
    let st = Command::new(berth()).args(["state", &id]).output().unwrap();
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(st["status"], "running", "resumed after commit");
    let _ = Command::new(berth()).args(["delete", "-f", &id]).status();
    let (v1, v2) = (e.inspect("busybox"), e.inspect("busybox:v2"));
    let (l1, l2) = (
        v1["RootFS"]["Layers"].as_array().unwrap().clone(),
        v2["RootFS"]["Layers"].as_array().unwrap().clone(),
    );
    assert_eq!(l2.len(), l1.len() + 1);
    assert_eq!(l2[..l1.len()], l1[..]);
    let entries = last_layer_entries(&e, "busybox:v2");
    for want in [
        "app/test.txt",
        "usr/bin/.wh.wget",
        "root/.wh..wh..opq",
        "root/new",
    ] {
        assert!(
            entries.iter().any(|x| x == want),
            "{want} not in {entries:?}"
        );
    }
    assert!(
        !entries.iter().any(|x| x.starts_with("mnt")),
        "volume mount point committed: {entries:?}"
    );
    assert_eq!(
        v2["Config"]["Cmd"],
        serde_json::json!(["cat", "/app/test.txt"])
    );
    assert!(v2["Config"]["Env"].to_string().contains("MODE=committed"));
    assert_eq!(
        v2["History"].as_array().unwrap().last().unwrap()["comment"],
        "add test.txt"
    );
    e.ok(&["bundle", "--rm", dir.to_str().unwrap()]);
    // The committed image runs: its file is there, /bin/wget is gone.
    let d2 = e.path("c2");
    e.ok(&["bundle", "busybox:v2", d2.to_str().unwrap()]);
    let (ok, out) = run_bundle(&berth(), &d2, &cid("commit2"));
    assert!(ok && out.trim() == "hi", "{out}");
    let before = e.index()["manifests"].as_array().unwrap().len();
    let err = e.fails(&[
        "commit",
        d2.to_str().unwrap(),
        "x:y",
        "--pause",
        "berth-build-test-nosuch",
        "--runtime",
        &berth(),
    ]);
    assert!(
        err.contains("pause container berth-build-test-nosuch"),
        "{err}"
    );
    assert_eq!(
        e.index()["manifests"].as_array().unwrap().len(),
        before,
        "no image after a failed commit"
    );
    e.ok(&["bundle", "--rm", d2.to_str().unwrap()]);
    assert!(e
        .fails(&["commit", e.path("nope").to_str().unwrap(), "x:y"])
        .contains("not a berth-build bundle"));
}

#[test]
fn prune_keeps_a_bundles_layers() {
    let e = Env::with_busybox();
    e.ok(&["tag", "busybox", "tmp:1"]);
    let dir = e.path("p1");
    e.ok(&[
        "bundle",
        "tmp:1",
        dir.to_str().unwrap(),
        "echo",
        "still-here",
    ]);
    e.ok(&["rmi", "tmp:1", "busybox"]);
    e.ok(&["prune"]);
    let snaps = std::fs::read_dir(e.store().join("berth/snapshots"))
        .unwrap()
        .count();
    assert_eq!(snaps, 1, "the bundle's snapshot survives prune");
    let (ok, out) = run_bundle(&berth(), &dir, &cid("prune"));
    assert!(ok && out.contains("still-here"), "{out}");
    e.ok(&["commit", dir.to_str().unwrap(), "kept:v1"]);
    e.ok(&["bundle", "--rm", dir.to_str().unwrap()]);
    e.ok(&["prune"]);
    assert_eq!(
        e.inspect("kept:v1")["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// The snapshot directories in the store (one per chain id).
fn snapshots(e: &Env) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(e.store().join("berth/snapshots"))
        .unwrap()
        .flatten()
        .map(|d| d.path())
        .collect();
    v.sort();
    v
}

/// A RUN step's result is kept as the snapshot of its layer's chain id, and a bundle of the
/// image uses it (and the base's) as lowerdirs: bundling unpacks nothing new.
#[test]
fn run_steps_and_bundles_share_snapshots() {
    let e = Env::with_busybox();
    let df = "FROM busybox\nRUN echo made-by-run > /built.txt\n";
    let ctx = e.context("ctx", &[("Dockerfile", df)]);
    e.build(&ctx, &["-t", "ran:v1"]);
    let before = snapshots(&e);
    assert_eq!(before.len(), 2, "base and RUN layer: {before:?}");
    let dir = e.path("b");
    e.ok(&[
        "bundle",
        "ran:v1",
        dir.to_str().unwrap(),
        "cat",
        "/built.txt",
    ]);
    assert_eq!(snapshots(&e), before, "bundling made new snapshots");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("berth-bundle.json")).unwrap()).unwrap();
    let mut lowers: Vec<std::path::PathBuf> = meta["lowerdirs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().into())
        .collect();
    lowers.sort();
    assert_eq!(lowers, before);
    let (ok, out) = run_bundle(RUNC, &dir, &cid("shared"));
    assert!(ok && out.contains("made-by-run"), "{out}");
    e.ok(&["bundle", "--rm", dir.to_str().unwrap()]);
    assert_eq!(snapshots(&e), before);
}
