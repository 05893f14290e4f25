//! Building Dockerfiles: instructions, layers, whiteouts, RUN in real containers (runc).

mod common;
use common::*;
use serde_json::json;

const BASIC: &str = r#"# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM $BASE
ARG V=1
ENV NAME=World \
    GREETING="hello there"
LABEL org.example.title="basic test" version=$V
WORKDIR /app
COPY a.txt ./
COPY sub /app/sub/
COPY --chown=app:app --chmod=640 a.txt /home/app/owned.txt
RUN echo "hi $NAME $V" > /app/out.txt && rm /bin/vi && rm -rf /root && mkdir -p /var/x
RUN <<EOF
echo "from heredoc $GREETING" > /app/heredoc.txt
EOF
RUN <<SCRIPT
#!/bin/busybox sh
echo "shebang $0" > /app/shebang.txt
SCRIPT
COPY <<EOT /app/greeting.txt
${GREETING}
EOT
EXPOSE 80 53/udp
VOLUME /data
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --retries=3 CMD ["cat", "/app/out.txt"]
USER app
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/out.txt"]
"#;

fn basic_ctx(e: &Env) -> std::path::PathBuf {
    e.context(
        "ctx",
        &[
            ("Dockerfile", BASIC),
            ("a.txt", "hello\n"),
            ("sub/b.txt", "b\n"),
        ],
    )
}

#[test]
fn basic_build_config_layers_and_files() {
    let e = Env::with_busybox();
    let ctx = basic_ctx(&e);
    let (id, log) = e.build(
        &ctx,
        &["-t", "basic", "-t", "basic:v2", "--build-arg", "V=7"],
    );
    assert!(log.contains("RUN echo \"hi $NAME $V\""), "{log}");
    assert!(log.contains("DONE"), "{log}");
    let i = e.inspect("basic:v2");
    assert_eq!(i["Id"], id.as_str());
    assert_eq!(e.inspect("basic")["Id"], id.as_str());
    let c = &i["Config"];
    assert_eq!(
        c["Env"],
        json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "NAME=World",
            "GREETING=hello there"
        ])
    );
    assert_eq!(
        c["Labels"],
        json!({"org.example.title": "basic test", "version": "7"})
    );
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(c["User"], "app");
    assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
    assert_eq!(c["Volumes"], json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGTERM");
    assert_eq!(
        c["Healthcheck"],
        json!({"Test": ["CMD", "cat", "/app/out.txt"], "Interval": 30_000_000_000i64, "Retries": 3})
    );
    assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c"]));
    assert_eq!(c["Cmd"], json!(["cat /app/out.txt"]));
    // base + WORKDIR (new dir) + 3 COPY + 3 RUN + 1 COPY heredoc; the base layer keeps its digest.
    let base = e.inspect("busybox");
    let layers = i["RootFS"]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 9);
    assert_eq!(layers[0], base["RootFS"]["Layers"][0]);
    assert_eq!(i["Manifest"]["layers"][0], base["Manifest"]["layers"][0]);
    let hist = i["History"].as_array().unwrap();
    assert_eq!(hist.iter().filter(|h| h["empty_layer"] != true).count(), 9);
    let wd = hist
        .iter()
        .find(|h| h["created_by"] == "WORKDIR /app")
        .unwrap();
    assert!(wd.get("empty_layer").is_none(), "{wd}");
    // Verified by umoci: files, whiteouts applied, ownership.
    let root = e.umoci_unpack("basic:latest", "u");
    let rd = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    assert_eq!(rd("app/a.txt"), "hello\n");
    assert_eq!(rd("app/sub/b.txt"), "b\n");
    assert_eq!(rd("app/out.txt"), "hi World 7\n");
    assert_eq!(rd("app/heredoc.txt"), "from heredoc hello there\n");
    assert_eq!(rd("app/greeting.txt"), "hello there\n");
    assert_eq!(rd("app/shebang.txt"), "shebang /dev/pipes/SCRIPT\n");
    assert!(!root.join("dev/pipes").exists());
    assert!(!root.join("bin/vi").exists() && root.join("bin/ls").exists());
    assert!(!root.join("root").exists());
    assert!(root.join("var/x").is_dir());
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(root.join("home/app/owned.txt")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (1000, 1000, 0o640));
    let m = std::fs::metadata(root.join("app/a.txt")).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0));
    let sk = skopeo_inspect(&format!("oci:{}:basic:latest", e.store().display()));
    assert_eq!(sk["Layers"].as_array().unwrap().len(), 9);
    let o = std::process::Command::new("/usr/bin/python3")
        .args([
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/validate_oci.py"),
            SCHEMAS,
        ])
        .arg(e.store())
        .arg(manifest_digest(&e.index(), "basic:latest"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "schema validation: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn run_layer_has_oci_whiteouts_and_no_runtime_mountpoints() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN mkdir -p /opt/d && echo a > /opt/d/a\n\
RUN rm /bin/vi && rm -rf /opt/d && mkdir /opt/d && echo x > /opt/d/new\n",
        )],
    );
    e.build(&ctx, &["-t", "wh"]);
    let i = e.inspect("wh");
    let top = i["Manifest"]["layers"][2]["digest"].as_str().unwrap()[7..].to_string();
    let out = std::process::Command::new("tar")
        .arg("tzvf")
        .arg(e.store().join("blobs/sha256").join(top))
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(list.contains("bin/.wh.vi"), "{list}");
    assert!(list.contains("opt/d/.wh..wh..opq"), "{list}");
    assert!(
        list.lines().all(|l| !l.starts_with('c')),
        "no char devices: {list}"
    );
    assert!(!list.contains("proc") && !list.contains("dev/"), "{list}");
    let root = e.umoci_unpack("wh:latest", "u");
    assert!(!root.join("opt/d/a").exists());
    assert!(!root.join("bin/vi").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("opt/d/new")).unwrap(),
        "x\n"
    );
}

#[test]
fn failing_run_reports_step_command_code_output_and_leaves_store() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo before\nRUN echo some-output && exit 3\n",
        )],
    );
    let before = e.index();
    let o = e.run(&["build", "-t", "bad", ctx.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err
        .lines()
        .find(|l| l.starts_with("berth-build: "))
        .unwrap();
    assert!(last.contains("Dockerfile:3"), "{err}");
    assert!(last.contains("echo some-output && exit 3"), "{err}");
    assert!(last.contains("exit code: 3"), "{err}");
    assert!(err.contains("some-output"), "{err}");
    assert_eq!(before, e.index(), "store index untouched");
}

#[test]
fn run_uses_user_workdir_env_and_network_modes() {
    let e = Env::with_busybox();
    let df = "FROM busybox\nENV FOO=bar\nWORKDIR /w\nUSER app\n\
RUN id -u > /tmp/uid && pwd > /tmp/pwd && echo $FOO > /tmp/foo && echo $SOURCE_DATE_EPOCH > /tmp/sde \
&& echo $HOME > /tmp/home && id -G > /tmp/groups\n\
USER root\n\
RUN --network=none cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' > /tmp/net-none\n\
RUN cat /proc/net/dev | tail -n +3 | wc -l > /tmp/net-host\n";
    let ctx = e.context("ctx", &[("Dockerfile", df)]);
    e.build(
        &ctx,
        &["-t", "ctx", "--build-arg", "SOURCE_DATE_EPOCH=1600000000"],
    );
    let root = e.umoci_unpack("ctx:latest", "u");
    let rd = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    assert_eq!(rd("tmp/uid"), "1000\n");
    assert_eq!(rd("tmp/pwd"), "/w\n");
    assert_eq!(rd("tmp/foo"), "bar\n");
    assert_eq!(rd("tmp/sde"), "1600000000\n");
    assert_eq!(rd("tmp/home"), "/home/app\n");
    assert_eq!(rd("tmp/groups"), "1000 2000\n");
    assert_eq!(rd("tmp/net-none"), "lo\n");
    let host_ifaces = std::fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .skip(2)
        .count();
    assert_eq!(
        rd("tmp/net-host").trim().parse::<usize>().unwrap(),
        host_ifaces
    );
}

#[test]
fn bad_input_gives_one_clear_line_and_leaves_store() {
    let e = Env::with_busybox();
    let before = e.index();
    let ctx = e.context(
        "ctx",
        &[("Dockerfile", "FROM busybox\nRUN true\nFOO bar baz\n")],
    );
    let err = e.fails(&["build", "-t", "x", ctx.to_str().unwrap()]);
    assert!(
        err.contains("Dockerfile:3: unknown instruction: FOO: FOO bar baz"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let ctx = e.context(
        "ctx2",
        &[("Dockerfile", "FROM busybox\nCOPY ../outside /x\n")],
    );
    let err = e.fails(&["build", ctx.to_str().unwrap()]);
    assert!(
        err.contains("Dockerfile:2") && err.contains("outside the build context"),
        "{err}"
    );
    let ctx = e.context(
        "ctx3",
        &[("Dockerfile", "FROM busybox\nCOPY missing.txt /x\n")],
    );
    let err = e.fails(&["build", ctx.to_str().unwrap()]);
    assert!(
        err.contains("missing.txt") && err.contains("not found"),
        "{err}"
    );
    let ctx = e.context("ctx4", &[("Dockerfile", "FROM nosuchimage\n")]);
    let err = e.fails(&["build", "-q", ctx.to_str().unwrap()]);
    assert!(
        err.contains("nosuchimage") && err.contains("not found"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(before, e.index());
}

#[test]
fn symlink_out_of_context_is_rejected() {
    let e = Env::with_busybox();
    let ctx = e.context("ctx", &[("Dockerfile", "FROM busybox\nCOPY link /x\n")]);
    std::os::unix::fs::symlink("/etc/passwd", ctx.join("link")).unwrap();
    let err = e.fails(&["build", ctx.to_str().unwrap()]);
    assert!(err.contains("outside the build context"), "{err}");
}

#[test]
fn dockerignore_with_exceptions() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ctx",
        &[
            ("Dockerfile", "FROM busybox\nCOPY . /c/\n"),
            (".dockerignore", "*.log\n!keep.log\nsecret/\n"),
            ("a.log", "x"),
            ("keep.log", "k"),
            ("secret/key", "s"),
            ("src/main.c", "m"),
        ],
    );
    e.build(&ctx, &["-t", "ign"]);
    let root = e.umoci_unpack("ign:latest", "u");
    assert!(!root.join("c/a.log").exists());
    assert!(root.join("c/keep.log").exists());
    assert!(!root.join("c/secret").exists());
    assert!(root.join("c/src/main.c").exists());
    let err = e.fails(&["build", "--target", "nope", ctx.to_str().unwrap()]);
    assert!(err.contains("--target"), "{err}");
    let ctx2 = e.context(
        "ctx2",
        &[
            ("Dockerfile", "FROM busybox\nCOPY a.log /\n"),
            (".dockerignore", "*.log\n"),
            ("a.log", "x"),
        ],
    );
    let err = e.fails(&["build", ctx2.to_str().unwrap()]);
    assert!(err.contains("excluded by .dockerignore"), "{err}");
}

#[test]
fn copy_globs_and_dockerfile_flag() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ctx",
        &[
            (
                "build/Other.dockerfile",
                "FROM busybox\nCOPY *.txt /g/\nCOPY d?r/*.md /m/\n",
            ),
            ("one.txt", "1"),
            ("two.txt", "2"),
            ("three.dat", "3"),
            ("dir/r.md", "r"),
        ],
    );
    let f = ctx.join("build/Other.dockerfile");
    e.build(&ctx, &["-f", f.to_str().unwrap(), "-t", "glob"]);
    let root = e.umoci_unpack("glob:latest", "u");
    assert!(root.join("g/one.txt").exists() && root.join("g/two.txt").exists());
    assert!(!root.join("g/three.dat").exists());
    assert!(root.join("m/r.md").exists());
}

#[test]
fn add_extracts_local_tars_and_rejects_escapes() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ctx",
        &[("payload/one.txt", "1"), ("payload/d/two.txt", "2")],
    );
    let st = std::process::Command::new("tar")
        .arg("czf")
        .arg(ctx.join("p.tar.gz"))
        .arg("-C")
        .arg(ctx.join("payload"))
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nADD p.tar.gz /opt/p/\nADD payload/one.txt /opt/plain.txt\n",
    )
    .unwrap();
    e.build(&ctx, &["-t", "add"]);
    let root = e.umoci_unpack("add:latest", "u");
    assert_eq!(
        std::fs::read_to_string(root.join("opt/p/d/two.txt")).unwrap(),
        "2"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("opt/plain.txt")).unwrap(),
        "1"
    );
    // An archive with ../ entries is refused.
    let evil = e.context(
        "evil",
        &[("Dockerfile", "FROM busybox\nADD evil.tar /x/\n")],
    );
    let st = std::process::Command::new("tar")
        .arg("cf")
        .arg(evil.join("evil.tar"))
        .arg("-P")
        .arg("--transform=s,^,../../,")
        .arg("-C")
        .arg(&ctx)
        .arg("payload/one.txt")
        .status()
        .unwrap();
    assert!(st.success());
    let err = e.fails(&["build", evil.to_str().unwrap()]);
    assert!(err.contains("escapes the destination"), "{err}");
    // Absolute paths and links that leave the destination are refused too.
    let mk = |name: &str, script: &str| {
        let d = e.context(name, &[("Dockerfile", "FROM busybox\nADD bad.tar /x/\n")]);
        let py = format!(
            "import tarfile,io\nt=tarfile.open('{}/bad.tar','w')\n{script}\nt.close()",
            d.display()
        );
        assert!(std::process::Command::new("/usr/bin/python3")
            .args(["-c", &py])
            .status()
            .unwrap()
            .success());
        d
    };
    let abs = mk(
        "abs",
        "i=tarfile.TarInfo('/etc/evil');i.size=1\nt.addfile(i,io.BytesIO(b'x'))",
    );
    let err = e.fails(&["build", abs.to_str().unwrap()]);
    assert!(err.contains("escapes the destination"), "{err}");
    let link = mk(
        "link",
        "i=tarfile.TarInfo('l');i.type=tarfile.SYMTYPE;i.linkname='../../../etc'\nt.addfile(i)",
    );
    let err = e.fails(&["build", link.to_str().unwrap()]);
    assert!(err.contains("escapes the destination"), "{err}");
    let hard = mk(
        "hard",
        "i=tarfile.TarInfo('h');i.type=tarfile.LNKTYPE;i.linkname='../etc/passwd'\nt.addfile(i)",
    );
    let err = e.fails(&["build", hard.to_str().unwrap()]);
    assert!(err.contains("escapes the destination"), "{err}");
}

#[test]
fn multistage_builds_only_needed_stages() {
    let e = Env::with_busybox();
    let df = "FROM busybox AS builder\nRUN echo built > /artifact\n\
FROM busybox AS unused\nRUN exit 1\n\
FROM busybox AS final\nCOPY --from=builder /artifact /artifact\nCOPY --from=0 /bin/busybox /copied-busybox\n\
COPY --from=busybox:latest /etc/passwd /from-image-passwd\n\
FROM final AS extra\nRUN echo extra > /extra\n";
    let ctx = e.context("ctx", &[("Dockerfile", df)]);
    let (_, log) = e.build(&ctx, &["-t", "ms"]);
    assert!(
        !log.contains("exit 1"),
        "the unused stage was built:\n{log}"
    );
    assert!(log.contains("[builder 2/2] RUN echo built"), "{log}");
    let root = e.umoci_unpack("ms:latest", "u");
    assert_eq!(
        std::fs::read_to_string(root.join("artifact")).unwrap(),
        "built\n"
    );
    assert!(root.join("copied-busybox").is_file());
    assert!(std::fs::read_to_string(root.join("from-image-passwd"))
        .unwrap()
        .contains("app:x:1000"));
    assert_eq!(
        std::fs::read_to_string(root.join("extra")).unwrap(),
        "extra\n"
    );
    let (_, log) = e.build(&ctx, &["-t", "ms-final", "--target", "final"]);
    assert!(!log.contains("echo extra"), "{log}");
    let i = e.inspect("ms-final");
    assert_eq!(i["RootFS"]["Layers"].as_array().unwrap().len(), 4);
    let err = e.fails(&["build", "--target", "unused", ctx.to_str().unwrap()]);
    assert!(err.contains("exit code: 1"), "{err}");
}

#[test]
fn onbuild_triggers_run_in_children() {
    let e = Env::with_busybox();
    let parent = e.context(
        "p",
        &[(
            "Dockerfile",
            "FROM busybox\nONBUILD RUN echo triggered > /onbuild\n",
        )],
    );
    e.build(&parent, &["-t", "parent"]);
    assert_eq!(
        e.inspect("parent")["Config"]["OnBuild"],
        json!(["RUN echo triggered > /onbuild"])
    );
    let child = e.context("c", &[("Dockerfile", "FROM parent\nRUN cat /onbuild\n")]);
    e.build(&child, &["-t", "child"]);
    let i = e.inspect("child");
    assert!(i["Config"].get("OnBuild").is_none());
    let root = e.umoci_unpack("child:latest", "u");
    assert_eq!(
        std::fs::read_to_string(root.join("onbuild")).unwrap(),
        "triggered\n"
    );
}
