//! Parser tests: every instruction, forms, flags, errors with file:line and text.

use super::*;

fn one(src: &str) -> Kind {
    let df = parse(&format!("FROM scratch\n{src}\n"), "Dockerfile").unwrap();
    df.stages[0].instructions[0].kind.clone()
}

fn err(src: &str) -> ParseError {
    parse(src, "Dockerfile").unwrap_err()
}

#[test]
fn from_forms_and_meta_args() {
    let df = parse(
        "ARG A=1 B\nARG C\nFROM busybox:$A AS Build\nFROM --platform=linux/amd64 build\nRUN x\n",
        "D",
    )
    .unwrap();
    assert_eq!(df.meta_args.len(), 2);
    assert_eq!(df.stages.len(), 2);
    assert_eq!(df.stages[0].name.as_deref(), Some("build"));
    assert_eq!(df.stages[0].base, "busybox:$A");
    assert_eq!(df.stages[1].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(df.stages[1].from_line, 4);
    assert_eq!(df.stages[1].instructions[0].line, 5);
    assert!(err("FROM a AS\n").msg.contains("FROM requires"));
    assert!(err("FROM a b c\n").msg.contains("FROM requires"));
    assert!(err("FROM a AS 1x\n").msg.contains("invalid stage name"));
}

#[test]
fn only_arg_before_from_and_from_required() {
    let e = err("ENV A=b\nFROM x\n");
    assert_eq!((e.line, e.text.as_str()), (1, "ENV A=b"));
    assert!(e.msg.contains("no build stage"));
    assert!(err("# just a comment\n").msg.contains("no FROM"));
    assert!(err("ARG X\n").msg.contains("no FROM"));
}

#[test]
fn run_cmd_entrypoint_forms() {
    assert_eq!(
        one("RUN echo hi"),
        Kind::Run(Command::Shell("echo hi".into()), RunSpec::default())
    );
    assert_eq!(
        one("CMD [\"a\", \"b c\"]"),
        Kind::Cmd(Command::Exec(vec!["a".into(), "b c".into()]))
    );
    // Not valid JSON: shell form, as BuildKit does.
    assert_eq!(
        one("CMD [not json]"),
        Kind::Cmd(Command::Shell("[not json]".into()))
    );
    assert_eq!(
        one("entrypoint [\"/bin/sh\"]"),
        Kind::Entrypoint(Command::Exec(vec!["/bin/sh".into()]))
    );
    match one("RUN --network=none --mount=type=cache,target=/c --mount=type=bind,target=/b make") {
        Kind::Run(Command::Shell(s), spec) => {
            assert_eq!(s, "make");
            assert_eq!(spec.network.as_deref(), Some("none"));
            assert_eq!(spec.mounts.len(), 2);
        }
        k => panic!("{k:?}"),
    }
    let e = err("FROM a\nRUN --network=bridge x\n");
    assert!(e.msg.contains("network"), "{e}");
    let e = err("FROM a\nRUN --bogus x\n");
    assert_eq!(
        e.to_string(),
        "Dockerfile:2: unknown flag: --bogus: RUN --bogus x"
    );
    assert!(err("FROM a\nRUN\n").msg.contains("RUN requires"));
}

#[test]
fn env_label_forms() {
    assert_eq!(
        one("ENV A=1 B=\"two words\" C=three\\ words"),
        Kind::Env(vec![
            ("A".into(), "1".into()),
            ("B".into(), "\"two words\"".into()),
            ("C".into(), "three\\ words".into())
        ])
    );
    assert_eq!(
        one("ENV LEGACY value with spaces"),
        Kind::Env(vec![("LEGACY".into(), "value with spaces".into())])
    );
    assert_eq!(
        one("LABEL \"com.x\"=y"),
        Kind::Label(vec![("\"com.x\"".into(), "y".into())])
    );
    assert!(err("FROM a\nENV A=1 B\n").msg.contains("can't find ="));
    assert!(err("FROM a\nENV A\n").msg.contains("two arguments"));
    assert!(err("FROM a\nLABEL\n").msg.contains("at least one"));
}

#[test]
fn copy_add_flags_and_forms() {
    match one("COPY --from=build --chown=1:2 --chmod=755 --link a b* /dst/") {
        Kind::Copy(c) => {
            assert_eq!(c.srcs, vec!["a", "b*"]);
            assert_eq!(c.dest, "/dst/");
            assert_eq!(c.from.as_deref(), Some("build"));
            assert_eq!(c.chown.as_deref(), Some("1:2"));
            assert_eq!(c.chmod.as_deref(), Some("755"));
            assert!(c.link && !c.json);
        }
        k => panic!("{k:?}"),
    }
    match one("ADD [\"a b\", \"/c d\"]") {
        Kind::Add(c) => assert_eq!(
            (c.srcs, c.dest.as_str(), c.json),
            (vec!["a b".to_string()], "/c d", true)
        ),
        k => panic!("{k:?}"),
    }
    match one("ADD --checksum=sha256:abc https://x/y /y") {
        Kind::Add(c) => assert_eq!(c.checksum.as_deref(), Some("sha256:abc")),
        k => panic!("{k:?}"),
    }
    assert!(err("FROM a\nCOPY onlyone\n").msg.contains("at least two"));
    assert!(err("FROM a\nADD --from=x a b\n")
        .msg
        .contains("unknown flag: --from"));
}

#[test]
fn heredocs_in_run_and_copy() {
    let df = parse("FROM a\nRUN <<EOF\nset -e\necho $X\nEOF\nCOPY <<A <<B /d/\na\nA\nb\nB\nRUN cat <<-'Q'\n\tq\n\tQ\nENV X=1\n", "D").unwrap();
    let ins = &df.stages[0].instructions;
    assert_eq!(ins.len(), 4);
    match &ins[0].kind {
        Kind::Run(Command::Shell(s), spec) => {
            assert_eq!(s, "<<EOF");
            assert_eq!(spec.heredocs[0].content, "set -e\necho $X\n");
        }
        k => panic!("{k:?}"),
    }
    match &ins[1].kind {
        Kind::Copy(c) => {
            assert_eq!(c.heredocs.len(), 2);
            assert_eq!(c.heredocs[1].content, "b\n");
            assert_eq!(c.dest, "/d/");
        }
        k => panic!("{k:?}"),
    }
    match &ins[2].kind {
        Kind::Run(_, spec) => assert_eq!(
            (spec.heredocs[0].content.as_str(), spec.heredocs[0].expand),
            ("q\n", false)
        ),
        k => panic!("{k:?}"),
    }
    assert_eq!(ins[3].line, 14);
}

#[test]
fn config_instructions() {
    assert_eq!(
        one("EXPOSE 80/tcp 443"),
        Kind::Expose(vec!["80/tcp".into(), "443".into()])
    );
    assert_eq!(
        one("VOLUME [\"/a\", \"/b\"]"),
        Kind::Volume(vec!["/a".into(), "/b".into()])
    );
    assert_eq!(
        one("VOLUME /a /b"),
        Kind::Volume(vec!["/a".into(), "/b".into()])
    );
    assert_eq!(one("USER app:grp"), Kind::User("app:grp".into()));
    assert_eq!(one("WORKDIR /a b"), Kind::Workdir("/a b".into()));
    assert_eq!(
        one("ARG A B=2"),
        Kind::Arg(vec![("A".into(), None), ("B".into(), Some("2".into()))])
    );
    assert_eq!(
        one("STOPSIGNAL SIGKILL"),
        Kind::Stopsignal("SIGKILL".into())
    );
    assert_eq!(
        one("SHELL [\"/bin/bash\", \"-c\"]"),
        Kind::Shell(vec!["/bin/bash".into(), "-c".into()])
    );
    assert_eq!(one("MAINTAINER me"), Kind::Maintainer("me".into()));
    assert_eq!(one("ONBUILD RUN make"), Kind::Onbuild("RUN make".into()));
    match one("HEALTHCHECK --interval=5s --retries=2 CMD curl -f localhost") {
        Kind::Healthcheck(h) => {
            assert_eq!(h.cmd, Some(Command::Shell("curl -f localhost".into())));
            assert_eq!(
                (h.interval.as_deref(), h.retries.as_deref()),
                (Some("5s"), Some("2"))
            );
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(
        one("HEALTHCHECK NONE"),
        Kind::Healthcheck(HealthSpec::default())
    );
    assert!(err("FROM a\nSHELL /bin/sh\n").msg.contains("JSON"));
    assert!(err("FROM a\nONBUILD ONBUILD RUN x\n")
        .msg
        .contains("chaining"));
    assert!(err("FROM a\nONBUILD FROM x\n")
        .msg
        .contains("isn't allowed"));
    assert!(err("FROM a\nONBUILD BOGUS x\n")
        .msg
        .contains("unknown instruction"));
    assert!(err("FROM a\nHEALTHCHECK\n").msg.contains("NONE or CMD"));
    assert!(err("FROM a\nWORKDIR\n").msg.contains("exactly one"));
    assert!(err("FROM a\nARG 1-x\n").msg.contains("invalid ARG"));
    assert!(err("FROM a\nEXPOSE\n").msg.contains("at least one"));
}

#[test]
fn errors_name_file_line_and_text() {
    let e = err("FROM a\n\n# comment\nRUN ok \\\n  continued\nBOGUS thing\n");
    assert_eq!(e.file, "Dockerfile");
    assert_eq!(e.line, 6);
    assert_eq!(e.text, "BOGUS thing");
    assert_eq!(
        e.to_string(),
        "Dockerfile:6: unknown instruction: BOGUS: BOGUS thing"
    );
}

#[test]
fn escape_directive_changes_continuation() {
    let df = parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo\n", "D").unwrap();
    assert_eq!(df.escape, '`');
    match &df.stages[0].instructions[0].kind {
        Kind::Run(Command::Shell(s), _) => assert_eq!(s, "dir c:\\   && echo"),
        k => panic!("{k:?}"),
    }
}

#[test]
fn keywords_are_case_insensitive() {
    let df = parse("from a as B\nrun x\nCopy a b\n", "D").unwrap();
    assert_eq!(df.stages[0].name.as_deref(), Some("b"));
    assert_eq!(df.stages[0].instructions.len(), 2);
}
