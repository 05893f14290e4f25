//! Dockerfile and .dockerignore rules as BuildKit applies them, and build time that grows
//! linearly with the number of instructions.

mod common;
use common::*;

/// `secret` + `!secret/allowed`: BuildKit walks into an excluded directory when exceptions
/// exist, so the exception is copied (with its parent) and the rest is not.
#[test]
fn dockerignore_exception_inside_an_excluded_dir() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ctx",
        &[
            ("Dockerfile", "FROM busybox\nCOPY . /c/\n"),
            (".dockerignore", "secret\n!secret/allowed\n"),
            ("secret/key", "s"),
            ("secret/allowed", "a"),
            ("secret/sub/deep", "d"),
            ("other", "o"),
        ],
    );
    e.build(&ctx, &["-t", "exc"]);
    let root = e.umoci_unpack("exc:latest", "u");
    assert_eq!(
        std::fs::read_to_string(root.join("c/secret/allowed")).unwrap(),
        "a"
    );
    assert!(!root.join("c/secret/key").exists());
    assert!(!root.join("c/secret/sub").exists());
    assert!(root.join("c/other").exists());
    // The exception counts in the cache key: changing it rebuilds the step.
    std::fs::write(ctx.join("secret/allowed"), "b").unwrap();
    let (_, log) = e.build(&ctx, &["-t", "exc"]);
    assert!(!log.contains("CACHED [2/2]"), "{log}");
    // An excluded file changing does not.
    std::fs::write(ctx.join("secret/key"), "t").unwrap();
    let (_, log) = e.build(&ctx, &["-t", "exc"]);
    assert!(log.contains("CACHED"), "{log}");
}

/// Patterns are cleaned as Go's filepath.Clean does (BuildKit): `../../*` keeps its `..`
/// and so matches nothing in the context; `/x/../y` is `y`.
#[test]
fn dockerignore_patterns_are_cleaned_like_buildkit() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ctx",
        &[
            ("Dockerfile", "FROM busybox\nCOPY . /c/\n"),
            (".dockerignore", "../../*\n/x/../y\n"),
            ("a", "a"),
            ("y", "y"),
        ],
    );
    e.build(&ctx, &["-t", "clean"]);
    let root = e.umoci_unpack("clean:latest", "u");
    assert!(root.join("c/a").exists(), "../../* excluded the context");
    assert!(root.join("c/Dockerfile").exists());
    assert!(!root.join("c/y").exists());
}

/// An unterminated `[` is a bad pattern: one line naming .dockerignore and its line.
#[test]
fn dockerignore_bad_pattern_is_one_line() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ctx",
        &[
            ("Dockerfile", "FROM busybox\nCOPY . /c/\n"),
            (".dockerignore", "# c\n*.log\nfoo[\n"),
        ],
    );
    let err = e.fails(&["build", ctx.to_str().unwrap()]);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(".dockerignore:3"), "{err}");
    assert!(err.contains("foo["), "{err}");
    // COPY's own pattern: the same rule (Go's filepath.Match refuses it).
    let ctx = e.context("ctx2", &[("Dockerfile", "FROM busybox\nCOPY a[ /c/\n")]);
    let err = e.fails(&["build", "-q", ctx.to_str().unwrap()]);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("Dockerfile:2"), "{err}");
}

/// 10,000 LABEL and ENV lines: a config-only step must cost the same at the end as at the
/// start (the stage state is not copied per instruction). Before, 10,000 LABELs took minutes.
#[test]
fn ten_thousand_config_lines_build_in_linear_time() {
    let e = Env::with_busybox();
    let mut df = String::from("FROM busybox\n");
    for i in 0..10_000 {
        df.push_str(&format!("LABEL l{i}=v{i}\n"));
    }
    for i in 0..10_000 {
        df.push_str(&format!("ENV E{i}=${{E0}}x\n"));
    }
    df.push_str("RUN test \"$E9999\" = xx && test \"$E0\" = x\n");
    let ctx = e.context("ctx", &[("Dockerfile", &df)]);
    let t = std::time::Instant::now();
    e.build(&ctx, &["-t", "many", "--progress", "quiet"]);
    let took = t.elapsed();
    assert!(
        took < std::time::Duration::from_secs(20),
        "20,000 config lines took {took:?}"
    );
    let cfg = e.inspect("many:latest");
    assert_eq!(cfg["Config"]["Labels"]["l9999"], "v9999");
    assert_eq!(cfg["Config"]["Labels"].as_object().unwrap().len(), 10_000);
}

/// STOPSIGNAL takes a signal BuildKit knows (name, SIG-name or non-zero number).
#[test]
fn stopsignal_must_name_a_signal() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ctx",
        &[("Dockerfile", "FROM busybox\nRUN true\nSTOPSIGNAL SIGNOPE\n")],
    );
    let err = e.fails(&["build", ctx.to_str().unwrap()]);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(err.contains("SIGNOPE"), "{err}");
    assert!(!err.contains("RUN true"), "refused before building: {err}");
    // Through a variable: checked once expanded.
    let ctx = e.context(
        "ctx2",
        &[("Dockerfile", "FROM busybox\nARG S=NOPE\nSTOPSIGNAL $S\n")],
    );
    let err = e.fails(&["build", ctx.to_str().unwrap()]);
    assert!(
        err.contains("Dockerfile:3") && err.contains("NOPE"),
        "{err}"
    );
    for (i, ok) in ["SIGTERM", "kill", "9", "SIGRTMIN+3", "RTMAX"]
        .iter()
        .enumerate()
    {
        let ctx = e.context(
            &format!("ok{i}"),
            &[("Dockerfile", &format!("FROM busybox\nSTOPSIGNAL {ok}\n"))],
        );
        e.build(&ctx, &["-t", "sig"]);
        assert_eq!(e.inspect("sig:latest")["Config"]["StopSignal"], *ok);
    }
    let ctx = e.context("zero", &[("Dockerfile", "FROM busybox\nSTOPSIGNAL 0\n")]);
    e.fails(&["build", ctx.to_str().unwrap()]);
}

/// Two stages with one name are refused, as BuildKit refuses them.
#[test]
fn duplicate_stage_names_are_refused() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox AS a\nRUN true\nFROM busybox AS b\nFROM busybox AS A\nCOPY --from=a /bin/sh /x\n",
        )],
    );
    let err = e.fails(&["build", ctx.to_str().unwrap()]);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("Dockerfile:4"), "{err}");
    assert!(err.contains("duplicate stage name"), "{err}");
}
