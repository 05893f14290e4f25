//! Building Dockerfiles, continued: outputs, RUN mounts, concurrency, compression, ADD from
//! URLs, platforms, and filesystem corner cases (split from build.rs to keep files small).

mod common;
use common::*;
use serde_json::json;

#[test]
fn outputs_oci_dir_and_archives() {
    let e = Env::with_busybox();
    let ctx = e.context("ctx", &[("Dockerfile", "FROM busybox\nRUN echo o > /o\n")]);
    let dir = e.path("out-oci");
    let oa = e.path("out.oci.tar");
    let da = e.path("out.docker.tar");
    let (id, _) = e.build(
        &ctx,
        &[
            "-t",
            "outs:1",
            "--output",
            &format!("type=oci,dest={}", dir.display()),
            "--output",
            &format!("type=oci-archive,dest={}", oa.display()),
            "--output",
            &format!("type=docker-archive,dest={}", da.display()),
        ],
    );
    let d = manifest_digest(&e.index(), "outs:1");
    assert_eq!(
        skopeo_inspect(&format!("oci:{}:outs:1", dir.display()))["Digest"],
        d
    );
    assert_eq!(
        skopeo_inspect(&format!("oci-archive:{}:outs:1", oa.display()))["Digest"],
        d
    );
    let sk = skopeo_inspect(&format!("docker-archive:{}", da.display()));
    assert_eq!(sk["Layers"].as_array().unwrap().len(), 2);
    assert!(id.starts_with("sha256:"));
}

#[test]
fn run_mounts_cache_bind_tmpfs() {
    let e = Env::with_busybox();
    let df = "FROM busybox AS tools\nRUN echo tool > /tool.txt\n\
FROM busybox\n\
RUN --mount=type=cache,target=/var/cache/app echo run >> /var/cache/app/log && cat /var/cache/app/log | wc -l > /runs\n\
RUN --mount=type=bind,source=src,target=/src cp /src/in.txt /copied && (touch /src/x 2>/dev/null && echo rw > /bindmode || echo ro > /bindmode)\n\
RUN --mount=type=bind,from=tools,source=/tool.txt,target=/mnt/tool.txt cat /mnt/tool.txt > /from-stage\n\
RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/t && mount | grep -c ' /scratch ' > /tmpfs\n";
    let ctx = e.context("ctx", &[("Dockerfile", df), ("src/in.txt", "input\n")]);
    e.build(&ctx, &["-t", "m"]);
    e.build(&ctx, &["-t", "m", "--no-cache"]);
    let root = e.umoci_unpack("m:latest", "u");
    let rd = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    assert_eq!(rd("runs"), "2\n", "the cache mount persists between builds");
    assert_eq!(rd("copied"), "input\n");
    assert_eq!(rd("bindmode"), "ro\n");
    assert_eq!(rd("from-stage"), "tool\n");
    assert_eq!(rd("tmpfs"), "1\n");
    for p in ["var/cache/app", "src", "mnt", "scratch"] {
        assert!(
            !root.join(p).exists(),
            "mount point {p} leaked into the image"
        );
    }
    // A change in a bound context file invalidates the step.
    std::fs::write(ctx.join("src/in.txt"), "changed\n").unwrap();
    e.build(&ctx, &["-t", "m"]);
    let root = e.umoci_unpack("m:latest", "u2");
    assert_eq!(
        std::fs::read_to_string(root.join("copied")).unwrap(),
        "changed\n"
    );
    let bad = e.context(
        "bad",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=ssh,target=/s true\n",
        )],
    );
    let err = e.fails(&["build", bad.to_str().unwrap()]);
    assert!(err.contains("not supported"), "{err}");
}

#[test]
fn concurrent_builds_share_one_store() {
    let e = Env::with_busybox();
    let ctxs: Vec<_> = (0..3)
        .map(|i| {
            e.context(
                &format!("ctx{i}"),
                &[
                    (
                        "Dockerfile",
                        &format!("FROM busybox\nRUN echo {i} > /n\nCOPY f /f\n"),
                    ),
                    ("f", "same\n"),
                ],
            )
        })
        .collect();
    let children: Vec<_> = ctxs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            e.cmd(&[
                "build",
                "-q",
                "-t",
                &format!("par:{i}"),
                c.to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    for i in 0..3 {
        let root = e.umoci_unpack(&format!("par:{i}"), &format!("u{i}"));
        assert_eq!(
            std::fs::read_to_string(root.join("n")).unwrap(),
            format!("{i}\n")
        );
    }
    assert_eq!(e.index()["manifests"].as_array().unwrap().len(), 4);
}

#[test]
fn zstd_layers_build_unpack_and_serve_as_base() {
    let e = Env::with_busybox();
    let ctx = e.context("ctx", &[("Dockerfile", "FROM busybox\nRUN echo z > /z\n")]);
    e.build(&ctx, &["-t", "z", "--compression", "zstd"]);
    let i = e.inspect("z");
    let layers = i["Manifest"]["layers"].as_array().unwrap();
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(
        layers[1]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    // umoci 0.4 cannot read zstd layers; check the blob with the zstd tool and skopeo.
    let blob = e
        .store()
        .join("blobs/sha256")
        .join(&layers[1]["digest"].as_str().unwrap()[7..]);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("zstd -dc {} | tar -xOf - z", blob.display()))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "z\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let diff_id = i["RootFS"]["Layers"][1].as_str().unwrap().to_string();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("zstd -dc {} | sha256sum", blob.display()))
        .output()
        .unwrap();
    assert!(diff_id.ends_with(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
    ));
    skopeo_inspect(&format!("oci:{}:z:latest", e.store().display()));
    // In a fresh store the zstd layer must be unpacked into a snapshot for RUN.
    let arch = e.path("z.tar");
    e.ok(&["save", "-o", arch.to_str().unwrap(), "z"]);
    let f = Env::empty();
    f.ok(&["load", "-i", arch.to_str().unwrap()]);
    let ctx2 = f.context("ctx", &[("Dockerfile", "FROM z\nRUN cat /z > /z2\n")]);
    f.build(&ctx2, &["-t", "z2"]);
    let top = f.inspect("z2")["Manifest"]["layers"][2]["digest"]
        .as_str()
        .unwrap()[7..]
        .to_string();
    let out = std::process::Command::new("tar")
        .arg("-xzOf")
        .arg(f.store().join("blobs/sha256").join(top))
        .arg("z2")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "z\n");
}

#[test]
fn umoci_bundle_of_built_image_runs_under_runc() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ctx",
        &[("Dockerfile", "FROM busybox\nENV WHO=berth\nRUN echo built-by > /msg\nCMD [\"/bin/sh\", \"-c\", \"echo $(cat /msg) $WHO\"]\n")],
    );
    e.build(&ctx, &["-t", "runme"]);
    let bundle = e.path("b");
    let st = std::process::Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:runme:latest", e.store().display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    // umoci's config.json asks for a terminal; run without one.
    let cfgp = bundle.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfgp).unwrap()).unwrap();
    cfg["process"]["terminal"] = json!(false);
    std::fs::write(&cfgp, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let id = format!("berth-build-test-umoci-{}", std::process::id());
    let out = std::process::Command::new(RUNC)
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .output()
        .unwrap();
    let _ = std::process::Command::new(RUNC)
        .args(["delete", "-f", &id])
        .output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "built-by berth\n");
}

/// Two independent stages each wait (up to 20 s) for the other's mark in a shared
/// cache mount: the build only succeeds if they really run at the same time.
#[test]
fn independent_stages_run_concurrently() {
    let e = Env::with_busybox();
    let wait = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,id=sync,target=/s touch /s/{me} && i=0; \
while [ ! -e /s/{other} ]; do i=$((i+1)); [ $i -gt 200 ] && exit 7; sleep 0.1; done; echo {me} > /{me}\n"
        )
    };
    let df = format!(
        "FROM busybox AS a\n{}FROM busybox AS b\n{}FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
        wait("a", "b"),
        wait("b", "a")
    );
    let ctx = e.context("ctx", &[("Dockerfile", &df)]);
    e.build(&ctx, &["-t", "conc"]);
    let root = e.umoci_unpack("conc:latest", "u");
    assert_eq!(std::fs::read_to_string(root.join("a")).unwrap(), "a\n");
    assert_eq!(std::fs::read_to_string(root.join("b")).unwrap(), "b\n");
}

/// A build killed in the middle of a RUN leaves no mount behind on the host and
/// does not break the store: the next build works.
#[test]
fn killed_build_leaves_no_mounts() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN touch /started && sleep 30\n",
        )],
    );
    let mut child = e
        .cmd(&["build", "-t", "k", ctx.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if l.contains("RUN touch") {
                return true;
            }
        }
        false
    });
    assert!(reader.join().unwrap());
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    // The container (its runc is killed with us) may still be exiting; give it time.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mi.contains(&e.store().display().to_string()),
        "mount left behind after kill"
    );
    // Leftover container from the killed build: remove it so the test leaves nothing.
    let list = std::process::Command::new(step_runtime())
        .args(["list", "-q"])
        .output()
        .unwrap();
    for id in String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|l| l.starts_with("berth-build-"))
    {
        let state = std::process::Command::new(step_runtime())
            .args(["state", id])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&state.stdout).contains(&e.store().display().to_string()) {
            let _ = std::process::Command::new(step_runtime())
                .args(["delete", "-f", id])
                .output();
        }
    }
    e.ok(&["prune"]);
    let ctx2 = e.context(
        "ctx2",
        &[("Dockerfile", "FROM busybox\nRUN echo ok > /ok\n")],
    );
    e.build(&ctx2, &["-t", "after"]);
}

/// ADD <url> over loopback http, with and without a (right or wrong) --checksum.
#[test]
fn add_downloads_urls_and_checks_checksums() {
    use std::io::Read;
    let e = Env::with_busybox();
    let www = e.context("www", &[("files/hello.txt", "hello from http\n")]);
    let mut server = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import http.server,socketserver,sys,os\n\
os.chdir(sys.argv[1])\n\
h=http.server.SimpleHTTPRequestHandler\n\
h.log_message=lambda *a: None\n\
s=socketserver.TCPServer(('127.0.0.1',0),h)\n\
print(s.server_address[1],flush=True)\n\
s.serve_forever()",
        ])
        .arg(&www)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    let mut out = server.stdout.take().unwrap();
    let mut b = [0u8; 1];
    while out.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
        port.push(b[0] as char);
    }
    let url = format!("http://127.0.0.1:{}/files/hello.txt", port.trim());
    let sum = "sha256:2c0bd5a6ac2d1e3b6b2d7bf2b3f17a0d3d8e4e2ad2b8ccb34c25e1ea0d0d0c6a";
    let good = {
        use sha2::Digest;
        format!("sha256:{:x}", sha2::Sha256::digest(b"hello from http\n"))
    };
    let df = format!(
        "FROM busybox\nADD {url} /dl/\nADD --checksum={good} --chmod=644 {url} /dl/checked.txt\n"
    );
    let ctx = e.context("ctx", &[("Dockerfile", &df)]);
    let res = std::panic::catch_unwind(|| {
        e.build(&ctx, &["-t", "dl"]);
        let bad = e.context(
            "bad",
            &[(
                "Dockerfile",
                &format!("FROM busybox\nADD --checksum={sum} {url} /x\n"),
            )],
        );
        e.fails(&["build", bad.to_str().unwrap()])
    });
    let _ = server.kill();
    let _ = server.wait();
    let err = res.unwrap();
    assert!(err.contains("checksum mismatch"), "{err}");
    let root = e.umoci_unpack("dl:latest", "u");
    assert_eq!(
        std::fs::read_to_string(root.join("dl/hello.txt")).unwrap(),
        "hello from http\n"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(root.join("dl/hello.txt")).unwrap().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(root.join("dl/checked.txt"))
            .unwrap()
            .mode()
            & 0o777,
        0o644
    );
}

#[test]
fn platform_args_proxy_args_and_platform_check() {
    let e = Env::with_busybox();
    let df = "FROM --platform=$BUILDPLATFORM busybox\nARG TARGETARCH\nARG TARGETPLATFORM\n\
RUN echo \"$TARGETPLATFORM $TARGETARCH $http_proxy\" > /p\n";
    let ctx = e.context("ctx", &[("Dockerfile", df)]);
    let (_, log) = e.build(
        &ctx,
        &[
            "-t",
            "p",
            "--build-arg",
            "http_proxy=http://proxy.invalid:3128",
        ],
    );
    assert!(!log.contains("not consumed"), "{log}");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let root = e.umoci_unpack("p:latest", "u");
    assert_eq!(
        std::fs::read_to_string(root.join("p")).unwrap(),
        format!("linux/{arch} {arch} http://proxy.invalid:3128\n")
    );
    // The proxy is not kept in the image config.
    assert!(!e.inspect("p")["Config"]["Env"]
        .to_string()
        .contains("proxy"));
    let other = e.context(
        "other",
        &[("Dockerfile", "FROM --platform=linux/s390x busybox\n")],
    );
    let err = e.fails(&["build", other.to_str().unwrap()]);
    assert!(err.contains("only the host platform"), "{err}");
}

#[test]
fn from_scratch() {
    let e = Env::empty();
    let ctx = e.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY hello /hello\nENTRYPOINT [\"/hello\"]\n",
            ),
            ("hello", "hi\n"),
        ],
    );
    e.build(&ctx, &["-t", "scratchy"]);
    let i = e.inspect("scratchy");
    assert_eq!(i["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(i["Config"]["Entrypoint"], json!(["/hello"]));
    let root = e.umoci_unpack("scratchy:latest", "u");
    let names: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|d| d.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("hello")]);
    // RUN on an empty rootfs fails with the runtime's message, and cleanly.
    let run = e.context("run", &[("Dockerfile", "FROM scratch\nRUN true\n")]);
    let err = e.fails(&["build", run.to_str().unwrap()]);
    assert!(
        err.contains("Dockerfile:2") && err.contains("did not complete successfully"),
        "{err}"
    );
}

#[test]
fn workdir_creates_a_layer_only_for_new_dirs() {
    let e = Env::with_busybox();
    let df = "FROM busybox\nWORKDIR /bin\nWORKDIR /srv/app\nWORKDIR sub\n";
    let ctx = e.context("ctx", &[("Dockerfile", df)]);
    let (_, log) = e.build(&ctx, &["-t", "wd"]);
    assert!(!log.contains("CACHED"), "{log}");
    let i = e.inspect("wd");
    assert_eq!(i["RootFS"]["Layers"].as_array().unwrap().len(), 3);
    assert_eq!(i["Config"]["WorkingDir"], "/srv/app/sub");
    let root = e.umoci_unpack("wd:latest", "u");
    assert!(root.join("srv/app/sub").is_dir());
    let (_, log) = e.build(&ctx, &["-t", "wd"]);
    assert_eq!(
        log.lines().filter(|l| l.ends_with(" CACHED")).count(),
        2,
        "{log}"
    );
}

/// More layers than fit in mount(2)'s one-page option string (about 40 here).
#[test]
fn many_layers_beyond_the_mount_option_limit() {
    let e = Env::with_busybox();
    let mut df = String::from("FROM busybox\n");
    let mut files: Vec<(String, String)> = vec![];
    for i in 0..48 {
        df.push_str(&format!("COPY f{i} /f/{i}\n"));
        files.push((format!("f{i}"), format!("{i}\n")));
    }
    df.push_str("RUN cat /f/0 /f/47 > /sum && rm /f/3\n");
    let mut all: Vec<(&str, &str)> = vec![("Dockerfile", &df)];
    all.extend(files.iter().map(|(a, b)| (a.as_str(), b.as_str())));
    let ctx = e.context("ctx", &all);
    e.build(&ctx, &["-t", "many"]);
    let i = e.inspect("many");
    assert_eq!(i["RootFS"]["Layers"].as_array().unwrap().len(), 50);
    let root = e.umoci_unpack("many:latest", "u");
    assert_eq!(
        std::fs::read_to_string(root.join("sum")).unwrap(),
        "0\n47\n"
    );
    assert!(!root.join("f/3").exists() && root.join("f/4").exists());
}

/// Networked RUN steps see the host's resolv.conf even when the image has none,
/// and the mount point does not end up in the layer.
#[test]
fn run_gets_host_name_resolution_without_leaking_mountpoints() {
    let e = Env::empty();
    let rootfs = e.path("rootfs");
    make_busybox_rootfs(&rootfs);
    std::fs::remove_file(rootfs.join("etc/resolv.conf")).unwrap();
    std::fs::remove_file(rootfs.join("etc/hosts")).unwrap();
    e.ok(&["import", rootfs.to_str().unwrap(), "bare"]);
    let ctx = e.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM bare\nRUN cat /etc/resolv.conf > /resolv.copy\n",
        )],
    );
    e.build(&ctx, &["-t", "dns"]);
    let root = e.umoci_unpack("dns:latest", "u");
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap();
    assert_eq!(
        std::fs::read_to_string(root.join("resolv.copy")).unwrap(),
        host
    );
    assert!(!root.join("etc/resolv.conf").exists());
    assert!(!root.join("etc/hosts").exists());
}

/// File capabilities survive import, snapshots, copy-up in RUN and layer tars.
#[test]
fn file_capabilities_are_kept() {
    let e = Env::empty();
    let rootfs = e.path("rootfs");
    make_busybox_rootfs(&rootfs);
    std::fs::copy(rootfs.join("bin/busybox"), rootfs.join("bin/pinglike")).unwrap();
    let st = std::process::Command::new("setcap")
        .arg("cap_net_raw+ep")
        .arg(rootfs.join("bin/pinglike"))
        .status()
        .unwrap();
    assert!(st.success());
    e.ok(&["import", rootfs.to_str().unwrap(), "capbase"]);
    let ctx = e.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM capbase\nRUN chmod 4755 /bin/pinglike\nRUN touch /other\n",
        )],
    );
    e.build(&ctx, &["-t", "caps"]);
    let root = e.umoci_unpack("caps:latest", "u");
    let out = std::process::Command::new("getcap")
        .arg(root.join("bin/pinglike"))
        .output()
        .unwrap();
    let caps = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(caps.contains("cap_net_raw"), "getcap: {caps:?}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(root.join("bin/pinglike")).unwrap().mode() & 0o7777,
        0o4755
    );
}

/// COPY and WORKDIR resolve symlinked directories of the image inside its root.
#[test]
fn copy_through_image_symlinks() {
    let e = Env::with_busybox();
    let df = "FROM busybox\nRUN mkdir -p /run/real && ln -s /run /var/run && ln -s ../../../.. /var/up\n\
COPY a.txt /var/run/\nCOPY a.txt /var/run/real/b.txt\nCOPY a.txt /var/up/top.txt\nWORKDIR /var/run/w\n";
    let ctx = e.context("ctx", &[("Dockerfile", df), ("a.txt", "a\n")]);
    e.build(&ctx, &["-t", "sl"]);
    let root = e.umoci_unpack("sl:latest", "u");
    assert!(root.join("var/run").is_symlink(), "the symlink is kept");
    assert_eq!(
        std::fs::read_to_string(root.join("run/a.txt")).unwrap(),
        "a\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("run/real/b.txt")).unwrap(),
        "a\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("top.txt")).unwrap(),
        "a\n"
    );
    assert!(root.join("run/w").is_dir());
}
