//! Hooks: every stage at its moment, in order, with the state on stdin; timeouts and
//! failures handled as the runtime-spec says.
mod common;
use common::*;
use serde_json::json;

/// A hook script that appends "STAGE <state json>" to LOG.
fn hook(_b: &Bundle, stage: &str, log: &std::path::Path) -> serde_json::Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read -r s; echo \"{stage} $s\" >> {}", log.display())]})
}

#[test]
fn all_stages_run_in_order_with_state_on_stdin() {
    let mut b = bundle(&["sleep", "100"]);
    let log = b.path().join("hooks.log");
    let mut hooks = serde_json::Map::new();
    for s in ["prestart", "createRuntime", "poststart", "poststop"] {
        hooks.insert(s.into(), json!([hook(&b, s, &log)]));
    }
    // createContainer runs before pivot_root with host paths; startContainer in the container.
    hooks.insert(
        "createContainer".into(),
        json!([hook(&b, "createContainer", &log)]),
    );
    hooks.insert("startContainer".into(), json!([{"path": "/bin/sh", "args": ["sh", "-c", "read -r s; echo startContainer > /startContainer.ran"]}]));
    b.config["hooks"] = serde_json::Value::Object(hooks);
    b.create_ok();
    let after_create = std::fs::read_to_string(&log).unwrap();
    let mut stages: Vec<&str> = after_create
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    if !is_berth() {
        // runc 1.1 runs poststart hooks at create, before start (fixed in runc 1.2).
        stages.retain(|s| *s != "poststart");
    }
    assert_eq!(stages, vec!["prestart", "createRuntime", "createContainer"]);
    let first: serde_json::Value = serde_json::from_str(
        after_create
            .lines()
            .next()
            .unwrap()
            .split_once(' ')
            .unwrap()
            .1,
    )
    .unwrap();
    assert_eq!(first["id"], json!(b.id));
    assert_eq!(first["pid"].as_i64().unwrap(), b.pid() as i64);
    assert_eq!(first["bundle"], json!(b.path()));
    b.ok(&["start", &b.id]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(
        b.rootfs().join("startContainer.ran").exists(),
        "startContainer hook did not run in the container"
    );
    assert!(std::fs::read_to_string(&log).unwrap().contains("poststart"));
    b.ok(&["delete", "--force", &b.id]);
    let all = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        all.lines().last().unwrap().split(' ').next().unwrap(),
        "poststop"
    );
}

#[test]
fn failing_prestart_hook_fails_create_and_leaves_nothing() {
    let mut b = bundle(&["sleep", "100"]);
    let log = b.path().join("hooks.log");
    b.config["hooks"] = json!({
        "prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo broken >&2; exit 3"]}],
        "poststop": [hook(&b, "poststop", &log)],
    });
    let o = b.create();
    assert!(!o.status.success());
    if is_berth() {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("prestart") && err.contains("exit status 3"),
            "{err}"
        );
        assert!(
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("poststop"),
            "poststop must run after a failed create hook"
        );
    }
    assert!(b.state().is_none());
    assert!(
        cgroup_dirs(&b.id).is_empty(),
        "cgroups left: {:?}",
        cgroup_dirs(&b.id)
    );
}

#[test]
fn hook_timeout_is_enforced() {
    let mut b = bundle(&["true"]);
    b.config["hooks"] =
        json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    let t = std::time::Instant::now();
    let o = b.create();
    assert!(!o.status.success());
    assert!(t.elapsed().as_secs() < 10, "hook ran past its timeout");
    if is_berth() {
        assert!(String::from_utf8_lossy(&o.stderr).contains("timed out"));
    }
    assert!(b.state().is_none());
}

#[test]
fn failing_poststart_only_warns() {
    if !is_berth() {
        return; // runc 1.1 runs poststart at create and fails create with it (fixed in runc 1.2)
    }
    let mut b = bundle(&["sleep", "100"]);
    b.config["hooks"] = json!({"poststart": [{"path": "/bin/false"}]});
    b.create_ok();
    let o = b.rt(&["start", &b.id]);
    assert!(
        o.status.success(),
        "a failing poststart hook must not fail start"
    );
    assert_eq!(b.status(), "running");
}

#[test]
fn hook_env_and_args_are_passed() {
    let mut b = bundle(&["true"]);
    let out = b.path().join("env.out");
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", format!("echo \"$0 $GREETING\" > {}", out.display()), "argzero"], "env": ["GREETING=ahoy"]}]});
    b.run_ok();
    assert_eq!(std::fs::read_to_string(out).unwrap().trim(), "argzero ahoy");
}

/// createContainer hooks run with the rootfs as their working directory, as runc 1.1.5 runs
/// them (measured: runc's hook printed BUNDLE/rootfs, berth's the bundle).
#[test]
fn create_container_hooks_run_in_the_rootfs() {
    let mut b = bundle(&["true"]);
    let out = b.path().join("rtfix-hook-cwd");
    let cmd = format!("pwd > {}", out.display());
    b.config["hooks"] =
        serde_json::json!({"createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", cmd]}]});
    b.run_ok();
    let cwd = std::fs::read_to_string(&out).unwrap();
    let want = std::fs::canonicalize(b.rootfs()).unwrap();
    assert_eq!(cwd.trim(), want.to_str().unwrap());
}

/// A startContainer hook without `env` gets the container process's environment (with the
/// HOME the process gets), as runc 1.1.5 (Go's exec with a nil Env inherits the init's,
/// which is process.env) and youki give it; berth gave it an empty one.
#[test]
fn start_container_hook_without_env_gets_the_process_environment() {
    let mut b = bundle(&["true"]);
    b.config["process"]["env"] = json!(["PATH=/bin", "RT22_PROBE=from-process"]);
    let hook = "env > /rt22-hook.env";
    b.config["hooks"] =
        json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", hook]}]});
    b.run_ok();
    let env = std::fs::read_to_string(b.rootfs().join("rt22-hook.env")).unwrap();
    let lines: Vec<&str> = env.lines().collect();
    for want in ["PATH=/bin", "RT22_PROBE=from-process", "HOME=/root"] {
        assert!(
            lines.contains(&want),
            "{want} missing from the hook's env: {env}"
        );
    }
}

/// startContainer hooks run under the container's seccomp filter, as runc 1.1.5 runs them
/// (InitSeccomp before the hooks): a profile that denies mkdir denies it to the hook too.
/// Berth ran them before loading the filter (noNewPrivileges: loaded last), so mkdir worked.
#[test]
fn start_container_hooks_run_under_the_seccomp_filter() {
    let mut b = bundle(&["true"]);
    b.config["process"]["noNewPrivileges"] = json!(true);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    });
    let hook = "mkdir /rt22-hook-dir 2>/dev/null; echo $? > /rt22-hook.rc";
    b.config["hooks"] =
        json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", hook]}]});
    b.run_ok();
    let rc = std::fs::read_to_string(b.rootfs().join("rt22-hook.rc")).unwrap();
    assert_ne!(rc.trim(), "0", "mkdir succeeded in the hook");
    assert!(!b.rootfs().join("rt22-hook-dir").exists());
}

/// A startContainer hook that exits without reading its stdin (the state) does not kill the
/// init with SIGPIPE: the hooks now run after the signal reset (under seccomp), so the init
/// catches SIGPIPE until execve. The state is padded by a long annotation past the pipe's
/// buffer, so the write meets a closed pipe every time; no PID namespace, whose init the
/// kernel would spare from a SIG_DFL signal anyway.
#[test]
fn start_container_hook_that_ignores_its_stdin_does_not_kill_the_init() {
    let mut b = bundle(&["sh", "-c", "echo started"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    b.config["annotations"] = json!({"rt22.pad": "x".repeat(256 * 1024)});
    b.config["hooks"] = json!({"startContainer": [{"path": "/bin/true"}]});
    assert_eq!(b.run_ok().trim(), "started");
}
