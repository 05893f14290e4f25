//! Where a container's cgroup is made and what kill and delete may reach: an empty
//! cgroupsPath is runc's default (the id below the caller's cgroup), a hierarchy's root and an
//! existing cgroup holding processes are refused, delete removes only what create made, and
//! processes outside the container are never signalled. Real cgroups on this host; every
//! cgroup a test makes is named `cgroups-…-PID` and removed at its end.
//!
//! These tests guard against signalling the wrong processes, so a regression must not do the
//! damage it is tested for: a create that should have been refused is cleaned up here, by
//! killing its init and removing its state, before `delete --force` could sweep a root cgroup.

mod common;
use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use common::cgv::{hierarchy, v2_only, CG};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A cgroup name unique to this test process.
fn name(what: &str) -> String {
    format!("cgroups-{what}-{}", std::process::id())
}

/// A `sleep` child of the test, to see who survives.
fn sleeper() -> Child {
    Command::new("sleep").arg("60").spawn().unwrap()
}

fn alive(c: &mut Child) -> bool {
    c.try_wait().unwrap().is_none()
}

fn stop(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// Removes `dirs` deepest first, after the processes in them are gone.
fn rmdirs(dirs: &[PathBuf]) {
    let mut dirs = dirs.to_vec();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        for _ in 0..200 {
            if std::fs::remove_dir(&d).is_ok() || !d.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// Every directory `rel` names under any hierarchy (each v1 controller and the unified one;
/// on pure v2 the one tree).
fn everywhere(rel: &str) -> Vec<PathBuf> {
    if v2_only() {
        let d = Path::new(CG).join(rel);
        return if d.is_dir() { vec![d] } else { vec![] };
    }
    std::fs::read_dir(CG)
        .unwrap()
        .flatten()
        .map(|e| e.path().join(rel))
        .filter(|p| p.is_dir())
        .collect()
}

/// `hierarchy:path` of each line of /proc/PID/cgroup.
fn cgroups_of(pid: &str) -> Vec<(String, String)> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, h, p) = (it.next()?, it.next()?, it.next()?);
            Some((h.to_string(), p.to_string()))
        })
        .collect()
}

/// Asserts a create was refused. A create that succeeded is taken back here without
/// `delete` (see the module comment) and the test fails.
fn refused(b: &Bundle) -> String {
    let o = b.create();
    if o.status.success() {
        if let Some(pid) = b.state().and_then(|s| s["pid"].as_i64()) {
            // SAFETY: kill(2) of the init this test's create just made.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        let _ = std::fs::remove_dir_all(b.root.join(&b.id));
        panic!(
            "create with cgroupsPath {} succeeded",
            b.config["linux"]["cgroupsPath"]
        );
    }
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(!b.root.join(&b.id).exists(), "state left behind: {e}");
    e
}

#[test]
fn an_empty_cgroups_path_gets_a_cgroup_of_its_own() {
    let mut b = bundle(&["sleep", "60"]);
    b.config["linux"]["cgroupsPath"] = json!("");
    let mut other = sleeper();
    let o = b.create();
    assert!(o.status.success(), "{}", stderr(&o));
    let pid = b.pid();
    let mine = cgroups_of("self");
    let theirs = cgroups_of(&pid.to_string());
    let shared: Vec<_> = theirs.iter().filter(|c| mine.contains(c)).collect();
    if !shared.is_empty() {
        // SAFETY: kill(2) of the container's init, before any delete could sweep our cgroup.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = std::fs::remove_dir_all(b.root.join(&b.id));
        panic!("the container shares the test's cgroups {shared:?}");
    }
    // runc's default: the container id below the caller's cgroup, in every hierarchy; on
    // pure v2 below its parent (the caller's own holds processes, so no controller could be
    // enabled below it), as runc's v2 manager places it.
    for (h, p) in &theirs {
        let (_, own) = mine.iter().find(|(mh, _)| mh == h).unwrap();
        let own = Path::new(own);
        let base = if v2_only() {
            own.parent().unwrap_or(own)
        } else {
            own
        };
        let want = base.join(&b.id);
        assert_eq!(Path::new(p), want, "hierarchy {h}");
    }
    b.ok(&["delete", "--force", &b.id]);
    assert!(
        alive(&mut other),
        "delete --force killed a process of the caller"
    );
    stop(other);
    assert!(cgroup_dirs(&b.id).is_empty(), "{:?}", cgroup_dirs(&b.id));
}

#[test]
fn a_hierarchy_root_or_the_callers_cgroup_is_refused() {
    for p in ["/", ".", "//", "/./", "./"] {
        let mut b = bundle(&["sleep", "60"]);
        b.config["linux"]["cgroupsPath"] = json!(p);
        let e = refused(&b);
        assert!(e.contains("linux.cgroupsPath"), "{p}: {e}");
    }
}

/// An existing cgroup with a process in it (here one level down, which counts, as runc's
/// recursive check counts it) is refused with one line, as runc 1.2 refuses it; the
/// process is untouched by the create and by a `delete --force` after it.
#[test]
fn a_populated_cgroup_is_refused_and_its_processes_survive() {
    let top = name("pop");
    let inner = hierarchy("pids").join(&top).join("inner");
    std::fs::create_dir_all(&inner).unwrap();
    let mut s = sleeper();
    std::fs::write(inner.join("cgroup.procs"), s.id().to_string()).unwrap();
    for path in [format!("/{top}"), format!("/{top}/inner")] {
        let mut b = bundle(&["sleep", "60"]);
        b.config["linux"]["cgroupsPath"] = json!(path);
        let e = refused(&b);
        assert!(e.contains("cgroup is not empty"), "{e}");
        let _ = b.rt(&["delete", "--force", &b.id]);
        assert!(alive(&mut s), "the cgroup's process was killed");
        assert!(inner.exists(), "the existing cgroup was removed");
    }
    // Nothing was made in the other hierarchies either.
    let made: Vec<_> = everywhere(&top)
        .into_iter()
        .filter(|d| !d.starts_with(hierarchy("pids")))
        .collect();
    stop(s);
    rmdirs(&made);
    rmdirs(&[inner.clone(), inner.parent().unwrap().to_path_buf()]);
    assert!(made.is_empty(), "create made {made:?}");
}

/// An existing empty cgroup may be used, as runc allows; delete then leaves it, while the
/// directories create made (a new parent level included) go.
#[test]
fn delete_removes_only_the_cgroups_create_made() {
    let keep = name("keep");
    let kept = hierarchy("pids").join(&keep);
    std::fs::create_dir(&kept).unwrap();
    let mut b = bundle(&["sleep", "60"]);
    b.config["linux"]["cgroupsPath"] = json!(format!("/{keep}"));
    let o = b.create();
    let made = everywhere(&keep);
    let r = o
        .status
        .success()
        .then(|| b.rt(&["delete", "--force", &b.id]));
    let left = everywhere(&keep);
    rmdirs(&left);
    assert!(o.status.success(), "{}", stderr(&o));
    // v1: the other hierarchies got a new directory each; v2 has the one tree only.
    assert!(made.len() > 1 || (v2_only() && made.len() == 1), "{made:?}");
    assert!(r.unwrap().status.success());
    assert_eq!(left, [kept], "delete removed the wrong cgroups");

    let nest = name("nest");
    let mut b = bundle(&["sleep", "60"]);
    b.config["linux"]["cgroupsPath"] = json!(format!("/{nest}/ctr"));
    b.create_ok();
    assert!(!everywhere(&format!("{nest}/ctr")).is_empty());
    b.ok(&["delete", "--force", &b.id]);
    let left = everywhere(&nest);
    rmdirs(&left);
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A state naming a cgroup that holds berth's caller (as one written by an older berth for
/// cgroupsPath "" does): `delete --force` signals only the container's init, never the
/// caller's processes, and leaves that cgroup in place.
#[test]
fn delete_never_sweeps_a_cgroup_holding_its_caller() {
    let cg = hierarchy("pids").join(name("foreign"));
    std::fs::create_dir(&cg).unwrap();
    let b = bundle(&["sleep", "60"]);
    b.create_ok();
    let st_path = b.root.join(&b.id).join("state.json");
    let mut st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&st_path).unwrap()).unwrap();
    let own = st["cgroup_paths"].clone();
    st["cgroup_paths"] = json!([cg]);
    st.as_object_mut().unwrap().remove("cgroup_made");
    std::fs::write(&st_path, serde_json::to_vec(&st).unwrap()).unwrap();
    let init = b.pid();
    let script = format!(
        "echo $$ > {cg}/cgroup.procs; sleep 60 & s=$!; {rt} --root {root} delete --force {id}; \
         echo rc=$?; kill -0 $s && echo sleep-alive; kill $s",
        cg = cg.display(),
        rt = runtime(),
        root = b.root.display(),
        id = b.id
    );
    let o = Command::new("sh").args(["-c", &script]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    for _ in 0..200 {
        if !Path::new(&format!("/proc/{init}")).exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let init_gone = !Path::new(&format!("/proc/{init}/stat")).exists()
        || std::fs::read_to_string(format!("/proc/{init}/stat")).is_ok_and(|s| s.contains(") Z"));
    let cg_left = cg.exists();
    // The container's own cgroups were not in the edited state: remove them here.
    let own: Vec<PathBuf> = serde_json::from_value(own).unwrap();
    rmdirs(&own);
    rmdirs(&[cg]);
    assert!(out.contains("rc=0"), "{out}{}", stderr(&o));
    assert!(
        out.contains("sleep-alive"),
        "the caller's process was killed: {out}"
    );
    assert!(init_gone, "the container's init survived delete");
    assert!(cg_left, "delete removed a cgroup holding its caller");
}

/// A second, read-only mount of a hierarchy elsewhere (here a bind of the pids hierarchy, or
/// on pure v2 of the cgroup2 tree, in a private mount namespace) is the same hierarchy, not
/// another one to make a cgroup in: create must not fail on it.
#[test]
fn a_read_only_second_mount_of_a_hierarchy_is_not_used() {
    let (count, bound) = if v2_only() {
        ("grep -c ^0:: /proc/self/cgroup", CG.to_string())
    } else {
        ("grep -c pids /proc/self/cgroup", format!("{CG}/pids"))
    };
    let b = bundle(&["sh", "-c", count]);
    b.write();
    let extra = b.path().join("cgro");
    std::fs::create_dir(&extra).unwrap();
    let script = format!(
        "set -e; mount --bind -o ro {bound} {x}; grep -q ' {x} ro' /proc/self/mountinfo; \
         {rt} --root {root} run --bundle {dir} {id}",
        x = extra.display(),
        rt = runtime(),
        root = b.root.display(),
        dir = b.path().display(),
        id = b.id
    );
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert_eq!(out.trim(), "1", "{out}");
    assert!(cgroup_dirs(&b.id).is_empty(), "{:?}", cgroup_dirs(&b.id));
}

/// `create`, killed after 20 s (a create into a frozen cgroup used to wait forever).
fn create_bounded(b: &Bundle) -> std::process::Output {
    b.write();
    let (o, e) = (b.path().join("create.out"), b.path().join("create.err"));
    let status = Command::new("timeout")
        .arg("20")
        .arg(runtime())
        .arg("--root")
        .arg(&b.root)
        .args(["create", "--bundle", b.path().to_str().unwrap(), &b.id])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .status()
        .unwrap();
    std::process::Output {
        status,
        stdout: std::fs::read(&o).unwrap(),
        stderr: std::fs::read(&e).unwrap(),
    }
}

/// Thaws `frozen` (a v1 freezer or cgroup2 directory), kills what is in `dirs`, removes them.
fn thaw_and_remove(frozen: &Path, dirs: &[PathBuf]) {
    let _ = std::fs::write(frozen.join("freezer.state"), "THAWED");
    let _ = std::fs::write(frozen.join("cgroup.freeze"), "0");
    for d in dirs {
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill(2) of a process in a cgroup this test made.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    rmdirs(dirs);
}

/// Issue 22.1: a create into a frozen cgroup (v1 freezer, or cgroup2's cgroup.freeze, here
/// on the parent so the new cgroup is frozen through it) is refused with one line, as runc
/// refuses it, and leaves no init, no state and no cgroup it made.
#[test]
fn a_frozen_cgroup_is_refused_and_nothing_is_left() {
    let v1 = Path::new(CG).join("freezer").join(name("frz1"));
    // The cgroup2 tree: the hybrid host's unified mount, or /sys/fs/cgroup itself.
    let v2 = if v2_only() {
        Path::new(CG).join(name("frz2"))
    } else {
        Path::new(CG).join("unified").join(name("frz2"))
    };
    let mut cases = vec![];
    if !v2_only() {
        std::fs::create_dir(&v1).unwrap();
        std::fs::write(v1.join("freezer.state"), "FROZEN").unwrap();
        cases.push((v1.clone(), format!("/{}", name("frz1"))));
        cases.push((v1.clone(), format!("/{}/ctr", name("frz1"))));
    }
    let with_v2 = std::fs::create_dir(&v2).is_ok() && v2.join("cgroup.freeze").exists();
    if with_v2 {
        std::fs::write(v2.join("cgroup.freeze"), "1").unwrap();
        cases.push((v2.clone(), format!("/{}/ctr", name("frz2"))));
        if v2_only() {
            // On pure v2 the cgroup2 directory is the container's own: frozen itself.
            cases.push((v2.clone(), format!("/{}", name("frz2"))));
        }
    }
    assert!(
        !cases.is_empty(),
        "no freezer: neither v1's nor cgroup.freeze"
    );
    let mut failures = Vec::new();
    for (frozen, path) in cases {
        let mut b = bundle(&["sleep", "60"]);
        b.config["linux"]["cgroupsPath"] = json!(path);
        let o = create_bounded(&b);
        let e = stderr(&o);
        let made: Vec<PathBuf> = everywhere(path.trim_start_matches('/'))
            .into_iter()
            .filter(|d| *d != frozen)
            .collect();
        let state_left = b.root.join(&b.id).exists();
        if o.status.success() || state_left || !made.is_empty() {
            thaw_and_remove(&frozen, &made);
            let _ = std::fs::remove_dir_all(b.root.join(&b.id));
            std::fs::write(frozen.join("freezer.state"), "FROZEN").ok();
            std::fs::write(frozen.join("cgroup.freeze"), "1").ok();
        }
        if o.status.success()
            || state_left
            || !made.is_empty()
            || e.lines().count() != 1
            || !e.contains("container's cgroup is frozen")
        {
            failures.push(format!(
                "{path}: status {:?}, state left {state_left}, made {made:?}: {e}",
                o.status.code()
            ));
        }
    }
    let parents: Vec<PathBuf> = [name("frz1"), name("frz2")]
        .iter()
        .flat_map(|n| everywhere(n))
        .collect();
    thaw_and_remove(&v1, &parents);
    thaw_and_remove(&v2, &parents);
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Issue 22.2: v1 cpuset parents with empty cpuset.cpus/mems (a new cpuset directory starts
/// so without clone_children) are filled from their parent, as runc fills them, so the
/// container can join its cpuset.
#[test]
fn empty_cpuset_parents_are_filled() {
    if v2_only() {
        // v2 cpusets inherit: an empty cpuset.cpus means the parent's (cpuset.cpus.effective).
        eprintln!("pure cgroup v2: no v1 cpuset parents to fill: skipped");
        return;
    }
    let parent = Path::new(CG).join("cpuset").join(name("cpuset"));
    std::fs::create_dir(&parent).unwrap();
    let rd = |f: &str| std::fs::read_to_string(parent.join(f)).unwrap_or_default();
    let was_empty = rd("cpuset.cpus").trim().is_empty();
    let mut b = bundle(&["true"]);
    b.config["linux"]["cgroupsPath"] = json!(format!("/{}/ctr", name("cpuset")));
    let (code, out, err) = b.run();
    let filled = (rd("cpuset.cpus"), rd("cpuset.mems"));
    let left = everywhere(&name("cpuset"));
    rmdirs(&left);
    assert!(
        was_empty,
        "a new cpuset directory was not empty: clone_children is on"
    );
    assert_eq!(code, 0, "{out}{err}");
    let root = |f: &str| std::fs::read_to_string(Path::new(CG).join("cpuset").join(f)).unwrap();
    assert_eq!(filled.0, root("cpuset.cpus"));
    assert_eq!(filled.1, root("cpuset.mems"));
}

/// Issue 16, on a cgroup2-only view of this host (its cgroup2 tree, hugetlb only, mounted
/// over /sys/fs/cgroup in a private mount namespace, as in rootless.rs): with no cgroupsPath
/// the container goes below the parent of the caller's cgroup (which holds the caller, so
/// no controller could be enabled below it), and for a nested absolute path the controllers
/// are enabled in every ancestor's cgroup.subtree_control, as runc does. A hugetlb limit
/// shows the controller reached the container's cgroup.
#[test]
fn v2_placement_and_controllers_down_the_tree() {
    let unified = Path::new(CG).join("unified");
    let ctrls = std::fs::read_to_string(unified.join("cgroup.controllers")).unwrap_or_default();
    if !ctrls.split_whitespace().any(|c| c == "hugetlb")
        || !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists()
    {
        eprintln!("no hugetlb controller on the cgroup2 hierarchy: skipped");
        return;
    }
    let top = name("v2");
    let limit = json!([{"pageSize": "2MB", "limit": 4194304}]);
    let mut b1 = bundle(&["sleep", "60"]);
    b1.config["linux"]["resources"]["hugepageLimits"] = limit.clone();
    b1.write();
    let mut b2 = bundle(&["sleep", "60"]);
    b2.config["linux"]["resources"]["hugepageLimits"] = limit;
    b2.config["linux"]["cgroupsPath"] = json!(format!("/{top}/a/b/ctr"));
    b2.write();
    let run = |b: &Bundle, dir: &str| {
        format!(
            "cd {bd}; {rt} --root {root} run -d --pid-file pid --bundle . {id} </dev/null >out 2>&1 \
             || {{ cat out; exit 1; }}; grep '^0::' /proc/$(cat pid)/cgroup; \
             cat $P/{dir}/hugetlb.2MB.max; {rt} --root {root} delete --force {id}; ",
            bd = b.path().display(),
            rt = runtime(),
            root = b.root.display(),
            id = b.id
        )
    };
    let script = format!(
        "set -e; umount -R /sys/fs/cgroup; mount -t cgroup2 none /sys/fs/cgroup; \
         P=/sys/fs/cgroup/{top}; mkdir -p $P/caller; echo $$ > $P/caller/cgroup.procs; \
         {one} {two} echo $$ > /sys/fs/cgroup/cgroup.procs",
        one = run(&b1, &b1.id),
        two = run(&b2, "a/b/ctr"),
    );
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let left: Vec<PathBuf> = subtree_of(&unified.join(&top));
    rmdirs(&left);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    let want = [
        format!("0::/{top}/{}", b1.id),
        "4194304".into(),
        format!("0::/{top}/a/b/ctr"),
        "4194304".into(),
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), want, "{}", stderr(&o));
    // Only the caller's cgroup (made by this test) was left: delete took what create made.
    assert_eq!(
        left,
        [unified.join(&top), unified.join(&top).join("caller")]
    );
}

/// `p` and the directories below it, parents first (none when `p` is missing).
fn subtree_of(p: &Path) -> Vec<PathBuf> {
    let out = Command::new("find")
        .arg(p)
        .args(["-type", "d"])
        .output()
        .unwrap();
    let mut v: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
    v.sort();
    v
}

/// The `/proc/PID/cgroup` path of each hierarchy line ("" names the unified one on v2).
fn cgroup_lines(pid: i32) -> Vec<(String, String)> {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    cg.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, h, p) = (it.next()?, it.next()?, it.next()?);
            Some((h.to_string(), p.to_string()))
        })
        .collect()
}

/// `exec -d` with `flags`; the exec'd process's host pid.
fn exec_in(b: &Bundle, flags: &[&str]) -> i32 {
    let pf = b.path().join(format!(
        "exec-{}.pid",
        flags.join("_").replace(['/', ','], "-")
    ));
    let mut args = vec!["exec", "-d", "--pid-file", pf.to_str().unwrap()];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[&b.id, "sleep", "30"]);
    let o = b.detached(&args);
    assert!(o.status.success(), "{flags:?}: {}", stderr(&o));
    std::fs::read_to_string(&pf)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Issue 22.7: `exec --cgroup PATH` and `--cgroup CTRL[,CTRL]:PATH` (runc ≥ 1.1) put the
/// exec'd process in an existing sub-cgroup of the container's (v1: of the named
/// controllers, or of all for a bare PATH); a path leaving the container's cgroup or not
/// existing is refused with one line.
#[test]
fn exec_cgroup_joins_a_sub_cgroup_of_the_containers() {
    let b = bundle(&["sleep", "100"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    let init = cgroup_lines(b.pid());
    let dirs = cgroup_dirs(&b.id);
    assert!(!dirs.is_empty(), "no cgroup named {}", b.id);
    for d in &dirs {
        let sub = d.join("sub");
        std::fs::create_dir(&sub).unwrap();
        // A new v1 cpuset starts empty and would refuse the process (ENOSPC); a v2 sub-cgroup
        // has no cpuset files unless enabled (it inherits).
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let empty = std::fs::read_to_string(sub.join(f)).is_ok_and(|v| v.trim().is_empty());
            if let (true, Ok(v)) = (empty, std::fs::read_to_string(d.join(f))) {
                std::fs::write(sub.join(f), v.trim()).unwrap();
            }
        }
    }
    let in_sub = |pid: i32, h: &str| {
        let lines = cgroup_lines(pid);
        let (_, p) = lines.iter().find(|(x, _)| x == h).unwrap();
        let (_, want) = init.iter().find(|(x, _)| x == h).unwrap();
        if *p == format!("{want}/sub") {
            true
        } else {
            assert_eq!(
                p, want,
                "{h} of pid {pid}: neither the container's cgroup nor sub"
            );
            false
        }
    };
    let all = exec_in(&b, &["--cgroup", "sub"]);
    for (h, _) in &init {
        assert!(
            in_sub(all, h),
            "--cgroup sub: {h} line of the exec'd process"
        );
    }
    if !v2_only() {
        let some = exec_in(&b, &["--cgroup", "memory,pids:/sub"]);
        for (h, _) in &init {
            let named = h.split(',').any(|c| c == "memory" || c == "pids");
            assert_eq!(
                in_sub(some, h),
                named,
                "--cgroup memory,pids:/sub: {h} line"
            );
        }
    }
    if is_berth() {
        for (arg, why) in [("../sub", "'..'"), ("nope", "does not exist")] {
            let o = b.rt(&["exec", "--cgroup", arg, &b.id, "true"]);
            let e = stderr(&o);
            assert!(
                !o.status.success() && e.contains(why),
                "--cgroup {arg}: {e}"
            );
            assert_eq!(e.trim().lines().count(), 1, "--cgroup {arg}: {e}");
        }
    }
    b.ok(&["delete", "--force", &b.id]);
    assert!(
        cgroup_dirs(&b.id).is_empty(),
        "left behind: {:?}",
        cgroup_dirs(&b.id)
    );
}
