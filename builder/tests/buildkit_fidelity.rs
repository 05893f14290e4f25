//! Dockerfile semantics where berth-build follows BuildKit (issue 18): EXPOSE ranges,
//! `${V/pat/repl}`, symbolic `--chmod`, `--from` naming a later stage, and BuildKit's errors
//! for a typo'd, circular or variable `--from`; a relative `--store` path.

mod common;
use common::*;

#[test]
fn expose_ranges_replace_patterns_and_symbolic_chmod() {
    let e = Env::with_busybox();
    let df = "FROM busybox\nEXPOSE 8000-8002/tcp 53/udp\nARG V=hello\n\
RUN echo ${V/l/L} ${V//l/L} > /subst\n\
COPY --chmod=u+x,g-r,o= a.txt /a\nCOPY --chmod=a+X d /d\n\
RUN stat -c %a /a > /amode && stat -c %a /d/f > /fmode && stat -c %a /d > /dmode\n";
    let ctx = e.context(
        "ctx",
        &[("Dockerfile", df), ("a.txt", "a\n"), ("d/f", "f\n")],
    );
    for p in ["a.txt", "d/f"] {
        let f = ctx.join(p);
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    }
    e.build(&ctx, &["-t", "fid"]);
    let ports = &e.inspect("fid")["Config"]["ExposedPorts"];
    let mut got: Vec<&String> = ports.as_object().unwrap().keys().collect();
    got.sort();
    assert_eq!(got, ["53/udp", "8000/tcp", "8001/tcp", "8002/tcp"]);
    let root = e.umoci_unpack("fid:latest", "u");
    let rd = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    assert_eq!(rd("subst"), "heLlo heLLo\n");
    assert_eq!(rd("amode"), "700\n");
    assert_eq!(
        rd("fmode"),
        "644\n",
        "X adds x only to directories and executables"
    );
    assert_eq!(rd("dmode"), "755\n");
}

#[test]
fn from_names_a_later_stage_and_its_errors_are_buildkits() {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ok",
        &[(
            "Dockerfile",
            "FROM busybox AS app\nCOPY --from=tools /t /t\nFROM busybox AS tools\nRUN echo tool > /t\n",
        )],
    );
    e.build(&ctx, &["-t", "later", "--target", "app"]);
    let root = e.umoci_unpack("later:latest", "u");
    assert_eq!(std::fs::read_to_string(root.join("t")).unwrap(), "tool\n");
    let cases = [
        (
            "FROM busybox AS build\nFROM busybox\nCOPY --from=biuld /x /x\n",
            "Dockerfile:3: COPY --from=biuld: no stage or image named biuld (stages: build)",
        ),
        (
            "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nCOPY --from=a /x /x\n",
            "circular dependency detected on stage: a",
        ),
        (
            "FROM busybox\nARG S=x\nCOPY --from=$S /x /x\n",
            "variable expansion is not supported for --from",
        ),
    ];
    for (i, (df, want)) in cases.iter().enumerate() {
        let ctx = e.context(&format!("bad{i}"), &[("Dockerfile", df)]);
        let err = e.fails(&["build", ctx.to_str().unwrap()]);
        let last = err.trim().lines().last().unwrap_or_default().to_string();
        assert!(last.contains(want), "{df}: {err}");
    }
}

#[test]
fn a_relative_store_path_serves_run_steps() {
    let e = Env::with_busybox();
    // Made under the test dir, then named by a path relative to it.
    e.context(
        "ctx",
        &[("Dockerfile", "FROM busybox\nRUN echo ran > /r\n")],
    );
    let o = std::process::Command::new(bin())
        .current_dir(e.dir.path())
        .args(["--store", "store", "build", "-t", "rel", "ctx"])
        .env("BERTH_RUNTIME", step_runtime())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let root = e.umoci_unpack("rel:latest", "u");
    assert_eq!(std::fs::read_to_string(root.join("r")).unwrap(), "ran\n");
}

/// COPY --exclude and --parents are BuildKit flags berth-build does not build yet: refused
/// with one line naming them, never silently dropped.
#[test]
fn copy_flags_not_built_are_refused() {
    let e = Env::with_busybox();
    for f in ["--exclude=*.txt", "--parents"] {
        let df = format!("FROM busybox\nCOPY {f} a.txt /d/\n");
        let ctx = e.context(
            &format!("c{}", f.len()),
            &[("Dockerfile", &df), ("a.txt", "a")],
        );
        let err = e.fails(&["build", ctx.to_str().unwrap()]);
        let name = f.split('=').next().unwrap();
        assert!(
            err.contains(&format!("COPY {name} is not supported")),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

/// `ADD --checksum` pins a download; on a context file BuildKit refuses it, and so do we.
#[test]
fn add_checksum_of_a_local_file_is_refused() {
    let e = Env::with_busybox();
    let sum = format!("sha256:{}", "0".repeat(64));
    let df = format!("FROM busybox\nADD --checksum={sum} a.txt /a\n");
    let ctx = e.context("c", &[("Dockerfile", &df), ("a.txt", "a")]);
    let err = e.fails(&["build", ctx.to_str().unwrap()]);
    assert!(
        err.contains("checksum can't be specified for non-HTTP(S) sources"),
        "{err}"
    );
}
