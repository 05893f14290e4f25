//! Dockerfile semantics where berth-build follows BuildKit's dockerfile2llb (issue 18):
//! WORKDIR's owner, ARG scope across `FROM stage`, COPY's destination and parents, history.

mod common;
use common::*;
use std::os::unix::fs::MetadataExt;

/// `(uid, gid, mode)` of `p` under `root`.
fn meta(root: &std::path::Path, p: &str) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(root.join(p)).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

/// WORKDIR makes a missing directory (and its missing parents) as the current USER, numeric
/// or a name from the image's /etc/passwd; an existing directory is left as it is.
#[test]
fn workdir_is_made_as_the_current_user() {
    let e = Env::with_busybox();
    let df = "FROM busybox\nUSER 1000:50\nWORKDIR /w/x\nWORKDIR /tmp\nUSER app\nWORKDIR /srv/app\n\
USER 7\nWORKDIR /seven\n";
    let ctx = e.context("ctx", &[("Dockerfile", df)]);
    e.build(&ctx, &["-t", "wd"]);
    let root = e.umoci_unpack("wd:latest", "u");
    assert_eq!(meta(&root, "w"), (1000, 50, 0o755));
    assert_eq!(meta(&root, "w/x"), (1000, 50, 0o755));
    assert_eq!(
        meta(&root, "tmp"),
        (0, 0, 0o1777),
        "an existing dir is kept"
    );
    assert_eq!(meta(&root, "srv"), (1000, 1000, 0o755));
    assert_eq!(meta(&root, "srv/app"), (1000, 1000, 0o755));
    assert_eq!(
        meta(&root, "seven"),
        (7, 7, 0o755),
        "a number alone is uid and gid"
    );
}

/// A stage built `FROM parent` sees the ARGs declared in the parent (a global ARG only where
/// the parent re-declared it); an unrelated stage sees none of them.
#[test]
fn from_stage_inherits_the_parents_args() {
    let e = Env::with_busybox();
    let df = "ARG G=global\nARG H=other\nFROM busybox AS parent\nARG FOO=123\nARG G\n\
FROM parent AS child\nRUN echo \"FOO=$FOO G=$G H=$H\" > /seen\n\
FROM busybox AS final\nCOPY --from=child /seen /child\nRUN echo \"FOO=$FOO G=$G\" > /seen\n";
    let ctx = e.context("ctx", &[("Dockerfile", df)]);
    e.build(&ctx, &["-t", "args", "--build-arg", "FOO=bar"]);
    let root = e.umoci_unpack("args:latest", "u");
    let rd = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    assert_eq!(rd("child"), "FOO=bar G=global H=\n");
    assert_eq!(rd("seen"), "FOO= G=\n");
}

/// COPY --chown makes missing parents as that owner; a directory COPY keeps an existing
/// destination's mode and owner and makes a missing one 0755; --chown/--chmod apply to the
/// copied content only.
#[test]
fn copy_destination_and_parents_are_buildkits() {
    let e = Env::with_busybox();
    let df = "FROM busybox\nRUN mkdir -m 0700 /exist && chown 5:6 /exist\n\
COPY --chown=1000:50 a.txt /new/deep/a\nCOPY --chown=1000:50 --chmod=600 d /exist/\n\
COPY d /fresh/\nCOPY --chown=1000:50 d /fresh2/sub/\nCOPY --chown=4242 a.txt /n42\n";
    let ctx = e.context(
        "ctx",
        &[("Dockerfile", df), ("a.txt", "a\n"), ("d/f", "f\n")],
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str, m: u32| {
        std::fs::set_permissions(ctx.join(p), std::fs::Permissions::from_mode(m)).unwrap()
    };
    mode("a.txt", 0o644);
    mode("d/f", 0o644);
    mode("d", 0o700);
    e.build(&ctx, &["-t", "cp"]);
    let root = e.umoci_unpack("cp:latest", "u");
    assert_eq!(meta(&root, "new"), (1000, 50, 0o755));
    assert_eq!(meta(&root, "new/deep"), (1000, 50, 0o755));
    assert_eq!(meta(&root, "new/deep/a"), (1000, 50, 0o644));
    assert_eq!(
        meta(&root, "exist"),
        (5, 6, 0o700),
        "an existing dest is kept"
    );
    assert_eq!(meta(&root, "exist/f"), (1000, 50, 0o600));
    assert_eq!(
        meta(&root, "fresh"),
        (0, 0, 0o755),
        "made 0755, not the source's 0700"
    );
    assert_eq!(meta(&root, "fresh/f"), (0, 0, 0o644));
    assert_eq!(meta(&root, "fresh2"), (1000, 50, 0o755));
    assert_eq!(meta(&root, "fresh2/sub"), (1000, 50, 0o755));
    assert_eq!(meta(&root, "fresh2/sub/f"), (1000, 50, 0o644));
    // a bare uid is uid:uid (BuildKit's readUser), not RUN's USER rule
    assert_eq!(meta(&root, "n42"), (4242, 4242, 0o644));
}

/// History as BuildKit writes it: one empty entry per ARG with the values used, RUN with
/// `|N K=V` for the ARGs in scope (ENV's value where ENV sets one) and the argv joined by
/// spaces (exec form too), `WORKDIR /` recorded, WORKDIR with the absolute path.
#[test]
fn history_is_buildkits() {
    let e = Env::with_busybox();
    let df =
        "FROM busybox\nARG A=1 B\nARG C\nENV B=envb\nRUN echo hi > /h\nRUN [\"touch\", \"/x\"]\n\
WORKDIR /\nWORKDIR srv\n";
    let ctx = e.context("ctx", &[("Dockerfile", df)]);
    e.build(&ctx, &["-t", "hist", "--build-arg", "C=c"]);
    let i = e.inspect("hist");
    let hist = i["History"].as_array().unwrap();
    let n = e.inspect("busybox")["History"]
        .as_array()
        .map_or(0, |h| h.len());
    let got: Vec<(&str, bool)> = hist[n..]
        .iter()
        .map(|h| (h["created_by"].as_str().unwrap(), h["empty_layer"] == true))
        .filter(|(c, _)| !c.starts_with("ENV"))
        .collect();
    assert_eq!(
        got,
        [
            ("ARG A=1 B", true),
            ("ARG C=c", true),
            (
                "RUN |3 A=1 B=envb C=c /bin/sh -c echo hi > /h # buildkit",
                false
            ),
            ("RUN |3 A=1 B=envb C=c touch /x # buildkit", false),
            ("WORKDIR /", true),
            ("WORKDIR /srv", false),
        ]
    );
}
