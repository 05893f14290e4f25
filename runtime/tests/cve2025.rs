//! The 2025 runc CVE classes (issue 15.10), each tried against the runtime. runc 1.1.5
//! predates their fixes (runc 1.2.8 / 1.3.3), so where it is still open the assertion is
//! berth's alone, and says so.
mod common;
use common::*;
use serde_json::json;

/// `/dev` as a bind of a host directory the test controls, holding a real null device (the
/// masked paths need one) and a ptmx link, as a shared volume over /dev would be.
fn fake_dev(b: &mut Bundle) -> std::path::PathBuf {
    let fake = b.path().join("fakedev");
    std::fs::create_dir_all(&fake).unwrap();
    let st = std::process::Command::new("mknod")
        .args(["-m", "666"])
        .arg(fake.join("null"))
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(st.success());
    std::os::unix::fs::symlink("pts/ptmx", fake.join("ptmx")).unwrap();
    let m = b.config["mounts"].as_array_mut().unwrap();
    m.retain(|m| m["destination"] != "/dev");
    m.insert(
        1,
        json!({"destination": "/dev", "type": "bind", "source": fake, "options": ["rbind"]}),
    );
    fake
}

fn one_line_naming(code: i32, err: &str, what: &str) {
    assert_ne!(code, 0, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(what), "{err}");
}

/// CVE-2025-31133: /dev/null that is not the null device (a bind of a host file, or a
/// device node with other numbers) must never be bind-mounted over a masked path. (The
/// symlink form is security.rs masked_path_with_swapped_dev_null_is_refused; the check and
/// the mount use one descriptor, so there is no window to swap it in between.) runc 1.1.5
/// mounts whatever /dev/null is: berth only.
#[test]
fn masked_paths_never_use_a_fake_dev_null() {
    if !is_berth() {
        return;
    }
    // A host file bound over /dev/null.
    let mut b = bundle(&["cat", "/etc/masked"]);
    std::fs::write(b.rootfs().join("etc/masked"), "image").unwrap();
    let host = b.path().join("hostfile");
    std::fs::write(&host, "HOST-SECRET").unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/dev/null", "type": "bind", "source": host, "options": ["bind"]}),
    );
    b.config["linux"]["maskedPaths"] = json!(["/etc/masked"]);
    let (code, out, err) = b.run();
    assert!(!out.contains("HOST-SECRET"), "{out}");
    one_line_naming(code, &err, "/dev/null");
    // A device node named null with other numbers (1:7 is /dev/full).
    let mut b = bundle(&["cat", "/etc/masked"]);
    std::fs::write(b.rootfs().join("etc/masked"), "image").unwrap();
    b.config["linux"]["devices"] =
        json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 7, "fileMode": 438}]);
    b.config["linux"]["maskedPaths"] = json!(["/etc/masked"]);
    let (code, _out, err) = b.run();
    one_line_naming(code, &err, "/dev/null");
    assert!(b.state().is_none() && cgroup_dirs(&b.id).is_empty());
}

/// CVE-2025-52565: with a terminal, /dev/console planted as a link (here to a file of the
/// image; in the CVE to a procfs file) must not get the pty mounted wherever it points; berth refuses the link, as runc's fix
/// does. runc 1.1.5 follows it: berth only.
#[test]
fn dev_console_link_is_refused() {
    if !is_berth() {
        return;
    }
    let mut b = bundle(&["true"]);
    let fake = fake_dev(&mut b);
    std::fs::write(b.rootfs().join("etc/target"), "image").unwrap();
    std::os::unix::fs::symlink("/etc/target", fake.join("console")).unwrap();
    b.config["process"]["terminal"] = json!(true);
    let sock = b.path().join("console.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let o = b.detached(&[
        "run",
        "-d",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    one_line_naming(o.status.code().unwrap_or(-1), &err, "/dev/console");
    assert!(err.contains("symlink"), "{err}");
    assert!(b.state().is_none() && cgroup_dirs(&b.id).is_empty());
}

/// CVE-2025-52881: a mount over the procfs file the runtime writes (oom_score_adj of its
/// own process) must not redirect that write to a host file. runc writes oom_score_adj
/// before the container's mounts exist, so it holds too; berth refuses with one line.
#[test]
fn oom_score_adj_write_is_not_redirected() {
    let mut b = bundle(&["true"]);
    let host = b.path().join("hostfile");
    std::fs::write(&host, "host").unwrap();
    b.config["process"]["oomScoreAdj"] = json!(500);
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/proc/self/oom_score_adj", "type": "bind", "source": host, "options": ["bind"]}),
    );
    let (code, _out, err) = b.run();
    assert_eq!(
        std::fs::read_to_string(&host).unwrap(),
        "host",
        "write redirected"
    );
    if is_berth() {
        one_line_naming(code, &err, "oom_score_adj");
        assert!(err.contains("mounted over"), "{err}");
    }
}

/// CVE-2025-52881: a sysctl write with a mount over its /proc/sys file must not land in
/// what is mounted there (a host file here; another procfs file in the CVE). runc 1.1.5
/// writes through the mount: berth only.
#[test]
fn sysctl_write_is_not_redirected() {
    if !is_berth() {
        return;
    }
    let mut b = bundle(&["true"]);
    let host = b.path().join("hostfile");
    std::fs::write(&host, "host").unwrap();
    b.config["linux"]["sysctl"] = json!({"kernel.shm_rmid_forced": "1"});
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/proc/sys/kernel/shm_rmid_forced", "type": "bind", "source": host, "options": ["bind"]}),
    );
    let (code, _out, err) = b.run();
    assert_eq!(
        std::fs::read_to_string(&host).unwrap(),
        "host",
        "write redirected"
    );
    one_line_naming(code, &err, "linux.sysctl.kernel.shm_rmid_forced");
    // And without the mount the same sysctl is written.
    let mut b = bundle(&["cat", "/proc/sys/kernel/shm_rmid_forced"]);
    b.config["linux"]["sysctl"] = json!({"kernel.shm_rmid_forced": "1"});
    assert_eq!(b.run_ok().trim(), "1");
}
