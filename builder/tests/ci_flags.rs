//! The build flags CI pipelines pass (issue 18), as BuildKit/buildx give them: `--secret` with
//! RUN --mount=type=secret, `--iidfile`, `--label`, `--platform`, `--metadata-file`, `-f -`,
//! and the cache/tmpfs mount options (uid, gid, mode, sharing, size).

mod common;
use common::*;
use std::io::Write;
use std::process::Stdio;

const SECRET: &str = "s3cr3t-value-7f2c91";

/// Every byte the store holds, gzip layers decompressed: where a leaked secret would be.
fn store_text(e: &Env) -> Vec<u8> {
    let mut all = vec![];
    let blobs = e.store().join("blobs/sha256");
    for f in std::fs::read_dir(&blobs).unwrap().flatten() {
        let raw = std::fs::read(f.path()).unwrap();
        let mut d = flate2::read::GzDecoder::new(&raw[..]);
        let mut out = vec![];
        if std::io::Read::read_to_end(&mut d, &mut out).is_ok() && !out.is_empty() {
            all.extend(out);
        }
        all.extend(raw);
    }
    all
}

#[test]
fn secrets_are_mounted_for_run_and_never_stored() {
    let e = Env::with_busybox();
    let df = "FROM busybox\n\
RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /len && stat -c '%a %u:%g' /run/secrets/tok > /perm\n\
RUN --mount=type=secret,id=tok,target=/etc/app/key,mode=0440,uid=7,gid=8 stat -c '%a %u:%g' /etc/app/key > /perm2 && grep -c s3cr3t /etc/app/key > /found\n\
RUN --mount=type=secret,id=absent test ! -e /run/secrets/absent && echo none > /absent\n";
    let ctx = e.context("ctx", &[("Dockerfile", df)]);
    let file = e.path("tok.txt");
    std::fs::write(&file, SECRET).unwrap();
    let flag = format!("id=tok,src={}", file.display());
    e.build(&ctx, &["-t", "sec", "--secret", &flag]);
    let root = e.umoci_unpack("sec:latest", "u");
    let rd = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    assert_eq!(rd("len").trim(), SECRET.len().to_string());
    assert_eq!(rd("perm"), "400 0:0\n");
    assert_eq!(rd("perm2"), "440 7:8\n");
    assert_eq!(rd("found"), "1\n");
    assert_eq!(rd("absent"), "none\n");
    assert!(
        !root.join("run/secrets").exists(),
        "the mount point stays out of the image"
    );
    assert!(
        !root.join("etc/app").exists(),
        "the mount point stays out of the image"
    );
    let text = store_text(&e);
    assert!(
        !text.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "the secret's value is in the store"
    );
    // Another value, from the environment this time: the steps stay cached (no value in the key).
    let mut c = e.cmd(&[
        "build",
        "-t",
        "sec",
        "--secret",
        "id=tok,env=BERTH_TEST_TOK",
    ]);
    let o = c.env("BERTH_TEST_TOK", "other").arg(&ctx).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(err.matches("CACHED").count(), 3, "{err}");
}

#[test]
fn a_missing_required_secret_or_a_bad_flag_is_one_line() {
    let e = Env::with_busybox();
    let df = "FROM busybox\nRUN --mount=type=secret,id=tok,required cat /run/secrets/tok\n";
    let ctx = e.context("ctx", &[("Dockerfile", df)]);
    let err = e.fails(&["build", ctx.to_str().unwrap()]);
    assert!(
        err.contains("secret tok") && err.contains("required"),
        "{err}"
    );
    for bad in [
        "id=tok,src=/nonexistent/tok",
        "src=/etc/hostname",
        "id=tok,type=ssh",
    ] {
        let err = e.fails(&["build", "--secret", bad, ctx.to_str().unwrap()]);
        assert!(
            err.contains("--secret") && err.trim().lines().count() == 1,
            "{bad}: {err}"
        );
    }
}

#[test]
fn iidfile_metadata_file_labels_and_platform() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ctx",
        &[("Dockerfile", "FROM busybox\nLABEL a=from-df b=keep\n")],
    );
    let iid = e.path("iid");
    let meta = e.path("meta.json");
    let (id, _) = e.build(
        &ctx,
        &[
            "-t",
            "lab:1",
            "--label",
            "a=from-cli",
            "--label",
            "org.opencontainers.image.source=https://example.test/x",
            "--iidfile",
            iid.to_str().unwrap(),
            "--metadata-file",
            meta.to_str().unwrap(),
            "--platform",
            "linux/amd64",
        ],
    );
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), id);
    let labels = &e.inspect("lab:1")["Config"]["Labels"];
    assert_eq!(labels["a"], "from-cli");
    assert_eq!(labels["b"], "keep");
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://example.test/x"
    );
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert_eq!(m["containerimage.config.digest"], id.as_str());
    assert_eq!(
        m["containerimage.digest"],
        manifest_digest(&e.index(), "lab:1").as_str()
    );
    assert_eq!(
        m["containerimage.descriptor"]["digest"],
        m["containerimage.digest"]
    );
    assert!(m["image.name"].as_str().unwrap().ends_with("lab:1"), "{m}");
    let err = e.fails(&["build", "--platform", "linux/arm64", ctx.to_str().unwrap()]);
    assert!(
        err.contains("linux/arm64") && err.trim().lines().count() == 1,
        "{err}"
    );
    let err = e.fails(&["build", "--label", "novalue", ctx.to_str().unwrap()]);
    assert!(err.contains("--label novalue"), "{err}");
}

#[test]
fn dockerfile_from_stdin() {
    let e = Env::with_busybox();
    let ctx = e.context("ctx", &[("data.txt", "from the context\n")]);
    let mut c = e.cmd(&["build", "-t", "stdin", "-f", "-", ctx.to_str().unwrap()]);
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM busybox\nCOPY data.txt /d\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let root = e.umoci_unpack("stdin:latest", "u");
    assert_eq!(
        std::fs::read_to_string(root.join("d")).unwrap(),
        "from the context\n"
    );
}

#[test]
fn cache_and_tmpfs_mount_options() {
    let e = Env::with_busybox();
    let df = "FROM busybox\n\
RUN --mount=type=cache,target=/c,id=own,uid=1000,gid=50,mode=0710 stat -c '%a %u:%g' /c > /cperm\n\
RUN --mount=type=cache,target=/l,sharing=locked touch /l/x && ls /l > /locked\n\
RUN --mount=type=cache,target=/p,sharing=private ls -a /p | wc -l > /private\n\
RUN --mount=type=tmpfs,target=/t,size=1048576 df -k /t | tail -n1 | awk '{print $2}' > /tsize\n";
    let ctx = e.context("ctx", &[("Dockerfile", df)]);
    e.build(&ctx, &["-t", "opts"]);
    let root = e.umoci_unpack("opts:latest", "u");
    let rd = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    assert_eq!(rd("cperm"), "710 1000:50\n");
    assert_eq!(rd("locked"), "x\n");
    assert_eq!(rd("private"), "2\n");
    assert_eq!(rd("tsize"), "1024\n");
    let bad = e.context(
        "bad",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=cache,target=/c,sharing=bogus true\n",
        )],
    );
    let err = e.fails(&["build", bad.to_str().unwrap()]);
    assert!(err.contains("sharing=bogus"), "{err}");
}
