//! linux.seccomp, enforced by the kernel on real containers.
mod common;
use common::*;
use serde_json::json;

/// Docker's default profile as dockerd passes it for a default container (see
/// tests/fixtures/README.md).
fn docker_default() -> serde_json::Value {
    let f = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/docker-default.json"
    );
    serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap()
}

fn give_caps(b: &mut Bundle, caps: &[&str]) {
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set] = json!(caps);
    }
}

/// The probe's calls: unshare(CLONE_NEWNS), keyctl(KEYCTL_GET_KEYRING_ID, session, 0) and
/// mount("none", "/mnt", "tmpfs"). The container holds CAP_SYS_ADMIN, so only the profile
/// (built for Docker's default capabilities, without it) can refuse them; the same probe
/// without the profile is the control.
const BLOCKED: &str =
    "sysprobe 272 0x20000; sysprobe 250 0 -3 0; mkdir -p /mnt; sysprobe 165 none /mnt tmpfs 0 0";

#[test]
fn docker_default_profile_blocks_unshare_keyctl_mount_and_lets_a_shell_work() {
    let script = format!("echo shell works; ls / > /dev/null && echo ls works; {BLOCKED}; grep Seccomp: /proc/self/status");
    let mut b = bundle(&["sh", "-c", &script]);
    install_sysprobe(&b);
    b.config["linux"]["seccomp"] = docker_default();
    give_caps(&mut b, &["CAP_SYS_ADMIN", "CAP_KILL"]);
    let out = b.run_ok();
    assert!(
        out.contains("shell works") && out.contains("ls works"),
        "{out}"
    );
    // The profile's default action: SCMP_ACT_ERRNO with EPERM.
    for nr in ["272", "250", "165"] {
        assert!(
            out.contains(&format!("{nr} errno=1\n")),
            "{nr} not refused: {out}"
        );
    }
    assert!(out.contains("Seccomp:\t2"), "{out}");
    let mut c = bundle(&["sh", "-c", BLOCKED]);
    install_sysprobe(&c);
    give_caps(&mut c, &["CAP_SYS_ADMIN", "CAP_KILL"]);
    let out = c.run_ok();
    assert!(
        out.contains("272 ret=0") && out.contains("165 ret=0") && !out.contains("250 errno=1\n"),
        "control without the profile: {out}"
    );
}

/// A syscall name unknown on x86_64 is skipped (runtime-spec), named only in the debug log
/// (docker's and containerd's profiles list dozens of 32-bit names: no warning on every
/// create), and fchmodat2 (nr 452, Linux 6.6, past the old 5.17 table) is filtered.
#[test]
fn unknown_syscall_names_are_skipped_quietly_and_fchmodat2_is_filtered() {
    let mut b = bundle(&["sh", "-c", "touch /f; sysprobe 452 -100 /f 0700 0"]);
    install_sysprobe(&b);
    b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["berth_no_such_syscall", "chown32", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122}]});
    let log = b.path().join("berth.log");
    let bd = b.path().to_str().unwrap().to_string();
    let run = |debug: bool| {
        let mut args = vec!["--log", log.to_str().unwrap(), "--log-format", "json"];
        if debug {
            args.push("--debug");
        }
        args.extend(["run", "--bundle", &bd, &b.id]);
        let o = b.rt(&args);
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout).to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        );
        assert!(o.status.success(), "{out} {err}");
        (out, err)
    };
    let (out, err) = run(false);
    // runc 1.1 links libseccomp 2.5.4, which does not know fchmodat2 either.
    if !is_berth() {
        return;
    }
    assert!(out.contains("452 errno=122"), "fchmodat2 rule lost: {out}");
    assert_eq!(err, "", "berth printed about the profile");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!text.contains("berth_no_such_syscall"), "{text}");
    run(true);
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("berth_no_such_syscall"))
        .unwrap_or_else(|| panic!("not in the debug log: {text}"));
    assert!(
        line.contains(r#""level":"debug""#) && line.contains("chown32"),
        "{line}"
    );
}

/// Listing 32-bit ABIs is not silently ignored: berth filters x86_64 only and says so.
#[test]
fn other_architectures_are_warned_about() {
    let mut b = bundle(&["true"]);
    b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]});
    let (code, _, err) = b.run();
    assert_eq!(code, 0, "{err}");
    if is_berth() {
        assert!(
            err.contains("linux.seccomp.architectures") && err.contains("SCMP_ARCH_X86,"),
            "{err}"
        );
    }
}

/// With no_new_privs the filter is loaded last, after the user switch and the capability
/// calls, so a profile denying those still lets the container start.
#[test]
fn filter_is_loaded_after_identity_with_no_new_privileges() {
    let mut b = bundle(&["sh", "-c", "id -u; id -G; echo ran"]);
    b.config["process"]["noNewPrivileges"] = json!(true);
    b.config["process"]["user"] = json!({"uid": 65534, "gid": 65534, "additionalGids": [65534]});
    b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["capset", "setresuid", "setresgid", "setuid", "setgid", "setgroups", "prctl"],
         "action": "SCMP_ACT_ERRNO"}]});
    let out = b.run_ok();
    assert!(out.starts_with("65534\n") && out.contains("ran"), "{out}");
}

/// SCMP_ACT_KILL_THREAD kills the calling thread only; SCMP_ACT_KILL_PROCESS the process.
#[test]
fn kill_thread_kills_only_the_calling_thread() {
    let run = |action: &str| {
        let mut b = bundle(&["sysprobe", "thread", "110"]);
        install_sysprobe(&b);
        b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": action}]});
        b.run()
    };
    let (code, out, err) = run("SCMP_ACT_KILL_THREAD");
    assert_eq!((code, out.as_str()), (0, "survived\n"), "{err}");
    let (code, out, _) = run("SCMP_ACT_KILL_PROCESS");
    assert_eq!((code, out.as_str()), (128 + 31, ""), "SIGSYS expected");
}

/// SCMP_ACT_TRACE with no tracer attached: the call is skipped and fails with ENOSYS.
#[test]
fn trace_without_a_tracer_fails_with_enosys() {
    let mut b = bundle(&["sysprobe", "110"]);
    install_sysprobe(&b);
    b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7}]});
    assert_eq!(b.run_ok(), "110 errno=38\n");
}

/// defaultErrnoRet is the default action's errno; a rule without errnoRet still gets EPERM.
#[test]
fn default_errno_ret_other_than_eperm() {
    let mut b = bundle(&["sh", "-c", "sysprobe 250 0 -3 0; sysprobe 272 0x20000"]);
    install_sysprobe(&b);
    let mut p = docker_default();
    p["defaultErrnoRet"] = json!(95);
    p["syscalls"]
        .as_array_mut()
        .unwrap()
        .push(json!({"names": ["unshare"], "action": "SCMP_ACT_ERRNO"}));
    b.config["linux"]["seccomp"] = p;
    let out = b.run_ok();
    assert!(out.contains("250 errno=95\n"), "{out}");
    assert!(out.contains("272 errno=1\n"), "{out}");
}

#[test]
fn errno_rule_returns_its_errno() {
    let mut b = bundle(&["sh", "-c", "mkdir /newdir 2>&1; echo rc=$?"]);
    b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122}]});
    let out = b.run_ok();
    // 122 = EDQUOT: "Disk quota exceeded"
    assert!(out.contains("quota"), "{out}");
    assert!(!b.rootfs().join("newdir").exists());
}

#[test]
fn argument_filter_matches_only_its_value() {
    let mut b = bundle(&["sh", "-c", "touch /f; chmod 755 /f && echo 755 ok; chmod 777 /f 2>/dev/null || echo 777 denied; chmod 1777 /f && echo masked ok"]);
    b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
         "args": [{"index": 2, "value": 511, "op": "SCMP_CMP_EQ"}]},
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
         "args": [{"index": 1, "value": 511, "op": "SCMP_CMP_EQ"}]}]});
    let out = b.run_ok();
    assert!(
        out.contains("755 ok") && out.contains("777 denied") && out.contains("masked ok"),
        "{out}"
    );
    let mut b = bundle(&[
        "sh",
        "-c",
        "touch /f; chmod 4755 /f 2>/dev/null || echo setuid denied; chmod 755 /f && echo plain ok",
    ]);
    // SCMP_CMP_MASKED_EQ: (mode & 04000) == 04000 → denied
    b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
         "args": [{"index": 2, "value": 2048, "valueTwo": 2048, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
         "args": [{"index": 1, "value": 2048, "valueTwo": 2048, "op": "SCMP_CMP_MASKED_EQ"}]}]});
    let out = b.run_ok();
    assert!(
        out.contains("setuid denied") && out.contains("plain ok"),
        "{out}"
    );
}

#[test]
fn kill_action_kills_the_process_and_exec_is_filtered_too() {
    let mut b = bundle(&["sleep", "100"]);
    b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]});
    b.create_ok();
    b.ok(&["start", &b.id]);
    let o = b.rt(&["exec", &b.id, "grep", "Seccomp:", "/proc/self/status"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Seccomp:\t2"),
        "exec'd process is not filtered: {out}"
    );
    // getppid is fatal: the shell dies of SIGSYS (31) before it can print.
    let o = b.rt(&["exec", &b.id, "sh", "-c", "echo $PPID"]);
    assert_eq!(o.status.code(), Some(128 + 31), "{o:?}");
    assert!(o.stdout.is_empty());
}

/// A seccomp agent at listenerPath: takes the notify fd and the container process state,
/// then answers every notification with ENOSPC.
fn agent(path: &std::path::Path) -> std::thread::JoinHandle<serde_json::Value> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
    use std::os::fd::AsRawFd;
    let l = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let (conn, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let m = recvmsg::<UnixAddr>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .unwrap();
        let fd = m
            .cmsgs()
            .unwrap()
            .find_map(|c| match c {
                ControlMessageOwned::ScmRights(f) => f.first().copied(),
                _ => None,
            })
            .expect("an fd with the state");
        let n = m.bytes;
        let state: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        // struct seccomp_notif (80 bytes) and seccomp_notif_resp (24 bytes).
        const RECV: libc::c_ulong = 0xc050_2100;
        const SEND: libc::c_ulong = 0xc018_2101;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            // RECV blocks until a notification arrives, even after the filter's last user
            // died (Linux 6.1); poll says POLLHUP then, so wait there first.
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, 100) };
            if n < 0 || pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                break; // the container's processes are gone
            }
            if pfd.revents & libc::POLLIN == 0 {
                continue;
            }
            let mut req = [0u64; 10];
            // SAFETY: ioctl on the listener fd with a zeroed seccomp_notif buffer.
            if unsafe { libc::ioctl(fd, RECV, req.as_mut_ptr()) } != 0 {
                break;
            }
            let mut resp = [0u8; 24];
            resp[..8].copy_from_slice(&req[0].to_ne_bytes()); // id
            resp[16..20].copy_from_slice(&(-libc::ENOSPC).to_ne_bytes()); // error
                                                                          // SAFETY: ioctl with a filled seccomp_notif_resp.
            unsafe { libc::ioctl(fd, SEND, resp.as_mut_ptr()) };
        }
        state
    })
}

#[test]
fn notify_rules_reach_the_agent_at_listener_path() {
    let mut b = bundle(&[
        "sh",
        "-c",
        "mkdir /tmp/x; echo rc=$?; [ -d /tmp/x ] || echo absent",
    ]);
    let sock = b.path().join("agent.sock");
    b.config["process"]["noNewPrivileges"] = json!(true);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock, "listenerMetadata": "berth-test",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let a = agent(&sock);
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("No space left on device") || out.contains("rc=1"),
        "{out} {err}"
    );
    assert!(out.contains("absent"), "{out}");
    let st = a.join().unwrap();
    assert_eq!(st["fds"], json!(["seccompFd"]), "{st}");
    assert_eq!(st["metadata"], "berth-test");
    assert_eq!(st["state"]["id"], b.id.as_str());
    assert!(st["pid"].as_i64().unwrap() > 0, "{st}");
}

#[test]
fn notify_without_listener_path_is_refused() {
    let mut b = bundle(&["true"]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let (code, _, err) = b.run();
    assert_ne!(code, 0);
    if is_berth() {
        assert!(err.contains("listenerPath"), "{err}");
    }
}

/// A profile older than statx and close_range (runtime-tools' v0.9 default, which its
/// generated bundles carry, refuses both with EPERM): /runtimetest at the top of the rootfs
/// and `sh` through PATH are still found (runc stats with newfstatat), and a descriptor the
/// caller leaked still does not reach the container (close_range's work done by fcntl).
#[test]
fn programs_are_found_and_fds_closed_under_a_profile_without_statx() {
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["statx", "close_range"], "action": "SCMP_ACT_ERRNO"}]});
    let mut b = bundle(&["/runtimetest", "39"]);
    install_sysprobe(&b);
    std::fs::copy(
        b.rootfs().join("bin/sysprobe"),
        b.rootfs().join("runtimetest"),
    )
    .unwrap();
    // Without noNewPrivileges (as there) the profile is loaded before the identity switch,
    // so the program lookup and the descriptor sweep run under it.
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["linux"]["seccomp"] = profile.clone();
    let out = b.run_ok();
    assert!(out.starts_with("39 ret="), "{out}");
    let mut b = bundle(&["sh", "-c", "ls /proc/self/fd"]);
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["linux"]["seccomp"] = profile;
    let mut c = b.cmd(&["run", "--bundle", b.path().to_str().unwrap(), &b.id]);
    let leak = std::fs::File::open("/etc/hostname").unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&leak);
    use std::os::unix::process::CommandExt;
    unsafe {
        c.pre_exec(move || {
            libc::dup2(raw, 9);
            Ok(())
        });
    }
    let o = c.output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let fds: Vec<&str> = out.split_whitespace().collect();
    assert!(
        !fds.contains(&"9"),
        "leaked descriptor 9 reached the container: {fds:?}"
    );
}

/// Two conditions on one argument in one rule are ORed, as runc 1.1 adds them (one rule per
/// condition when an index repeats); berth ANDed them, so neither mode was ever denied.
#[test]
fn conditions_on_the_same_argument_are_ored() {
    let script = "touch /f; chmod 777 /f 2>/dev/null || echo 777 denied; \
                  chmod 700 /f 2>/dev/null || echo 700 denied; chmod 755 /f && echo 755 ok";
    let mut b = bundle(&["sh", "-c", script]);
    let either = |i: u32| {
        json!([{"index": i, "value": 511, "op": "SCMP_CMP_EQ"},
                                 {"index": i, "value": 448, "op": "SCMP_CMP_EQ"}])
    };
    b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": either(2)},
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": either(1)}]});
    let out = b.run_ok();
    for want in ["777 denied", "700 denied", "755 ok"] {
        assert!(out.contains(want), "{want}: {out}");
    }
}

/// SCMP_ACT_NOTIFY on write is refused at create with runc 1.1's words (the init writes
/// the listener to its parent after loading the filter), leaving nothing behind.
#[test]
fn notify_on_write_is_refused() {
    let mut b = bundle(&["true"]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": b.path().join("rt22-agent.sock"),
        "syscalls": [{"names": ["mkdir", "write"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let o = b.create();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("SCMP_ACT_NOTIFY cannot be used for the write syscall"),
        "{err}"
    );
    assert!(b.state().is_none(), "a refused create left state behind");
}

/// A syscall numbered above every one the profile names gets ENOSYS, not the default action,
/// as runc 1.1's ENOSYS stub gives it (so a newer libc falls back); one the profile's
/// architecture knows but does not allow still gets the default (EPERM here). Docker's
/// profile names nothing above futex_waitv (449); 470 is listns (Linux 6.19).
#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    let mut b = bundle(&[
        "sh",
        "-c",
        "sysprobe 470 0 0 0; sysprobe 165 none /mnt tmpfs 0 0",
    ]);
    install_sysprobe(&b);
    b.config["linux"]["seccomp"] = docker_default();
    let out = b.run_ok();
    assert!(out.contains("470 errno=38\n"), "newer syscall: {out}");
    assert!(
        out.contains("165 errno=1\n"),
        "mount must keep the default: {out}"
    );
}
