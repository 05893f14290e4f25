//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup is a transient
//! scope that systemd makes over D-Bus and owns (Delegate=yes hands its subtree to the
//! container). Limits go both into the unit's properties (props.rs) and, through the
//! cgroupfs code, into the scope's files; hierarchies systemd does not manage (v1 cpuset,
//! freezer, net_cls, ...) get the same path made by hand, as runc does. Pause, kill, stats and
//! exec then work on the scope's directories like on any cgroupfs path.

pub mod dbus;
pub mod manager;
pub mod path;
pub mod props;
pub mod user;

pub use dbus::Bus;
pub use path::{scope, Scope};

use crate::cgroups::Hierarchy;
use crate::error::{Error, Result};
use oci_spec::runtime::LinuxResources;
use props::Prop;
use std::path::PathBuf;

/// Whether systemd is the init here (sd_booted(): /run/systemd/system exists).
pub fn running() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
}

/// Refuses the driver where systemd is not the init, in one line. (Rootless, what the user's
/// manager needs is checked at create: user.rs.)
pub fn check_usable() -> Result<()> {
    if !running() {
        return Err(Error::Other(
            "--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); use the default cgroupfs driver".into(),
        ));
    }
    Ok(())
}

/// Starts the scope around `pid` (stage 1: its children inherit the scope). Called by
/// create's parent after stage 1 was forked: see dbus.rs on threads. An error here means
/// the unit is not ours (it may be another container's: "already exists"), so it must not
/// be stopped; after success it is, on any later failure.
pub fn start(
    bus: &Bus,
    s: &Scope,
    hs: &[Hierarchy],
    id: &str,
    pid: i32,
    r: &LinuxResources,
) -> Result<()> {
    let v2 = crate::cgroups::is_v2_only(hs);
    let mut ps: Vec<(&str, Prop)> = vec![
        ("Description", Prop::Str(format!("berth container {id}"))),
        ("Slice", Prop::Str(s.slice.clone())),
        ("PIDs", Prop::U32s(vec![pid as u32])),
        ("Delegate", Prop::Bool(true)),
        ("DefaultDependencies", Prop::Bool(false)),
        ("MemoryAccounting", Prop::Bool(true)),
        ("CPUAccounting", Prop::Bool(true)),
        ("TasksAccounting", Prop::Bool(true)),
        (
            if v2 {
                "IOAccounting"
            } else {
                "BlockIOAccounting"
            },
            Prop::Bool(true),
        ),
    ];
    ps.extend(props::resources(r, v2));
    // A user manager cannot load device programs (no CAP_BPF), and a user namespace makes
    // no device nodes anyway: rootless cgroupfs skips the device rules too (resources.rs).
    if !bus.is_user() {
        let proc_devices = std::fs::read_to_string("/proc/devices").unwrap_or_default();
        ps.extend(props::devices(
            &crate::cgroups::resources::device_rules(r),
            &proc_devices,
        ));
    }
    dbus::Systemd::connect(bus, &s.unit)?.start(&ps)
}

/// After [`start`]: joins `pid` to the scope's path in every hierarchy systemd did not make
/// it in (v1 cpuset, freezer, ...), adding the directories made to `made`.
pub fn join_rest(s: &Scope, hs: &[Hierarchy], pid: i32, made: &mut Vec<PathBuf>) -> Result<()> {
    for (h, p) in hs.iter().zip(&s.paths) {
        if !p.exists() {
            if h.v2 {
                return Err(Error::Other(format!(
                    "systemd unit {}: started, but its cgroup {} does not exist",
                    s.unit,
                    p.display()
                )));
            }
            crate::cgroups::create_one(h, p, false, made)?;
        }
    }
    // Where systemd placed it already this is a no-op write.
    crate::cgroups::join(&s.paths, pid)
}

/// `update`: the unit's properties, then (by the caller) the files.
pub fn update(bus: &Bus, unit: &str, r: &LinuxResources) -> Result<()> {
    let v2 = crate::cgroups::is_v2_only(&crate::cgroups::hierarchies());
    dbus::Systemd::connect(bus, unit)?.set(&props::resources(r, v2))
}

/// `delete` (and a failed create): stops the unit and waits until it is gone.
pub fn stop(bus: &Bus, unit: &str) -> Result<()> {
    dbus::Systemd::connect(bus, unit)?.stop()
}
