//! Bad input and faults: one clear error line, non-zero exit, nothing left behind.
mod common;
use common::*;
use serde_json::json;

fn assert_clean(b: &Bundle) {
    assert!(b.state().is_none(), "state left behind");
    assert!(!b.root.join(&b.id).exists(), "state dir left behind");
    assert!(
        cgroup_dirs(&b.id).is_empty(),
        "cgroups left behind: {:?}",
        cgroup_dirs(&b.id)
    );
}

fn err_of(o: &std::process::Output) -> String {
    assert!(!o.status.success(), "expected failure");
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

#[test]
fn malformed_config_names_file_and_field() {
    let b = bundle(&["true"]);
    b.write();
    std::fs::write(
        b.path().join("config.json"),
        "{\"ociVersion\": \"1.0.2\", \"process\": {\"args\": [42]",
    )
    .unwrap();
    let o = std::process::Command::new(runtime())
        .arg("--root")
        .arg(&b.root)
        .args(["create", "--bundle"])
        .arg(b.path())
        .arg(&b.id)
        .output()
        .unwrap();
    let e = err_of(&o);
    if is_berth() {
        assert!(
            e.contains("config.json") && e.contains("process.args[0]"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "error must be one line: {e}");
    }
    assert_clean(&b);
}

#[test]
fn missing_rootfs_and_missing_bundle() {
    let b = bundle(&["true"]);
    std::fs::remove_dir_all(b.rootfs()).unwrap();
    let e = err_of(&b.create());
    if is_berth() {
        assert!(e.contains("root.path"), "{e}");
    }
    assert_clean(&b);
    let o = b.rt(&["create", "--bundle", "/nonexistent/bundle", &b.id]);
    let e = err_of(&o);
    if is_berth() {
        assert!(e.contains("/nonexistent/bundle"), "{e}");
    }
    assert_clean(&b);
}

#[test]
fn missing_executable_fails_create_and_cleans_up() {
    let b = bundle(&["/bin/not-there", "x"]);
    let e = err_of(&b.create());
    if is_berth() {
        assert!(
            e.contains("process.args[0]") && e.contains("/bin/not-there"),
            "{e}"
        );
    }
    assert_clean(&b);
    let me = std::process::id().to_string();
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
                && e.file_name().to_string_lossy() != me
        })
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&b.id))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

#[test]
fn unknown_id_for_every_operation() {
    let b = bundle(&["true"]);
    for args in [
        vec!["state", "nope-x"],
        vec!["start", "nope-x"],
        vec!["kill", "nope-x", "KILL"],
        vec!["delete", "nope-x"],
        vec!["pause", "nope-x"],
        vec!["exec", "nope-x", "true"],
    ] {
        let e = err_of(&b.rt(&args));
        if is_berth() {
            assert!(
                e.contains("nope-x") && e.contains("does not exist"),
                "{args:?}: {e}"
            );
        }
    }
}

#[test]
fn invalid_id_is_refused() {
    let b = bundle(&["true"]);
    let e = err_of(&b.rt(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "../escape",
    ]));
    if is_berth() {
        assert!(e.contains("invalid container id"), "{e}");
    }
    assert!(!b.root.parent().unwrap().join("escape").exists());
}

#[test]
fn invalid_values_name_the_field() {
    type Tweak = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Tweak)> = vec![
        (
            "process.args",
            Box::new(|c| c["process"]["args"] = json!([])),
        ),
        (
            "process.cwd",
            Box::new(|c| c["process"]["cwd"] = json!("relative")),
        ),
        ("ociVersion", Box::new(|c| c["ociVersion"] = json!("9.0.0"))),
        (
            "linux.uidMappings",
            Box::new(|c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "user"}))
            }),
        ),
        (
            "hooks.prestart[0].path",
            Box::new(|c| c["hooks"] = json!({"prestart": [{"path": "relative/hook"}]})),
        ),
        (
            "process.rlimits[0]",
            Box::new(|c| {
                c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}])
            }),
        ),
        (
            "linux.sysctl.kernel.panic",
            Box::new(|c| c["linux"]["sysctl"] = json!({"kernel.panic": "1"})),
        ),
    ];
    for (field, f) in cases {
        let mut b = bundle(&["true"]);
        f(&mut b.config);
        let o = b.create();
        if !is_berth() && field == "ociVersion" {
            continue; // runc 1.1 does not check the spec version
        }
        assert!(!o.status.success(), "{field}: accepted");
        let e = err_of(&o);
        if is_berth() {
            assert!(e.contains(field), "{field}: {e}");
        }
        assert_clean(&b);
    }
}

#[test]
fn unknown_capability_is_a_warning_not_an_error() {
    let mut b = bundle(&["grep", "CapEff", "/proc/self/status"]);
    for set in ["effective", "bounding", "permitted"] {
        b.config["process"]["capabilities"][set] = json!(["CAP_KILL", "CAP_NOT_A_CAP"]);
    }
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0000000000000020"), "{out}");
    if is_berth() {
        assert!(err.contains("CAP_NOT_A_CAP"), "no warning: {err}");
    }
}

#[test]
fn errors_are_logged_as_json_for_the_shim() {
    let b = bundle(&["true"]);
    let log = b.path().join("log.json");
    let o = b.rt(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "nope-y",
    ]);
    assert!(!o.status.success());
    let last = std::fs::read_to_string(&log).unwrap();
    let v: serde_json::Value = serde_json::from_str(last.lines().last().unwrap()).unwrap();
    assert_eq!(v["level"], "error");
    if is_berth() {
        assert!(v["msg"].as_str().unwrap().contains("nope-y"));
    }
    assert!(v["time"].as_str().is_some());
}

#[test]
fn systemd_cgroup_without_systemd_is_a_clear_error() {
    if !is_berth() || std::path::Path::new("/run/systemd/system").exists() {
        return;
    }
    let b = bundle(&["true"]);
    let e = err_of(&b.rt(&["--systemd-cgroup", "state", "x"]));
    assert!(e.contains("systemd"), "{e}");
    // run with a slice:prefix:name path: one line saying why, no state, no cgroup.
    b.write();
    let cfg = b.path().join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    v["linux"]["cgroupsPath"] = json!(format!("system.slice:berth:{}", b.id));
    std::fs::write(&cfg, v.to_string()).unwrap();
    let o = b.rt(&[
        "--systemd-cgroup",
        "run",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]);
    let e = err_of(&o);
    assert_eq!(e.lines().count(), 1, "error must be one line: {e}");
    assert!(e.contains("/run/systemd/system"), "{e}");
    assert_clean(&b);
}

#[test]
fn spec_and_features_are_valid_json() {
    let b = bundle(&["true"]);
    let dir = b.path().join("specdir");
    std::fs::create_dir_all(&dir).unwrap();
    b.ok(&["spec", "--bundle", dir.to_str().unwrap()]);
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert!(spec["ociVersion"].as_str().unwrap().starts_with("1."));
    assert!(
        !b.rt(&["spec", "--bundle", dir.to_str().unwrap()])
            .status
            .success(),
        "spec must not overwrite"
    );
    if is_berth() {
        let f: serde_json::Value = serde_json::from_str(&b.ok(&["features"])).unwrap();
        assert!(f["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!("time")));
        // Both systemd drivers are built in: PID 1's, and the user's (rootless).
        let cg = &f["linux"]["cgroup"];
        assert_eq!(
            (&cg["systemd"], &cg["systemdUser"]),
            (&json!(true), &json!(true))
        );
        let r = b.path().join("rl");
        std::fs::create_dir_all(&r).unwrap();
        b.ok(&["spec", "--rootless", "--bundle", r.to_str().unwrap()]);
    }
}

/// A caller that closed its end of the stderr pipe: init's error after Ready (here a failing
/// startContainer hook) and the CLI's own error line meet EPIPE. eprintln! panicked there,
/// and with panic=abort the init died in abort() (a general protection fault in the kernel
/// log) and `run` by SIGABRT. Both must just exit 1, as runc does (measured: runc 1.1.5 1).
#[test]
fn errors_on_a_closed_stderr_pipe_exit_1_without_aborting() {
    let mut b = bundle(&["true"]);
    b.config["hooks"] = json!({"startContainer": [{"path": "/bin/false"}]});
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r);
    let st = b
        .cmd(&["run", "--bundle", b.path().to_str().unwrap(), &b.id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(w))
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(1), "{st}");
}

/// The keys of every JSON object in `s` at nesting depth `depth`, in order of appearance.
fn keys_at(s: &str, depth: usize) -> Vec<String> {
    let v: Vec<char> = s.chars().collect();
    let (mut d, mut i, mut out) = (0usize, 0usize, Vec::new());
    while i < v.len() {
        match v[i] {
            '{' | '[' => d += 1,
            '}' | ']' => d -= 1,
            '"' => {
                let start = i + 1;
                i += 1;
                while v[i] != '"' {
                    i += if v[i] == '\\' { 2 } else { 1 };
                }
                let rest: String = v[i + 1..].iter().collect();
                if d == depth && rest.trim_start().starts_with(':') {
                    out.push(v[start..i].iter().collect());
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Output and logs that tools parse, as runc 1.1.5's: `state`/`list --format json` in runc's
/// containerState field order, `events` as type, id, data; `--log FILE` exists even when
/// nothing is logged; `--debug` writes debug lines; a fatal error says "error" on stderr.
#[test]
fn output_and_logs_follow_runcs_form() {
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    let want = [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ];
    assert_eq!(keys_at(&b.ok(&["state", &b.id]), 1), want);
    assert_eq!(keys_at(&b.ok(&["list", "--format", "json"]), 2), want);
    let ev = b.ok(&["events", "--stats", &b.id]);
    assert_eq!(keys_at(&ev, 1), ["type", "id", "data"], "{ev}");
    let log = b.path().join("rt22-empty.log");
    b.ok(&["--log", log.to_str().unwrap(), "list"]);
    assert!(
        log.exists(),
        "--log file not created when nothing was logged"
    );
    let o = b.rt(&["state", "rt22-nope"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("error"), "{err}");
    if is_berth() {
        // runc 1.1.5 logs at debug level from its init only (create/run/exec).
        let o = b.rt(&["--debug", "list"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("level=debug"), "no debug line: {err}");
    }
}
