//! exec: joins the running container's namespaces and cgroup, applies the process spec.
mod common;
use common::*;
use serde_json::json;

fn running(args: &[&str]) -> Bundle {
    let b = bundle(args);
    b.create_ok();
    b.ok(&["start", &b.id]);
    b
}

#[test]
fn exec_joins_namespaces_and_cgroup() {
    let b = running(&["sleep", "100"]);
    let pid = b.pid();
    let out = b.ok(&["exec", &b.id, "sh", "-c", "for n in pid net ipc uts mnt; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup | grep memory; hostname"]);
    for (i, n) in ["pid", "net", "ipc", "uts", "mnt"].iter().enumerate() {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap();
        assert_eq!(out.lines().nth(i).unwrap(), theirs.to_str().unwrap(), "{n}");
    }
    // The exec'd process sits in the init's cgroups (compared from the host's view).
    let pf = b.path().join("e.pid");
    let o = b.detached(&[
        "exec",
        "-d",
        "--pid-file",
        pf.to_str().unwrap(),
        &b.id,
        "sleep",
        "30",
    ]);
    assert!(o.status.success());
    let epid: i32 = std::fs::read_to_string(&pf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let cg = |p: i32| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(cg(epid), cg(pid));
}

#[test]
fn exec_returns_exit_code_and_sees_container_files() {
    let b = running(&["sleep", "100"]);
    std::fs::write(b.rootfs().join("marker"), "in the rootfs").unwrap();
    let o = b.rt(&["exec", &b.id, "sh", "-c", "cat /marker; exit 5"]);
    assert_eq!(o.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "in the rootfs");
}

#[test]
fn exec_flags_env_cwd_user_cap() {
    let b = running(&["sleep", "100"]);
    let out = b.ok(&[
        "exec",
        "--env",
        "A=1",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1001",
        &b.id,
        "sh",
        "-c",
        "echo $A; pwd; id -u; id -g",
    ]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["1", "/tmp", "1000", "1001"]
    );
    let out = b.ok(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        &b.id,
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    let eff = u64::from_str_radix(out.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert!(eff & (1 << 21) != 0, "CAP_SYS_ADMIN not added: {out}");
}

#[test]
fn exec_process_file_and_detach_with_pid_file() {
    let b = running(&["sleep", "100"]);
    let pf = b.path().join("exec.pid");
    let proc_json = b.path().join("process.json");
    std::fs::write(&proc_json, json!({"args": ["sleep", "50"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]}).to_string()).unwrap();
    let o = b.detached(&[
        "exec",
        "--process",
        proc_json.to_str().unwrap(),
        "--detach",
        "--pid-file",
        pf.to_str().unwrap(),
        &b.id,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pid: i32 = std::fs::read_to_string(&pf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmd.starts_with("sleep"), "{cmd}");
    let pids: Vec<i32> = serde_json::from_str(&b.ok(&["ps", "--format", "json", &b.id])).unwrap();
    assert!(pids.contains(&pid));
}

#[test]
fn exec_in_stopped_container_and_missing_program_fail() {
    let b = running(&["sleep", "100"]);
    let o = b.rt(&["exec", &b.id, "/no/such/program"]);
    assert!(!o.status.success());
    if is_berth() {
        assert!(String::from_utf8_lossy(&o.stderr).contains("/no/such/program"));
    }
    b.ok(&["kill", &b.id, "KILL"]);
    b.wait_status("stopped");
    assert!(!b.rt(&["exec", &b.id, "true"]).status.success());
}

#[test]
fn exec_into_user_namespace_container() {
    let mut b = bundle(&["sleep", "100"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    std::process::Command::new("chown")
        .args(["-R", "200000:200000"])
        .arg(b.rootfs())
        .status()
        .unwrap();
    b.create_ok();
    b.ok(&["start", &b.id]);
    let out = b.ok(&["exec", &b.id, "sh", "-c", "id -u; cat /proc/self/uid_map"]);
    assert!(out.starts_with("0\n") && out.contains("200000"), "{out}");
}

/// RUNTIME ARGS inside `script` (a real terminal of 22x77 rows/cols), "hello" typed after 300 ms.
fn in_terminal(b: &Bundle, args: &[&str]) -> (Option<i32>, String) {
    b.write();
    let cmd = format!(
        "stty cols 77 rows 22; {} --root {} {}",
        runtime(),
        b.root.display(),
        args.join(" ")
    );
    let mut c = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // A process that does not read may be gone already (EPIPE).
    let _ = std::io::Write::write_all(&mut stdin, b"hello\n");
    let o = c.wait_with_output().unwrap();
    drop(stdin);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn run_and_exec_with_a_terminal_and_no_console_socket_relay_the_pty() {
    let mut b = bundle(&["sh", "-c", "tty; stty size; read x; echo got=$x; exit 3"]);
    b.config["process"]["terminal"] = json!(true);
    let path = b.path().to_str().unwrap().to_string();
    let (code, out) = in_terminal(&b, &["run", "--bundle", &path, &b.id]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("/dev/pts/0"), "{out}");
    // runc copies the size while the process runs (racy); berth before it starts.
    if is_berth() {
        assert!(out.contains("22 77"), "window size not copied: {out}");
    }
    assert!(out.contains("got=hello"), "{out}");
    // exec -t into a running container, the same way.
    let mut b = bundle(&["sleep", "100"]);
    b.config["process"]["terminal"] = json!(false);
    b.create_ok();
    b.ok(&["start", &b.id]);
    let (code, out) = in_terminal(
        &b,
        &[
            "exec",
            "-t",
            &b.id,
            "sh",
            "-c",
            "'tty; stty size; read x; echo got=$x; exit 4'",
        ],
    );
    assert_eq!(code, Some(4), "{out}");
    if is_berth() {
        assert!(out.contains("22 77"), "window size not copied: {out}");
    }
    assert!(
        out.contains("/dev/pts/") && out.contains("got=hello"),
        "{out}"
    );
}

/// The terminal belongs to the process user and keeps devpts's tty group (`gid=5` in the
/// default spec) for foreground `run` and for `exec -t`, as runc's fixStdioPermissions
/// leaves it (runc 1.1.5 prints 1000:5 here; berth printed 0:5 before).
#[test]
fn the_terminal_is_owned_by_the_process_user_and_the_tty_group() {
    let mut b = bundle(&["sh", "-c", "stat -c owner=%u:%g $(tty)"]);
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 100});
    let path = b.path().to_str().unwrap().to_string();
    let (code, out) = in_terminal(&b, &["run", "--bundle", &path, &b.id]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("owner=1000:5"), "run: {out}");
    let mut b = bundle(&["sleep", "100"]);
    b.config["process"]["terminal"] = json!(false);
    b.create_ok();
    b.ok(&["start", &b.id]);
    let script = "'stat -c owner=%u:%g $(tty)'";
    let args = [
        "exec", "-t", "--user", "1000:100", &b.id, "sh", "-c", script,
    ];
    let (code, out) = in_terminal(&b, &args);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("owner=1000:5"), "exec -t: {out}");
}

/// exec's own failures exit 255 (missing container, missing binary, a pid file in a missing
/// directory), as runc 1.1.5's (measured), apart from the process exiting 1; `-p` with a
/// process that has no `user` runs it as 0:0, as runc does.
#[test]
fn exec_failures_exit_255_and_a_process_file_without_user_runs_as_root() {
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    let code = |args: &[&str]| b.rt(args).status.code();
    assert_eq!(code(&["exec", "rtfix-no-such-ctr", "true"]), Some(255));
    assert_eq!(code(&["exec", &b.id, "/nonexistent"]), Some(255));
    let pf = b.path().join("no/such/dir/pid");
    let pf = pf.to_str().unwrap();
    assert_eq!(code(&["exec", "--pid-file", pf, &b.id, "true"]), Some(255));
    assert_eq!(code(&["exec", &b.id, "sh", "-c", "exit 1"]), Some(1));
    let p = b.path().join("rtfix-process.json");
    std::fs::write(&p, r#"{"args": ["id"], "cwd": "/", "env": ["PATH=/bin"]}"#).unwrap();
    let out = b.ok(&["exec", "-p", p.to_str().unwrap(), &b.id]);
    assert!(out.starts_with("uid=0") && out.contains(" gid=0"), "{out}");
}
