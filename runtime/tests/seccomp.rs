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
