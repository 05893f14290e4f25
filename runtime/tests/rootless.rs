//! berth as an ordinary user: test users are made here (one with /etc/subuid and /etc/subgid
//! ranges, one without), and berth runs as them through runuser. Checks id mapping through
//! newuidmap, state in the user's runtime dir, skipped cgroups, and the one-line errors.

mod common;
use common::bundle;
use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const WITH_SUBIDS: &str = "berth-rrt1";
const WITHOUT_SUBIDS: &str = "berth-rrt2";
const SUB_START: u32 = 420000;

/// Makes both users once and sets their subordinate ranges; returns (uid with, uid without).
fn users() -> (u32, u32) {
    static U: OnceLock<(u32, u32)> = OnceLock::new();
    *U.get_or_init(|| {
        for u in [WITH_SUBIDS, WITHOUT_SUBIDS] {
            if !Command::new("id").arg(u).output().unwrap().status.success() {
                let st = Command::new("useradd")
                    .args(["-M", "-s", "/usr/sbin/nologin", u])
                    .status()
                    .unwrap();
                assert!(st.success(), "useradd {u}");
            }
        }
        for f in ["/etc/subuid", "/etc/subgid"] {
            let old = std::fs::read_to_string(f).unwrap_or_default();
            let mut s: String = old
                .lines()
                .filter(|l| !l.starts_with(&format!("{WITH_SUBIDS}:")))
                .filter(|l| !l.starts_with(&format!("{WITHOUT_SUBIDS}:")))
                .map(|l| format!("{l}\n"))
                .collect();
            s.push_str(&format!("{WITH_SUBIDS}:{SUB_START}:65536\n"));
            std::fs::write(f, s).unwrap();
        }
        (uid_of(WITH_SUBIDS), uid_of(WITHOUT_SUBIDS))
    })
}

fn uid_of(user: &str) -> u32 {
    let o = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

/// A busybox bundle owned by `user` (the container's root is the user), with berth copied in
/// so the user can execute it whatever the permissions of the build tree.
struct UserBundle {
    b: common::Bundle,
    user: &'static str,
    xdg: PathBuf,
}

fn user_bundle(user: &'static str, args: &[&str]) -> UserBundle {
    users();
    let b = bundle(args);
    std::fs::copy(common::runtime(), b.path().join("berth")).unwrap();
    let xdg = b.path().join("xdg");
    std::fs::create_dir(&xdg).unwrap();
    let st = Command::new("chown")
        .args(["-R", &format!("{user}:{user}")])
        .arg(b.path())
        .status()
        .unwrap();
    assert!(st.success());
    let ub = UserBundle { b, user, xdg };
    // The user's own rootless spec, with the test's process.
    let o = ub.as_user(&["spec", "--rootless"]);
    assert!(o.status.success(), "spec --rootless: {}", err(&o));
    let mut c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ub.b.path().join("config.json")).unwrap()).unwrap();
    c["process"]["terminal"] = json!(false);
    c["process"]["args"] = json!(args);
    c["root"]["readonly"] = json!(false);
    // runc's default set (kill, net_bind_service, audit_write) plus chown, as images need.
    let caps = json!([
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_CHOWN"
    ]);
    for set in ["bounding", "effective", "permitted"] {
        c["process"]["capabilities"][set] = caps.clone();
    }
    ub.save(&c);
    ub
}

impl UserBundle {
    fn save(&self, c: &serde_json::Value) {
        let p = self.b.path().join("config.json");
        std::fs::write(&p, serde_json::to_vec_pretty(c).unwrap()).unwrap();
        Command::new("chown")
            .arg(format!("{0}:{0}", self.user))
            .arg(&p)
            .status()
            .unwrap();
    }
    fn config(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.b.path().join("config.json")).unwrap()).unwrap()
    }
    /// berth ARGS as the user, in the bundle directory, with XDG_RUNTIME_DIR set.
    fn as_user(&self, args: &[&str]) -> Output {
        self.as_user_env(args, true)
    }
    fn as_user_env(&self, args: &[&str], xdg: bool) -> Output {
        self.as_user_in(None, args, xdg)
    }
    /// `as_user_env`, started in the cgroup2 directory `cg` when given (runuser joins it as
    /// root, before it drops to the user).
    fn as_user_in(&self, cg: Option<&Path>, args: &[&str], xdg: bool) -> Output {
        let mut c = Command::new("runuser");
        if let Some(cg) = cg {
            let procs = cg.join("cgroup.procs");
            // SAFETY: after fork, only a write(2) to a file, as pre_exec allows.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut c, move || {
                    std::fs::write(&procs, "0")
                })
            };
        }
        c.args(["-u", self.user, "--", "env", "-i", "PATH=/usr/bin:/bin"])
            .current_dir(self.b.path());
        if xdg {
            c.arg(format!("XDG_RUNTIME_DIR={}", self.xdg.display()));
        }
        c.arg(self.b.path().join("berth")).args(args);
        c.output().unwrap()
    }
    /// Like `as_user` but the container keeps no pipe of ours open (its stdio goes to a file).
    fn detached(&self, args: &[&str]) -> (bool, String) {
        let log = self.b.path().join("out.log");
        let f = std::fs::File::create(&log).unwrap();
        let st = Command::new("runuser")
            .args(["-u", self.user, "--", "env", "-i", "PATH=/usr/bin:/bin"])
            .arg(format!("XDG_RUNTIME_DIR={}", self.xdg.display()))
            .arg(self.b.path().join("berth"))
            .args(args)
            .current_dir(self.b.path())
            .stdin(std::process::Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .status()
            .unwrap();
        (
            st.success(),
            std::fs::read_to_string(log).unwrap_or_default(),
        )
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.as_user(args);
        assert!(o.status.success(), "berth {args:?}: {}", err(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    /// Runs with config `c`, which must be refused; checks no state is left, returns stderr.
    fn run_refused(&self, c: &serde_json::Value) -> String {
        self.save(c);
        let o = self.as_user(&["run", "--bundle", ".", &self.b.id]);
        assert!(!o.status.success());
        assert!(!self.state_root().join(&self.b.id).exists());
        err(&o)
    }
    fn state_root(&self) -> PathBuf {
        self.xdg.join("berth")
    }
}

impl Drop for UserBundle {
    /// A failed test must not leave the user's container running.
    fn drop(&mut self) {
        let _ = self.as_user(&["delete", "--force", &self.b.id]);
    }
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn user_with_subids_runs_and_execs_with_mapped_ids() {
    let (uid, _) = users();
    let ub = user_bundle(WITH_SUBIDS, &["sleep", "100"]);
    let c = ub.config();
    assert_eq!(
        c["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": uid, "size": 1}, {"containerID": 1, "hostID": SUB_START, "size": 65536}])
    );
    let id = &ub.b.id;
    let (ok, out) = ub.detached(&["run", "-d", "--bundle", ".", id]);
    assert!(ok, "run -d: {out}");
    let st: serde_json::Value = serde_json::from_str(&ub.ok(&["state", id])).unwrap();
    assert_eq!(st["status"], "running");
    assert_eq!(st["owner"], WITH_SUBIDS);
    // State in $XDG_RUNTIME_DIR/berth, none under root's /run/berth.
    assert!(ub.state_root().join(id).is_dir());
    assert!(!Path::new("/run/berth").join(id).exists());
    let maps = ub.ok(&["exec", id, "cat", "/proc/self/uid_map"]);
    let lines: Vec<Vec<&str>> = maps
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        vec![
            vec!["0", &*uid.to_string(), "1"],
            vec!["1", "420000", "65536"]
        ]
    );
    // A file chowned to 1000 inside is owned by the matching subordinate id outside.
    let out = ub.ok(&[
        "exec",
        id,
        "sh",
        "-c",
        "touch /tmp/f && chown 1000:1000 /tmp/f && stat -c %u:%g /tmp/f",
    ]);
    assert_eq!(out.trim(), "1000:1000");
    let md = std::fs::metadata(ub.b.rootfs().join("tmp/f")).unwrap();
    assert_eq!((md.uid(), md.gid()), (SUB_START + 999, SUB_START + 999));
    // Without cgroups, ps and kill --all find the processes by the init's pid namespace.
    let ps: Vec<i64> = serde_json::from_str(&ub.ok(&["ps", "--format", "json", id])).unwrap();
    assert_eq!(ps, vec![st["pid"].as_i64().unwrap()]);
    ub.ok(&["kill", "--all", id, "KILL"]);
    for _ in 0..100 {
        if ub.ok(&["state", id]).contains("stopped") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    ub.ok(&["delete", id]);
    assert!(!ub.state_root().join(id).exists());
}

#[test]
fn user_without_subids_gets_a_single_id_mapping() {
    let (_, uid) = users();
    let ub = user_bundle(
        WITHOUT_SUBIDS,
        &[
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map; touch /tmp/g; chown 1000 /tmp/g || echo chown-refused",
        ],
    );
    let c = ub.config();
    assert_eq!(
        c["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": uid, "size": 1}])
    );
    // No XDG_RUNTIME_DIR: state falls back to /tmp/berth-<uid>, private to the user.
    let log = ub.b.path().join("berth.log");
    let o = ub.as_user_env(
        &[
            "--log",
            log.to_str().unwrap(),
            "run",
            "--bundle",
            ".",
            &ub.b.id,
        ],
        false,
    );
    assert!(o.status.success(), "run: {}", err(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["0", &*uid.to_string(), "1"]
    );
    assert_eq!(lines.get(2), Some(&"chown-refused"), "{out}");
    let fallback = PathBuf::from(format!("/tmp/berth-{uid}"));
    let md = std::fs::metadata(&fallback).unwrap();
    assert_eq!((md.uid(), md.mode() & 0o777), (uid, 0o700));
    assert!(!fallback.join(&ub.b.id).exists(), "run left its state");
    std::fs::remove_dir(&fallback).unwrap();
    // Cgroups the user cannot write are skipped with a notice (in the log), not an error.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("rootless") && logged.contains("not writable"),
        "{logged}"
    );
}

#[test]
fn limits_without_a_writable_cgroup_are_refused_cleanly() {
    let ub = user_bundle(WITH_SUBIDS, &["true"]);
    let mut c = ub.config();
    c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}});
    let e = ub.run_refused(&c);
    assert!(
        e.contains("linux.resources.memory") && e.contains("rootless"),
        "{e}"
    );
}

#[test]
fn ids_outside_the_subordinate_range_are_refused_cleanly() {
    let ub = user_bundle(WITH_SUBIDS, &["true"]);
    let mut c = ub.config();
    c["linux"]["uidMappings"][1]["hostID"] = json!(SUB_START + 100000);
    let e = ub.run_refused(&c);
    assert!(
        e.contains("linux.uidMappings") && e.contains("newuidmap"),
        "{e}"
    );
    let ps = Command::new("pgrep")
        .args(["-u", WITH_SUBIDS, "-f", &ub.b.id])
        .output()
        .unwrap();
    assert!(
        ps.stdout.is_empty(),
        "processes left: {:?}",
        String::from_utf8_lossy(&ps.stdout)
    );
}

#[test]
fn disabled_user_namespaces_are_named_in_the_error() {
    let ub = user_bundle(WITHOUT_SUBIDS, &["true"]);
    let berth = ub.b.path().join("berth");
    // max_user_namespaces of a namespace of our own set to 0 stands in for the sysctl.
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && exec {} --root {}/st run --bundle . {}",
        berth.display(),
        ub.xdg.display(),
        ub.b.id
    );
    let o = Command::new("runuser")
        .args([
            "-u", ub.user, "--", "unshare", "-U", "-r", "sh", "-c", &script,
        ])
        .current_dir(ub.b.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = err(&o);
    assert!(
        e.contains("cannot create a user namespace") && e.contains("max_user_namespaces"),
        "{e}"
    );
    assert!(!ub.xdg.join("st").join(&ub.b.id).exists());
}

#[test]
fn a_config_without_a_user_namespace_names_spec_rootless() {
    let ub = user_bundle(WITHOUT_SUBIDS, &["true"]);
    let mut c = ub.config();
    let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "user");
    let linux = c["linux"].as_object_mut().unwrap();
    linux.remove("uidMappings");
    linux.remove("gidMappings");
    let e = ub.run_refused(&c);
    assert!(e.contains("berth spec --rootless"), "{e}");
}

#[test]
fn a_delegated_cgroup_is_used_and_its_limit_applied() {
    // Root delegates one v1 pids cgroup to the user (on a v2 host: a subtree, likewise).
    let parent = format!("berth-rrt-deleg-{}", std::process::id());
    let ub = user_bundle(WITH_SUBIDS, &["true"]);
    let v2 = common::cgv::v2_only();
    let dir = common::cgv::hierarchy("pids").join(&parent);
    // /sys is the host's, bound read-only: the container reads its own cgroup's files there.
    let script = format!(
        "cat {d}/{0}/pids.max; wc -l < {d}/{0}/cgroup.procs",
        ub.b.id,
        d = dir.display()
    );
    if !dir.parent().unwrap().join("cgroup.procs").exists() {
        eprintln!("no v1 pids hierarchy: skipped");
        return;
    }
    std::fs::create_dir(&dir).unwrap();
    // v2 lets a user move a process only below a common ancestor it may write: the user's
    // berth starts in a delegated `caller` cgroup beside the container's, as under a
    // systemd user scope with Delegate=yes.
    let caller = dir.join("caller");
    if v2 {
        std::fs::create_dir(&caller).unwrap();
    }
    let st = Command::new("chown")
        .args(["-R", &format!("{0}:{0}", ub.user)])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    let mut c = ub.config();
    c["linux"]["cgroupsPath"] = json!(format!("/{parent}/{}", ub.b.id));
    c["linux"]["resources"] = json!({"pids": {"limit": 42}});
    c["process"]["args"] = json!(["sh", "-c", script]);
    ub.save(&c);
    let o = ub.as_user_in(
        v2.then_some(caller.as_path()),
        &["run", "--bundle", ".", &ub.b.id],
        true,
    );
    let left = dir.join(&ub.b.id).exists();
    let _ = std::fs::remove_dir(dir.join(&ub.b.id));
    let _ = std::fs::remove_dir(&caller);
    let _ = std::fs::remove_dir(&dir);
    assert!(o.status.success(), "{}", err(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(lines, ["42", "1"], "{out}");
    assert!(!left, "container cgroup left behind");
}

/// The user without subordinate ids execs into its container too, and the device nodes
/// it could not make (no CAP_MKNOD over the host's devices) are the host's, bound in.
#[test]
fn user_without_subids_execs_and_gets_the_hosts_device_nodes() {
    let ub = user_bundle(WITHOUT_SUBIDS, &["sleep", "100"]);
    let id = &ub.b.id;
    let (ok, out) = ub.detached(&["run", "-d", "--bundle", ".", id]);
    assert!(ok, "run -d: {out}");
    let out = ub.ok(&[
        "exec",
        id,
        "sh",
        "-c",
        "id -u; for d in null zero full random urandom tty; do stat -c '%n %F %t:%T' /dev/$d; done; echo hi > /dev/null && echo wrote",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    for (dev, nums) in [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
        ("tty", "5:0"),
    ] {
        let want = format!("/dev/{dev} character special file {nums}");
        assert!(lines.contains(&want.as_str()), "{want} not in:\n{out}");
    }
    assert_eq!(lines.last(), Some(&"wrote"), "{out}");
    ub.ok(&["kill", id, "KILL"]);
    let o = ub.as_user(&["delete", "--force", id]);
    assert!(o.status.success(), "delete: {}", err(&o));
    assert!(!ub.state_root().join(id).exists());
}

/// Subordinate ranges without newuidmap/newgidmap (hidden here in a mount namespace of
/// our own): one line that says what to install, and nothing left behind.
#[test]
fn missing_newuidmap_names_the_package_to_install() {
    let ub = user_bundle(WITH_SUBIDS, &["true"]);
    let script = format!(
        "for b in newuidmap newgidmap; do for d in /usr/bin /usr/sbin /bin /sbin; do \
         [ -f $d/$b ] && mount --bind /dev/null $d/$b; done; done; \
         exec runuser -u {} -- env -i PATH=/usr/bin:/bin XDG_RUNTIME_DIR={} {} run --bundle . {}",
        ub.user,
        ub.xdg.display(),
        ub.b.path().join("berth").display(),
        ub.b.id
    );
    let o = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .current_dir(ub.b.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = err(&o);
    assert!(
        e.contains("uidmap") && e.contains("linux.uidMappings"),
        "{e}"
    );
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(!ub.state_root().join(&ub.b.id).exists());
}

/// On a cgroup v2 host: root delegates a subtree (chown, hugetlb enabled for its children,
/// the user's shell moved into a leaf of it, as systemd does for a user's slice). The
/// container's cgroup is made in it and its limit applied. No v2-only host is at hand, so
/// the test mounts this machine's cgroup2 hierarchy (hugetlb only) over /sys/fs/cgroup in
/// a mount namespace of its own, where berth sees a pure v2 host.
#[test]
fn a_delegated_cgroup2_subtree_is_used_and_its_limit_applied() {
    let parent = format!("berth-rrt-deleg2-{}", std::process::id());
    let host = Path::new("/sys/fs/cgroup/unified");
    let hugetlb = std::fs::read_to_string(host.join("cgroup.controllers")).unwrap_or_default();
    if !hugetlb.split_whitespace().any(|c| c == "hugetlb") {
        eprintln!("no hugetlb controller on the cgroup2 hierarchy: skipped");
        return;
    }
    let ub = user_bundle(WITH_SUBIDS, &["sleep", "30"]);
    let id = ub.b.id.clone();
    let mut c = ub.config();
    c["linux"]["cgroupsPath"] = json!(format!("/{parent}/{id}"));
    c["linux"]["resources"] = json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]});
    ub.save(&c);
    let as_user = format!(
        "runuser -u {} -- env -i PATH=/usr/bin:/bin XDG_RUNTIME_DIR={} {}",
        ub.user,
        ub.xdg.display(),
        ub.b.path().join("berth").display()
    );
    let script = format!(
        "set -e; umount -R /sys/fs/cgroup; mount -t cgroup2 none /sys/fs/cgroup; \
         P=/sys/fs/cgroup/{parent}; \
         mkdir -p $P/caller; echo +hugetlb > $P/cgroup.subtree_control; \
         chown -R {user}:{user} $P; echo $$ > $P/caller/cgroup.procs; \
         {as_user} run -d --bundle . {id} >run.log 2>&1 </dev/null || {{ cat run.log; exit 1; }}; \
         cat $P/{id}/hugetlb.2MB.max; wc -l < $P/{id}/cgroup.procs; \
         {as_user} delete --force {id}; [ -d $P/{id} ] && echo left || echo gone",
        user = ub.user,
    );
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .current_dir(ub.b.path())
        .output()
        .unwrap();
    let _ = std::fs::remove_dir(host.join(&parent).join(&id));
    let _ = std::fs::remove_dir(host.join(&parent).join("caller"));
    let _ = std::fs::remove_dir(host.join(&parent));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", err(&o));
    let lines: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(lines, ["4194304", "1", "gone"], "{out}{}", err(&o));
    assert!(!host.join(&parent).exists(), "delegated cgroup left behind");
}
