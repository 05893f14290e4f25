//! The container's on-disk record under `--root`: one directory per id holding `state.json`
//! (written atomically), the `exec.fifo` that `start` opens, and a lock taken with flock so
//! concurrent calls on the same id are serialised.

use crate::error::{Context, Error, Result};
use crate::utils;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const FIFO: &str = "exec.fifo";
const STATE: &str = "state.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(String::from));
        f.write_str(&s.unwrap_or_default())
    }
}

/// What we persist. `status` is recomputed from the live process on every load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` (clock ticks since boot): detects pid reuse after the init dies.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// cgroup directories the container owns, one per hierarchy.
    #[serde(default)]
    pub cgroup_paths: Vec<PathBuf>,
    /// The cgroup directories create made (parents included); delete removes only these.
    /// None in a state written before this was recorded (all of `cgroup_paths` then).
    #[serde(default)]
    pub cgroup_made: Option<Vec<PathBuf>>,
    /// Set only while the state is written during create (before `created`).
    #[serde(default)]
    pub creating: bool,
    #[serde(default)]
    pub use_systemd: bool,
    /// Whether create found a cgroup2-only host: picks the cgroupfs backend at load without
    /// reading mountinfo (None in a state written before: read then).
    #[serde(default)]
    pub cgroup_v2: Option<bool>,
    /// The container's transient scope when `use_systemd` (e.g. berth-c1.scope).
    #[serde(default)]
    pub systemd_unit: Option<String>,
    /// Whether the user's systemd (rootless, over the session bus) owns that scope.
    #[serde(default)]
    pub systemd_user: bool,
    /// The config's hooks: poststop must run at delete even if the bundle is gone.
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
}

/// The directory of one container; holds the flock for as long as it lives.
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
    _lock: Option<File>,
}

pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::BadId(id.to_string()))
    }
}

/// Makes the state root, private as runc makes it (0700, missing parents too). Rootless, it
/// may sit in a shared place (/tmp), so it must also be ours: another user's directory there
/// could redirect our state.
fn make_root(root: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let r = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root);
    r.ctx(|| root.display().to_string())?;
    if !crate::rootless::is_rootless() {
        return Ok(());
    }
    let md = std::fs::symlink_metadata(root).ctx(|| root.display().to_string())?;
    let me = nix::unistd::geteuid().as_raw();
    if !md.is_dir() || md.uid() != me {
        return Err(Error::Other(format!(
            "state directory {}: owned by uid {}, not by you (uid {me}); pass --root",
            root.display(),
            md.uid()
        )));
    }
    Ok(())
}

/// Writes `data` to `path` through a private temporary file (0600: the state holds the
/// config's annotations and hooks, for root's eyes only, as runc keeps it), then renames.
fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .ctx(|| tmp.display().to_string())?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .ctx(|| tmp.display().to_string())?;
    f.write_all(data).ctx(|| tmp.display().to_string())?;
    std::fs::rename(&tmp, path).ctx(|| path.display().to_string())
}

impl ContainerDir {
    /// Makes the directory for a new container; fails if the id is taken.
    pub fn create(root: &Path, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        make_root(root)?;
        let path = root.join(id);
        match std::fs::create_dir(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(id.into()))
            }
            r => r.ctx(|| path.display().to_string())?,
        }
        // 0711 as runc: others may pass through (a mapped init opens exec.fifo) but not list.
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o711);
        std::fs::set_permissions(&path, mode).ctx(|| path.display().to_string())?;
        let lock = lock(&path)?;
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            _lock: Some(lock),
        })
    }

    /// Opens an existing container's directory, locked for a change or unlocked to read.
    pub fn open(root: &Path, id: &str, locked: bool) -> Result<ContainerDir> {
        validate_id(id)?;
        let path = root.join(id);
        let lock = match locked.then(|| lock(&path)).transpose() {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.into()))
            }
            r => r?,
        };
        if !path.join(STATE).exists() {
            return Err(Error::NotFound(id.into()));
        }
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            _lock: lock,
        })
    }

    pub fn load(&self) -> Result<State> {
        let p = self.path.join(STATE);
        let data = std::fs::read(&p).ctx(|| p.display().to_string())?;
        serde_json::from_slice(&data)
            .map_err(|e| Error::state(&self.id, format!("{}: {e}", p.display())))
    }

    pub fn save(&self, st: &State) -> Result<()> {
        let data = serde_json::to_vec(st).expect("state serialises");
        write_private(&self.path.join(STATE), &data)
    }

    pub fn fifo(&self) -> PathBuf {
        self.path.join(FIFO)
    }

    pub fn remove(self) -> Result<()> {
        std::fs::remove_dir_all(&self.path).ctx(|| self.path.display().to_string())
    }
}

/// A POSIX record lock on `DIR/.lock`. Unlike flock, these locks belong to the process and
/// are not inherited by fork, so the container's init never holds the lock of `create`.
fn lock(dir: &Path) -> Result<File> {
    if !dir.is_dir() {
        return Err(Error::io(dir, std::io::ErrorKind::NotFound.into()));
    }
    let p = dir.join(".lock");
    let f = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&p)
        .ctx(|| p.display().to_string())?;
    // SAFETY: flock struct zeroed then filled; fcntl on a descriptor we own.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    loop {
        if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLKW, &fl) } == 0 {
            return Ok(f);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(Error::io(&p, e));
        }
    }
}

impl State {
    /// The status the runtime-spec defines, read from the live system.
    pub fn status(&self, dir: &ContainerDir) -> Status {
        if self.creating {
            return Status::Creating;
        }
        if !self.alive() {
            return Status::Stopped;
        }
        if dir.fifo().exists() {
            return Status::Created;
        }
        if self.cgroups().is_frozen() {
            return Status::Paused;
        }
        Status::Running
    }

    /// The container's cgroup manager, of the backend create chose.
    pub fn cgroups(&self) -> Box<dyn crate::cgroups::Manager> {
        let unit = self.systemd_unit.as_deref().filter(|_| self.use_systemd);
        crate::cgroups::manager::load(&self.cgroup_paths, unit, self.systemd_user, self.cgroup_v2)
    }

    /// True while the init process still runs (a zombie has stopped).
    pub fn alive(&self) -> bool {
        self.pid > 0
            && utils::proc_start_time(self.pid) == Some(self.start_time)
            && utils::proc_state(self.pid) != Some('Z')
    }

    /// The runtime-spec state document (with runc's extra fields), as `state` prints it.
    pub fn to_oci(&self, status: Status) -> serde_json::Value {
        let pid = if status == Status::Stopped {
            0
        } else {
            self.pid
        };
        serde_json::json!({
            "ociVersion": crate::OCI_VERSION,
            "id": self.id,
            "pid": pid,
            "status": status,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
            "annotations": self.annotations,
        })
    }
}

/// Ids of all containers under `root`.
pub fn list_ids(root: &Path) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        r => r.ctx(|| root.display().to_string())?,
    };
    let mut ids: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(STATE).exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        assert!(validate_id("abc-1_2.x").is_ok());
        assert!(validate_id("../etc").is_err());
        assert!(validate_id("a/b").is_err());
        assert!(validate_id("").is_err());
    }

    #[test]
    fn duplicate_create_fails_and_open_finds_state() {
        let t = tempfile::tempdir().unwrap();
        let d = ContainerDir::create(t.path(), "c1").unwrap();
        assert!(matches!(
            ContainerDir::create(t.path(), "c1"),
            Err(Error::Exists(_))
        ));
        let st = State {
            id: "c1".into(),
            pid: std::process::id() as i32,
            start_time: utils::proc_start_time(std::process::id() as i32).unwrap(),
            bundle: "/b".into(),
            rootfs: "/b/r".into(),
            created: "x".into(),
            owner: "root".into(),
            annotations: HashMap::new(),
            cgroup_paths: vec![],
            cgroup_made: Some(vec![]),
            creating: false,
            use_systemd: false,
            cgroup_v2: None,
            systemd_unit: None,
            systemd_user: false,
            hooks: None,
        };
        d.save(&st).unwrap();
        drop(d);
        let d = ContainerDir::open(t.path(), "c1", true).unwrap();
        let back = d.load().unwrap();
        assert_eq!(back.status(&d), Status::Running);
        assert!(matches!(
            ContainerDir::open(t.path(), "nope", false),
            Err(Error::NotFound(_))
        ));
    }
}
