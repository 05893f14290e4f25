//! Build progress: `--progress plain` prints BuildKit's plain lines (unchanged by the live
//! view), `--progress tty` (and `auto` on a terminal) redraws a live view and ends with
//! BuildKit's summary line; run in a pty made by script(1).

mod common;
use common::*;
use std::process::Command;

const DF: &str = "FROM busybox\nRUN echo hello\nCOPY a.txt /a.txt\n";

/// Timings → N, digests → H.
fn normalise(s: &str) -> String {
    let num = regex::Regex::new(r"\d+\.\d+").unwrap();
    let hex = regex::Regex::new(r"[0-9a-f]{64}").unwrap();
    hex.replace_all(&num.replace_all(s, "N"), "H").to_string()
}

#[test]
fn plain_progress_lines() {
    let e = Env::with_busybox();
    let ctx = e.context("ctx", &[("Dockerfile", DF), ("a.txt", "a\n")]);
    let (_, err) = e.build(&ctx, &["--progress", "plain", "-t", "p"]);
    let want = "#1 [1/3] FROM busybox\n#1 DONE Ns\n#2 [2/3] RUN echo hello\n#2 N hello\n\
#2 DONE Ns\n#3 [3/3] COPY a.txt /a.txt\n#3 DONE Ns\n#4 exporting to image\n\
#4 writing image sha256:H done\n#4 naming to p:latest done\n#4 DONE Ns\n";
    assert_eq!(normalise(&err), want, "{err}");
    // auto, not on a terminal: the same plain lines (cached now).
    let (_, err) = e.build(&ctx, &["-t", "p"]);
    assert!(!err.contains('\x1b'), "{err}");
    assert!(err.contains("#2 CACHED\n"), "{err}");
}

#[test]
fn tty_progress_in_a_pty() {
    let e = Env::with_busybox();
    let ctx = e.context("ctx", &[("Dockerfile", DF), ("a.txt", "a\n")]);
    for mode in ["tty", "auto"] {
        let cmd = format!(
            "stty cols 200; {} --store {} build --no-cache --progress {mode} -t t {} >/dev/null",
            bin(),
            e.store().display(),
            ctx.display()
        );
        let o = Command::new("script")
            .args(["-qefc", &cmd, "/dev/null"])
            .env("BERTH_RUNTIME", step_runtime())
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).replace("\r\n", "\n");
        assert!(o.status.success(), "{mode}: {out}");
        assert!(
            out.contains("\x1b[J"),
            "{mode}: a live view redraws: {out:?}"
        );
        assert!(!out.contains("#2 DONE"), "{mode}: no plain lines: {out:?}");
        let n = normalise(&out);
        for l in [
            "=> [1/3] FROM busybox  Ns\n",
            "=> [2/3] RUN echo hello  Ns\n",
            "=> [3/3] COPY a.txt /a.txt  Ns\n",
            "=> exporting to image  Ns\n=> => writing image sha256:H done\n=> => naming to t:latest done\n",
            "[+] Building Ns (4/4) FINISHED\n",
        ] {
            assert!(n.contains(l), "{mode}: missing {l:?} in {n:?}");
        }
        assert!(n.trim_end().ends_with("FINISHED"), "{mode}: {n:?}");
    }
}
