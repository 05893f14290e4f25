//! The systemd backend of [`Manager`]: the unit's life (start over D-Bus at create, its
//! properties at update, stop at delete) is systemd's; the files, the freezer, stats and
//! members go through the cgroupfs backend of the host, on the scope's directories.

use super::{Bus, Scope};
use crate::cgroups::manager::{Driver, Manager};
use crate::cgroups::{Hierarchy, JoinBy};
use crate::error::Result;
use oci_spec::runtime::LinuxResources;
use serde_json::Value;
use std::path::PathBuf;

/// What create needs to start the scope once stage 1 exists.
struct Pending {
    scope: Scope,
    hs: Vec<Hierarchy>,
    id: String,
    resources: LinuxResources,
}

pub struct SystemdManager {
    unit: String,
    /// Whether the user's manager owns the unit (rootless), not PID 1.
    user: bool,
    /// The bus, once found (a new container: before the fork; else when first needed).
    bus: Option<Bus>,
    /// The cgroupfs backend on the scope's directories.
    fs: Box<dyn Manager>,
    /// Set until [`Manager::apply`] starts the unit (a new container).
    pending: Option<Pending>,
    /// Whether the unit is ours to stop: not until it was started (an error there may
    /// mean another container's unit of that name).
    started: bool,
}

impl SystemdManager {
    pub fn new_scope(
        scope: Scope,
        hs: Vec<Hierarchy>,
        id: &str,
        r: &LinuxResources,
        bus: Bus,
    ) -> Self {
        let v2 = crate::cgroups::is_v2_only(&hs);
        let fs = crate::cgroups::manager::fs_backend(v2, Some(hs.clone()), scope.paths.clone());
        SystemdManager {
            unit: scope.unit.clone(),
            user: bus.is_user(),
            bus: Some(bus),
            fs,
            pending: Some(Pending {
                scope,
                hs,
                id: id.to_string(),
                resources: r.clone(),
            }),
            started: false,
        }
    }

    pub fn existing(unit: &str, fs: Box<dyn Manager>, user: bool) -> Self {
        SystemdManager {
            unit: unit.to_string(),
            user,
            bus: None,
            fs,
            pending: None,
            started: true,
        }
    }
}

impl SystemdManager {
    fn bus(&self) -> Result<Bus> {
        match &self.bus {
            Some(b) => Ok(b.clone()),
            None => Bus::of(self.user),
        }
    }
}

impl Manager for SystemdManager {
    fn driver(&self) -> Driver {
        Driver::Systemd
    }
    fn paths(&self) -> &[PathBuf] {
        self.fs.paths()
    }
    fn is_v2(&self) -> bool {
        self.fs.is_v2()
    }
    fn hierarchies(&self) -> &[Hierarchy] {
        self.fs.hierarchies()
    }
    fn unit(&self) -> Option<&str> {
        Some(&self.unit)
    }
    fn user_manager(&self) -> bool {
        self.user
    }
    /// systemd makes the scope's directories when it starts the unit, in `apply`.
    fn create(&mut self, _r: &LinuxResources, _made: &mut Vec<PathBuf>) -> Result<()> {
        Ok(())
    }
    /// The directories exist only once systemd made them, after the fork.
    fn create_join_by(&self) -> JoinBy {
        JoinBy::Parent
    }
    fn apply(&mut self, pid: i32, rest: &[PathBuf], made: &mut Vec<PathBuf>) -> Result<()> {
        let Some(p) = &self.pending else {
            return self.join(pid, rest);
        };
        // D-Bus starts threads: from here on this process forks no container process
        // (stage 1, single-threaded, forks the rest). See dbus.rs.
        super::start(&self.bus()?, &p.scope, &p.hs, &p.id, pid, &p.resources)?;
        self.started = true;
        super::join_rest(&p.scope, &p.hs, pid, made)?;
        self.fs.set(&p.resources, Some(&[]))
    }
    /// Rootless, a process outside the user manager's subtree may not move itself in (the
    /// common ancestor's cgroup.procs is root's): then the manager moves it, as runc's
    /// AddPid does over D-Bus.
    fn join(&self, pid: i32, rest: &[PathBuf]) -> Result<()> {
        let e = match self.fs.join(pid, rest) {
            Err(e) if self.user && crate::rootless::is_permission(&e) => e,
            r => return r,
        };
        let base = self.fs.paths().first();
        let Some(sub) = rest
            .first()
            .and_then(|p| p.strip_prefix(base?).ok())
            .map(|s| format!("/{}", s.display()))
        else {
            return Err(e);
        };
        super::dbus::Systemd::connect(&self.bus()?, &self.unit)?.attach(pid, &sub)
    }
    fn set(&self, r: &LinuxResources, devices: Option<&[String]>) -> Result<()> {
        self.fs.set(r, devices)
    }
    /// The unit keeps the limits across systemd re-applying its settings; the files get
    /// the exact values and what systemd has no property for.
    fn update(&self, r: &LinuxResources) -> Result<()> {
        if self.user {
            // Refused by name before systemd keeps a limit it cannot apply.
            if let Some(dir) = self.fs.paths().first() {
                let ctrls =
                    std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
                super::user::check_delegated(r, &ctrls, dir)?;
            }
        }
        super::update(&self.bus()?, &self.unit, r)?;
        self.fs.set(r, None)
    }
    fn freeze(&self, frozen: bool) -> Result<()> {
        self.fs.freeze(frozen)
    }
    fn is_frozen(&self) -> bool {
        self.fs.is_frozen()
    }
    fn stats(&self) -> Value {
        self.fs.stats()
    }
    fn pids(&self) -> Vec<i32> {
        self.fs.pids()
    }
    fn foreign(&self) -> Option<String> {
        self.fs.foreign()
    }
    /// Stops the unit (systemd removes its cgroup); what is left is ours (v1 hierarchies
    /// systemd does not manage). Both are tried; the first error is returned.
    fn remove(&self, made: Option<&[PathBuf]>) -> Result<()> {
        let stopped = if self.started {
            self.bus().and_then(|b| super::stop(&b, &self.unit))
        } else {
            Ok(())
        };
        let removed = self.fs.remove(made);
        stopped.and(removed)
    }
    fn exec_paths(&self, subs: &[String]) -> Result<Vec<PathBuf>> {
        self.fs.exec_paths(subs)
    }
}
