//! Facts about the host the suite runs on: our own namespaces, cgroup layout, LSMs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct Host {
    /// Namespace links of the harness process (the "runtime namespace").
    pub ns: BTreeMap<String, String>,
    /// cgroup v1 controller name → mount point.
    pub cgroup_v1: BTreeMap<String, PathBuf>,
    /// cgroup2 mount point, if any (hybrid hosts mount it at /sys/fs/cgroup/unified).
    pub cgroup_v2: Option<PathBuf>,
    pub apparmor: bool,
    pub selinux: bool,
}

impl Host {
    pub fn detect() -> Self {
        let mut host = Host::default();
        for name in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
            if let Ok(l) = std::fs::read_link(format!("/proc/self/ns/{name}")) {
                host.ns.insert(name.to_string(), l.display().to_string());
            }
        }
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for line in mi.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let target = left.split(' ').nth(4).unwrap_or("");
            let mut r = right.split(' ');
            let fstype = r.next().unwrap_or("");
            let superopts = r.nth(1).unwrap_or("");
            if fstype == "cgroup2" && host.cgroup_v2.is_none() {
                host.cgroup_v2 = Some(PathBuf::from(target));
            } else if fstype == "cgroup" {
                for opt in superopts.split(',') {
                    if is_controller(opt) {
                        host.cgroup_v1
                            .insert(opt.to_string(), PathBuf::from(target));
                    }
                }
            }
        }
        host.apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .map(|s| s.trim() == "Y")
            .unwrap_or(false);
        host.selinux = Path::new("/sys/fs/selinux/enforce").exists();
        host
    }

    /// Does the root of the v1 hierarchy of `controller` have `file`?
    pub fn has_v1_file(&self, controller: &str, file: &str) -> bool {
        self.cgroup_v1
            .get(controller)
            .is_some_and(|m| m.join(file).exists())
    }

    /// A skip reason when a v1 cgroup file is missing on this host, else None.
    pub fn need_v1(&self, controller: &str, file: &str) -> Option<String> {
        if self.cgroup_v1.contains_key(controller) {
            // Some files exist only in child cgroups, never at the root of the hierarchy.
            let child_only = matches!(file, "pids.max" | "cpu.idle");
            if child_only || self.has_v1_file(controller, file) {
                None
            } else {
                Some(format!(
                    "host kernel offers no {controller}/{file} (not built in, or no I/O scheduler with weights such as BFQ)"
                ))
            }
        } else if self.cgroup_v2.is_some() {
            Some(format!(
                "cgroup v1 controller {controller} is not mounted on this hybrid host (cgroup2 only holds what runtimes do not manage here)"
            ))
        } else {
            Some(format!(
                "cgroup controller {controller} is not available on this host"
            ))
        }
    }

    /// A skip reason unless this host is pure cgroup v2 (no v1 controller mounted).
    pub fn need_v2(&self) -> Option<String> {
        match (&self.cgroup_v2, self.cgroup_v1.is_empty()) {
            (Some(_), true) => None,
            (Some(_), false) => {
                Some("needs a pure cgroup v2 host; this hybrid host runs the v1 controllers".into())
            }
            (None, _) => Some("no cgroup2 hierarchy on this host".into()),
        }
    }

    /// Read a cgroup file of process `pid` from the host side: `controller` names the v1
    /// hierarchy, or is `unified` for the cgroup2 one.
    pub fn read_cgroup_file(&self, pid: i64, controller: &str, file: &str) -> Option<String> {
        let (mount, rel) = if controller == UNIFIED {
            (self.cgroup_v2.as_ref()?, cgroup_path_of(pid, "")?)
        } else {
            (
                self.cgroup_v1.get(controller)?,
                cgroup_path_of(pid, controller)?,
            )
        };
        let p = mount.join(rel.trim_start_matches('/')).join(file);
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim_end().to_string())
    }
}

fn is_controller(opt: &str) -> bool {
    matches!(
        opt,
        "cpu"
            | "cpuacct"
            | "cpuset"
            | "memory"
            | "devices"
            | "freezer"
            | "blkio"
            | "pids"
            | "net_cls"
            | "net_prio"
            | "hugetlb"
            | "perf_event"
            | "rdma"
            | "misc"
    )
}

/// The pseudo-controller naming the cgroup2 hierarchy in host-file keys (`unified/pids.max`).
pub const UNIFIED: &str = "unified";

/// The cgroup path of `pid` in the v1 hierarchy holding `controller` ("" = the cgroup2 line).
pub fn cgroup_path_of(pid: i64, controller: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let _id = parts.next()?;
        let ctrls = parts.next()?;
        let path = parts.next()?;
        let hit = if controller.is_empty() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        hit.then(|| path.to_string())
    })
}
