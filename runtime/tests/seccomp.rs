//! linux.seccomp, enforced by the kernel on real containers.
mod common;
use common::*;
use serde_json::json;

/// A docker-like profile: default ERRNO(EPERM), everything allowed except what docker's
/// default profile blocks for a container without extra capabilities.
fn docker_like() -> serde_json::Value {
    let blocked = [
        "unshare",
        "keyctl",
        "add_key",
        "request_key",
        "mount",
        "umount2",
        "setns",
        "kexec_load",
        "init_module",
        "finit_module",
        "delete_module",
        "bpf",
        "ptrace",
        "pivot_root",
        "swapon",
        "swapoff",
        "reboot",
        "open_by_handle_at",
        "perf_event_open",
        "userfaultfd",
    ];
    let header = std::fs::read_to_string("/usr/include/x86_64-linux-gnu/asm/unistd_64.h").unwrap();
    let names: Vec<String> = header
        .lines()
        .filter_map(|l| l.strip_prefix("#define __NR_"))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|n| !blocked.contains(&n.as_str()))
        .collect();
    json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64"],
           "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]})
}

#[test]
fn docker_like_profile_blocks_unshare_keyctl_mount_and_lets_a_shell_work() {
    let mut b = bundle(&["sh", "-c", "echo shell works; ls / > /dev/null && echo ls works; unshare -m true 2>&1 || echo unshare blocked; mount -t tmpfs none /tmp 2>&1 || echo mount blocked; grep Seccomp: /proc/self/status"]);
    b.config["linux"]["seccomp"] = docker_like();
    b.config["process"]["capabilities"]["bounding"] = json!(["CAP_SYS_ADMIN", "CAP_KILL"]);
    b.config["process"]["capabilities"]["effective"] = json!(["CAP_SYS_ADMIN", "CAP_KILL"]);
    b.config["process"]["capabilities"]["permitted"] = json!(["CAP_SYS_ADMIN", "CAP_KILL"]);
    let out = b.run_ok();
    assert!(
        out.contains("shell works") && out.contains("ls works"),
        "{out}"
    );
    assert!(out.contains("unshare blocked"), "{out}");
    assert!(out.contains("mount blocked"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
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
        loop {
            let mut req = [0u64; 10];
            // SAFETY: ioctl on the listener fd with a zeroed seccomp_notif buffer.
            if unsafe { libc::ioctl(fd, RECV, req.as_mut_ptr()) } != 0 {
                break; // the container's processes are gone
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
