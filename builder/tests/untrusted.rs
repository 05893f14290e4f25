//! A Dockerfile, its build context and the stages it builds are a stranger's input: nothing
//! they hold (symlinks in the context, in a stage, in the staged layer; names; argv) may
//! reach the host or crash the builder.

mod common;
use common::*;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

/// A host directory outside the context with one file, and what it looked like.
struct Victim {
    dir: std::path::PathBuf,
}

impl Victim {
    fn new(e: &Env, name: &str) -> Victim {
        let dir = e.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f"), "orig\n").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(dir.join("f"), std::fs::Permissions::from_mode(0o600)).unwrap();
        Victim { dir }
    }

    fn assert_untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["f"], "files appeared in the host dir");
        let f = self.dir.join("f");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "orig\n");
        let md = std::fs::metadata(&f).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o600, "host file chmodded");
        assert_eq!((md.uid(), md.gid()), (0, 0), "host file chowned");
        let md = std::fs::metadata(&self.dir).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o700, "host dir chmodded");
    }
}

/// `COPY d1 d2 /dst/`: d1/x is a symlink to a host dir, d2/x/ a directory with a file. The
/// staged symlink must not be followed: the host dir keeps its files, modes and owners.
#[test]
fn copy_never_writes_through_a_staged_symlink() {
    let e = Env::with_busybox();
    let v = Victim::new(&e, "victim");
    let ctx = e.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY --chown=1234:1234 d1 d2 /dst/\n",
            ),
            ("d2/x/f", "evil\n"),
            ("d2/x/new", "new\n"),
        ],
    );
    std::fs::create_dir_all(ctx.join("d1")).unwrap();
    symlink(&v.dir, ctx.join("d1/x")).unwrap();
    std::fs::set_permissions(ctx.join("d2/x"), std::fs::Permissions::from_mode(0o777)).unwrap();
    e.build(&ctx, &["-t", "staged"]);
    v.assert_untouched();
    let root = e.umoci_unpack("staged:latest", "u");
    assert!(root.join("dst/x").is_dir() && !root.join("dst/x").is_symlink());
    assert_eq!(
        std::fs::read_to_string(root.join("dst/x/f")).unwrap(),
        "evil\n"
    );
}

/// `COPY --chmod=4755 d1 <<EOF /dst/` where d1/EOF is a symlink to a host file: the heredoc
/// replaces the staged link; the host file is neither written nor made setuid.
#[test]
fn copy_heredoc_never_writes_through_a_staged_symlink() {
    let e = Env::with_busybox();
    let v = Victim::new(&e, "victim");
    let df = "FROM busybox\nCOPY --chmod=4755 d1 <<EOF /dst/\n#!/bin/sh\nid\nEOF\n";
    let ctx = e.context("ctx", &[("Dockerfile", df), ("d1/keep", "k\n")]);
    symlink(v.dir.join("f"), ctx.join("d1/EOF")).unwrap();
    e.build(&ctx, &["-t", "hd"]);
    v.assert_untouched();
    let root = e.umoci_unpack("hd:latest", "u");
    let f = root.join("dst/EOF");
    assert!(!f.is_symlink());
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "#!/bin/sh\nid\n");
    assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o7777, 0o4755);
    // A heredoc named `..` must not name the staging dir's parent either.
    let ctx2 = e.context(
        "ctx2",
        &[("Dockerfile", "FROM busybox\nCOPY <<.. /dst/\nx\n..\n")],
    );
    let err = e.fails(&["build", "-q", ctx2.to_str().unwrap()]);
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// A file of the host that a stage's symlinks point at (absolute path in the test dir).
fn host_marker(e: &Env) -> std::path::PathBuf {
    let d = e.path("hostdir");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("marker"), "HOST SECRET\n").unwrap();
    d
}

/// `COPY --from=stage` resolves the stage's symlinks inside the stage: a link to `/` does
/// not lead to the host's files, and a source that is a symlink copies the file it names
/// in the stage (BuildKit).
#[test]
fn copy_from_stage_resolves_links_inside_the_stage() {
    let e = Env::with_busybox();
    let host = host_marker(&e);
    let df = "FROM busybox AS s0\nRUN ln -s / /d1 && mkdir -p /real && echo stage > /real/file && ln -s /real/file /lnk && ln -s ../../real /rel\n\
FROM busybox\nCOPY --from=s0 /lnk /got\nCOPY --from=s0 /rel/file /got-rel\nCOPY --from=s0 /d1/real/ /via-root/\n";
    let ctx = e.context("ctx", &[("Dockerfile", df)]);
    e.build(&ctx, &["-t", "fromlinks"]);
    let root = e.umoci_unpack("fromlinks:latest", "u");
    for p in ["got", "got-rel", "via-root/file"] {
        let f = root.join(p);
        assert!(!f.is_symlink(), "{p} is the link, not the file");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "stage\n", "{p}");
    }
    // The host's file through the stage's link to `/`: not found in the stage.
    let df = format!(
        "FROM busybox AS s0\nRUN ln -s / /d1\nFROM busybox\nCOPY --from=s0 /d1{}/marker /stolen\n",
        host.display()
    );
    let ctx = e.context("ctx-steal", &[("Dockerfile", &df)]);
    let o = e.run(&["build", "-t", "steal", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "the host's file was copied:\n{err}");
    assert!(err.contains("Dockerfile:4"), "{err}");
}

/// `RUN --mount=type=bind,from=stage,source=…` through a stage's symlink to `/` must not
/// mount the host's root (or any host dir) into the step.
#[test]
fn bind_mount_from_stage_resolves_links_inside_the_stage() {
    let e = Env::with_busybox();
    let host = host_marker(&e);
    let df = format!(
        "FROM busybox AS s0\nRUN ln -s / /d1 && mkdir /data && echo stage > /data/marker && ln -s /data /dlink\n\
FROM busybox\nRUN --mount=type=bind,from=s0,source=/d1{},target=/m cat /m/marker > /out\n",
        host.display()
    );
    let ctx = e.context("ctx", &[("Dockerfile", &df)]);
    let o = e.run(&["build", "-t", "bindsteal", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "the host dir was mounted:\n{err}");
    assert!(err.contains("not found in s0"), "{err}");
    // A link inside the stage is followed inside it.
    let df =
        "FROM busybox AS s0\nRUN mkdir /data && echo stage > /data/marker && ln -s /data /dlink\n\
FROM busybox\nRUN --mount=type=bind,from=s0,source=/dlink,target=/m cat /m/marker > /out\n\
RUN --mount=type=bind,from=s0,source=/dlink/marker,target=/f,rw cat /f > /out-file\n";
    let ctx = e.context("ctx2", &[("Dockerfile", df)]);
    e.build(&ctx, &["-t", "bindok"]);
    let root = e.umoci_unpack("bindok:latest", "u");
    assert_eq!(
        std::fs::read_to_string(root.join("out")).unwrap(),
        "stage\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("out-file")).unwrap(),
        "stage\n"
    );
    assert!(!root.join("m").exists() && !root.join("f").exists());
}

/// A context symlink bound by RUN --mount is resolved inside the context.
#[test]
fn bind_mount_from_context_resolves_links_inside_it() {
    let e = Env::with_busybox();
    let host = host_marker(&e);
    let df = "FROM busybox\nRUN --mount=type=bind,source=up,target=/m ls /m > /out\n";
    let ctx = e.context("ctx", &[("Dockerfile", df), ("in/a", "a\n")]);
    symlink(&host, ctx.join("up")).unwrap();
    let o = e.run(&["build", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a host dir was bound:\n{err}");
    assert!(err.contains("Dockerfile:2"), "{err}");
    std::fs::remove_file(ctx.join("up")).unwrap();
    symlink("/in", ctx.join("up")).unwrap();
    e.build(&ctx, &["-t", "ctxlink"]);
    let root = e.umoci_unpack("ctxlink:latest", "u");
    assert_eq!(std::fs::read_to_string(root.join("out")).unwrap(), "a\n");
}

/// `RUN ["/dev/pipes/x"]` names no heredoc: the runtime reports the missing file; no panic.
#[test]
fn run_of_a_pipes_path_without_heredoc_does_not_panic() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ctx",
        &[("Dockerfile", "FROM busybox\nRUN [\"/dev/pipes/x\"]\n")],
    );
    let o = e.run(&["build", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("Dockerfile:2"), "{err}");
}

/// Substitutions nested 100,000 deep (which would exhaust a thread's stack) are one line
/// naming the instruction, in a stage and before the first FROM alike.
#[test]
fn deeply_nested_substitutions_are_one_line() {
    let e = Env::with_busybox();
    let deep = format!("{}x{}", "${a:-".repeat(100_000), "}".repeat(100_000));
    for (name, df) in [
        ("stage", format!("FROM busybox\nLABEL x={deep}\n")),
        ("meta", format!("ARG X={deep}\nFROM busybox\n")),
    ] {
        let ctx = e.context(name, &[("Dockerfile", &df)]);
        let o = e.run(&["build", "-q", ctx.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{name}: {}",
            &err[..err.len().min(300)]
        );
        assert_eq!(err.trim().lines().count(), 1, "{name}");
        assert!(err.contains("nested deeper than"), "{name}");
    }
    // 64 levels are fine.
    let ok = format!("{}x{}", "${a:-".repeat(64), "}".repeat(64));
    let ctx = e.context(
        "ok",
        &[("Dockerfile", &format!("FROM busybox\nLABEL x={ok}\n"))],
    );
    e.build(&ctx, &["-t", "nest"]);
    assert_eq!(e.inspect("nest:latest")["Config"]["Labels"]["x"], "x");
}
