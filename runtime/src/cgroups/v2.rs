//! cgroup v2 specifics: controllers enabled down the tree, and the freezer (cgroup.freeze /
//! cgroup.events).

use crate::error::{Context, Error, Result};
use std::path::Path;

/// Enables every controller the hierarchy offers in each ancestor of `leaf` below and
/// including `mount`, as runc's v2 manager does: a controller reaches a cgroup only through
/// its parent's cgroup.subtree_control. All at once, else one by one; a controller that is
/// not delegated stays off here and the limit needing it fails by name (resources.rs).
pub fn enable_controllers(mount: &Path, leaf: &Path) {
    let all = std::fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
    let want: Vec<String> = all.split_whitespace().map(|c| format!("+{c}")).collect();
    if want.is_empty() {
        return;
    }
    let rel = leaf.strip_prefix(mount).unwrap_or(Path::new(""));
    let mut cur = mount.to_path_buf();
    for c in rel.components() {
        let f = cur.join("cgroup.subtree_control");
        if std::fs::write(&f, want.join(" ")).is_err() {
            for w in &want {
                let _ = std::fs::write(&f, w);
            }
        }
        cur.push(c);
    }
}

/// Why `controller` is missing from `dir`: not offered by the hierarchy, or not enabled in
/// the parent's cgroup.subtree_control (not delegated to this subtree).
pub fn missing_controller(dir: &Path, controller: &str) -> Option<String> {
    let has = |p: &Path| {
        std::fs::read_to_string(p.join("cgroup.controllers"))
            .is_ok_and(|s| s.split_whitespace().any(|c| c == controller))
    };
    if has(dir) {
        return None;
    }
    let parent = dir.parent()?;
    Some(if has(parent) {
        format!(
            "controller {controller} is not enabled in {}/cgroup.subtree_control",
            parent.display()
        )
    } else {
        format!(
            "controller {controller} is not available in {} (not delegated to this subtree, or bound to a v1 hierarchy)",
            parent.display()
        )
    })
}

pub fn is_frozen(p: &Path) -> bool {
    std::fs::read_to_string(p.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
}

/// Writes cgroup.freeze and waits until cgroup.events reports it; a freeze that does not
/// complete is undone, as in v1 (v1.rs).
pub fn set_frozen(p: &Path, frozen: bool) -> Result<()> {
    let f = p.join("cgroup.freeze");
    std::fs::write(&f, if frozen { "1" } else { "0" }).ctx(|| f.display().to_string())?;
    let want = if frozen { "frozen 1" } else { "frozen 0" };
    for _ in 0..super::v1::FREEZE_TRIES {
        let ev = std::fs::read_to_string(p.join("cgroup.events")).unwrap_or_default();
        if ev.lines().any(|l| l == want) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    if frozen {
        let _ = std::fs::write(&f, "0");
    }
    Err(Error::FreezeTimeout {
        path: p.to_path_buf(),
        state: if frozen { "frozen" } else { "thawed" },
        ms: super::v1::FREEZE_TRIES,
    })
}

#[cfg(test)]
mod tests {
    // No cgroup v2-only host is at hand here: these check the v2 file writes against a
    // temporary directory standing in for a cgroup2 directory.
    use super::*;

    #[test]
    fn freeze_writes_cgroup_freeze() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        set_frozen(t.path(), true).unwrap();
        assert!(is_frozen(t.path()));
        std::fs::write(t.path().join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        set_frozen(t.path(), false).unwrap();
        assert!(!is_frozen(t.path()));
    }

    #[test]
    fn a_freeze_that_never_completes_is_a_typed_error_and_undone() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        let e = set_frozen(t.path(), true).unwrap_err();
        assert!(
            matches!(e, crate::error::Error::FreezeTimeout { .. }),
            "{e}"
        );
        assert!(!is_frozen(t.path()), "the freeze was not undone");
    }
}
