//! `binary://` log URIs under a real containerd: the logging binary gets the container's
//! stdout and stderr on fds 3 and 4, says it is ready on fd 5, and learns who it logs for from
//! CONTAINER_ID and CONTAINER_NAMESPACE.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{Containerd, IMAGE, NS, RUNTIME};

const LOGGER: &str = r#"#!/bin/sh
# binary:///.../logger.sh?dir=DIR runs: logger.sh dir DIR
d="$2"
echo "$1 $CONTAINER_NAMESPACE $CONTAINER_ID $(env | grep -vc '^CONTAINER_\|^PWD=\|^SHLVL=\|^_=')" > "$d/who"
printf r >&5
exec 5>&-
cat <&3 > "$d/out" &
cat <&4 > "$d/err" &
wait
touch "$d/done"
"#;

#[test]
fn binary_log_uri_gets_stdout_and_stderr() {
    let c = Containerd::start("logbin");
    let logger = c.dir.join("logger.sh");
    fs::write(&logger, LOGGER).unwrap();
    fs::set_permissions(&logger, fs::Permissions::from_mode(0o755)).unwrap();
    let logs = c.dir.join("logs");
    fs::create_dir(&logs).unwrap();
    let uri = format!("binary://{}?dir={}", logger.display(), logs.display());
    let out = c.ctr(&[
        "run",
        "--rm",
        "--log-uri",
        &uri,
        "--runtime",
        RUNTIME,
        IMAGE,
        "b1",
        "sh",
        "-c",
        "echo to-out; echo to-err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !logs.join("done").exists() {
        assert!(Instant::now() < deadline, "the logger never saw EOF");
        std::thread::sleep(Duration::from_millis(20));
    }
    let read = |f: &str| fs::read_to_string(logs.join(f)).unwrap();
    assert_eq!(read("out"), "to-out\n");
    assert_eq!(read("err"), "to-err\n");
    // arguments from the query, and an environment of just the two variables
    assert_eq!(read("who"), format!("dir {NS} b1 0\n"));

    // a logger that cannot run: the task is not created, and the reason reaches ctr's user
    let out = c.ctr(&[
        "run",
        "--rm",
        "--log-uri",
        "binary:///nonexistent/logger",
        "--runtime",
        RUNTIME,
        IMAGE,
        "b2",
        "true",
    ]);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("logging binary /nonexistent/logger"), "{err}");
    assert!(c.ok(&["task", "ls", "-q"]).trim().is_empty());
    let _ = c.ctr(&["container", "rm", "b2"]);
}

/// berth's own error (a program that does not exist) reaches ctr's user through berth's
/// --log, never the container's stderr: its log stays empty, as with runc's shim.
#[test]
fn berth_errors_stay_out_of_the_container_log() {
    let c = Containerd::start("logerr");
    let logger = c.dir.join("logger.sh");
    fs::write(&logger, LOGGER).unwrap();
    fs::set_permissions(&logger, fs::Permissions::from_mode(0o755)).unwrap();
    let logs = c.dir.join("logs");
    fs::create_dir(&logs).unwrap();
    let uri = format!("binary://{}?dir={}", logger.display(), logs.display());
    let out = c.ctr(&[
        "run",
        "--rm",
        "--log-uri",
        &uri,
        "--runtime",
        RUNTIME,
        IMAGE,
        "e1",
        "/nonexistent",
    ]);
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent"), "the reason is lost: {err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !logs.join("done").exists() {
        assert!(Instant::now() < deadline, "the logger never saw EOF");
        std::thread::sleep(Duration::from_millis(20));
    }
    let read = |f: &str| fs::read_to_string(logs.join(f)).unwrap();
    assert_eq!(read("err"), "", "berth wrote into the container's stderr");
    assert_eq!(read("out"), "");
    let _ = c.ctr(&["container", "rm", "e1"]);
}
