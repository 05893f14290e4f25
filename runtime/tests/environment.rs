//! What a container gets from config.json: namespaces, root, mounts, devices, sysctl,
//! hostname, cgroup placement. Each test reads the effect from inside a real container.
mod common;
use common::*;
use serde_json::json;

fn ns_line(out: &str, name: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
        .to_string()
}

#[test]
fn new_namespaces_differ_from_the_host_and_pid_is_one() {
    let mut b = bundle(&[
        "sh",
        "-c",
        "echo pid=$$; for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done",
    ]);
    // The default spec has a cgroup namespace only on a cgroup2 host (as runc's).
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "cgroup");
    ns.push(json!({"type": "cgroup"}));
    let out = b.run_ok();
    assert!(out.contains("pid=1"), "{out}");
    for n in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        assert_ne!(ns_line(&out, n), host_ns(n), "{n} namespace is the host's");
    }
}

#[test]
fn omitted_namespace_is_shared_with_the_host() {
    let mut b = bundle(&["readlink", "/proc/self/ns/net"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "network");
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["type"] != "sysfs");
    assert_eq!(b.run_ok().trim(), host_ns("net"));
}

#[test]
fn namespace_joined_by_path() {
    let a = bundle(&["sleep", "100"]);
    a.create_ok();
    let pid = a.pid();
    let mut b = bundle(&[
        "sh",
        "-c",
        "readlink /proc/self/ns/net; readlink /proc/self/ns/uts",
    ]);
    for ns in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = json!(format!("/proc/{pid}/ns/net"));
        }
    }
    let out = b.run_ok();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(out.lines().next().unwrap(), theirs.to_str().unwrap());
    assert_ne!(
        out.lines().nth(1).unwrap(),
        std::fs::read_link(format!("/proc/{pid}/ns/uts"))
            .unwrap()
            .to_str()
            .unwrap()
    );
}

#[test]
fn user_namespace_with_mappings() {
    let mut b = bundle(&[
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u",
    ]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    // The rootfs must be accessible to the mapped root.
    std::process::Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(b.rootfs())
        .status()
        .unwrap();
    let out = b.run_ok();
    let maps: Vec<Vec<&str>> = out
        .lines()
        .take(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(maps[0], vec!["0", "100000", "65536"]);
    assert_eq!(maps[1], vec!["0", "100000", "65536"]);
    assert_eq!(out.lines().nth(2).unwrap(), "0");
}

#[test]
fn time_namespace_offsets() {
    if !is_berth() {
        return; // runc 1.1 has no time namespace: there is nothing to compare against
    }
    let mut b = bundle(&["cat", "/proc/self/timens_offsets"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    b.config["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400, "nanosecs": 0}, "boottime": {"secs": 3600, "nanosecs": 5}});
    let out = b.run_ok();
    assert!(out.contains("monotonic") && out.contains("86400"), "{out}");
    assert!(out.contains("boottime") && out.contains("3600"), "{out}");
}

/// With a user namespace too: the offsets are written before the switch to the mapped root
/// (after it the process is non-dumpable and /proc/self/timens_offsets is the host root's).
#[test]
fn time_namespace_offsets_with_a_user_namespace() {
    if !is_berth() {
        return; // runc 1.1 has no time namespace
    }
    let mut b = bundle(&["sh", "-c", "cat /proc/self/timens_offsets; id -u"]);
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.push(json!({"type": "time"}));
    ns.push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400, "nanosecs": 0}});
    std::process::Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(b.rootfs())
        .status()
        .unwrap();
    let out = b.run_ok();
    assert!(out.contains("monotonic") && out.contains("86400"), "{out}");
    assert_eq!(out.lines().last(), Some("0"), "{out}");
}

#[test]
fn hostname_and_domainname() {
    let mut b = bundle(&["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"]);
    b.config["hostname"] = json!("boat");
    b.config["domainname"] = json!("harbour.example");
    let out = b.run_ok();
    assert_eq!(out.lines().next(), Some("boat"));
    if is_berth() {
        // runc 1.1 ignores domainname (it arrived in runc 1.2)
        assert_eq!(out.lines().nth(1), Some("harbour.example"));
    }
}

#[test]
fn readonly_root_and_pivot() {
    let mut b = bundle(&[
        "sh",
        "-c",
        "touch /x 2>/dev/null && echo writable || echo readonly; ls /",
    ]);
    b.config["root"]["readonly"] = json!(true);
    let out = b.run_ok();
    assert!(out.starts_with("readonly"), "{out}");
    assert!(!out.contains("berth-test-"), "host paths visible: {out}");
    let b2 = bundle(&["sh", "-c", "touch /x && echo writable"]);
    assert!(b2.run_ok().contains("writable"));
}

#[test]
fn no_pivot_uses_chroot_and_still_works() {
    let b = bundle(&["sh", "-c", "echo ok; ls /bin/busybox"]);
    let o = b.rt(&[
        "run",
        "--no-pivot",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ok"));
}

#[test]
fn mounts_in_order_with_options() {
    let mut b = bundle(&["sh", "-c", "grep -E ' /(data|data/sub|bound) ' /proc/self/mountinfo; cat /bound/hello; touch /bound/x 2>/dev/null || echo ro-bind"]);
    let host = b.path().join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("hello"), "hi there\n").unwrap();
    let m = b.config["mounts"].as_array_mut().unwrap();
    m.push(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec", "size=1m"]}));
    m.push(
        json!({"destination": "/data/sub", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]}),
    );
    m.push(json!({"destination": "/bound", "type": "bind", "source": host, "options": ["rbind", "ro"]}));
    let out = b.run_ok();
    let data = out
        .lines()
        .find(|l| l.contains(" /data "))
        .expect("no /data mount");
    assert!(
        data.contains("nosuid") && data.contains("nodev") && data.contains("noexec"),
        "{data}"
    );
    let sub = out
        .lines()
        .find(|l| l.contains(" /data/sub "))
        .expect("/data/sub not mounted after /data");
    assert!(sub.contains(" ro"), "{sub}");
    assert!(out.contains("hi there") && out.contains("ro-bind"), "{out}");
}

#[test]
fn mount_destination_symlink_cannot_escape_rootfs() {
    // An image whose /up climbs out with relative links: resolved inside the rootfs.
    let mut b = bundle(&["grep", "-c", " /etc/escape ", "/proc/self/mountinfo"]);
    std::os::unix::fs::symlink("../../../../../../../etc", b.rootfs().join("up")).unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/up/escape", "type": "tmpfs", "source": "tmpfs"}));
    assert_eq!(b.run_ok().trim(), "1");
    assert!(
        !std::path::Path::new("/etc/escape").exists(),
        "mount target created on the host"
    );
    // An image whose /evil names a host directory absolutely: never mounted over on the host.
    let mut b = bundle(&["true"]);
    let victim = b.path().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::os::unix::fs::symlink(&victim, b.rootfs().join("evil")).unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/evil/pwned", "type": "tmpfs", "source": "tmpfs"}));
    let _ = b.run();
    assert!(
        !victim.join("pwned").exists(),
        "a mount followed a symlink out of the rootfs"
    );
}

#[test]
fn default_devices_and_links() {
    let b = bundle(&["sh", "-c", "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done; for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done"]);
    let out = b.run_ok();
    for (d, mm) in [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
        ("tty", "5:0"),
    ] {
        let l = out
            .lines()
            .find(|l| l.starts_with(&format!("/dev/{d} ")))
            .unwrap();
        assert!(
            l.contains("character special") && l.contains(mm) && l.ends_with("666"),
            "{l}"
        );
    }
    assert!(
        out.contains("/proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\npts/ptmx"),
        "{out}"
    );
}

#[test]
fn linux_devices_are_created() {
    let mut b = bundle(&["stat", "-c", "%F %t:%T %a %u:%g", "/dev/mydev"]);
    b.config["linux"]["devices"] = json!([{"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3, "fileMode": 420, "uid": 7, "gid": 8}]);
    b.config["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
    assert_eq!(b.run_ok().trim(), "character special file 1:3 644 7:8");
}

#[test]
fn masked_and_readonly_paths() {
    let mut b = bundle(&["sh", "-c", "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null && echo rw || echo ro"]);
    b.config["root"]["readonly"] = json!(false);
    let out = b.run_ok();
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0].trim(), "0", "timer_list not masked: {out}");
    assert_eq!(l[1].trim(), "0", "/sys/firmware not masked: {out}");
    assert_eq!(l[2], "ro", "/proc/sys not read-only: {out}");
}

#[test]
fn sysctl_is_applied_in_the_container_only() {
    let mut b = bundle(&["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"]);
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_unprivileged_port_start": "42"});
    assert_eq!(b.run_ok().trim(), "42");
    assert_ne!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .unwrap()
            .trim(),
        "42"
    );
}

#[test]
fn cgroup_placement_from_cgroups_path() {
    let mut b = bundle(&["cat", "/proc/self/cgroup"]);
    let rel = format!("berth-test/{}", b.id);
    b.config["linux"]["cgroupsPath"] = json!(rel);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "cgroup");
    let out = b.run_ok();
    // The memory controller's line: its v1 hierarchy's, or the one `0::` line of pure v2.
    let tag = if cgv::v2_only() { "0::" } else { ":memory:" };
    let mem = out
        .lines()
        .find(|l| l.contains(tag))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(mem.ends_with(&rel), "{mem}");
    // every hierarchy, v1 controllers, named ones and the unified tree alike
    assert!(out.lines().all(|l| l.ends_with(&rel)), "{out}");
    assert!(
        cgroup_dirs(&b.id).is_empty(),
        "cgroup left after run: {:?}",
        cgroup_dirs(&b.id)
    );
    let _ = std::fs::remove_dir("/sys/fs/cgroup/berth-test");
    for c in [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd",
        "unified",
    ] {
        let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{c}/berth-test"));
    }
}

#[test]
fn cgroup_mount_shows_the_container_cgroup() {
    // v1: a directory per controller, the container's pids cgroup in pids/; pure v2: the
    // container's cgroup2 directory itself, its controllers' files in it.
    let (script, names) = if cgv::v2_only() {
        (
            "ls /sys/fs/cgroup; cat /sys/fs/cgroup/cgroup.procs",
            ["memory.max", "pids.max", "cpu.max", "cgroup.freeze"],
        )
    } else {
        (
            "ls /sys/fs/cgroup; cat /sys/fs/cgroup/pids/cgroup.procs",
            ["memory", "pids", "cpu", "freezer"],
        )
    };
    let b = bundle(&["sh", "-c", script]);
    let out = b.run_ok();
    for c in names {
        assert!(out.lines().any(|l| l == c), "{c} missing: {out}");
    }
    assert!(
        out.lines().any(|l| l == "1"),
        "container's own pids cgroup not mounted: {out}"
    );
}

/// The host's co-mounted v1 hierarchies (`cpu,cpuacct` on a systemd host), by directory name.
fn comounted_hierarchies() -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            let name = f[4].strip_prefix("/sys/fs/cgroup/")?;
            (f.get(sep + 1) == Some(&"cgroup") && name.contains(',')).then(|| name.to_string())
        })
        .collect()
}

/// As on the host and as runc makes them: each controller of a co-mounted hierarchy is a
/// symlink to it in the container's cgroup tmpfs (`cpu -> cpu,cpuacct`). Only a systemd host
/// on cgroup v1 co-mounts (the VM suite's v1 guest); the CI host mounts each alone.
#[test]
fn comounted_cgroup_hierarchies_are_linked_by_each_name() {
    let merged = comounted_hierarchies();
    if cgv::v2_only() || merged.is_empty() {
        eprintln!("skipped: no co-mounted cgroup v1 hierarchy on this host");
        return;
    }
    let b = bundle(&[
        "sh",
        "-c",
        "for f in /sys/fs/cgroup/*; do echo \"${f##*/}=$(readlink $f)\"; done",
    ]);
    let out = b.run_ok();
    for m in &merged {
        assert!(
            out.lines().any(|l| l == format!("{m}=")),
            "{m} missing: {out}"
        );
        for part in m.split(',') {
            let want = format!("{part}={m}");
            assert!(out.lines().any(|l| l == want), "no {want}: {out}");
        }
    }
}

/// `spec` adds a cgroup namespace only where /sys/fs/cgroup is cgroup2, as runc's spec does
/// (runc 1.1.5 on this cgroup v1 hybrid host: pid, network, ipc, uts, mount; measured), so
/// `exec` on v1 sees the container's cgroup paths and adding one by hand is not a duplicate.
#[test]
fn spec_adds_a_cgroup_namespace_only_on_cgroup2() {
    let b = bundle(&["true"]);
    let unified = nix::sys::statfs::statfs("/sys/fs/cgroup")
        .unwrap()
        .filesystem_type()
        == nix::sys::statfs::CGROUP2_SUPER_MAGIC;
    let mut variants = vec![vec![]];
    if is_berth() {
        variants.push(vec!["--rootless"]);
    }
    for extra in variants {
        let dir = b.path().join(format!("spec{}", extra.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut args = vec!["spec", "--bundle", dir.to_str().unwrap()];
        args.extend(extra.iter().copied());
        b.ok(&args);
        let spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        let types: Vec<&str> = spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(types.contains(&"cgroup"), unified, "{extra:?}: {types:?}");
    }
}
