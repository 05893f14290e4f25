//! Running without real root: as an ordinary user, or as uid 0 inside a user namespace that
//! an ordinary user made (berth-build does this for rootless builds). What changes, as with
//! rootless runc: state lives in the user's runtime dir, cgroups the user cannot write are
//! skipped, and id maps wider than the user's own id go through newuidmap/newgidmap.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// True unless berth runs as uid 0 of the initial user namespace.
pub fn is_rootless() -> bool {
    static R: OnceLock<bool> = OnceLock::new();
    *R.get_or_init(|| !nix::unistd::geteuid().is_root() || !in_initial_userns())
}

/// The initial user namespace maps every id to itself.
fn in_initial_userns() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| {
        let f: Vec<&str> = m.split_whitespace().collect();
        f == ["0", "0", "4294967295"]
    })
}

/// The host (initial namespace) uid behind our effective uid, through /proc/self/uid_map.
pub fn host_uid() -> u32 {
    let euid = nix::unistd::geteuid().as_raw();
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    map_id(&map, euid).unwrap_or(euid)
}

fn map_id(map: &str, id: u32) -> Option<u32> {
    map.lines().find_map(|l| {
        let f: Vec<u32> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        match f[..] {
            [inside, outside, n] if id >= inside && id - inside < n => Some(outside + id - inside),
            _ => None,
        }
    })
}

/// runc's default state directory, rootless-aware: /run/berth for root, else
/// $XDG_RUNTIME_DIR/berth, else /tmp/berth-<host uid> (made 0700 by `ContainerDir`).
pub fn default_root() -> PathBuf {
    if !is_rootless() {
        return PathBuf::from("/run/berth");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(x) if !x.is_empty() && Path::new(&x).is_dir() => Path::new(&x).join("berth"),
        _ => PathBuf::from(format!("/tmp/berth-{}", host_uid())),
    }
}

/// Whether an error from making a cgroup means "not ours to write" (skip it rootless).
pub fn is_permission(e: &Error) -> bool {
    let code = match e {
        Error::Io { source, .. } => source.raw_os_error(),
        _ => None,
    };
    matches!(
        code,
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
    )
}

/// A clear error for a refused unshare(CLONE_NEWUSER): what limits it and what to change.
pub fn userns_refused(e: nix::Error) -> Error {
    let why = match e {
        nix::Error::ENOSPC => "the user.max_user_namespaces limit is reached or 0: raise it (sysctl -w user.max_user_namespaces=15000)",
        nix::Error::EPERM => "not allowed for this user: enable unprivileged user namespaces (sysctl -w kernel.unprivileged_userns_clone=1) or lift the seccomp/AppArmor policy that forbids them",
        nix::Error::EINVAL => "the kernel has no user namespaces (CONFIG_USER_NS) or this process is threaded or chrooted",
        _ => "the kernel refused it",
    };
    Error::Other(format!(
        "linux.namespaces: cannot create a user namespace ({e}): {why}"
    ))
}

/// One line of uid_map/gid_map.
pub struct IdMap {
    pub inside: u32,
    pub outside: u32,
    pub size: u32,
}

/// Writes the child's uid_map or gid_map (`kind` is "uid" or "gid"). Root writes it directly;
/// an ordinary user may write only a single mapping of its own id (gid_map after setgroups
/// is denied), and needs the setuid helpers from the uidmap package for anything wider.
pub fn write_map(pid: i32, kind: &str, maps: &[IdMap]) -> Result<()> {
    let text: String = maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.inside, m.outside, m.size))
        .collect();
    let own = if kind == "uid" {
        nix::unistd::geteuid().as_raw()
    } else {
        nix::unistd::getegid().as_raw()
    };
    let single_own = maps.len() == 1 && maps[0].size == 1 && maps[0].outside == own;
    let field = format!("linux.{kind}Mappings {text:?}");
    if nix::unistd::geteuid().is_root() || single_own {
        if kind == "gid" && !nix::unistd::geteuid().is_root() {
            // Unprivileged gid_map writes are refused until setgroups is denied.
            crate::rootfs::procfs::write(&format!("{pid}/setgroups"), b"deny")
                .map_err(|e| Error::Other(format!("{field}: {e}")))?;
        }
        return crate::rootfs::procfs::write(&format!("{pid}/{kind}_map"), text.as_bytes())
            .map_err(|e| Error::Other(format!("{field}: {e}")));
    }
    newidmap(pid, kind, maps, &field)
}

/// The first /etc/subuid or /etc/subgid range of a user (by name or id), if newuidmap and
/// newgidmap exist to use it.
pub fn subordinate(kind: &str, name: &str, id: u32) -> Option<(u32, u32)> {
    helper(&format!("new{kind}map"))?;
    let text = std::fs::read_to_string(format!("/etc/sub{kind}")).ok()?;
    parse_subid(&text, name, id)
}

fn parse_subid(text: &str, name: &str, id: u32) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.trim().split(':').collect();
        match f[..] {
            [who, start, n] if who == name || who == id.to_string() => {
                Some((start.parse().ok()?, n.parse().ok()?))
            }
            _ => None,
        }
    })
}

fn helper(tool: &str) -> Option<PathBuf> {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

fn newidmap(pid: i32, kind: &str, maps: &[IdMap], field: &str) -> Result<()> {
    let tool = format!("new{kind}map");
    let path = helper(&tool).ok_or_else(|| {
            Error::Other(format!(
                "{field}: mapping more than your own {kind} needs {tool} (apt-get install uidmap) and a range for this user in /etc/sub{kind}"
            ))
        })?;
    let mut cmd = std::process::Command::new(&path);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([m.inside, m.outside, m.size].map(|x| x.to_string()));
    }
    let out = cmd
        .output()
        .map_err(|e| Error::Other(format!("{field}: {}: {e}", path.display())))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Other(format!(
            "{field}: {tool} refused ({}); the host ids must be yours or in your /etc/sub{kind} range",
            msg.trim().replace('\n', "; ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_ids_through_uid_map() {
        let m = "         0       1001          1\n         1     100000      65536\n";
        assert_eq!(map_id(m, 0), Some(1001));
        assert_eq!(map_id(m, 1000), Some(100999));
        assert_eq!(map_id(m, 65537), None);
    }

    #[test]
    fn finds_subordinate_ranges_by_name_or_id() {
        let t = "alice:100000:65536\n1002:200000:1000\n";
        assert_eq!(parse_subid(t, "alice", 1001), Some((100000, 65536)));
        assert_eq!(parse_subid(t, "bob", 1002), Some((200000, 1000)));
        assert_eq!(parse_subid(t, "carol", 1003), None);
    }
}
