//! Shared helpers for the integration tests: a temp store with a busybox base image
//! (imported from a rootfs made of /bin/busybox and its applet links), running berth-build, and checks
//! that nothing (mounts, temp files) is left behind.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const RUNC: &str = "/usr/sbin/runc";
pub const SCHEMAS: &str = "/usr/share/gocode/src/github.com/opencontainers/image-spec/schema";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_berth-build")
}

/// The berth runtime for RUN steps and bundles: BERTH_BIN, else the one built next to
/// berth-build in this workspace's target dir (scripts/setup.sh builds every binary).
#[allow(dead_code)]
pub fn berth_bin() -> String {
    std::env::var("BERTH_BIN").unwrap_or_else(|_| {
        let b = std::path::Path::new(bin()).with_file_name("berth");
        b.to_string_lossy().into_owned()
    })
}

/// The runtime RUN steps use: berth (what users get), or BUILD_TEST_RUNTIME (e.g. runc, to
/// tell a builder fault from a runtime one).
pub fn step_runtime() -> String {
    std::env::var("BUILD_TEST_RUNTIME").unwrap_or_else(|_| berth_bin())
}

pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    /// A fresh store (no images).
    pub fn empty() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("berth-build-test-")
            .tempdir_in("/tmp")
            .unwrap();
        Env { dir }
    }

    /// A fresh store holding busybox:latest.
    pub fn with_busybox() -> Env {
        let e = Env::empty();
        let rootfs = e.path("rootfs");
        make_busybox_rootfs(&rootfs);
        e.ok(&[
            "import",
            "--timestamp",
            "1700000000",
            rootfs.to_str().unwrap(),
            "busybox",
        ]);
        e
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn store(&self) -> PathBuf {
        self.path("store")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--store").arg(self.store()).args(args);
        c.env("BERTH_RUNTIME", step_runtime())
            .env_remove("SOURCE_DATE_EPOCH");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Run; assert success; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "berth-build {args:?} failed:\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// Run; assert failure; stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "berth-build {args:?} unexpectedly succeeded"
        );
        String::from_utf8_lossy(&o.stderr).to_string()
    }

    /// A build context dir with these files.
    pub fn context(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let d = self.path(name);
        for (f, content) in files {
            let p = d.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
        }
        d
    }

    /// Build; assert success; (image id, stderr progress).
    pub fn build(&self, ctx: &Path, extra: &[&str]) -> (String, String) {
        let mut args = vec!["build"];
        args.extend_from_slice(extra);
        args.push(ctx.to_str().unwrap());
        let o = self.run(&args);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(o.status.success(), "build failed:\n{err}");
        (String::from_utf8_lossy(&o.stdout).trim().to_string(), err)
    }

    pub fn index(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.store().join("index.json")).unwrap()).unwrap()
    }

    pub fn inspect(&self, image: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", image])).unwrap();
        v[0].clone()
    }

    /// Unpack an image with umoci; returns the rootfs path.
    pub fn umoci_unpack(&self, tag: &str, name: &str) -> PathBuf {
        let bundle = self.path(name);
        let st = Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:{tag}", self.store().display()))
            .arg(&bundle)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "umoci unpack: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        bundle.join("rootfs")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let p = self.dir.path().display().to_string();
        assert!(!mi.contains(&p), "mounts left behind under {p}");
        let tmp = self.store().join("berth/tmp");
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            let left: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
            assert!(left.is_empty(), "temp files left behind: {left:?}");
        }
    }
}

/// A minimal rootfs: static busybox with its applets, passwd/group, resolv.conf.
pub fn make_busybox_rootfs(root: &Path) {
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root", "var"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    // Applet links as `busybox --install -s` makes them, without executing the copy
    // (a copy being executed while another test thread forks can fail with ETXTBSY).
    let list = Command::new("/bin/busybox")
        .arg("--list-full")
        .output()
        .unwrap();
    assert!(list.status.success());
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = root.join(applet);
        if applet == "bin/busybox" || link.exists() {
            continue;
        }
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/bin/busybox", &link).unwrap();
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\napp:x:1000:\nnogroup:x:65534:\nextra:x:2000:app,nobody\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/resolv.conf"), "").unwrap();
    std::fs::write(root.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
}

/// Digest of the manifest a tag points to, from index.json.
pub fn manifest_digest(index: &serde_json::Value, name: &str) -> String {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == name)
        .unwrap_or_else(|| panic!("{name} not in index"))["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn skopeo_inspect(transport_ref: &str) -> serde_json::Value {
    let o = Command::new("skopeo")
        .args(["inspect", transport_ref])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo inspect {transport_ref}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}
