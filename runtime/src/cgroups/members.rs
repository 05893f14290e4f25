//! Which processes are a container's: those in its cgroup directories, sub-cgroups included.
//! Signalling goes by this list, so it must never include a process the container does not
//! own: a hierarchy's root cgroup, or a cgroup holding berth itself or one of its ancestors
//! (the caller's own cgroup, as a state written before an empty cgroupsPath was refused may
//! name), is foreign and yields nothing but the init.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A hierarchy's root cgroup: v1 has `release_agent` only there, cgroup2 lacks `cgroup.type`
/// only there.
pub fn is_root(p: &Path) -> bool {
    if p.join("tasks").exists() {
        return p.join("release_agent").exists();
    }
    p.join("cgroup.procs").exists() && !p.join("cgroup.type").exists()
}

/// berth's pid and those of its ancestors (its caller, the caller's shell, ..., init).
fn self_and_ancestors() -> HashSet<i32> {
    let mut out = HashSet::new();
    let mut pid = std::process::id() as i32;
    while pid > 0 && out.insert(pid) {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The command name may hold spaces and parentheses: fields follow the last ')'.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        pid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
    }
    out
}

/// `p` and every cgroup below it, parents first.
pub fn subtree(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![p.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(rd) = std::fs::read_dir(&out[i]) {
            let mut kids: Vec<PathBuf> = rd
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect();
            out.append(&mut kids);
        }
        i += 1;
    }
    out
}

/// Every pid in `p`'s subtree (none when `p` does not exist).
pub fn all_pids(p: &Path) -> Vec<i32> {
    let mut out = Vec::new();
    for d in subtree(p) {
        if let Ok(s) = std::fs::read_to_string(d.join("cgroup.procs")) {
            out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
    }
    out
}

/// Why the cgroup `p` is not one a container may own, if it is not.
pub fn foreign(p: &Path) -> Option<String> {
    if is_root(p) {
        return Some(format!("cgroup {} is a hierarchy's root", p.display()));
    }
    let mine = self_and_ancestors();
    let pid = all_pids(p).into_iter().find(|q| mine.contains(q))?;
    Some(format!(
        "cgroup {} holds berth or its caller (pid {pid})",
        p.display()
    ))
}

/// Why the first of `paths` that is foreign is so.
pub fn any_foreign(paths: &[PathBuf]) -> Option<String> {
    paths.iter().filter(|p| p.exists()).find_map(|p| foreign(p))
}

/// The container's processes, from the first of its cgroups that answers; nothing when that
/// cgroup is foreign.
pub fn pids(paths: &[PathBuf]) -> Vec<i32> {
    let Some(p) = paths.iter().find(|p| p.join("cgroup.procs").exists()) else {
        return vec![];
    };
    if let Some(why) = foreign(p) {
        crate::logger::warn(&format!(
            "{why}: not the container's own; none of its processes are signalled"
        ));
        return vec![];
    }
    all_pids(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_include_self_and_parent() {
        let a = self_and_ancestors();
        assert!(a.contains(&(std::process::id() as i32)));
        assert!(a.contains(&(nix::unistd::getppid().as_raw())));
        assert!(a.contains(&1) || a.len() > 1);
    }

    #[test]
    fn subtree_lists_parents_first() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("a/b")).unwrap();
        let s = subtree(t.path());
        assert_eq!(s[0], t.path());
        assert_eq!(s[1], t.path().join("a"));
        assert_eq!(s[2], t.path().join("a/b"));
    }
}
