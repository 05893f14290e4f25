//! Outputs from the build (issue 23): `--push`, `--output type=registry|image|local|tar`
//! (and `-o DIR`, `-o -`), against a real docker-registry on 127.0.0.1; bad specs.

mod common;
#[path = "common/registry.rs"]
mod server;
use common::*;
use server::*;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

/// Two layers: a symlink to /etc/passwd, a hard link, a removed file (whiteout), then a
/// write through the symlink (it lands in the image's /etc/passwd) and a directory
/// emptied and remade (an opaque whiteout).
const DF: &str = "FROM busybox\n\
RUN mkdir -p /app/sub /opq && echo hello > /app/sub/f && echo old > /opq/old && chmod 0751 /app/sub && ln -s /etc/passwd /app/pw && ln /app/sub/f /app/hard && rm /bin/ls\n\
RUN echo berth-evil >> /app/pw && rm -rf /opq && mkdir /opq && echo new > /opq/new\n\
CMD [\"cat\", \"/app/sub/f\"]\n";

fn metadata(e: &Env, file: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(e.path(file)).unwrap()).unwrap()
}

#[test]
fn push_two_tags_then_pull_back_by_digest() {
    let e = Env::with_busybox();
    let reg = Registry::start(e.dir.path(), None);
    let h = reg.host();
    let ctx = e.context("ctx", &[("Dockerfile", DF)]);
    let (t1, t2) = (format!("{h}/team/app:v1"), format!("{h}/team/app:v2"));
    let md = e.path("md.json");
    let (id, err) = e.build(
        &ctx,
        &[
            "-t",
            &t1,
            "-t",
            &t2,
            "--push",
            "--metadata-file",
            md.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains(&format!("The push refers to repository [{h}/team/app]")),
        "{err}"
    );
    assert!(err.contains("v2: digest: sha256:"), "{err}");
    let digest = metadata(&e, "md.json")["containerimage.digest"]
        .as_str()
        .unwrap()
        .to_string();
    let f = Env::empty();
    f.ok(&["pull", &format!("{h}/team/app@{digest}")]);
    f.ok(&["pull", &t2]);
    assert_eq!(f.inspect(&t2)["Id"], e.inspect(&t1)["Id"]);
    assert_eq!(id, f.ok(&["pull", "-q", &t1]).trim());
}

#[test]
fn output_registry_and_image_push() {
    let e = Env::with_busybox();
    let reg = Registry::start(e.dir.path(), None);
    let h = reg.host();
    let ctx = e.context("ctx", &[("Dockerfile", DF)]);
    let (r, i) = (format!("{h}/o/reg:1"), format!("{h}/o/img:2"));
    let (id, _) = e.build(
        &ctx,
        &[
            "--output",
            &format!("type=registry,name={r}"),
            "--output",
            &format!("type=image,name={i},push=true"),
            "--output",
            "type=image,name=local-only:1",
        ],
    );
    let f = Env::empty();
    assert_eq!(f.ok(&["pull", "-q", &r]).trim(), id);
    assert_eq!(f.ok(&["pull", "-q", &i]).trim(), id);
    // type=image without push=true names the image in the store only.
    assert_eq!(e.inspect("local-only:1")["Id"], e.inspect(&r)["Id"]);
    let err = f.fails(&["pull", &format!("{h}/local-only:1")]);
    assert!(!err.is_empty());
}

#[test]
fn push_takes_credentials_as_push_does() {
    let e = Env::with_busybox();
    let reg = Registry::start(e.dir.path(), Some(("alice", "s3cret")));
    let h = reg.host();
    let ctx = e.context("ctx", &[("Dockerfile", "FROM busybox\nLABEL a=b\n")]);
    let t = format!("{h}/sec/app:1");
    let c = ctx.to_str().unwrap();
    let err = e.fails(&["build", "--push", "-t", &t, c]);
    assert!(err.contains("authentication required"), "{err}");
    e.ok(&["build", "--push", "-t", &t, "--creds", "alice:s3cret", c]);
    let auth = e.path("auth.json");
    let b64 = "YWxpY2U6czNjcmV0"; // alice:s3cret
    std::fs::write(
        &auth,
        format!(r#"{{"auths":{{"{h}":{{"auth":"{b64}"}}}}}}"#),
    )
    .unwrap();
    let t2 = format!("{h}/sec/app:2");
    e.ok(&[
        "build",
        "--push",
        "-t",
        &t2,
        "--authfile",
        auth.to_str().unwrap(),
        c,
    ]);
    // One USER:PASSWORD is never sent to two registries: refused before the build.
    let before = e.index();
    let err = e.fails(&[
        "build",
        "--push",
        "-t",
        &t,
        "-t",
        "127.0.0.2:1/x/y:1",
        "--creds",
        "alice:s3cret",
        c,
    ]);
    assert!(
        err.contains("--creds") && err.trim().lines().count() == 1,
        "{err}"
    );
    assert_eq!(e.index(), before);
}

/// (kind, mode, content or link target) of every entry under `root`, by relative path.
fn tree(root: &Path) -> BTreeMap<String, (char, u32, String)> {
    let mut out = BTreeMap::new();
    for ent in walkdir::WalkDir::new(root).min_depth(1) {
        let ent = ent.unwrap();
        let md = ent.path().symlink_metadata().unwrap();
        let rel = ent.path().strip_prefix(root).unwrap().display().to_string();
        let v = if md.is_symlink() {
            (
                'l',
                0,
                std::fs::read_link(ent.path())
                    .unwrap()
                    .display()
                    .to_string(),
            )
        } else if md.is_dir() {
            ('d', md.mode() & 0o7777, String::new())
        } else if md.is_file() {
            let data = std::fs::read(ent.path()).unwrap();
            (
                'f',
                md.mode() & 0o7777,
                format!("{}:{:x}", data.len(), md5ish(&data)),
            )
        } else {
            ('o', md.mode() & 0o7777, String::new())
        };
        out.insert(rel, v);
    }
    out
}

fn md5ish(d: &[u8]) -> u64 {
    d.iter().fold(1469598103934665603u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(1099511628211)
    })
}

fn passwd_state() -> (Vec<u8>, i64) {
    let md = std::fs::metadata("/etc/passwd").unwrap();
    (std::fs::read("/etc/passwd").unwrap(), md.mtime())
}

#[test]
fn local_output_is_the_final_filesystem_and_stays_inside() {
    let e = Env::with_busybox();
    assert!(e.path("rootfs/bin/ls").exists(), "the base has /bin/ls");
    let ctx = e.context("ctx", &[("Dockerfile", DF)]);
    let host = passwd_state();
    let out = e.path("out/local");
    let short = e.path("short");
    e.build(
        &ctx,
        &[
            "-t",
            "app",
            "--output",
            &format!("type=local,dest={}", out.display()),
            "-o",
            short.to_str().unwrap(),
        ],
    );
    assert_eq!(passwd_state(), host, "the host's /etc/passwd was touched");
    let pw = out.join("app/pw");
    assert!(pw.symlink_metadata().unwrap().is_symlink());
    assert_eq!(std::fs::read_link(&pw).unwrap(), Path::new("/etc/passwd"));
    let inner = std::fs::read_to_string(out.join("etc/passwd")).unwrap();
    assert!(inner.contains("berth-evil"), "{inner}");
    assert!(!out.join("bin/ls").exists() && out.join("bin/cat").exists());
    assert!(!out.join("opq/old").exists() && out.join("opq/new").exists());
    let md = std::fs::metadata(out.join("app/sub")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o751);
    assert_eq!(
        std::fs::metadata(out.join("app/hard")).unwrap().ino(),
        std::fs::metadata(out.join("app/sub/f")).unwrap().ino()
    );
    // The same tree as umoci's unpack of the image, and as the -o DIR short form.
    let reference = e.umoci_unpack("app:latest", "u");
    assert_eq!(tree(&out), tree(&reference));
    assert_eq!(tree(&short), tree(&out));
    let left: Vec<_> = std::fs::read_dir(e.path("out"))
        .unwrap()
        .flatten()
        .map(|d| d.file_name())
        .collect();
    assert_eq!(left.len(), 1, "temp dirs left: {left:?}");
}

fn tar_list(data: &[u8]) -> Vec<String> {
    let mut c = Command::new("tar")
        .arg("-t")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin.take().unwrap().write_all(data).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "tar -t failed");
    let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn tar_output_to_a_file_and_to_stdout() {
    let e = Env::with_busybox();
    let ctx = e.context("ctx", &[("Dockerfile", DF)]);
    let file = e.path("fs.tar");
    std::fs::write(&file, "old").unwrap();
    let local = e.path("local");
    e.build(
        &ctx,
        &[
            "--output",
            &format!("type=tar,dest={}", file.display()),
            "-o",
            local.to_str().unwrap(),
        ],
    );
    let names = tar_list(&std::fs::read(&file).unwrap());
    let mut want: Vec<String> = tree(&local).into_keys().collect();
    want.sort();
    assert_eq!(names, want);
    assert!(names.contains(&"app/pw".to_string()) && !names.contains(&"bin/ls".to_string()));
    // `-o -` and type=tar,dest=-: the tar alone on stdout (no image ID after it).
    for spec in ["-", "type=tar,dest=-"] {
        let o = e.run(&["build", "-q", "-o", spec, ctx.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(tar_list(&o.stdout), want);
    }
}

/// A tar that cannot be written whole (its filesystem fills up) leaves FILE as it was.
#[test]
fn a_failed_tar_export_leaves_no_partial_file() {
    let e = Env::with_busybox();
    let ctx = e.context("ctx", &[("Dockerfile", DF)]);
    let small = tempfile::tempdir_in("/tmp").unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(small.path())
        .status()
        .unwrap();
    assert!(st.success());
    let file = small.path().join("fs.tar");
    std::fs::write(&file, "old").unwrap();
    let o = e.run(&[
        "build",
        "--output",
        &format!("type=tar,dest={}", file.display()),
        ctx.to_str().unwrap(),
    ]);
    let names: Vec<_> = std::fs::read_dir(small.path())
        .unwrap()
        .flatten()
        .map(|d| d.file_name())
        .collect();
    let kept = std::fs::read_to_string(&file).unwrap();
    let _ = Command::new("umount").arg(small.path()).status();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("fs.tar"), "{err}");
    assert_eq!(kept, "old");
    assert_eq!(names.len(), 1, "left behind: {names:?}");
}

#[test]
fn bad_output_specs_fail_before_the_build() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ctx",
        &[("Dockerfile", "FROM busybox\nRUN echo ran-a-step\n")],
    );
    let before = e.index();
    for (spec, why) in [
        ("type=zip,dest=x", "unknown type \"zip\""),
        ("type=local", "needs dest="),
        ("type=tar", "needs dest="),
        (
            "type=local,dest=x,compression=zstd",
            "unknown key \"compression\"",
        ),
        ("type=registry", "needs name="),
        ("type=image,name=a/b,push=maybe", "expected true or false"),
        ("type=local,dst=x", "unknown key \"dst\""),
    ] {
        let err = e.fails(&["build", "--output", spec, ctx.to_str().unwrap()]);
        assert!(err.contains(why), "{spec}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{spec}: {err}");
        assert!(!e.path("x").exists());
    }
    let err = e.fails(&["build", "--push", ctx.to_str().unwrap()]);
    assert!(
        err.contains("--push") && err.trim().lines().count() == 1,
        "{err}"
    );
    assert_eq!(e.index(), before);
    // dest exists as a file: refused, the file kept.
    let f = e.path("afile");
    std::fs::write(&f, "x").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = e.fails(&["build", "-o", f.to_str().unwrap(), ctx.to_str().unwrap()]);
    assert!(err.contains("not a directory"), "{err}");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "x");
}
