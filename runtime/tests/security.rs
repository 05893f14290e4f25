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
    let mut c = b.cmd(&[
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]);
    fd3(&mut c, &dir);
    let o = c.output().unwrap();
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("TOPSECRET"),
        "container listed a host directory"
    );
}

/// The same through `exec`: a working directory given as an fd the runtime inherited
/// (`--cwd /proc/self/fd/3` with `--preserve-fds 1`) must not reach the host directory.
#[test]
fn exec_cwd_through_a_leaked_fd_cannot_reach_the_host() {
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    let secret = b.path().join("hostsecret");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("TOPSECRET"), "x").unwrap();
    let dir = std::fs::File::open(&secret).unwrap();
    let mut c = b.cmd(&[
        "exec",
        "--preserve-fds",
        "1",
        "--cwd",
        "/proc/self/fd/3",
        &b.id,
        "ls",
        ".",
    ]);
    fd3(&mut c, &dir);
    let o = c.output().unwrap();
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("TOPSECRET"),
        "exec listed a host directory"
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

/// Unmounts a test's bind mount even when an assertion fails.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn mounts_at(p: &std::path::Path) -> usize {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = p.to_str().unwrap();
    mi.lines()
        .filter(|l| l.split(' ').nth(4) == Some(p))
        .count()
}

/// 2025 masked-path class, the other half: maskedPaths and readonlyPaths whose targets (or a
/// directory on the way) are links out of the rootfs, to a host directory by absolute path or
/// by `..`, must not mask or remount that directory. It is a shared mount here and the
/// container's root is rshared, so a mount made on it in the container's namespace would
/// show up on the host.
#[test]
fn masked_and_readonly_paths_through_links_stay_in_the_container() {
    let mut b = bundle(&[
        "sh",
        "-c",
        "ls /mlink /rlink /mdir/ /rdir/ >/dev/null 2>&1; echo ran",
    ]);
    let host = b.path().join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("secret"), "host-data").unwrap();
    let sh = |c: &str| {
        let st = std::process::Command::new("sh")
            .args(["-c", c])
            .status()
            .unwrap();
        assert!(st.success(), "{c}");
    };
    let h = host.to_str().unwrap();
    sh(&format!("mount --bind {h} {h} && mount --make-shared {h}"));
    let _guard = Unmount(host.clone());
    let up = "../".repeat(20) + h.trim_start_matches('/');
    let r = b.rootfs();
    for (link, to) in [
        ("mlink", h.to_string()),
        ("rlink", h.to_string()),
        ("mdir", up.clone()),
        ("rdir", up),
    ] {
        std::os::unix::fs::symlink(to, r.join(link)).unwrap();
    }
    b.config["linux"]["rootfsPropagation"] = json!("rshared");
    b.config["linux"]["maskedPaths"] = json!(["/mlink", "/mdir/secret", "/proc/kcore"]);
    b.config["linux"]["readonlyPaths"] = json!(["/rlink", "/rdir/secret", "/proc/sys"]);
    let before = mounts_at(&host);
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("ran"), "{out}");
    assert_eq!(
        mounts_at(&host),
        before,
        "a mount reached the host directory"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("secret")).unwrap(),
        "host-data"
    );
    std::fs::write(host.join("after"), "x").expect("host directory left read-only");
}

/// A host directory fd, open (without CLOEXEC) as fd 3 in the runtime `c` starts.
fn fd3(c: &mut std::process::Command, dir: &std::fs::File) {
    use std::os::unix::process::CommandExt;
    let raw = dir.as_raw_fd();
    // SAFETY: dup2 is async-signal-safe; `dir` outlives the spawn.
    unsafe {
        c.pre_exec(move || {
            // dup2 onto itself would keep the descriptor's CLOEXEC: clear it instead.
            if raw == 3 {
                libc::fcntl(3, libc::F_SETFD, 0);
            } else {
                libc::dup2(raw, 3);
            }
            Ok(())
        });
    }
}
