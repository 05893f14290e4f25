//! Build cache and reproducible builds.

mod common;
use common::*;

const DF: &str = "FROM busybox\nARG FLAVOUR=plain\nCOPY a.txt /a.txt\nRUN echo \"$FLAVOUR\" > /flavour && cat /a.txt > /copy\nCOPY b.txt /b.txt\nCMD [\"cat\", \"/copy\"]\n";

fn cached_steps(log: &str) -> usize {
    log.lines().filter(|l| l.ends_with(" CACHED")).count()
}

#[test]
fn unchanged_steps_are_cached_and_touch_keeps_the_cache() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ctx",
        &[("Dockerfile", DF), ("a.txt", "a\n"), ("b.txt", "b\n")],
    );
    let (id1, log) = e.build(&ctx, &["-t", "c"]);
    assert_eq!(cached_steps(&log), 0, "{log}");
    let (id2, log) = e.build(&ctx, &["-t", "c"]);
    assert_eq!(cached_steps(&log), 3, "{log}");
    assert!(
        log.contains("RUN echo \"$FLAVOUR\"") && log.contains("CACHED"),
        "{log}"
    );
    assert_eq!(id1, id2, "a fully cached build gives the same image");
    // Context digests are remembered by inode/size/times.
    let hc = std::fs::read_to_string(e.store().join("berth/hashcache-b3.json")).unwrap();
    assert!(
        hc.contains(&ctx.join("a.txt").display().to_string()),
        "{hc}"
    );
    // Touching a file without changing it keeps the cache.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let f = std::fs::File::options()
        .write(true)
        .open(ctx.join("a.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now()).unwrap();
    drop(f);
    let (id3, log) = e.build(&ctx, &["-t", "c"]);
    assert_eq!(cached_steps(&log), 3, "{log}");
    assert_eq!(id1, id3);
    // Changing b.txt invalidates only its COPY, even with the same size and mtime.
    let mtime = std::fs::metadata(ctx.join("b.txt"))
        .unwrap()
        .modified()
        .unwrap();
    std::fs::write(ctx.join("b.txt"), "B\n").unwrap();
    let f = std::fs::File::options()
        .write(true)
        .open(ctx.join("b.txt"))
        .unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    let (_, log) = e.build(&ctx, &["-t", "c"]);
    assert_eq!(cached_steps(&log), 2, "{log}");
    // Changing a.txt invalidates its COPY and everything after it.
    std::fs::write(ctx.join("a.txt"), "A\n").unwrap();
    let (_, log) = e.build(&ctx, &["-t", "c"]);
    assert_eq!(cached_steps(&log), 0, "{log}");
    let root = e.umoci_unpack("c:latest", "u");
    assert_eq!(std::fs::read_to_string(root.join("copy")).unwrap(), "A\n");
    // A build arg in use is part of the RUN's key.
    let (_, log) = e.build(&ctx, &["-t", "c", "--build-arg", "FLAVOUR=spicy"]);
    assert_eq!(cached_steps(&log), 1, "{log}");
    // --no-cache rebuilds everything.
    let (_, log) = e.build(&ctx, &["-t", "c", "--no-cache"]);
    assert_eq!(cached_steps(&log), 0, "{log}");
}

#[test]
fn prune_keeps_cache_unless_asked() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ctx",
        &[("Dockerfile", DF), ("a.txt", "a\n"), ("b.txt", "b\n")],
    );
    e.build(&ctx, &["-t", "c"]);
    e.ok(&["rmi", "c"]);
    e.ok(&["prune"]);
    let (_, log) = e.build(&ctx, &["-t", "c"]);
    assert_eq!(cached_steps(&log), 3, "{log}");
    e.ok(&["rmi", "c"]);
    e.ok(&["prune", "--cache"]);
    let (_, log) = e.build(&ctx, &["-t", "c"]);
    assert_eq!(cached_steps(&log), 0, "{log}");
    let root = e.umoci_unpack("c:latest", "u");
    assert_eq!(
        std::fs::read_to_string(root.join("flavour")).unwrap(),
        "plain\n"
    );
}

/// Two builds of the same inputs, in different stores and context directories,
/// give the same manifest digest when SOURCE_DATE_EPOCH (or --timestamp) is set.
#[test]
fn source_date_epoch_builds_are_bit_for_bit_reproducible() {
    let build = |how: &str| {
        let e = Env::with_busybox();
        let ctx = e.context(
            &format!("ctx-{how}"),
            &[
                ("Dockerfile", DF),
                ("a.txt", "a\n"),
                ("b.txt", "b\n"),
                ("sub/c.txt", "c\n"),
            ],
        );
        let mut cmd = e.cmd(&["build", "-q", "-t", "r"]);
        match how {
            "env" => {
                cmd.env("SOURCE_DATE_EPOCH", "1690000000");
            }
            "timestamp" => {
                cmd.args(["--timestamp", "1690000000"]);
            }
            "arg" => {
                cmd.args(["--build-arg", "SOURCE_DATE_EPOCH=1690000000"]);
            }
            _ => {}
        }
        let o = cmd.arg(&ctx).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let digest = manifest_digest(&e.index(), "r:latest");
        let created = e.inspect("r")["Created"].clone();
        (digest, created)
    };
    let (a, created) = build("env");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (b, _) = build("env");
    assert_eq!(a, b);
    assert_eq!(created, "2023-07-22T04:26:40Z");
    assert_eq!(build("timestamp").0, a);
    assert_eq!(build("arg").0, a);
    // Without an epoch, times differ between runs.
    let (c, _) = build("none");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (d, _) = build("none");
    assert_ne!(c, d);
}

/// COPY of a symlink copies what it points to, so the target's content is in the key.
#[test]
fn copied_symlink_target_content_is_in_the_key() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ctx",
        &[
            ("Dockerfile", "FROM busybox\nCOPY link /copied\n"),
            ("real.txt", "one\n"),
        ],
    );
    std::os::unix::fs::symlink("real.txt", ctx.join("link")).unwrap();
    e.build(&ctx, &["-t", "s"]);
    std::fs::write(ctx.join("real.txt"), "two\n").unwrap();
    let (_, log) = e.build(&ctx, &["-t", "s"]);
    assert_eq!(cached_steps(&log), 0, "{log}");
    let root = e.umoci_unpack("s:latest", "u");
    assert_eq!(
        std::fs::read_to_string(root.join("copied")).unwrap(),
        "two\n"
    );
}
