//! The old values of the cgroup files a resources update writes, so that a write the kernel
//! refuses half-way leaves the container as it was: everything written before it is put back,
//! newest first. Files that hold one line per key (per-device limits, interface priorities)
//! get back the old line for the key written, or the value that removes that key.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

enum Saved {
    /// Write this value back.
    Value(PathBuf, String),
    /// A v1 devices cgroup and its old devices.list, taken back to by a transition.
    Devices(PathBuf, String),
}

#[derive(Default)]
pub struct Journal {
    saved: Vec<Saved>,
    /// Writes only, nothing saved: for a cgroup that a failure removes whole (create).
    off: bool,
}

fn name(p: &Path) -> &str {
    p.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// Files whose lines are "KEY VALUE…", one per device or interface.
fn keyed(file: &str) -> bool {
    file.ends_with("_device")
        || matches!(
            file,
            "io.max" | "io.weight" | "io.bfq.weight" | "net_prio.ifpriomap"
        )
}

/// What to write to `file` to undo writing `new` over `old` (its contents before), or None
/// when it cannot be told.
pub fn restore_value(file: &str, new: &str, old: &str) -> Option<String> {
    if file == "memory.oom_control" {
        let v = old
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill_disable "))?;
        return Some(v.trim().to_string());
    }
    if keyed(file) {
        let mut toks = new.split_whitespace();
        let first = toks.next()?;
        // "N" alone on io.weight/io.bfq.weight sets the default line.
        let key = if toks.next().is_some() {
            first
        } else {
            "default"
        };
        if let Some(line) = old
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))
        {
            return Some(line.trim().to_string());
        }
        return Some(match file {
            "io.max" => format!("{key} rbps=max wbps=max riops=max wiops=max"),
            "io.weight" | "io.bfq.weight" => format!("{key} default"),
            // blkio's per-device files and net_prio: 0 removes the entry.
            _ => format!("{key} 0"),
        });
    }
    let old = old.trim();
    (!old.contains('\n')).then(|| old.to_string())
}

impl Journal {
    /// A journal that saves nothing (see `off`).
    pub fn off() -> Journal {
        Journal {
            saved: Vec::new(),
            off: true,
        }
    }

    /// Writes `value` to `path` for `field`, remembering what undoes it.
    pub fn write(&mut self, field: &str, path: &Path, value: &str) -> Result<()> {
        let old = if self.off {
            None
        } else {
            std::fs::read_to_string(path).ok()
        };
        std::fs::write(path, value).map_err(|e| {
            Error::Other(format!(
                "{field}: write {value:?} to {}: {e}",
                path.display()
            ))
        })?;
        if let Some(v) = old.and_then(|o| restore_value(name(path), value, &o)) {
            self.saved.push(Saved::Value(path.to_path_buf(), v));
        }
        Ok(())
    }

    /// Remembers a v1 devices cgroup's rules before they are rewritten.
    pub fn save_devices(&mut self, dir: &Path) {
        if self.off {
            return;
        }
        if let Ok(list) = std::fs::read_to_string(dir.join("devices.list")) {
            self.saved.push(Saved::Devices(dir.to_path_buf(), list));
        }
    }

    /// Puts everything back, newest first. A value that cannot be restored is reported as a
    /// warning: the error that caused the rollback is the one the caller returns.
    pub fn rollback(self) {
        for s in self.saved.into_iter().rev() {
            let r = match &s {
                Saved::Value(p, v) => std::fs::write(p, v).map_err(|e| (p.clone(), e)),
                Saved::Devices(d, list) => restore_devices(d, list),
            };
            if let Err((p, e)) = r {
                crate::logger::warn(&format!(
                    "rolling back a failed resources change: could not restore {}: {e}",
                    p.display()
                ));
            }
        }
    }
}

fn restore_devices(dir: &Path, list: &str) -> std::result::Result<(), (PathBuf, std::io::Error)> {
    let err = |e: crate::error::Error| {
        (
            dir.join("devices.list"),
            std::io::Error::other(e.to_string()),
        )
    };
    let old = super::devemu::State::from_list(list).map_err(err)?;
    super::devemu::set(dir, &old).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_values() {
        assert_eq!(
            restore_value("memory.limit_in_bytes", "1", "67108864\n").unwrap(),
            "67108864"
        );
        assert_eq!(
            restore_value(
                "memory.oom_control",
                "1",
                "oom_kill_disable 0\nunder_oom 0\n"
            )
            .unwrap(),
            "0"
        );
        let thr = "blkio.throttle.read_bps_device";
        assert_eq!(
            restore_value(thr, "8:0 100", "8:0 5\n8:16 7\n").unwrap(),
            "8:0 5"
        );
        assert_eq!(restore_value(thr, "8:32 100", "8:0 5\n").unwrap(), "8:32 0");
        assert_eq!(
            restore_value("io.max", "8:0 rbps=1", "").unwrap(),
            "8:0 rbps=max wbps=max riops=max wiops=max"
        );
        assert_eq!(
            restore_value("io.weight", "500", "default 100\n8:0 50\n").unwrap(),
            "default 100"
        );
        assert!(restore_value("memory.stat", "1", "a 1\nb 2\n").is_none());
    }

    #[test]
    fn rollback_restores_newest_first() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("cpu.shares");
        let b = t.path().join("blkio.throttle.read_bps_device");
        std::fs::write(&a, "1024\n").unwrap();
        std::fs::write(&b, "").unwrap();
        let mut j = Journal::default();
        j.write("f", &a, "512").unwrap();
        j.write("f", &a, "256").unwrap();
        j.write("g", &b, "8:0 100").unwrap();
        j.rollback();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "1024");
        // A plain file stands in for the kernel's keyed one: the removal line is written.
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "8:0 0");
    }
}
