//! Issue 22's mount differences from runc (11-16; 17 is newspec_mounts.rs's rnorelatime
//! row), each with a real container, also against runc (RUNTIME=) where runc behaves so.
mod common;
use common::*;
use serde_json::json;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

fn sh(c: &str) {
    let st = Command::new("sh").args(["-c", c]).status().unwrap();
    assert!(st.success(), "{c}");
}

fn user_namespace(b: &mut Bundle, host_id: u32) {
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    let map = json!([{"containerID": 0, "hostID": host_id, "size": 65536}]);
    b.config["linux"]["uidMappings"] = map.clone();
    b.config["linux"]["gidMappings"] = map;
    let st = Command::new("chown")
        .args(["-R", &format!("{host_id}:{host_id}")])
        .arg(b.rootfs())
        .status()
        .unwrap();
    assert!(st.success());
}

fn add_cap(b: &mut Bundle, cap: &str) {
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!(cap));
    }
}

fn bind(b: &mut Bundle, src: &Path, dest: &str, opts: &[&str]) {
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": dest, "type": "bind", "source": src, "options": opts}));
}

/// 22.11: a bind source only the host's root can reach (under a 0700 directory) works in a
/// user-namespaced container: the source is opened on the host, as runc >= 1.1 does.
#[test]
fn bind_source_only_host_root_reaches_works_in_a_user_namespace() {
    let mut b = bundle(&["cat", "/data/file"]);
    user_namespace(&mut b, 310000);
    let private = b.path().join("private");
    std::fs::create_dir_all(private.join("data")).unwrap();
    std::fs::write(private.join("data/file"), "reached").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(private.join("data"), std::fs::Permissions::from_mode(0o755)).unwrap();
    bind(&mut b, &private.join("data"), "/data", &["rbind", "ro"]);
    assert_eq!(b.run_ok().trim(), "reached");
}

/// `/dev` as a bind of a scratch directory, with a real null device and a ptmx link.
fn scratch_dev(b: &mut Bundle) -> PathBuf {
    let dev = b.path().join("scratchdev");
    std::fs::create_dir_all(&dev).unwrap();
    sh(&format!("mknod -m 666 {}/null c 1 3", dev.display()));
    std::os::unix::fs::symlink("pts/ptmx", dev.join("ptmx")).unwrap();
    let m = b.config["mounts"].as_array_mut().unwrap();
    m.retain(|m| m["destination"] != "/dev");
    m.insert(
        1,
        json!({"destination": "/dev", "type": "bind", "source": dev, "options": ["rbind"]}),
    );
    dev
}

/// 22.12: a node listed in linux.devices that already exists (here in a host directory
/// bound on /dev) is left alone: same inode, owner and mode. Only a missing one is made
/// (berth; runc makes no linux.devices at all when /dev is a bind).
#[test]
fn existing_device_node_is_never_replaced() {
    let mut b = bundle(&["true"]);
    let dev = scratch_dev(&mut b);
    sh(&format!("mknod -m 600 {}/mydev c 1 5", dev.display()));
    let before = std::fs::metadata(dev.join("mydev")).unwrap();
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/mydev", "type": "c", "major": 1, "minor": 5, "fileMode": 438, "uid": 100000, "gid": 200000},
        {"path": "/dev/newdev", "type": "c", "major": 1, "minor": 5, "fileMode": 416, "uid": 1000, "gid": 1001}
    ]);
    b.run_ok();
    let after = std::fs::metadata(dev.join("mydev")).unwrap();
    assert_eq!(
        (after.ino(), after.uid(), after.gid(), after.mode()),
        (before.ino(), before.uid(), before.gid(), before.mode()),
        "the existing node was replaced"
    );
    if is_berth() {
        let new = std::fs::metadata(dev.join("newdev")).unwrap();
        assert_eq!(
            (new.uid(), new.gid(), new.mode() & 0o7777),
            (1000, 1001, 0o640)
        );
        assert_eq!(new.rdev(), libc::makedev(1, 5));
    }
}

/// 22.13: `/dev` asked `ro` is read-only in the end, after /dev/pts, /dev/shm and the
/// device nodes were made under it (the devpts mount failed with EROFS).
#[test]
fn read_only_dev_is_made_read_only_last() {
    let mut b = bundle(&[
        "sh",
        "-c",
        "test -e /dev/pts/ptmx && echo pts; echo x > /dev/null && echo null; \
         touch /dev/newfile 2>/dev/null || echo rofs; grep ' /dev ' /proc/self/mountinfo",
    ]);
    for m in b.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev" {
            m["options"].as_array_mut().unwrap().push(json!("ro"));
        }
    }
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], ["pts", "null", "rofs"], "{out}");
    let opts = lines[3].split(' ').nth(5).unwrap();
    assert!(opts.split(',').any(|o| o == "ro"), "{out}");
    assert!(opts.split(',').any(|o| o == "nosuid"), "{out}");
}

/// 22.14: `/proc` or `/sys` in the rootfs that is a link (here to a directory of the
/// image) is refused, as runc refuses it since CVE-2019-19921; nothing is left behind.
#[test]
fn proc_or_sys_that_is_a_link_is_refused() {
    for d in ["proc", "sys"] {
        let b = bundle(&["true"]);
        let r = b.rootfs();
        std::fs::create_dir_all(r.join("tmp/elsewhere")).unwrap();
        std::fs::remove_dir(r.join(d)).unwrap();
        std::os::unix::fs::symlink("/tmp/elsewhere", r.join(d)).unwrap();
        let (code, _out, err) = b.run();
        assert_ne!(code, 0, "{d}: {err}");
        assert!(err.contains("ordinary directory"), "{d}: {err}");
        if is_berth() {
            assert_eq!(err.trim().lines().count(), 1, "{err}");
        }
        assert!(b.state().is_none() && cgroup_dirs(&b.id).is_empty());
        assert_eq!(
            std::fs::read_dir(r.join("tmp/elsewhere")).unwrap().count(),
            0
        );
    }
}

/// 22.15: with --no-pivot, the host's procfs and sysfs must not stay reachable behind the
/// chroot. The kernel lets a user namespace mount a fresh procfs (sysfs) only while one
/// with no locked mounts over its files is in its mount tree; the container's own /proc
/// has its masked paths locked there, so a process that makes user, mount and pid (net)
/// namespaces inside the container cannot (pivot_root), unless the host's is still around
/// behind the chroot (runc detaches those first, msMoveRoot). Checked with pivot_root too.
#[test]
fn no_pivot_leaves_no_full_procfs_to_mount_a_fresh_one_from() {
    for pivot in [true, false] {
        let mut b = bundle(&[
            "sh",
            "-c",
            "mkdir -p /tmp/p; unshare -Urmpf sh -c 'mount -t proc proc /tmp/p && echo MOUNTED'; \
             unshare -Urmn sh -c 'mount -t sysfs sys /tmp/p && echo MOUNTED'; echo end",
        ]);
        // Mapping uid 0 into a new user namespace needs CAP_SETFCAP (Linux 5.12).
        for cap in ["CAP_SETFCAP", "CAP_SETUID", "CAP_SETGID"] {
            add_cap(&mut b, cap);
        }
        let mut args = vec!["run"];
        if !pivot {
            args.push("--no-pivot");
        }
        let path = b.path().to_str().unwrap().to_string();
        args.extend(["--bundle", &path, &b.id]);
        let o = b.rt(&args);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            out.trim(),
            "end",
            "pivot {pivot}: a fresh procfs/sysfs was mounted"
        );
    }
}

/// Unmounts (lazily, all under it) a test's host mount even when an assertion fails.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-R")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// 22.16: a bind volume marked `rshared` with `rootfsPropagation: rshared` is a peer of
/// the host mount (Kubernetes Bidirectional): a mount made inside appears on the host.
#[test]
fn rshared_bind_with_rshared_root_is_bidirectional() {
    let mut b = bundle(&["sh", "-c", "mount -t tmpfs inside /vol/sub && echo mounted"]);
    add_cap(&mut b, "CAP_SYS_ADMIN");
    let vol = b.path().join("vol");
    std::fs::create_dir_all(vol.join("sub")).unwrap();
    let v = vol.display();
    sh(&format!("mount --bind {v} {v} && mount --make-shared {v}"));
    let _guard = Unmount(vol.clone());
    bind(&mut b, &vol, "/vol", &["rbind", "rshared"]);
    b.config["linux"]["rootfsPropagation"] = json!("rshared");
    assert_eq!(b.run_ok().trim(), "mounted");
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let sub = vol.join("sub");
    assert!(
        mi.lines()
            .any(|l| l.split(' ').nth(4) == sub.to_str() && l.contains(" tmpfs inside ")),
        "the container's mount did not reach the host"
    );
}
