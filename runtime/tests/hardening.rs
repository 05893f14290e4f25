//! Issue 15's runtime holes (untrusted config.json and rootfs must never reach the host or
//! run as someone else), each checked with real containers, also against runc (RUNTIME=).
mod common;
use common::*;
use serde_json::json;

/// One line of stderr, the run failed, and nothing of the container is left.
fn refused_leaving_nothing(b: &Bundle, code: i32, err: &str) {
    assert_ne!(code, 0, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(b.state().is_none(), "state left behind");
    assert!(cgroup_dirs(&b.id).is_empty(), "cgroups left behind");
}

/// 15.7: an id past 2147483647 (4294967295 is -1, "leave unchanged", to setresuid) must
/// never start the process as root: refused as runc refuses it ("uids and gids must be in
/// range 0-2147483647"); berth names the field and refuses before anything is made.
#[test]
fn out_of_range_user_ids_are_refused() {
    for (field, user) in [
        ("uid", json!({"uid": 4294967295u32, "gid": 0})),
        ("uid", json!({"uid": 2147483648u32, "gid": 0})),
        ("gid", json!({"uid": 0, "gid": 4294967295u32})),
        (
            "additionalGids[0]",
            json!({"uid": 0, "gid": 0, "additionalGids": [4294967295u32]}),
        ),
    ] {
        let mut b = bundle(&["id"]);
        b.config["process"]["user"] = user;
        let (code, out, err) = b.run();
        assert!(!out.contains("uid="), "{field}: the process ran: {out}");
        assert!(err.contains("0-2147483647"), "{field}: {err}");
        if is_berth() {
            assert!(err.contains(&format!("process.user.{field}")), "{err}");
        }
        refused_leaving_nothing(&b, code, &err);
    }
    let mut b = bundle(&["id", "-u"]);
    b.config["process"]["user"] = json!({"uid": 2147483647u32, "gid": 2147483647u32});
    assert_eq!(b.run_ok().trim(), "2147483647");
}

/// 15.7 through exec: --user, --additional-gids and a process.json with such ids.
#[test]
fn exec_with_out_of_range_ids_is_refused() {
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    let mut p = b.config["process"].clone();
    p["args"] = json!(["id"]);
    p["user"] = json!({"uid": 4294967295u32, "gid": 0});
    let pj = b.path().join("process.json");
    std::fs::write(&pj, p.to_string()).unwrap();
    for args in [
        vec!["--user", "4294967295"],
        vec!["--user", "0:4294967295"],
        vec!["--additional-gids", "4294967295"],
        vec!["--process", pj.to_str().unwrap()],
    ] {
        let mut a = vec!["exec"];
        a.extend(&args);
        a.push(&b.id);
        if !args.contains(&"--process") {
            a.push("id");
        }
        let o = b.rt(&a);
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert!(!o.status.success(), "{args:?}: {out}");
        assert!(!out.contains("uid="), "{args:?}: the process ran: {out}");
        assert!(err.contains("0-2147483647"), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    assert_eq!(b.status(), "running");
}

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// 15.9: the state is private as runc 1.1 keeps it: the root (and parents it makes) 0700,
/// each container's directory 0711, state.json 0600 (it holds annotations and hooks).
#[test]
fn state_is_private() {
    let mut b = bundle(&["sleep", "100"]);
    b.root = b.path().join("st/sub");
    b.create_ok();
    assert_eq!(mode(&b.path().join("st")), 0o700);
    assert_eq!(mode(&b.root), 0o700);
    let dir = b.root.join(&b.id);
    assert_eq!(mode(&dir), 0o711);
    assert_eq!(mode(&dir.join("state.json")), 0o600);
    assert_eq!(mode(&dir.join("exec.fifo")), 0o622);
    if is_berth() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if !p.ends_with("exec.fifo") {
                assert_eq!(mode(&p) & 0o077, 0, "{} is not private", p.display());
            }
        }
    }
    b.ok(&["start", &b.id]);
    b.wait_status("running");
}

/// The private state root must not lock out an init whose root is a mapped host uid: it
/// still reaches exec.fifo (opened by the runtime, as runc passes it in).
#[test]
fn user_namespaced_container_starts_under_a_private_root() {
    // Written aside and renamed: the redirection makes the file before `id` fills it, and a
    // slow host (the VM suite's TCG guest) read it empty in between.
    let mut b = bundle(&[
        "sh",
        "-c",
        "id -u > /tmp/ran.t; mv /tmp/ran.t /tmp/ran; sleep 100",
    ]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    let st = std::process::Command::new("chown")
        .args(["-R", "300000:300000"])
        .arg(b.rootfs())
        .status()
        .unwrap();
    assert!(st.success());
    b.create_ok();
    assert_eq!(mode(&b.root), 0o700);
    b.ok(&["start", &b.id]);
    b.wait_status("running");
    let ran = b.rootfs().join("tmp/ran");
    for _ in 0..200 {
        if ran.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(std::fs::read_to_string(ran).unwrap().trim(), "0");
}

/// A host directory fd, open (without CLOEXEC) as fd 3 in the runtime `c` starts.
fn fd3(c: &mut std::process::Command, dir: &std::fs::File) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let raw = dir.as_raw_fd();
    // SAFETY: dup2 is async-signal-safe; `dir` outlives the spawn.
    unsafe {
        c.pre_exec(move || {
            if raw == 3 {
                libc::fcntl(3, libc::F_SETFD, 0);
            } else {
                libc::dup2(raw, 3);
            }
            Ok(())
        });
    }
}

/// 15.9: a cwd under a leaked host descriptor (`/proc/self/fd/3/newdir`) must be refused
/// without making the directory on the host first, by exec and by create.
#[test]
fn cwd_under_a_leaked_fd_makes_no_host_directory() {
    let mut b = bundle(&["sleep", "100"]);
    let host = b.path().join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    let dir = std::fs::File::open(&host).unwrap();
    b.create_ok();
    b.ok(&["start", &b.id]);
    let mut c = b.cmd(&[
        "exec",
        "--preserve-fds",
        "1",
        "--cwd",
        "/proc/self/fd/3/newdir",
        &b.id,
        "pwd",
    ]);
    fd3(&mut c, &dir);
    let o = c.output().unwrap();
    assert!(
        !o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(!host.join("newdir").exists(), "exec made a host directory");
    b.ok(&["delete", "--force", &b.id]);
    b.config["process"]["cwd"] = json!("/proc/self/fd/3/made");
    b.config["process"]["args"] = json!(["pwd"]);
    let mut c = b.cmd(&[
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]);
    fd3(&mut c, &dir);
    let _ = c.output().unwrap();
    // runc 1.1.5 makes this one (its init creates the cwd by following the fd): berth only.
    if is_berth() {
        assert!(!host.join("made").exists(), "create made a host directory");
    }
}

/// 15.9: maskedPaths and readonlyPaths that are links in the image protect what the link
/// points at, resolved inside the rootfs (as runc's mounts after pivot_root follow them).
#[test]
fn masked_and_readonly_links_protect_their_target_in_root() {
    let mut b = bundle(&[
        "sh",
        "-c",
        "cat /data/secret; echo x > /data/ro/f && echo wrote; echo end",
    ]);
    let r = b.rootfs();
    std::fs::create_dir_all(r.join("data/ro")).unwrap();
    std::fs::write(r.join("data/secret"), "SECRET").unwrap();
    std::os::unix::fs::symlink("/data/secret", r.join("mlink")).unwrap();
    std::os::unix::fs::symlink("../../data/ro", r.join("rlink")).unwrap();
    b.config["linux"]["maskedPaths"] = json!(["/mlink"]);
    b.config["linux"]["readonlyPaths"] = json!(["/rlink"]);
    let out = b.run_ok();
    assert!(!out.contains("SECRET"), "masked target readable: {out}");
    assert!(!out.contains("wrote"), "read-only target writable: {out}");
    assert!(out.contains("end"), "{out}");
}

/// 15.9: a bind destination that is a link to a file in the image is followed inside the
/// rootfs, as runc (securejoin) follows it: to an existing file, and to one not there yet
/// (an image's `/etc/resolv.conf -> /run/…`), which is made where the link points; not ELOOP.
#[test]
fn bind_onto_a_link_to_a_file_follows_it_in_root() {
    let mut b = bundle(&["cat", "/data/hosts", "/run/stub/resolv.conf"]);
    let r = b.rootfs();
    std::fs::create_dir_all(r.join("data")).unwrap();
    std::fs::write(r.join("data/hosts"), "image").unwrap();
    std::os::unix::fs::symlink("/data/hosts", r.join("etc/hosts")).unwrap();
    std::os::unix::fs::symlink("../run/stub/resolv.conf", r.join("etc/resolv.conf")).unwrap();
    for (dest, text) in [("/etc/hosts", "bound1 "), ("/etc/resolv.conf", "bound2")] {
        let src = b.path().join(format!("src{}", text.trim()));
        std::fs::write(&src, text).unwrap();
        b.config["mounts"].as_array_mut().unwrap().push(
            json!({"destination": dest, "type": "bind", "source": src, "options": ["bind", "ro"]}),
        );
    }
    assert_eq!(b.run_ok().trim(), "bound1 bound2");
    assert_eq!(
        std::fs::read_to_string(r.join("data/hosts")).unwrap(),
        "image"
    );
    assert!(r.join("run/stub/resolv.conf").is_file());
}

/// Issue 15 bug: annotations of 64 KiB made create fail ("bad message from peer"), and of
/// 1 MiB hung it forever with an init, cgroups and state left behind (the state document
/// outgrew one packet of the parent↔init channel). Any size arrives whole.
#[test]
fn large_annotations_create_and_delete_cleanly() {
    for size in [64 << 10, 1 << 20, 4 << 20] {
        let mut b = bundle(&["sleep", "100"]);
        b.config["annotations"] = json!({"big": "a".repeat(size)});
        let out = b.path().join("create.err");
        let mut c = b
            .cmd(&["create", "--bundle", b.path().to_str().unwrap(), &b.id])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&out).unwrap())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let status = loop {
            if let Some(s) = c.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = c.kill();
                panic!("create with {size} bytes of annotations hung");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let err = std::fs::read_to_string(&out).unwrap();
        assert!(status.success(), "{size}: {err}");
        let st = b.state().unwrap();
        assert_eq!(st["annotations"]["big"].as_str().unwrap().len(), size);
        b.ok(&["start", &b.id]);
        b.ok(&["delete", "--force", &b.id]);
        assert!(b.state().is_none() && cgroup_dirs(&b.id).is_empty());
    }
}
