//! The cgroup manager: one trait, three backends (cgroupfs v1, cgroupfs v2, systemd), chosen
//! once when a container is created ([`for_create`]) or loaded from its state ([`load`]).
//! Placement, limits, update, freeze, stats, the member list and removal go through it, so
//! no caller picks v1 or v2 code by name.
//!
//! Why not cgroups-rs 0.5's `Manager` (also over oci-spec's LinuxResources, fs and systemd
//! backends): its trait joins a process by pid only, so it has no place for stage 1 joining
//! v1 `tasks` itself or clone3 into the v2 directory (half of a start's time), nor for our
//! rollback journal, v1 device-rule transitions and errors naming the config field; using
//! it would mean wrapping this code in its types, not replacing it.

use super::fs::{V1Manager, V2Manager};
use super::systemd::manager::SystemdManager;
use super::{hierarchies, is_v2_only, Hierarchy, JoinBy};
use crate::error::Result;
use oci_spec::runtime::LinuxResources;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Which backend manages a container's cgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// cgroupfs on v1 controllers (the unified tree of a hybrid host included).
    V1,
    /// cgroupfs on a host whose only hierarchy is cgroup2.
    V2,
    /// A transient systemd scope (`--systemd-cgroup`), on v1 or v2.
    Systemd,
}

/// A container's cgroups. `paths` are its directories, one per hierarchy, in mount order.
pub trait Manager {
    fn driver(&self) -> Driver;

    fn paths(&self) -> &[PathBuf];

    /// Whether the host's only hierarchy is cgroup2 (for systemd: the one beneath it).
    fn is_v2(&self) -> bool;

    /// The hierarchies `paths` lie in, in the same order.
    fn hierarchies(&self) -> &[Hierarchy];

    /// The systemd unit, for the systemd backend.
    fn unit(&self) -> Option<&str> {
        None
    }

    /// Whether the unit is the user's systemd's (rootless), not PID 1's.
    fn user_manager(&self) -> bool {
        false
    }

    /// create, before the fork: makes the directories (recording those made in `made`),
    /// refusing cgroups that hold processes or are frozen. systemd makes them in `apply`.
    fn create(&mut self, r: &LinuxResources, made: &mut Vec<PathBuf>) -> Result<()>;

    /// How the stage-1 child of create joins (see [`JoinBy`]).
    fn create_join_by(&self) -> JoinBy {
        JoinBy::for_caller()
    }

    /// create, at Stage1Ready: places `pid` in the directories `rest` it did not join itself.
    fn apply(&mut self, pid: i32, rest: &[PathBuf], _made: &mut Vec<PathBuf>) -> Result<()> {
        self.join(pid, rest)
    }

    /// exec, at Stage1Ready: as [`Manager::apply`] into existing cgroups.
    fn join(&self, pid: i32, rest: &[PathBuf]) -> Result<()> {
        super::join_child(rest, pid, JoinBy::for_caller())
    }

    /// Writes linux.resources to the files (`devices`: see resources::apply).
    fn set(&self, r: &LinuxResources, devices: Option<&[String]>) -> Result<()>;

    /// `update`: new limits on a live container.
    fn update(&self, r: &LinuxResources) -> Result<()> {
        self.set(r, None)
    }

    /// Freezes or thaws, waiting until the kernel reports it; a freeze that does not
    /// complete is undone and reported as [`crate::error::Error::FreezeTimeout`].
    fn freeze(&self, frozen: bool) -> Result<()>;

    fn is_frozen(&self) -> bool;

    fn stats(&self) -> Value {
        super::stats::stats(self.paths())
    }

    /// The container's processes (members.rs says which never are).
    fn pids(&self) -> Vec<i32> {
        super::members::pids(self.paths())
    }

    /// Why one of the cgroups is not the container's own, if one is not.
    fn foreign(&self) -> Option<String> {
        super::members::any_foreign(self.paths())
    }

    /// delete: removes the cgroups create made (`made`; see cgroups::remove).
    fn remove(&self, made: Option<&[PathBuf]>) -> Result<()>;

    /// exec --cgroup: the directories an exec'd process joins, `subs` as runc takes them
    /// (`PATH` for every hierarchy, `CTRL[,CTRL]:PATH` for those on v1), each an existing
    /// sub-cgroup of the container's.
    fn exec_paths(&self, subs: &[String]) -> Result<Vec<PathBuf>>;
}

/// The backend for a new container: systemd when asked, else by the host's hierarchies.
pub fn for_create(
    systemd: bool,
    cgroups_path: Option<&Path>,
    id: &str,
    r: &LinuxResources,
) -> Result<Box<dyn Manager>> {
    let hs = hierarchies();
    if systemd {
        super::systemd::check_usable()?;
        let (bus, manager) = if crate::rootless::is_rootless() {
            let (bus, cg) = super::systemd::user::prepare(&hs, r)?;
            (bus, Some(cg))
        } else {
            (super::systemd::Bus::System, None)
        };
        let scope = super::systemd::scope(&hs, cgroups_path, id, manager.as_deref())?;
        return Ok(Box::new(SystemdManager::new_scope(scope, hs, id, r, bus)));
    }
    let paths = super::container_paths(&hs, cgroups_path, id)?;
    Ok(fs_backend(is_v2_only(&hs), Some(hs), paths))
}

/// The backend of an existing container, from its state: its paths, systemd unit (`user`:
/// the user's manager's), and whether create found a cgroup2-only host (`v2`; None: found
/// out now). The hierarchies are read only if an operation needs them: `state` and `list`
/// stay cheap.
pub fn load(
    paths: &[PathBuf],
    unit: Option<&str>,
    user: bool,
    v2: Option<bool>,
) -> Box<dyn Manager> {
    let (v2, hs) = match v2 {
        Some(v2) => (v2, None),
        None => {
            let hs = hierarchies();
            (is_v2_only(&hs), Some(hs))
        }
    };
    let fs = fs_backend(v2, hs, paths.to_vec());
    match unit {
        Some(u) => Box::new(SystemdManager::existing(u, fs, user)),
        None => fs,
    }
}

/// The cgroupfs backend for the host's hierarchies `hs` (None: read when needed).
pub(crate) fn fs_backend(
    v2: bool,
    hs: Option<Vec<Hierarchy>>,
    paths: Vec<PathBuf>,
) -> Box<dyn Manager> {
    if v2 {
        Box::new(V2Manager::new(hs, paths))
    } else {
        Box::new(V1Manager::new(hs, paths))
    }
}
