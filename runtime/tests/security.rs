//! Attacks on the runtime from inside a container must fail.
mod common;
use common::*;
use serde_json::json;
use std::os::fd::AsRawFd;

/// CVE-2024-21626 class: a leaked host directory descriptor named as the working directory.
#[test]
fn cwd_through_a_leaked_fd_cannot_reach_the_host() {
    let mut b = bundle(&["ls", "."]);
    let secret = b.path().join("hostsecret");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("TOPSECRET"), "x").unwrap();
    b.config["process"]["cwd"] = json!("/proc/self/fd/3");
    let dir = std::fs::File::open(&secret).unwrap();
    let raw = dir.as_raw_fd();
    let mut c = b.cmd(&[
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]);
    use std::os::unix::process::CommandExt;
    unsafe {
        c.pre_exec(move || {
            libc::dup2(raw, 3);
            Ok(())
        });
    }
    let o = c.output().unwrap();
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("TOPSECRET"),
        "container listed a host directory"
    );
}

/// CVE-2019-5736 class: while the runtime runs inside the container's namespaces, its
/// /proc/PID/exe must not be the on-disk binary (which a container could overwrite).
#[test]
fn runtime_binary_is_not_reachable_through_proc_exe() {
    let b = bundle(&["sleep", "2"]);
    let mut child = b
        .cmd(&["run", "--bundle", b.path().to_str().unwrap(), &b.id])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let exe = std::fs::read_link(format!("/proc/{}/exe", child.id())).unwrap();
    let s = exe.to_string_lossy();
    if is_berth() {
        // runc 1.1 clones itself only in its init stage; berth re-executes before anything
        // joins a container, from its binary seen through a detached read-only overlayfs
        // (another device than the binary on disk), or else from a sealed memfd.
        use std::os::unix::fs::MetadataExt;
        let dev = std::fs::metadata(format!("/proc/{}/exe", child.id()))
            .unwrap()
            .dev();
        let disk = std::fs::metadata(runtime()).unwrap().dev();
        assert!(
            s.contains("memfd") || dev != disk,
            "runtime runs from the binary on disk: {s}"
        );
    }
    // Writing through the link must fail (read-only overlayfs, or sealed memfd).
    let w = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{}/exe", child.id()));
    if let Ok(mut f) = w {
        assert!(
            std::io::Write::write_all(&mut f, b"pwned").is_err(),
            "the runtime's executable was writable"
        );
    }
    child.wait().unwrap();
    let bin = std::fs::read(runtime()).unwrap();
    assert!(!bin.starts_with(b"pwned"));
}

/// A container cannot write host /proc or /sys entries it was not given.
#[test]
fn host_proc_and_sys_are_not_writable() {
    let b = bundle(&["sh", "-c", "echo 1 > /proc/sys/kernel/panic_on_oops 2>/dev/null && echo w1; echo x > /sys/kernel/uevent_helper 2>/dev/null && echo w2; echo 1 > /proc/sysrq-trigger 2>/dev/null && echo w3; echo done"]);
    let out = b.run_ok();
    assert_eq!(out.trim(), "done", "{out}");
}

/// 2025 masked-path class: /dev/null replaced by a link must not make a masked path
/// bind-mount some other file.
#[test]
fn masked_path_with_swapped_dev_null_is_refused() {
    let mut b = bundle(&["cat", "/proc/timer_list"]);
    // /dev as a bind of a directory we control, with null a link to a host file.
    let fake = b.path().join("fakedev");
    std::fs::create_dir_all(&fake).unwrap();
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", fake.join("null")).unwrap();
    let m = b.config["mounts"].as_array_mut().unwrap();
    m.retain(|m| {
        m["destination"] != "/dev" && !m["destination"].as_str().unwrap().starts_with("/dev/")
    });
    m.push(json!({"destination": "/dev", "type": "bind", "source": fake, "options": ["rbind"]}));
    let (code, out, _err) = b.run();
    if is_berth() {
        assert_ne!(
            code, 0,
            "masked paths were applied over a fake /dev/null: {out}"
        );
    }
}
