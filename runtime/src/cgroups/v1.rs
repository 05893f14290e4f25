//! cgroup v1 specifics: cpuset inheritance and the freezer.

use crate::error::{Context, Error, Result};
use std::path::{Path, PathBuf};

/// mkdir -p for cpuset, recording each directory made in `made`. Every level on the way,
/// existing ones included, whose cpuset.cpus or cpuset.mems is empty gets its parent's (as
/// runc fills them): a cpuset with no cpus or mems refuses tasks (ENOSPC on join).
pub fn create_cpuset(mount: &Path, p: &Path, made: &mut Vec<PathBuf>) -> Result<()> {
    let rel = p.strip_prefix(mount).unwrap_or(p);
    let mut cur = mount.to_path_buf();
    for c in rel.components() {
        let parent = cur.clone();
        cur.push(c);
        match std::fs::create_dir(&cur) {
            Ok(()) => made.push(cur.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(format!("cgroup {}", cur.display()), e)),
        }
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let read = |d: &Path| {
                std::fs::read_to_string(d.join(f))
                    .map(|v| v.trim().to_string())
                    .ctx(|| d.join(f).display().to_string())
            };
            if read(&cur)?.is_empty() {
                let v = read(&parent)?;
                std::fs::write(cur.join(f), v).ctx(|| cur.join(f).display().to_string())?;
            }
        }
    }
    Ok(())
}

pub fn is_frozen(p: &Path) -> bool {
    std::fs::read_to_string(p.join("freezer.state")).is_ok_and(|s| s.trim() != "THAWED")
}

/// Writes the freezer state and waits until the kernel reports it reached. A freeze that
/// does not complete (a task stuck in the kernel) is undone, as runc does: the container is
/// left running, not half frozen.
pub fn set_frozen(p: &Path, frozen: bool) -> Result<()> {
    let f = p.join("freezer.state");
    let want = if frozen { "FROZEN" } else { "THAWED" };
    for _ in 0..FREEZE_TRIES {
        std::fs::write(&f, want).ctx(|| f.display().to_string())?;
        let now = std::fs::read_to_string(&f).ctx(|| f.display().to_string())?;
        if now.trim() == want {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    if frozen {
        let _ = std::fs::write(&f, "THAWED");
    }
    Err(Error::FreezeTimeout {
        path: p.to_path_buf(),
        state: want,
        ms: FREEZE_TRIES,
    })
}

/// How long (in 1 ms steps) a freezer change may take, in v1 and v2 alike.
pub const FREEZE_TRIES: u64 = 1000;
