//! The mounted cgroup hierarchies, from /proc/self/mountinfo. A hierarchy may be mounted
//! more than once (a read-only bind of a v1 controller elsewhere, a container runtime's
//! view of a subtree): hierarchies are told apart by what they hold (the cgroup2 tree, or
//! one v1 set of controllers from the super options), never by mount path, and of one
//! hierarchy's mounts the one showing its whole tree read-write is used, else the first.

use std::path::PathBuf;

/// One mounted cgroup hierarchy and where the calling process sits in it.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub mount: PathBuf,
    /// Comma-separated controllers ("cpu", "name=systemd"); empty for cgroup2.
    pub controllers: String,
    pub v2: bool,
    /// The caller's cgroup below `mount`, from /proc/self/cgroup (relative to the mount's
    /// root when the mount shows only a subtree).
    pub current: String,
}

pub fn hierarchies() -> Vec<Hierarchy> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    parse(&mi, &cg)
}

/// True on a host whose only cgroup hierarchy is the unified one.
pub fn is_v2_only(hs: &[Hierarchy]) -> bool {
    hs.iter().all(|h| h.v2)
}

/// One cgroup mount as mountinfo shows it.
struct Mount {
    /// What the hierarchy holds: "" for cgroup2, else its sorted v1 controllers.
    key: String,
    h: Hierarchy,
    /// Shows the hierarchy's root, read-write: the preferred mount of a hierarchy.
    whole_rw: bool,
}

/// The hierarchies of `mountinfo`, each once, in mount order, with the caller's cgroups
/// from `cgroup` (/proc/self/cgroup).
pub fn parse(mountinfo: &str, cgroup: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Mount> = Vec::new();
    for m in mountinfo.lines().filter_map(|l| mount(l, cgroup)) {
        match out.iter_mut().find(|o| o.key == m.key) {
            Some(o) if m.whole_rw && !o.whole_rw => *o = m,
            Some(_) => {}
            None => out.push(m),
        }
    }
    out.into_iter().map(|m| m.h).collect()
}

fn mount(line: &str, cgroup: &str) -> Option<Mount> {
    let (pre, post) = line.split_once(" - ")?;
    let mut post = post.split(' ');
    let (fstype, _src, sopts) = (post.next()?, post.next()?, post.next().unwrap_or(""));
    let v2 = fstype == "cgroup2";
    if fstype != "cgroup" && !v2 {
        return None;
    }
    let pre: Vec<&str> = pre.split(' ').collect();
    let (root, mountpoint, opts) = (unescape(pre.get(3)?), unescape(pre.get(4)?), pre.get(5)?);
    let mut ctrls: Vec<&str> = if v2 {
        vec![]
    } else {
        sopts.split(',').filter(|o| is_controller(o)).collect()
    };
    ctrls.sort_unstable();
    let key = ctrls.join(",");
    let controllers = sopts
        .split(',')
        .filter(|o| !v2 && is_controller(o))
        .collect::<Vec<_>>()
        .join(",");
    let current = own_cgroup(cgroup, v2, &key);
    // A mount of a subtree: the caller's cgroup as seen below it.
    let current = match current.strip_prefix(root.trim_end_matches('/')) {
        Some(rest) if root != "/" && (rest.is_empty() || rest.starts_with('/')) => {
            format!("/{}", rest.trim_start_matches('/'))
        }
        _ => current,
    };
    let rw = opts.split(',').any(|o| o == "rw");
    Some(Mount {
        key: if v2 { String::new() } else { key },
        whole_rw: rw && root == "/",
        h: Hierarchy {
            mount: mountpoint.into(),
            controllers,
            v2,
            current,
        },
    })
}

/// A v1 super option naming a controller (or a named hierarchy), not a mount flag.
fn is_controller(o: &str) -> bool {
    o.starts_with("name=")
        || !o.contains('=')
            && !matches!(
                o,
                "rw" | "ro" | "noprefix" | "clone_children" | "xattr" | "cpuset_v2_mode" | ""
            )
}

/// The caller's cgroup in the hierarchy holding `key` (sorted controllers; v2: the "0::" line).
fn own_cgroup(cgroup: &str, v2: bool, key: &str) -> String {
    cgroup
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _ = it.next()?;
            Some((it.next()?, it.next()?))
        })
        .find(|(c, _)| {
            if v2 {
                c.is_empty()
            } else {
                let mut cs: Vec<&str> = c.split(',').collect();
                cs.sort_unstable();
                !c.is_empty() && cs.join(",") == key
            }
        })
        .map(|(_, p)| p.to_string())
        .unwrap_or_else(|| "/".into())
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|o| o.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(o)) => {
                out.push((o[0] - b'0') * 64 + (o[1] - b'0') * 8 + (o[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CG: &str = "4:memory:/a/b\n1:cpu,cpuacct:/x\n0::/u\n";

    #[test]
    fn a_second_mount_of_a_hierarchy_is_not_a_second_hierarchy() {
        let mi = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpuacct,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
90 23 0:32 / /tmp/ro\\040copy ro,relatime - cgroup cgroup rw,memory
91 23 0:38 /u /tmp/u2 rw,relatime - cgroup2 cgroup2 rw
";
        let hs = parse(mi, CG);
        assert_eq!(hs.len(), 3, "{hs:?}");
        assert_eq!(hs[0].mount, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(hs[0].current, "/x");
        assert_eq!(hs[1].mount, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(hs[1].current, "/a/b");
        assert_eq!(hs[2].mount, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(hs[2].current, "/u");
    }

    #[test]
    fn the_whole_read_write_mount_is_preferred_and_subtree_mounts_are_relative() {
        let mi = "\
90 23 0:32 / /tmp/ro ro,relatime - cgroup cgroup rw,memory
91 23 0:32 /a /tmp/sub rw,relatime - cgroup cgroup rw,memory
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";
        let hs = parse(mi, CG);
        assert_eq!(hs.len(), 1);
        assert_eq!(hs[0].mount, PathBuf::from("/sys/fs/cgroup/memory"));
        // Only a subtree mount: the caller's cgroup below it.
        let hs = parse(mi.lines().nth(1).unwrap(), CG);
        assert_eq!(hs[0].mount, PathBuf::from("/tmp/sub"));
        assert_eq!(hs[0].current, "/b");
        assert_eq!(unescape("/tmp/ro\\040copy"), "/tmp/ro copy");
    }
}
