//! containerd-shim-berth-v2 under a real containerd 1.6, driven with `ctr` (as root).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{in_pty, stdout, Containerd, EventStream, IMAGE, RUNTIME};

#[test]
fn run_rm_prints_output_and_passes_exit_codes() {
    let c = Containerd::start("run");
    let out = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        IMAGE,
        "r1",
        "echo",
        "hi",
    ]);
    assert_eq!(stdout(&out), "hi\n", "{out:?}");
    assert_eq!(out.status.code(), Some(0));

    let out = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        IMAGE,
        "r2",
        "sh",
        "-c",
        "echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));

    // stdin reaches the container and its EOF ends it.
    let mut child = c
        .ctr_cmd(&["run", "--rm", "--runtime", RUNTIME, IMAGE, "r3", "wc", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"12345").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out).trim(), "5", "{out:?}");

    // init with a terminal and an environment
    let out = in_pty(&c, &format!("run --rm -t --env FOO=bar --runtime {RUNTIME} {IMAGE} r5 sh -c 'tty; echo $FOO; exit 9'"));
    let text = stdout(&out);
    assert!(
        text.contains("/dev/pts/0") && text.contains("bar"),
        "{text:?}"
    );
    assert_eq!(out.status.code(), Some(9));

    // berth's own error message reaches ctr's user.
    let out = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        IMAGE,
        "r4",
        "/nonexistent",
    ]);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("berth create failed") && err.contains("/nonexistent"),
        "{err}"
    );
    assert!(c.ok(&["task", "ls", "-q"]).trim().is_empty());
    let _ = c.ctr(&["container", "rm", "r4"]);
}

#[test]
fn detached_exec_ps_pause_metrics_kill_delete() {
    let c = Containerd::start("life");
    c.run_detached(
        "d1",
        &[],
        &[
            "sh",
            "-c",
            "trap 'exit 7' TERM; while true; do sleep 0.1; done",
        ],
    );
    assert_eq!(c.status("d1"), "RUNNING");
    let pid = c.pid("d1");
    assert!(pid > 0);

    // exec without a terminal: output and exit code
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "d1",
        "sh",
        "-c",
        "echo from-exec; exit 5",
    ]);
    assert_eq!(stdout(&out), "from-exec\n");
    assert_eq!(out.status.code(), Some(5));

    // the exec process spec's user and working directory (which must exist, as with runc:
    // exec does not create it, init does)
    let out = c.ok(&[
        "task",
        "exec",
        "--exec-id",
        "e3",
        "--user",
        "1234",
        "--cwd",
        "/bin",
        "d1",
        "sh",
        "-c",
        "id -u; pwd",
    ]);
    assert_eq!(out, "1234\n/bin\n");

    // exec with a terminal: a tty, resized to the client's size
    let out = in_pty(
        &c,
        "task exec -t --exec-id e2 d1 sh -c 'tty; sleep 0.5; stty size; exit 4'",
    );
    let text = stdout(&out);
    assert!(text.contains("/dev/pts/"), "{text:?}");
    assert!(text.contains("30 100"), "{text:?}");
    assert_eq!(out.status.code(), Some(4));

    // ps lists the init
    let ps = c.ok(&["task", "ps", "d1"]);
    assert!(
        ps.lines()
            .any(|l| l.split_whitespace().next() == Some(&pid.to_string())),
        "{ps}"
    );

    c.ok(&["task", "pause", "d1"]);
    assert_eq!(c.status("d1"), "PAUSED");
    c.ok(&["task", "resume", "d1"]);
    assert_eq!(c.status("d1"), "RUNNING");

    let m = c.ok(&["task", "metrics", "d1"]);
    assert!(
        m.contains("memory.usage_in_bytes") && m.contains("pids.current"),
        "{m}"
    );

    // TERM runs the trap; the exit status is the container's
    c.ok(&["task", "kill", "-s", "TERM", "d1"]);
    c.wait_status("d1", "STOPPED");
    let rm = c.ctr(&["task", "rm", "d1"]);
    assert!(rm.status.success(), "{rm:?}");
    assert!(
        String::from_utf8_lossy(&rm.stderr).contains("exit code 7"),
        "{rm:?}"
    );
    c.ok(&["container", "rm", "d1"]);

    // KILL of a process that ignores TERM
    c.run_detached(
        "d2",
        &[],
        &["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"],
    );
    c.ok(&["task", "kill", "-s", "TERM", "d2"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.status("d2"), "RUNNING");
    c.ok(&["task", "kill", "-s", "KILL", "d2"]);
    c.wait_status("d2", "STOPPED");
    c.ok(&["task", "rm", "d2"]);
    c.ok(&["container", "rm", "d2"]);
    // nothing left behind: no berth state, no rootfs mounts
    let left = std::fs::read_dir("/run/containerd/berth/berth-test")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with('d'))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(left, 0);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&format!("{}/state", c.dir.display())));
}

#[test]
fn events_stream_shows_the_task_lifecycle() {
    let c = Containerd::start("events");
    let ev = EventStream::start(&c);
    c.run_detached("v1", &[], &["sleep", "1000"]);
    c.ok(&["task", "exec", "--exec-id", "x1", "v1", "true"]);
    c.ok(&["task", "pause", "v1"]);
    c.ok(&["task", "resume", "v1"]);
    c.ok(&["task", "kill", "-s", "KILL", "v1"]);
    c.wait_status("v1", "STOPPED");
    c.ok(&["task", "rm", "v1"]);
    let topics = [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/paused",
        "/tasks/resumed",
        "/tasks/exit",
        "/tasks/delete",
    ];
    let text = ev.wait_for(&topics);
    let mut last = 0;
    // rfind: the exec's exit comes first, the init's last
    for t in topics {
        let pos = text
            .rfind(&format!(" {t} "))
            .unwrap_or_else(|| panic!("no {t} in:\n{text}"));
        if t != "/tasks/exec-started" && t != "/tasks/exec-added" {
            assert!(pos >= last, "{t} out of order in:\n{text}");
            last = pos;
        }
    }
    c.ok(&["container", "rm", "v1"]);
}

#[test]
fn shim_sigkill_lets_containerd_clean_up() {
    let c = Containerd::start("sigkill");
    let id = format!("k1-{}", std::process::id());
    c.run_detached(&id, &[], &["sleep", "1000"]);
    let pid = c.pid(&id);
    let bundle = c
        .dir
        .join("state/io.containerd.runtime.v2.task/berth-test")
        .join(&id);
    let address = std::fs::read_to_string(bundle.join("address")).unwrap();
    let socket = address.trim().trim_start_matches("unix://").to_string();
    assert!(std::path::Path::new(&socket).exists());
    let shims = c.shim_pids();
    assert_eq!(shims.len(), 1, "{shims:?}");
    // SAFETY: plain kill(2) of the shim our containerd started.
    unsafe { libc::kill(shims[0], libc::SIGKILL) };
    let mut gone = false;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        let tasks = c.ok(&["task", "ls", "-q"]);
        if tasks.trim().is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            gone = true;
            break;
        }
    }
    assert!(
        gone,
        "task or container process left after the shim died:\n{}",
        c.log()
    );
    assert!(!std::path::Path::new("/run/containerd/berth/berth-test")
        .join(&id)
        .exists());
    c.ok(&["container", "rm", &id]);
    // the dead shim's socket went with it; ctr -d's FIFOs are the client's to remove
    assert!(
        !std::path::Path::new(&socket).exists(),
        "{socket} left behind"
    );
    remove_fifos(&id);
}

fn remove_fifos(id: &str) {
    for d in std::fs::read_dir("/run/containerd/fifo")
        .into_iter()
        .flatten()
        .flatten()
    {
        if d.path().join(format!("{id}-stdin")).exists() {
            let _ = std::fs::remove_dir_all(d.path());
        }
    }
}

#[test]
fn berth_through_containerds_runc_shim() {
    let c = Containerd::start("runcshim");
    let berth = common::sibling("berth", "BERTH_RUNTIME");
    let berth = berth.to_str().unwrap();
    let out = c.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        berth,
        IMAGE,
        "b1",
        "sh",
        "-c",
        "echo via-runc-shim; exit 2",
    ]);
    assert_eq!(stdout(&out), "via-runc-shim\n", "{out:?}");
    assert_eq!(out.status.code(), Some(2));
    c.ok(&[
        "run",
        "-d",
        "--runc-binary",
        berth,
        IMAGE,
        "b2",
        "sleep",
        "1000",
    ]);
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "x",
        "b2",
        "sh",
        "-c",
        "echo in; exit 6",
    ]);
    assert_eq!(
        (stdout(&out).as_str(), out.status.code()),
        ("in\n", Some(6))
    );
    c.ok(&["task", "kill", "-s", "KILL", "b2"]);
    c.wait_status("b2", "STOPPED");
    c.ok(&["task", "rm", "b2"]);
    c.ok(&["container", "rm", "b2"]);
}

#[test]
fn long_running_with_host_network() {
    let c = Containerd::start("nethost");
    let addr = format!("127.0.0.1:{}", 20000 + std::process::id() % 20000);
    c.run_detached(
        "n1",
        &["--net-host"],
        &["httpd", "-f", "-p", &addr, "-h", "/etc"],
    );
    // the container's server answers on the host's loopback
    let mut ok = false;
    for _ in 0..50 {
        let r = Command::new("busybox")
            .args([
                "wget",
                "-q",
                "-O",
                "/dev/null",
                &format!("http://{addr}/hosts"),
            ])
            .output()
            .unwrap();
        if r.status.success() {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        ok,
        "httpd in the container did not answer on the host network"
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let out = c.ok(&["task", "exec", "--exec-id", "h", "n1", "hostname"]);
    assert_eq!(out.trim(), host.trim());
    c.remove("n1");
}

#[test]
fn pod_containers_share_one_shim() {
    let c = Containerd::start("pod");
    let pod = ["--annotation", "io.kubernetes.cri.sandbox-id=pod1"];
    c.run_detached("p1", &pod, &["sleep", "1000"]);
    c.run_detached("p2", &pod, &["sleep", "1000"]);
    c.run_detached("solo", &[], &["sleep", "1000"]);
    assert_eq!(
        c.shim_pids().len(),
        2,
        "p1 and p2 share a shim, solo has its own"
    );
    // the pod's shim outlives its first container and still serves the second
    c.remove("p1");
    let out = c.ok(&["task", "exec", "--exec-id", "x", "p2", "echo", "in-p2"]);
    assert_eq!(out, "in-p2\n");
    c.ok(&["task", "kill", "-s", "KILL", "p2"]);
    c.wait_status("p2", "STOPPED");
    c.ok(&["task", "rm", "p2"]);
    c.ok(&["container", "rm", "p2"]);
    c.remove("solo");
    std::thread::sleep(Duration::from_millis(500));
    assert!(c.shim_pids().is_empty(), "shims left: {:?}", c.shim_pids());
}

/// A container sharing another's PID namespace (a pod's): when its init exits, the
/// background children it leaves are killed before the task is reported stopped, as
/// containerd's runc shim does, so nothing outlives the task or writes to closed stdio.
#[test]
fn orphans_of_a_shared_pid_init_die_before_its_exit() {
    let c = Containerd::start("orphans");
    c.run_detached("holder", &[], &["sleep", "1000"]);
    let ns = format!("pid:/proc/{}/ns/pid", c.pid("holder"));
    c.run_detached(
        "leaver",
        &["--with-ns", &ns],
        &["sh", "-c", "sleep 4242 & exit 0"],
    );
    c.wait_status("leaver", "STOPPED");
    let orphans = || {
        std::process::Command::new("pgrep")
            .args(["-f", "^sleep 4242$"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let left = orphans();
    c.remove("leaver");
    c.remove("holder");
    assert!(
        left.is_empty(),
        "orphans alive after the task stopped: {left}"
    );
    assert!(orphans().is_empty());
}

#[test]
fn oom_kill_is_reported() {
    let c = Containerd::start("oom");
    let ev = EventStream::start(&c);
    let limit = (32u64 << 20).to_string();
    let hog = "sleep 0.3; x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}";
    let out = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--memory-limit",
        &limit,
        IMAGE,
        "o1",
        "sh",
        "-c",
        hog,
    ]);
    assert_eq!(out.status.code(), Some(137), "{out:?}");
    let text = ev.wait_for(&["/tasks/oom"]);
    assert!(text.contains(" /tasks/oom "), "no /tasks/oom in:\n{text}");
}

/// Update and Checkpoint have no `ctr` 1.6 command: call the shim's ttrpc Task API directly.
#[test]
fn update_and_checkpoint_over_ttrpc() {
    use containerd_shim_protos::api::{CheckpointTaskRequest, UpdateTaskRequest};
    use containerd_shim_protos::protobuf::well_known_types::any::Any;
    use containerd_shim_protos::ttrpc::{context, Client};
    use containerd_shim_protos::TaskClient;

    let c = Containerd::start("update");
    c.run_detached("u1", &[], &["sleep", "1000"]);
    let bundle = c
        .dir
        .join("state/io.containerd.runtime.v2.task/berth-test/u1");
    let address = std::fs::read_to_string(bundle.join("address")).unwrap();
    let task = TaskClient::new(Client::connect(address.trim()).unwrap());
    let req = UpdateTaskRequest {
        id: "u1".into(),
        // containerd sends linux.resources as JSON in the Any
        resources: Some(Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into(),
            value: br#"{"memory":{"limit":50331648},"pids":{"limit":64}}"#.to_vec(),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    };
    task.update(context::with_timeout(0), &req).unwrap();
    let pid = c.pid("u1");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let mem = cg
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| p));
    if let Some(path) = mem {
        let f = format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes");
        assert_eq!(std::fs::read_to_string(f).unwrap().trim(), "50331648");
    }
    let ck = CheckpointTaskRequest {
        id: "u1".into(),
        ..Default::default()
    };
    let err = task.checkpoint(context::with_timeout(0), &ck).unwrap_err();
    assert!(format!("{err:?}").contains("not supported"), "{err:?}");
    c.remove("u1");
}

/// A task started through the shim has no signal ignored or blocked (the shim ignores
/// glibc's 32/33 and Rust ignores SIGPIPE: none of it may reach the container), so a
/// pipeline whose reader quits early ends quietly; exec'd processes likewise.
#[test]
fn tasks_start_with_default_signals() {
    let c = Containerd::start("signals");
    let sig_lines = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("SigIgn:") || l.starts_with("SigBlk:"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    let clean = ["SigBlk: 0000000000000000", "SigIgn: 0000000000000000"];
    let run = |id: &str, cmd: &[&str]| {
        let mut args = vec!["run", "--rm", "--runtime", RUNTIME, IMAGE, id];
        args.extend(cmd);
        c.ctr(&args)
    };
    let out = run("s1", &["cat", "/proc/self/status"]);
    assert_eq!(sig_lines(&stdout(&out)), clean, "{out:?}");
    let out = run("s2", &["sh", "-c", "yes | head -n1"]);
    assert_eq!(stdout(&out), "y\n", "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{out:?}");
    c.run_detached("s3", &[], &["sleep", "1000"]);
    let out = c.ok(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "s3",
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(sig_lines(&out), clean, "{out}");
    c.remove("s3");
    // containerd's own runc shim driving berth (BinaryName): berth's init resets what that
    // Go shim passes on (SIGPIPE ignored was seen there).
    let berth = common::sibling("berth", "BERTH_RUNTIME");
    let out = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        "io.containerd.runc.v2",
        "--runc-binary",
        berth.to_str().unwrap(),
        IMAGE,
        "s4",
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(sig_lines(&stdout(&out)), clean, "{out:?}");
}

/// containerd restarts while a task runs (its shim lives on): the shim redials it, and the
/// task's exit still arrives as a /tasks/exit event.
#[test]
fn events_reach_containerd_after_it_restarts() {
    let mut c = Containerd::start("restart");
    c.run_detached("x1", &[], &["sleep", "1000"]);
    c.wait_status("x1", "RUNNING");
    c.restart();
    let ev = EventStream::start(&c);
    c.ok(&["task", "kill", "-s", "KILL", "x1"]);
    let text = ev.wait_for(&["/tasks/exit"]);
    assert!(
        text.contains(" /tasks/exit ") && text.contains("x1"),
        "no /tasks/exit after the restart:\n{text}\n{}",
        c.diagnose()
    );
    c.wait_status("x1", "STOPPED");
    c.ok(&["task", "rm", "x1"]);
    c.ok(&["container", "rm", "x1"]);
}
