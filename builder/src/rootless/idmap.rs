//! The id mappings of the build's user namespace: the user's own id as 0 and, where
//! /etc/subuid and /etc/subgid give it ranges, those as 1..N (written by the setuid
//! newuidmap/newgidmap of the distribution's `uidmap` package). Without ranges, only
//! the user's own id is mapped, written directly (no helper needed).

use super::RootlessError;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One subordinate range: host ids start..start+count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub count: u64,
}

/// The ranges of `name` (or its numeric `id`) in an /etc/subuid-style file.
pub fn ranges(file: &Path, name: &str, id: u32) -> Vec<Range> {
    let data = std::fs::read_to_string(file).unwrap_or_default();
    parse_ranges(&data, name, id)
}

fn parse_ranges(data: &str, name: &str, id: u32) -> Vec<Range> {
    let id = id.to_string();
    data.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            if f.len() != 3 || (f[0] != name && f[0] != id) {
                return None;
            }
            let (start, count) = (f[1].parse().ok()?, f[2].parse().ok()?);
            (count > 0).then_some(Range { start, count })
        })
        .collect()
}

/// A helper binary on PATH or in /usr/bin.
fn helper(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// What the child's namespace gets.
#[derive(Debug)]
pub struct Plan {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub subuids: Vec<Range>,
    pub subgids: Vec<Range>,
}

impl Plan {
    pub fn for_current_user() -> Plan {
        let uid = nix::unistd::geteuid();
        let gid = nix::unistd::getegid();
        let user = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| uid.to_string());
        let subuids = ranges(Path::new("/etc/subuid"), &user, uid.as_raw());
        let group = nix::unistd::Group::from_gid(gid)
            .ok()
            .flatten()
            .map(|g| g.name);
        // subgid is keyed by user name, as shadow's newgidmap reads it.
        let mut subgids = ranges(Path::new("/etc/subgid"), &user, uid.as_raw());
        if subgids.is_empty() {
            if let Some(g) = group {
                subgids = ranges(Path::new("/etc/subgid"), &g, gid.as_raw());
            }
        }
        Plan {
            user,
            uid: uid.as_raw(),
            gid: gid.as_raw(),
            subuids,
            subgids,
        }
    }

    /// Map the ids of process `pid` (which has just unshared its user namespace).
    pub fn apply(&self, pid: i32) -> Result<(), RootlessError> {
        if self.subuids.is_empty() || self.subgids.is_empty() {
            return self.single(pid);
        }
        let (Some(nu), Some(ng)) = (helper("newuidmap"), helper("newgidmap")) else {
            return Err(RootlessError::NoHelper {
                user: self.user.clone(),
            });
        };
        run_helper(&nu, pid, self.uid, &self.subuids)?;
        run_helper(&ng, pid, self.gid, &self.subgids)
    }

    /// Only our own ids: the kernel lets a process map its own euid/egid into a
    /// namespace it owns, provided setgroups(2) is denied there first.
    fn single(&self, pid: i32) -> Result<(), RootlessError> {
        let proc = PathBuf::from(format!("/proc/{pid}"));
        for (file, text) in [
            ("setgroups", "deny".to_string()),
            ("uid_map", format!("0 {} 1\n", self.uid)),
            ("gid_map", format!("0 {} 1\n", self.gid)),
        ] {
            let p = proc.join(file);
            std::fs::write(&p, text).map_err(|source| RootlessError::Map { path: p, source })?;
        }
        Ok(())
    }
}

/// `newuidmap PID 0 ID 1 1 START COUNT [next START COUNT …]`
fn run_helper(bin: &Path, pid: i32, own: u32, ranges: &[Range]) -> Result<(), RootlessError> {
    let mut args = vec![pid.to_string(), "0".into(), own.to_string(), "1".into()];
    let mut next = 1u64;
    for r in ranges {
        args.extend([next.to_string(), r.start.to_string(), r.count.to_string()]);
        next += r.count;
    }
    let out = Command::new(bin)
        .args(&args)
        .output()
        .map_err(|source| RootlessError::Map {
            path: bin.to_path_buf(),
            source,
        })?;
    if !out.status.success() {
        return Err(RootlessError::Helper {
            bin: bin.to_path_buf(),
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', "; "),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_by_name_or_id() {
        let d = "alice:100000:65536\nbob:165536:65536\n1003:231072:10\nalice:300000:5\nbad\n";
        assert_eq!(
            parse_ranges(d, "alice", 1001),
            vec![
                Range {
                    start: 100000,
                    count: 65536
                },
                Range {
                    start: 300000,
                    count: 5
                }
            ]
        );
        assert_eq!(parse_ranges(d, "carol", 1003).len(), 1);
        assert!(parse_ranges(d, "carol", 1004).is_empty());
    }
}
