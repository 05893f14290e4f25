//! runtime-spec 1.2/1.3 mounts and network devices: recursive mount attributes
//! (mount_setattr), idmapped mounts, and linux.netDevices (a veth end moved in, renamed,
//! with its address; restored on delete). Effects are read inside a real container
//! (/proc/self/mountinfo, stat, ip) and on the host.
mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A host directory with a tmpfs mounted on its `sub` directory, unmounted on drop.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        let dir = Tree::top();
        sh(&format!(
            "mount -t tmpfs tmpfs {}/sub",
            dir.path().display()
        ));
        Tree { dir }
    }
    /// As `new`, but sub is a bind of a directory of the temp dir's own filesystem: tmpfs
    /// takes idmapped mounts only from Linux 6.3 (Debian 12 runs 6.1), ext4 from 5.12.
    fn with_bound_sub() -> Tree {
        let dir = Tree::top();
        std::fs::create_dir(dir.path().join("subsrc")).unwrap();
        sh(&format!(
            "mount --bind {0}/subsrc {0}/sub",
            dir.path().display()
        ));
        Tree { dir }
    }
    fn top() -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix("berth-mnt-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("f"), "top").unwrap();
        dir
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.path().join("sub")).status();
    }
}

fn sh(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().unwrap();
    assert!(st.success(), "{cmd} failed");
}

/// The per-mount options (6th field) of the mountinfo line for `mnt`.
fn mount_opts(mountinfo: &str, mnt: &str) -> String {
    mountinfo
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .filter(|f| f.len() > 5 && f[4] == mnt)
        .map(|f| f[5].to_string())
        .next_back()
        .unwrap_or_else(|| panic!("{mnt} not in mountinfo:\n{mountinfo}"))
}

#[test]
fn recursive_mount_attributes_reach_submounts() {
    // runc 1.1 implements these options too (mount_setattr, runc 1.1.0): runs against runc.
    let t = Tree::new();
    let mut b = bundle(&["cat", "/proc/self/mountinfo"]);
    let opts = ["rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnoatime"];
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/mnt", "type": "bind", "source": t.path(), "options": opts}));
    let out = b.run_ok();
    for m in ["/mnt", "/mnt/sub"] {
        let o = mount_opts(&out, m);
        for want in ["ro", "nosuid", "nodev", "noexec", "noatime"] {
            assert!(
                o.split(',').any(|x| x == want),
                "{m}: {want} missing in {o}"
            );
        }
    }
}

/// A tmpfs on a fresh directory with another tmpfs on its `sub`, both remounted with
/// `preset` mount flags (the opposite of what the option under test asks for).
struct Preset {
    dir: tempfile::TempDir,
}

impl Preset {
    fn new(preset: &str) -> Preset {
        let dir = tempfile::Builder::new()
            .prefix("berth-rec-")
            .tempdir()
            .unwrap();
        let d = dir.path().display().to_string();
        sh(&format!(
            "mount -t tmpfs tmpfs {d} && mkdir {d}/sub && mount -t tmpfs tmpfs {d}/sub"
        ));
        let p = Preset { dir };
        if !preset.is_empty() {
            sh(&format!(
                "mount -o remount,bind,{preset} {d}/sub && mount -o remount,bind,{preset} {d}"
            ));
        }
        p
    }
}

impl Drop for Preset {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.path())
            .status();
    }
}

/// Every recursive option: (option, preset on the source and its submount, flags the
/// container's mountinfo must show on both, flags it must not show). Strictatime shows as
/// neither relatime nor noatime.
const RECURSIVE: [(&str, &str, &[&str], &[&str]); 16] = [
    ("rro", "", &["ro"], &["rw"]),
    ("rrw", "ro", &["rw"], &["ro"]),
    ("rnosuid", "", &["nosuid"], &[]),
    ("rsuid", "nosuid", &[], &["nosuid"]),
    ("rnodev", "", &["nodev"], &[]),
    ("rdev", "nodev", &[], &["nodev"]),
    ("rnoexec", "", &["noexec"], &[]),
    ("rexec", "noexec", &[], &["noexec"]),
    ("rrelatime", "strictatime", &["relatime"], &["noatime"]),
    ("rnorelatime", "", &["relatime"], &["noatime"]),
    ("rnoatime", "", &["noatime"], &["relatime"]),
    ("ratime", "noatime", &["relatime"], &["noatime"]),
    ("rstrictatime", "noatime", &[], &["relatime", "noatime"]),
    ("rnostrictatime", "strictatime", &["relatime"], &["noatime"]),
    ("rnosymfollow", "", &["nosymfollow"], &[]),
    ("rsymfollow", "nosymfollow", &[], &["nosymfollow"]),
];

/// The options runc 1.1 applies as berth does (rnorelatime a no-op: it clears RELATIME, 0);
/// it refuses ratime and rnostrictatime (a partial atime clear, EINVAL).
const RUNC_11: [&str; 14] = [
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rrelatime",
    "rnorelatime",
    "rnoatime",
    "rstrictatime",
    "rnosymfollow",
    "rsymfollow",
];

#[test]
fn every_recursive_option_reaches_mount_and_submount() {
    // One container, one bind mount per option at /m/<option>.
    let rows: Vec<_> = RECURSIVE
        .iter()
        .filter(|r| is_berth() || RUNC_11.contains(&r.0))
        .collect();
    let trees: Vec<Preset> = rows.iter().map(|r| Preset::new(r.1)).collect();
    let mut b = bundle(&["cat", "/proc/self/mountinfo"]);
    for (r, t) in rows.iter().zip(&trees) {
        b.config["mounts"].as_array_mut().unwrap().push(json!({
            "destination": format!("/m/{}", r.0), "type": "bind",
            "source": t.dir.path(), "options": ["rbind", r.0]}));
    }
    let out = b.run_ok();
    let mut bad = vec![];
    for (opt, preset, has, lacks) in rows {
        for m in [format!("/m/{opt}"), format!("/m/{opt}/sub")] {
            let o = mount_opts(&out, &m);
            let flags: Vec<&str> = o.split(',').collect();
            if has.iter().any(|f| !flags.contains(f)) || lacks.iter().any(|f| flags.contains(f)) {
                bad.push(format!("{opt} (preset {preset:?}) on {m}: {o}"));
            }
        }
    }
    assert!(bad.is_empty(), "wrong flags:\n{}", bad.join("\n"));
}

#[test]
fn recursive_nosymfollow_and_clearing_attributes() {
    if !is_berth() {
        return; // runc 1.1 does not know rnosymfollow/rsymfollow (runc 1.2)
    }
    let t = Tree::new();
    sh(&format!(
        "mount -o remount,nosuid {}/sub",
        t.path().display()
    ));
    let mut b = bundle(&["cat", "/proc/self/mountinfo"]);
    let opts = ["rbind", "rnosymfollow", "rsuid"];
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/mnt", "type": "bind", "source": t.path(), "options": opts}));
    let out = b.run_ok();
    let sub = mount_opts(&out, "/mnt/sub");
    assert!(sub.contains("nosymfollow"), "{sub}");
    // rsuid cleared the nosuid the host's submount had.
    assert!(!sub.split(',').any(|x| x == "nosuid"), "{sub}");
}

#[test]
fn mount_option_the_kernel_refuses_names_the_mount() {
    if !is_berth() {
        return; // runc's message differs; the effect tests above cover runc
    }
    let mut b = bundle(&["true"]);
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["size=notanumber"]}),
    );
    let o = b.create();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("mounts[") && err.contains("/mnt"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert_gone(&b);
}

/// A failed create leaves no state, no cgroup directory and no mount of its bundle.
fn assert_gone(b: &Bundle) {
    assert_eq!(b.status(), "gone");
    assert_eq!(cgroup_dirs(&b.id), Vec::<PathBuf>::new(), "cgroups left");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = b.path().to_str().unwrap();
    assert!(!mounts.contains(dir), "mounts left under {dir}:\n{mounts}");
}

fn idmapped_bundle(src: &Path, args: &[&str], mount: serde_json::Value) -> Bundle {
    let mut b = bundle(args);
    let mut m = json!({"destination": "/mnt", "type": "bind", "source": src});
    for (k, v) in mount.as_object().unwrap() {
        m[k] = v.clone();
    }
    b.config["mounts"].as_array_mut().unwrap().push(m);
    b
}

#[test]
fn idmapped_mount_with_its_own_mappings() {
    if !is_berth() {
        return; // runc 1.1 has no idmapped mounts (runc 1.2)
    }
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f"), "x").unwrap(); // owned by root:root on disk
    let b = idmapped_bundle(
        src.path(),
        &[
            "sh",
            "-c",
            "stat -c %u:%g /mnt/f; grep ' /mnt ' /proc/self/mountinfo",
        ],
        json!({"options": ["bind", "idmap"],
               "uidMappings": [{"containerID": 0, "hostID": 1234, "size": 1}],
               "gidMappings": [{"containerID": 0, "hostID": 4321, "size": 1}]}),
    );
    let out = b.run_ok();
    assert_eq!(out.lines().next(), Some("1234:4321"), "{out}");
    assert!(out.contains("idmapped"), "{out}");
    // The host's view is unchanged.
    let md = std::fs::metadata(src.path().join("f")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&md), 0);
}

#[test]
fn idmap_option_uses_the_container_user_namespace() {
    if !is_berth() {
        return; // runc 1.1 has no idmapped mounts
    }
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f"), "x").unwrap();
    let mut b = idmapped_bundle(
        src.path(),
        &["stat", "-c", "%u:%g", "/mnt/f"],
        json!({"options": ["rbind", "ridmap"]}),
    );
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    // The rootfs must be owned by the container's root for the user namespace to use it.
    sh(&format!("chown -R 100000:100000 {}", b.rootfs().display()));
    // Root-owned on disk, root inside: without the idmap it would show as nobody (65534).
    assert_eq!(b.run_ok().trim(), "0:0");
}

#[test]
fn idmap_bad_input_names_the_mount() {
    if !is_berth() {
        return; // runc 1.1 ignores mount mappings
    }
    let src = tempfile::tempdir().unwrap();
    // Only uidMappings: the spec wants both.
    let b = idmapped_bundle(
        src.path(),
        &["true"],
        json!({"options": ["bind", "idmap"], "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}),
    );
    let o = b.create();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("mounts[") && err.contains("gidMappings"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert_gone(&b);
}

#[test]
fn ridmap_reaches_the_submount_and_idmap_does_not() {
    if !is_berth() {
        return; // runc 1.1 has no idmapped mounts
    }
    // Root-owned f, and a submount on sub (root-owned g in it).
    let t = Tree::with_bound_sub();
    std::fs::write(t.path().join("sub/g"), "x").unwrap();
    let mut b = bundle(&[
        "sh",
        "-c",
        "stat -c %u:%g /a/f /a/sub/g /b/f /b/sub/g; cat /proc/self/mountinfo",
    ]);
    for (dest, opt) in [("/a", "idmap"), ("/b", "ridmap")] {
        b.config["mounts"].as_array_mut().unwrap().push(json!({
            "destination": dest, "type": "bind", "source": t.path(), "options": ["rbind", opt],
            "uidMappings": [{"containerID": 0, "hostID": 1234, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 4321, "size": 1}]}));
    }
    let out = b.run_ok();
    let owners: Vec<&str> = out.lines().take(4).collect();
    assert_eq!(
        owners,
        ["1234:4321", "0:0", "1234:4321", "1234:4321"],
        "/a/f /a/sub/g /b/f /b/sub/g: {out}"
    );
    let idmapped = |m: &str| mount_opts(&out, m).split(',').any(|o| o == "idmapped");
    assert!(idmapped("/a") && !idmapped("/a/sub"), "{out}");
    assert!(idmapped("/b") && idmapped("/b/sub"), "{out}");
}

/// A veth pair on the host, deleted on drop (this kernel has no `dummy` link type).
struct Veth {
    a: String,
}

impl Veth {
    fn new(addr: &str) -> Veth {
        let v = Veth::down(addr);
        sh(&format!("ip link set {} up", v.a));
        v
    }
    /// Both ends down, as `ip link add` leaves them.
    fn down(addr: &str) -> Veth {
        let n = std::process::id() % 100000;
        let seq = SEQ_VETH.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let a = format!("bv{n}x{seq}");
        sh(&format!(
            "ip link add {a} type veth peer name {a}p && ip addr add {addr} dev {a}"
        ));
        Veth { a }
    }
    fn on_host(&self) -> bool {
        PathBuf::from("/sys/class/net").join(&self.a).exists()
    }
    /// Whether the host's device is administratively up (IFF_UP).
    fn up_on_host(&self) -> bool {
        let f = std::fs::read_to_string(format!("/sys/class/net/{}/flags", self.a)).unwrap();
        u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).unwrap() & 1 != 0
    }
}

/// The link flags (`<BROADCAST,MULTICAST,UP,…>`) in `ip -o link` output.
fn link_flags(ip_link: &str) -> Vec<String> {
    let s = ip_link.split('<').nth(1).and_then(|r| r.split('>').next());
    s.unwrap_or("").split(',').map(str::to_string).collect()
}

static SEQ_VETH: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.a]).status();
    }
}

#[test]
fn net_device_moves_in_renamed_with_address_and_returns_on_delete() {
    if !is_berth() {
        return; // runc 1.1 has no linux.netDevices (runc 1.3)
    }
    let v = Veth::new("10.213.7.1/24");
    let mut b = bundle(&["sleep", "100"]);
    b.config["linux"]["netDevices"] = json!({v.a.clone(): {"name": "ctr7"}});
    b.create_ok();
    assert!(!v.on_host(), "{} still on the host", v.a);
    let out = b.ok(&[
        "exec",
        &b.id,
        "sh",
        "-c",
        "ip -o addr show dev ctr7; ip -o link show dev ctr7",
    ]);
    assert!(out.contains("10.213.7.1/24"), "address not kept: {out}");
    assert!(out.contains("UP"), "up state not kept: {out}");
    b.ok(&["delete", "--force", &b.id]);
    assert!(v.on_host(), "{} not restored to the host", v.a);
    let host = Command::new("ip")
        .args(["-o", "addr", "show", "dev", &v.a])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&host.stdout).contains("10.213.7.1/24"));
    assert!(v.up_on_host(), "{} came back down", v.a);
}

#[test]
fn net_device_that_was_down_is_set_up_inside() {
    if !is_berth() {
        return; // runc 1.1 has no linux.netDevices
    }
    // The spec: "The runtime MUST set the network device state to 'up' after moving it".
    // The peer stays down on the host, so the link is up but has no carrier (admin state).
    let v = Veth::down("10.213.9.1/24");
    assert!(!v.up_on_host());
    let mut b = bundle(&["sleep", "100"]);
    b.config["linux"]["netDevices"] = json!({v.a.clone(): {"name": "ctr9"}});
    b.create_ok();
    let out = b.ok(&["exec", &b.id, "ip", "-o", "link", "show", "dev", "ctr9"]);
    assert!(
        link_flags(&out).contains(&"UP".to_string()),
        "not up: {out}"
    );
    b.ok(&["delete", "--force", &b.id]);
    // Back on the host as it was there: down.
    assert!(
        v.on_host() && !v.up_on_host(),
        "{} not restored as it was",
        v.a
    );
}

#[test]
fn net_device_failed_create_loses_no_link() {
    if !is_berth() {
        return; // runc 1.1 ignores linux.netDevices
    }
    let (v1, v2) = (Veth::new("10.213.10.1/24"), Veth::new("10.213.11.1/24"));
    // A failed create must name the field in one line, leave nothing, and lose no link.
    let fails = |devs: Value, mount: Option<Value>, field: &str| {
        let mut b = bundle(&["true"]);
        b.config["linux"]["netDevices"] = devs;
        if let Some(m) = mount {
            b.config["mounts"].as_array_mut().unwrap().push(m);
        }
        let o = b.create();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(err.contains(field), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
        assert!(v1.on_host() && v2.on_host(), "a link was lost: {err}");
        assert!(v1.up_on_host() && v2.up_on_host(), "a link came back down");
        assert_gone(&b);
    };
    // Two devices under one name (the spec: a name taken in the container is an error).
    let dup = json!({v1.a.clone(): {"name": "dup0"}, v2.a.clone(): {"name": "dup0"}});
    fails(dup, None, &format!("linux.netDevices.{}", v2.a));
    // A name the new namespace already has: the kernel moves the device, then refuses the
    // rename, so it sits inside under its host name and must still come back.
    let lo = json!({v1.a.clone(): {"name": "lo"}});
    fails(lo, None, &format!("linux.netDevices.{}", v1.a));
    // A failure after the move (a mount the kernel refuses, in the init).
    let both = json!({v1.a.clone(): {}, v2.a.clone(): {"name": "ctr11"}});
    let bad = json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
        "options": ["size=notanumber"]});
    fails(both, Some(bad), "mounts[");
}

#[test]
fn net_device_that_does_not_exist_names_the_field() {
    if !is_berth() {
        return; // runc 1.1 ignores linux.netDevices
    }
    let mut b = bundle(&["true"]);
    b.config["linux"]["netDevices"] = json!({"nosuchdev0": {}});
    let o = b.create();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("linux.netDevices.nosuchdev0"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_gone(&b);
}

#[test]
fn net_device_returns_after_the_container_exited() {
    if !is_berth() {
        return; // runc 1.1 has no linux.netDevices
    }
    // A veth dies with its namespace unless the runtime keeps the namespace for delete.
    let v = Veth::new("10.213.8.1/24");
    let mut b = bundle(&["true"]);
    b.config["linux"]["netDevices"] = json!({v.a.clone(): {}});
    b.create_ok();
    assert!(!v.on_host(), "{} was not moved into the container", v.a);
    b.ok(&["start", &b.id]);
    b.wait_status("stopped");
    b.ok(&["delete", &b.id]);
    assert!(v.on_host(), "{} lost when the container exited", v.a);
}
