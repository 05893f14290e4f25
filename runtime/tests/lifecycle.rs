//! runtime-spec lifecycle and operations, against real containers.
mod common;
use common::*;
use serde_json::json;

#[test]
fn run_prints_and_returns_exit_code() {
    let b = bundle(&["sh", "-c", "echo hello from berth; exit 3"]);
    let (code, out, _) = b.run();
    assert_eq!(out.trim(), "hello from berth");
    assert_eq!(code, 3);
    assert_eq!(
        b.status(),
        "gone",
        "run removes the container after it exits"
    );
}

#[test]
fn create_start_kill_delete_with_states() {
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    let st = b.state().unwrap();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], json!(b.id));
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(st["bundle"], json!(b.path()));
    // The user's program has not run yet: the init still waits for start.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        !comm.starts_with("sleep"),
        "program ran before start: {comm}"
    );
    b.ok(&["start", &b.id]);
    b.wait_status("running");
    b.ok(&["kill", &b.id, "KILL"]);
    b.wait_status("stopped");
    assert_eq!(b.state().unwrap()["pid"], 0);
    b.ok(&["delete", &b.id]);
    assert!(
        b.state().is_none(),
        "state of a deleted container must fail"
    );
}

#[test]
fn duplicate_id_is_refused_and_first_container_survives() {
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    let o = b.create();
    assert!(!o.status.success());
    if is_berth() {
        assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));
    }
    assert_eq!(b.status(), "created");
}

#[test]
fn start_twice_and_delete_running_are_errors() {
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    assert!(
        !b.rt(&["start", &b.id]).status.success(),
        "start of a running container"
    );
    assert!(
        !b.rt(&["delete", &b.id]).status.success(),
        "delete of a running container without --force"
    );
    assert_eq!(b.status(), "running");
    b.ok(&["delete", "--force", &b.id]);
    assert_eq!(b.status(), "gone");
    assert!(
        cgroup_dirs(&b.id).is_empty(),
        "cgroups left: {:?}",
        cgroup_dirs(&b.id)
    );
}

#[test]
fn delete_of_created_container_fails_and_force_kills_its_init() {
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    let pid = b.pid();
    if !is_berth() {
        // runc 1.1.5 deletes a created container (kills its init), against runtime.md: the
        // conformance suite's delete.created.error, listed as runc's failure in known.rs.
        b.ok(&["delete", &b.id]);
        assert_eq!(b.status(), "gone");
        return;
    }
    // runtime.md: deleting a container that is not stopped MUST fail and change nothing.
    let o = b.rt(&["delete", &b.id]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "delete of a created container succeeded"
    );
    assert_eq!(
        err.trim(),
        format!(
            "berth: error: container {} is created: delete --force to remove",
            b.id
        )
    );
    assert_eq!(b.status(), "created");
    assert_eq!(b.pid(), pid);
    b.ok(&["start", &b.id]);
    assert_eq!(b.status(), "running");
    b.ok(&["delete", "--force", &b.id]);
    assert_eq!(b.status(), "gone");
    std::thread::sleep(std::time::Duration::from_millis(50));
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z"))
        .unwrap_or(false);
    assert!(!alive, "init {pid} survived delete --force");
    // --force of a created container, as containerd's shim removes a never-started task.
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    b.ok(&["delete", "--force", &b.id]);
    assert_eq!(b.status(), "gone");
}

#[test]
fn kill_kill_of_a_paused_container_thaws_it_so_it_dies() {
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    b.ok(&["pause", &b.id]);
    assert_eq!(b.status(), "paused");
    b.ok(&["kill", &b.id, "KILL"]);
    b.wait_status("stopped");
    b.ok(&["delete", &b.id]);
    assert_eq!(b.status(), "gone");
}

#[test]
fn kill_signal_by_name_and_number_and_all() {
    let b = bundle(&["sh", "-c", "trap 'exit 7' USR1; sleep 100 & wait"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    b.ok(&["kill", &b.id, "SIGUSR1"]);
    b.wait_status("stopped");
    let b2 = bundle(&["sh", "-c", "sleep 100 & sleep 100 & wait"]);
    b2.create_ok();
    b2.ok(&["start", &b2.id]);
    b2.ok(&["kill", "--all", &b2.id, "9"]);
    b2.wait_status("stopped");
    // On a stopped container `kill --all` succeeds (nothing left to signal), as runc 1.1.5's.
    b2.ok(&["kill", "--all", &b2.id, "KILL"]);
}

#[test]
fn kill_of_created_container_and_state_of_stopped() {
    let b = bundle(&["true"]);
    b.create_ok();
    b.ok(&["kill", &b.id, "KILL"]);
    b.wait_status("stopped");
    assert!(
        !b.rt(&["start", &b.id]).status.success(),
        "start of a stopped container"
    );
}

#[test]
fn list_shows_containers_as_table_and_json() {
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    let t = b.ok(&["list"]);
    assert!(
        t.contains("ID") && t.contains(&b.id) && t.contains("created"),
        "{t}"
    );
    let j: serde_json::Value = serde_json::from_str(&b.ok(&["list", "--format", "json"])).unwrap();
    assert!(j.as_array().unwrap().iter().any(|c| c["id"] == json!(b.id)));
    assert_eq!(b.ok(&["list", "-q"]).trim(), b.id);
}

#[test]
fn pause_and_resume_freeze_the_container() {
    let mut b = bundle(&[
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /out/n; sleep 0.01; done",
    ]);
    let out = b.share_out();
    b.create_ok();
    b.ok(&["start", &b.id]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    b.ok(&["pause", &b.id]);
    assert_eq!(b.status(), "paused");
    let n1 = std::fs::read_to_string(out.join("n")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        n1,
        std::fs::read_to_string(out.join("n")).unwrap(),
        "a paused container made progress"
    );
    b.ok(&["resume", &b.id]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_ne!(
        n1,
        std::fs::read_to_string(out.join("n")).unwrap(),
        "a resumed container made no progress"
    );
}

#[test]
fn ps_lists_container_pids() {
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    let pids: Vec<i32> = serde_json::from_str(&b.ok(&["ps", "--format", "json", &b.id])).unwrap();
    assert_eq!(pids, vec![b.pid()]);
    let table = b.ok(&["ps", &b.id]);
    assert!(table.contains("PID") && table.contains("sleep"), "{table}");
    // ps(1) options after the id pass through, as with runc: only the columns asked for.
    let cols = b.ok(&["ps", &b.id, "-o", "pid,comm"]);
    let lines: Vec<Vec<&str>> = cols
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["PID", "COMMAND"], "{cols}");
    assert!(
        lines.contains(&vec![&*b.pid().to_string(), "sleep"]),
        "{cols}"
    );
}

#[test]
fn pid_file_is_written() {
    let b = bundle(&["sleep", "100"]);
    let pf = b.path().join("pid");
    let o = b.detached(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "--pid-file",
        pf.to_str().unwrap(),
        &b.id,
    ]);
    assert!(o.status.success());
    assert_eq!(
        std::fs::read_to_string(&pf)
            .unwrap()
            .trim()
            .parse::<i32>()
            .unwrap(),
        b.pid()
    );
}

#[test]
fn detached_run_leaves_a_running_container() {
    let b = bundle(&["sleep", "100"]);
    let o = b.detached(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &b.id]);
    assert!(o.status.success());
    assert_eq!(b.status(), "running");
}

#[test]
fn delete_removes_cgroups_and_state() {
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    assert!(
        !cgroup_dirs(&b.id).is_empty(),
        "container cgroup was not created"
    );
    b.ok(&["delete", "--force", &b.id]);
    assert!(cgroup_dirs(&b.id).is_empty());
    assert!(!b.root.join(&b.id).exists());
}

#[test]
fn concurrent_creates_of_one_id_yield_exactly_one_container() {
    let b = bundle(&["sleep", "100"]);
    b.write();
    let procs: Vec<_> = (0..8)
        .map(|_| {
            std::process::Command::new(runtime())
                .arg("--root")
                .arg(&b.root)
                .args(["create", "--bundle", b.path().to_str().unwrap(), &b.id])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let ok = procs
        .into_iter()
        .map(|mut p| p.wait().unwrap().success())
        .filter(|s| *s)
        .count();
    if !is_berth() {
        // runc 1.1 races here: a losing concurrent create cleans up by id and removes the
        // winner's state, so 0, 1 or 2 "succeed" (all seen in CI). Nothing to hold it to, but
        // what it orphaned (an init no state knows, its cgroups) must not outlive the test.
        let _ = b.rt(&["delete", "--force", &b.id]);
        remove_orphaned(&b.id);
        return;
    }
    assert_eq!(ok, 1, "{ok} concurrent creates of one id succeeded");
    assert_eq!(b.status(), "created");
    // Concurrent operations on it serialise: several deletes, one container gone, no error left.
    let dels: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(runtime())
                .arg("--root")
                .arg(&b.root)
                .args(["delete", "--force", &b.id])
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut d in dels {
        d.wait().unwrap();
    }
    assert_eq!(b.status(), "gone");
    assert!(cgroup_dirs(&b.id).is_empty());
}

/// Kills whatever is left in cgroups named `id` and removes them, deepest first.
fn remove_orphaned(id: &str) {
    let mut dirs = cgroup_dirs(id);
    dirs.sort_by_key(|d| std::cmp::Reverse(d.as_os_str().len()));
    for _ in 0..100 {
        let mut busy = false;
        for d in &dirs {
            let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                busy = true;
                // SAFETY: plain kill(2) of a process in this test's container cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        if !busy {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for d in &dirs {
        let _ = std::fs::remove_dir(d);
    }
}

/// `create --pid-file` with a path relative to the caller's cwd (not the bundle's): the file
/// is complete when create returns (no temporary left beside it), names the init `state`
/// reports, and kill works on it at once (runtime-tools' pidfile check).
#[test]
fn relative_pid_file_is_written_before_create_returns() {
    let b = bundle(&["sleep", "100"]);
    let caller = b.path().join("caller");
    std::fs::create_dir_all(caller.join("run")).unwrap();
    let o = b
        .cmd(&[
            "create",
            "--bundle",
            b.path().to_str().unwrap(),
            "--pid-file",
            "run/init.pid",
            &b.id,
        ])
        .current_dir(&caller)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(o.success());
    let names: Vec<String> = std::fs::read_dir(caller.join("run"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    assert_eq!(names, vec!["init.pid"]);
    let pid: i32 = std::fs::read_to_string(caller.join("run/init.pid"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(pid, b.pid());
    assert_eq!(b.status(), "created");
    b.ok(&["kill", &b.id, "KILL"]);
    b.wait_status("stopped");
}

/// Issue 17.6, as runc 1.1: exec into a paused container is refused (exit 255, one line naming
/// the flag that overrides it); `kill --all` and `delete --force` of a paused container thaw it,
/// so its processes die and its cgroups go.
#[test]
fn a_paused_container_refuses_exec_and_dies_by_kill_all_or_delete_force() {
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    b.ok(&["pause", &b.id]);
    let o = b.rt(&["exec", &b.id, "true"]);
    assert_eq!(o.status.code(), Some(255), "exec into a paused container");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("paused") && err.trim().lines().count() == 1,
        "{err}"
    );
    let dirs = cgroup_dirs(&b.id);
    assert!(!dirs.is_empty());
    b.ok(&["kill", "--all", &b.id, "KILL"]);
    b.wait_status("stopped");
    b.ok(&["delete", &b.id]);
    assert!(dirs.iter().all(|d| !d.exists()), "cgroups left: {dirs:?}");

    let b2 = bundle(&["sh", "-c", "sleep 100 & sleep 100"]);
    b2.create_ok();
    b2.ok(&["start", &b2.id]);
    b2.ok(&["pause", &b2.id]);
    let dirs = cgroup_dirs(&b2.id);
    b2.ok(&["delete", "--force", &b2.id]);
    assert_eq!(b2.status(), "gone");
    assert!(dirs.iter().all(|d| !d.exists()), "cgroups left: {dirs:?}");
}

/// Issue 22.7, as runc 1.1: `exec --ignore-paused` into a paused container is accepted; the
/// process starts frozen, so exec returns only after `resume`, with the process's status.
#[test]
fn exec_ignore_paused_runs_once_the_container_resumes() {
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    b.ok(&["pause", &b.id]);
    let mut exec = b
        .cmd(&["exec", "--ignore-paused", &b.id, "sh", "-c", "exit 3"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(
        exec.try_wait().unwrap().is_none(),
        "exec finished inside a frozen cgroup"
    );
    b.ok(&["resume", &b.id]);
    let st = exec.wait().unwrap();
    assert_eq!(st.code(), Some(3));
    b.ok(&["delete", "--force", &b.id]);
}
