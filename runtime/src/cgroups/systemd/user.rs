//! Rootless `--systemd-cgroup`: the scope is made by the user's own systemd instance
//! (user@UID.service) over the user's session bus, as rootless runc and podman do. That
//! manager owns the subtree /user.slice/user-UID.slice/user@UID.service, so the scope (with
//! Delegate=yes) is a cgroup the user may write; only the controllers the system manager
//! delegated to user@UID.service reach it (Debian's default: cpu, memory, pids), so a limit
//! on another one is refused by name before anything is made. cgroup v2 only: systemd
//! delegates nothing to user managers on v1 (runc refuses that too).

use super::dbus::Bus;
use crate::cgroups::Hierarchy;
use crate::error::{Error, Result};
use oci_spec::runtime::LinuxResources;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The default slice of a rootless container, inside the user manager (runc's).
pub const DEFAULT_SLICE: &str = "user.slice";

fn err(why: impl std::fmt::Display) -> Error {
    Error::Other(format!("--systemd-cgroup (rootless): {why}"))
}

/// The user's bus as runc finds it: $DBUS_SESSION_BUS_ADDRESS, else
/// `unix:path=$XDG_RUNTIME_DIR/bus` when that socket exists.
pub fn bus_address(dbus_env: Option<&OsStr>, xdg: Option<&OsStr>) -> Result<String> {
    if let Some(a) = dbus_env.filter(|a| !a.is_empty()) {
        return Ok(a.to_string_lossy().into_owned());
    }
    let xdg = xdg.filter(|x| !x.is_empty()).map(Path::new);
    if let Some(bus) = xdg.map(|x| x.join("bus")).filter(|b| b.exists()) {
        return Ok(format!("unix:path={}", escape(&bus.to_string_lossy())));
    }
    let looked = match xdg {
        Some(x) => format!("{} does not exist", x.join("bus").display()),
        None => "XDG_RUNTIME_DIR is unset too".into(),
    };
    Err(err(format!(
        "no user bus: DBUS_SESSION_BUS_ADDRESS is unset and {looked} (log in, or `loginctl enable-linger USER`, with dbus-user-session installed)"
    )))
}

/// D-Bus address value escaping: bytes outside `[-0-9A-Za-z_/.\*]` as %XX.
pub fn escape(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_/.\\*".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// The user manager's own cgroup, where systemd puts user@UID.service.
pub fn manager_cgroup(uid: u32) -> PathBuf {
    PathBuf::from(format!("/user.slice/user-{uid}.slice/user@{uid}.service"))
}

/// The cgroup v2 controller each limit of `r` needs, with its config field.
pub fn needed_controllers(r: &LinuxResources) -> Result<Vec<(String, String)>> {
    let host = crate::cgroups::plan::Host { dirs: &[] };
    let mut out: Vec<(String, String)> = crate::cgroups::plan::v2_writes(r, &host)?
        .into_iter()
        .map(|w| (w.field, w.file))
        .collect();
    for (k, _) in r.unified().iter().flatten() {
        out.push((format!("linux.resources.unified.{k}"), k.clone()));
    }
    if r.hugepage_limits().as_ref().is_some_and(|l| !l.is_empty()) {
        out.push(("linux.resources.hugepageLimits".into(), "hugetlb.".into()));
    }
    if r.rdma().as_ref().is_some_and(|l| !l.is_empty()) {
        out.push(("linux.resources.rdma".into(), "rdma.".into()));
    }
    Ok(out
        .into_iter()
        .filter_map(|(field, file)| {
            let c = file.split('.').next().unwrap_or_default().to_string();
            (!c.is_empty() && c != "cgroup").then_some((field, c))
        })
        .collect())
}

/// Refuses a limit whose controller is not in `available` (the user manager's
/// cgroup.controllers, read from `dir`), naming the first such field.
pub fn check_delegated(r: &LinuxResources, available: &str, dir: &Path) -> Result<()> {
    let have: Vec<&str> = available.split_whitespace().collect();
    let missing = needed_controllers(r)?
        .into_iter()
        .find(|(_, c)| !have.contains(&c.as_str()));
    match missing {
        None => Ok(()),
        Some((field, c)) => {
            let with: Vec<&str> = have.iter().copied().chain([c.as_str()]).collect();
            Err(Error::Other(format!(
                "{field}: controller {c} is not delegated to the user's systemd ({}/cgroup.controllers has: {}); delegate it in a drop-in for user@.service: [Service] Delegate={}",
                dir.display(),
                if have.is_empty() { "none".to_string() } else { have.join(" ") },
                with.join(" ")
            )))
        }
    }
}

/// Everything create needs before the fork, found without D-Bus (which starts threads):
/// the bus, the uid to authenticate as, and the user manager's cgroup (relative).
pub fn prepare(hs: &[Hierarchy], r: &LinuxResources) -> Result<(Bus, PathBuf)> {
    if !crate::cgroups::is_v2_only(hs) {
        return Err(err(
            "needs a cgroup v2 host: systemd delegates no controllers to user managers on cgroup v1 (use the cgroupfs driver, or run as root)",
        ));
    }
    let bus = Bus::user()?;
    let Bus::User { uid, .. } = &bus else {
        unreachable!("Bus::user makes a user bus")
    };
    let rel = manager_cgroup(*uid);
    let dir = hs[0].mount.join(rel.strip_prefix("/").unwrap_or(&rel));
    let ctrls = std::fs::read_to_string(dir.join("cgroup.controllers")).map_err(|e| {
        err(format!(
            "the user manager's cgroup {} cannot be read ({e}): is user@{uid}.service running (log in, or `loginctl enable-linger`)?",
            dir.display()
        ))
    })?;
    check_delegated(r, &ctrls, &dir)?;
    Ok((bus, rel))
}

/// The user bus of the caller: the address from the environment, and the uid the bus
/// knows us by. Inside a user namespace that is the host uid behind ours (the bus daemon
/// checks the socket's peer credentials, which the kernel reports as the host uid).
pub fn user_bus() -> Result<(String, u32)> {
    let addr = bus_address(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").as_deref(),
        std::env::var_os("XDG_RUNTIME_DIR").as_deref(),
    )?;
    Ok((addr, crate::rootless::host_uid()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn bus_address_as_runc_finds_it() {
        let t = tempfile::tempdir().unwrap();
        let xdg = OsString::from(t.path());
        let a = bus_address(Some(OsStr::new("unix:path=/x/bus")), Some(&xdg)).unwrap();
        assert_eq!(a, "unix:path=/x/bus");
        // No socket yet: a one-line error naming what was looked for.
        let e = bus_address(Some(OsStr::new("")), Some(&xdg))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("{}/bus does not exist", t.path().display())),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1);
        let e = bus_address(None, None).unwrap_err().to_string();
        assert!(e.contains("XDG_RUNTIME_DIR is unset"), "{e}");
        std::fs::write(t.path().join("bus"), "").unwrap();
        let a = bus_address(None, Some(&xdg)).unwrap();
        assert_eq!(
            a,
            format!("unix:path={}/bus", escape(&t.path().to_string_lossy()))
        );
        assert_eq!(escape("/run/user/1000/bus"), "/run/user/1000/bus");
        assert_eq!(escape("/a b/c=d;e"), "/a%20b/c%3dd%3be");
    }

    #[test]
    fn the_manager_cgroup_of_a_uid() {
        assert_eq!(
            manager_cgroup(1001),
            Path::new("/user.slice/user-1001.slice/user@1001.service")
        );
    }

    #[test]
    fn limits_need_delegated_controllers() {
        let dir = Path::new("/sys/fs/cgroup/user.slice/user-1.slice/user@1.service");
        let r = res(serde_json::json!({
            "memory": {"limit": 67108864}, "pids": {"limit": 64}, "cpu": {"shares": 512}
        }));
        let want: Vec<(String, String)> = [
            ("linux.resources.memory.limit", "memory"),
            ("linux.resources.cpu.shares", "cpu"),
            ("linux.resources.pids.limit", "pids"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(needed_controllers(&r).unwrap(), want);
        check_delegated(&r, "cpu memory pids\n", dir).unwrap();
        let e = check_delegated(&r, "memory pids", dir)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("linux.resources.cpu.shares: controller cpu is not delegated"),
            "{e}"
        );
        assert!(
            e.contains("has: memory pids)") && e.ends_with("Delegate=memory pids cpu"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1);
        // cpuset, io, hugetlb and unified keys name their own controllers.
        let r = res(serde_json::json!({
            "cpu": {"cpus": "0"}, "blockIO": {"weight": 100},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
            "unified": {"memory.high": "max", "cgroup.max.depth": "3"}
        }));
        let cs: Vec<String> = needed_controllers(&r)
            .unwrap()
            .into_iter()
            .map(|x| x.1)
            .collect();
        assert_eq!(cs, ["cpuset", "io", "memory", "hugetlb"]);
        let e = check_delegated(&r, "", dir).unwrap_err().to_string();
        assert!(
            e.contains("controller cpuset") && e.contains("has: none)"),
            "{e}"
        );
        assert!(e.ends_with("Delegate=cpuset"), "{e}");
        // No limits: nothing needed, whatever is delegated.
        check_delegated(&LinuxResources::default(), "", dir).unwrap();
    }
}
