//! Cgroup placement: the container's cgroup is made from `cgroupsPath` in every mounted
//! hierarchy (each v1 controller, named hierarchies, and the unified tree), the init joins
//! it, and delete removes it. Callers go through [`Manager`] (manager.rs), whose backends
//! (fs.rs: cgroupfs v1 and v2; systemd/) use the helpers here; v1 and v2 differ only in the
//! per-controller files (v1.rs, v2.rs).

pub mod devbpf;
pub mod devemu;
pub mod fs;
pub mod hierarchy;
pub mod journal;
pub mod manager;
pub mod members;
pub mod plan;
pub mod resources;
pub mod stats;
pub mod systemd;
pub mod v1;
pub mod v2;
pub mod validate;

pub use hierarchy::{hierarchies, is_v2_only, Hierarchy};
pub use manager::{Driver, Manager};

use crate::error::{Context, Error, Result};
use std::path::{Component, Path, PathBuf};

/// The container's directory in each hierarchy. A relative `cgroupsPath` (or none, or an
/// empty one, which mean the container id, as runc) is taken below the caller's own cgroup,
/// or on a v2-only host below its parent, as runc's v2 manager places it.
/// A path naming a hierarchy's root ("/", ".", "") or the caller's own cgroup is refused:
/// the container would share it, and kill and delete would reach its other processes.
pub fn container_paths(
    hs: &[Hierarchy],
    cgroups_path: Option<&Path>,
    id: &str,
) -> Result<Vec<PathBuf>> {
    let p = cgroups_path
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(id));
    if p.to_string_lossy().contains(':') {
        return Err(Error::Other(format!(
            "linux.cgroupsPath {p:?}: a systemd slice:prefix:name path needs --systemd-cgroup (or use a cgroupfs path)"
        )));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(Error::Other(format!(
            "linux.cgroupsPath {p:?}: must not contain '..'"
        )));
    }
    let rel: PathBuf = p
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    if rel.as_os_str().is_empty() {
        return Err(Error::Other(format!(
            "linux.cgroupsPath {p:?}: names a hierarchy's root or the caller's own cgroup; a container needs a cgroup of its own"
        )));
    }
    let v2_only = is_v2_only(hs);
    Ok(hs
        .iter()
        .map(|h| {
            let own = Path::new(h.current.trim_start_matches('/'));
            let base = if p.is_absolute() {
                h.mount.clone()
            } else if v2_only {
                // The caller's own cgroup holds processes, so the no-internal-processes rule
                // would keep controllers from its children: runc uses its parent instead.
                h.mount.join(own.parent().unwrap_or(own))
            } else {
                h.mount.join(own)
            };
            base.join(&rel)
        })
        .collect())
}

/// Refuses cgroups that exist and hold processes (in them or below), as runc does: the
/// container would share them with processes it does not own, and kill and delete would
/// reach those. Checked in every hierarchy, not only one as runc does.
pub fn check_unused(paths: &[PathBuf]) -> Result<()> {
    for p in paths {
        let n = members::all_pids(p).len();
        if n > 0 {
            return Err(Error::Other(format!(
                "container's cgroup is not empty: {n} process(es) found in {}",
                p.display()
            )));
        }
    }
    Ok(())
}

/// Refuses a cgroup that is frozen (v1 freezer FROZEN or FREEZING, itself or through a
/// frozen parent; v2 cgroup.freeze set, or frozen through a parent), as runc does: the
/// init would stop on joining it and create would wait forever.
pub fn check_not_frozen(paths: &[PathBuf]) -> Result<()> {
    for p in paths {
        let frozen = if p.join("freezer.state").exists() {
            v1::is_frozen(p)
        } else {
            v2::is_frozen(p)
                || std::fs::read_to_string(p.join("cgroup.events"))
                    .is_ok_and(|e| e.lines().any(|l| l == "frozen 1"))
        };
        if frozen {
            return Err(Error::Other(format!(
                "container's cgroup is frozen: {} (thaw it, or choose another linux.cgroupsPath)",
                p.display()
            )));
        }
    }
    Ok(())
}

/// Makes the directories, adding those it made to `made`, parents first (the rest existed;
/// on failure `made` still lists what to take back). On v1 cpuset, new levels inherit
/// cpus/mems from their parent (an empty cpuset refuses tasks).
pub fn create(hs: &[Hierarchy], paths: &[PathBuf], made: &mut Vec<PathBuf>) -> Result<()> {
    let v2_only = is_v2_only(hs);
    for (h, p) in hs.iter().zip(paths) {
        create_one(h, p, v2_only, made)?;
    }
    Ok(())
}

/// One hierarchy's part of [`create`]; `v2_only` tells whether the host has only cgroup2.
pub(crate) fn create_one(
    h: &Hierarchy,
    p: &Path,
    v2_only: bool,
    made: &mut Vec<PathBuf>,
) -> Result<()> {
    if h.controllers.split(',').any(|c| c == "cpuset") {
        v1::create_cpuset(&h.mount, p, made)?;
    } else {
        mkdir_all(&h.mount, p, made)?;
    }
    if v2_only {
        v2::enable_controllers(&h.mount, p);
    }
    Ok(())
}

/// mkdir -p below `mount`, recording each directory made (a concurrent maker's is not ours).
fn mkdir_all(mount: &Path, p: &Path, made: &mut Vec<PathBuf>) -> Result<()> {
    let rel = p.strip_prefix(mount).unwrap_or(p);
    let mut cur = mount.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match std::fs::create_dir(&cur) {
            Ok(()) => made.push(cur.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(format!("cgroup {}", cur.display()), e)),
        }
    }
    Ok(())
}

/// Rootless: makes the cgroups the caller may write (a delegated subtree) and skips the rest
/// with a notice; returns the hierarchies and paths kept, adding the directories made to
/// `made`. A limit whose controller sits in a skipped cgroup is an error, as with
/// rootless runc; device rules are not (the user namespace already denies device creation).
pub fn create_rootless(
    hs: Vec<Hierarchy>,
    paths: Vec<PathBuf>,
    r: &oci_spec::runtime::LinuxResources,
    made: &mut Vec<PathBuf>,
) -> Result<(Vec<Hierarchy>, Vec<PathBuf>)> {
    let v2_only = is_v2_only(&hs);
    let (mut kh, mut kp, mut skipped) = (vec![], vec![], vec![]);
    for (h, p) in hs.into_iter().zip(paths) {
        match create_one(&h, &p, v2_only, made) {
            Ok(()) => {
                kh.push(h);
                kp.push(p);
            }
            Err(e) if crate::rootless::is_permission(&e) => skipped.push((h, p)),
            Err(e) => return Err(e),
        }
    }
    let Some((_, first)) = skipped.first() else {
        return Ok((kh, kp));
    };
    let unmet: Vec<&str> = requested_limits(r)
        .into_iter()
        .filter(|(field, ctrls)| {
            skipped.iter().any(|(h, _)| {
                if h.v2 {
                    v2_only || matches!(*field, "hugepageLimits" | "unified")
                } else {
                    h.controllers.split(',').any(|c| ctrls.contains(&c))
                }
            })
        })
        .map(|(f, _)| f)
        .collect();
    if !unmet.is_empty() {
        let _ = remove(&kp, Some(made));
        return Err(Error::Other(format!(
            "linux.resources.{}: cannot be applied rootless: cgroup {} is not writable by uid {} (delegate a cgroup to this user, or drop the limits)",
            unmet.join(", linux.resources."),
            first.display(),
            crate::rootless::host_uid()
        )));
    }
    crate::logger::notice(&format!(
        "rootless: {} of {} cgroups are not writable (e.g. {}); the container runs without them",
        skipped.len(),
        skipped.len() + kp.len(),
        first.display()
    ));
    Ok((kh, kp))
}

/// The limit groups a config sets (devices aside), each with the v1 controllers it needs.
fn requested_limits(
    r: &oci_spec::runtime::LinuxResources,
) -> Vec<(&'static str, &'static [&'static str])> {
    let set: [(&str, &[&str], bool); 8] = [
        ("memory", &["memory"], r.memory().is_some()),
        ("cpu", &["cpu", "cpuset"], r.cpu().is_some()),
        ("pids", &["pids"], r.pids().is_some()),
        ("blockIO", &["blkio", "io"], r.block_io().is_some()),
        (
            "hugepageLimits",
            &["hugetlb"],
            r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty()),
        ),
        ("network", &["net_cls", "net_prio"], r.network().is_some()),
        (
            "rdma",
            &["rdma"],
            r.rdma().as_ref().is_some_and(|v| !v.is_empty()),
        ),
        (
            "unified",
            &[],
            r.unified().as_ref().is_some_and(|v| !v.is_empty()),
        ),
    ];
    set.iter().filter(|s| s.2).map(|s| (s.0, s.1)).collect()
}

/// How a container's first process gets into its cgroups. A parent moving a child through
/// `cgroup.procs` takes the kernel's global threadgroup lock for writing, which waits for an
/// RCU grace period: 10–20 ms here, half of a whole container start. A single-threaded process
/// moving itself through a v1 `tasks` file ("0" = the calling thread) skips that lock, so the
/// stage-1 child joins its v1 cgroups itself and the parent joins it only to the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinBy {
    /// Root in the initial user namespace: the child writes its own v1 `tasks` files.
    SelfV1,
    /// Rootless (delegated cgroups may grant only cgroup.procs): the parent does it all.
    Parent,
}

impl JoinBy {
    pub fn for_caller() -> JoinBy {
        if crate::rootless::is_rootless() {
            JoinBy::Parent
        } else {
            JoinBy::SelfV1
        }
    }
}

/// A v1 cgroup directory has a `tasks` file; a cgroup2 one does not.
fn is_v1_dir(p: &Path) -> bool {
    p.join("tasks").exists()
}

/// Run by the single-threaded stage-1 child, before it joins any namespace (see [`JoinBy`]).
pub fn join_self(paths: &[PathBuf], by: JoinBy) -> Result<()> {
    if by != JoinBy::SelfV1 {
        return Ok(());
    }
    for p in paths.iter().filter(|p| is_v1_dir(p)) {
        let f = p.join("tasks");
        std::fs::write(&f, "0").ctx(|| format!("join cgroup {}", f.display()))?;
    }
    Ok(())
}

/// Run by the parent for the child `pid`: the cgroups [`join_self`] left to it.
pub fn join_child(paths: &[PathBuf], pid: i32, by: JoinBy) -> Result<()> {
    let rest: Vec<PathBuf> = paths
        .iter()
        .filter(|p| by == JoinBy::Parent || !is_v1_dir(p))
        .cloned()
        .collect();
    join(&rest, pid)
}

pub fn join(paths: &[PathBuf], pid: i32) -> Result<()> {
    for p in paths {
        let f = p.join("cgroup.procs");
        std::fs::write(&f, pid.to_string()).ctx(|| format!("join cgroup {}", f.display()))?;
    }
    Ok(())
}

/// Removes the container's cgroups that create made (`made`; None for a state written
/// before that was recorded: all of `paths`): each of `paths` with any sub-cgroups the
/// container made, deepest first, then the parents create made, as long as they are empty.
/// A cgroup that existed before create is left, and so is a foreign one (members.rs).
/// Retries briefly: a killed task leaves its cgroup a moment after it is reaped.
pub fn remove(paths: &[PathBuf], made: Option<&[PathBuf]>) -> Result<()> {
    let ours = |p: &PathBuf| made.is_none_or(|m| m.contains(p));
    for p in paths.iter().filter(|p| ours(p) && p.exists()) {
        if let Some(why) = members::foreign(p) {
            crate::logger::warn(&format!("{why}: not the container's own; left in place"));
            continue;
        }
        for d in members::subtree(p).iter().rev() {
            rmdir_retry(d)?;
        }
    }
    let mut parents: Vec<&PathBuf> = made
        .unwrap_or(&[])
        .iter()
        .filter(|d| !paths.contains(d))
        .collect();
    parents.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in parents {
        // Another container may have made a cgroup in it meanwhile: then it stays.
        let _ = std::fs::remove_dir(d);
    }
    Ok(())
}

fn rmdir_retry(d: &Path) -> Result<()> {
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(d) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if tries < 200 && e.raw_os_error() == Some(libc::EBUSY) => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => return Err(Error::io(d, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute_paths() {
        let hs = vec![Hierarchy {
            mount: "/sys/fs/cgroup/memory".into(),
            controllers: "memory".into(),
            v2: false,
            current: "/a/b".into(),
        }];
        let p = container_paths(&hs, None, "c1").unwrap();
        assert_eq!(p[0], Path::new("/sys/fs/cgroup/memory/a/b/c1"));
        let p = container_paths(&hs, Some(Path::new("/x/y")), "c1").unwrap();
        assert_eq!(p[0], Path::new("/sys/fs/cgroup/memory/x/y"));
        assert!(container_paths(&hs, Some(Path::new("/x/../../etc")), "c1").is_err());
        for root in ["", "/", ".", "//", "./"] {
            let p = container_paths(&hs, Some(Path::new(root)), "c1");
            assert_eq!(p.is_err(), !root.is_empty(), "{root:?}: {p:?}");
        }
    }

    #[test]
    fn v2_only_places_relative_paths_below_the_callers_parent() {
        let h = |mount: &str, v2: bool, current: &str| Hierarchy {
            mount: mount.into(),
            controllers: if v2 { "" } else { "pids" }.into(),
            v2,
            current: current.into(),
        };
        let v2 = [h("/sys/fs/cgroup", true, "/user.slice/session-1.scope")];
        let p = container_paths(&v2, None, "c1").unwrap();
        assert_eq!(p[0], Path::new("/sys/fs/cgroup/user.slice/c1"));
        let p = container_paths(&v2, Some(Path::new("/a/b")), "c1").unwrap();
        assert_eq!(p[0], Path::new("/sys/fs/cgroup/a/b"));
        let top = [h("/sys/fs/cgroup", true, "/")];
        let p = container_paths(&top, None, "c1").unwrap();
        assert_eq!(p[0], Path::new("/sys/fs/cgroup/c1"));
        // Hybrid: the unified tree keeps the caller's own cgroup as the base.
        let hybrid = [
            h("/sys/fs/cgroup/pids", false, "/s"),
            h("/sys/fs/cgroup/unified", true, "/s"),
        ];
        let p = container_paths(&hybrid, None, "c1").unwrap();
        assert_eq!(p[1], Path::new("/sys/fs/cgroup/unified/s/c1"));
    }

    #[test]
    fn this_host_has_hierarchies() {
        let hs = hierarchies();
        assert!(
            !hs.is_empty(),
            "no cgroup hierarchy found in /proc/self/mountinfo"
        );
    }
}
