//! Rootless builds: an ordinary user's berth-build re-executes itself in a user (and
//! mount) namespace of its own where it is uid/gid 0, as `buildah unshare` does. No
//! setuid binary of ours and no daemon: only the distribution's newuidmap/newgidmap
//! for the subordinate ids of /etc/subuid and /etc/subgid.
//!
//! Inside, everything runs as for root, with these differences: the store defaults to
//! $XDG_DATA_HOME/berth, overlays are mounted with `userxattr` (so whiteouts of opaque
//! directories are `user.overlay.opaque`), RUN steps keep the host's network, and ids
//! outside the mapping give an error that says how to map more.

mod enter;
pub mod idmap;

pub use enter::{enter, Role};

use std::path::PathBuf;

/// The environment marker of the re-executed child ("R,W": its sync pipe fds while it
/// sets up, then "1").
pub const MARKER: &str = "BERTH_BUILD_USERNS";

/// What the user can do about a namespace that cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    #[error("rootless build: cannot create a user namespace ({source}): user namespaces are disabled or exhausted; enable them (sysctl user.max_user_namespaces=15000, and kernel.unprivileged_userns_clone=1 where it exists) or run as root")]
    Unshare {
        #[source]
        source: std::io::Error,
    },
    #[error("rootless build: /etc/subuid and /etc/subgid have ranges for {user} but newuidmap/newgidmap are not installed: install the uidmap package (apt-get install uidmap)")]
    NoHelper { user: String },
    #[error("rootless build: {bin} {args} failed: {stderr} (check the ranges in /etc/subuid and /etc/subgid, and that {bin} is setuid root)")]
    Helper {
        bin: PathBuf,
        args: String,
        stderr: String,
    },
    #[error("rootless build: {path}: {source}")]
    Map {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rootless build: sync with the namespace child: {0}")]
    Sync(String),
    #[error("{what}: id {id} is not mapped in this rootless build ({}): give your user ranges of at least 65536 ids in /etc/subuid and /etc/subgid (e.g. USER:100000:65536) and install uidmap (newuidmap, newgidmap)", mapped_text(*.mapped))]
    Unmapped { what: String, id: u32, mapped: u64 },
}

/// Is this process a rootless build: an ordinary user, or the namespace child of one?
/// (Decides the default store and the commands allowed; mounts ask `in_userns`.)
pub fn active() -> bool {
    !nix::unistd::geteuid().is_root() || std::env::var_os(MARKER).is_some()
}

/// Is this process in a user namespace other than the initial one (the build's own,
/// or root of a container)? Then overlays need `userxattr`, and ids are limited.
pub fn in_userns() -> bool {
    static IN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN.get_or_init(|| {
        let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
        let full: Vec<&str> = map.split_whitespace().collect();
        !map.is_empty() && full != ["0", "0", "4294967295"]
    })
}

/// How many ids the current user namespace maps (u32::MAX + 1 in the initial one).
pub fn mapped_ids() -> u64 {
    let data = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    data.lines()
        .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
        .sum()
}

/// What a rootless build's namespace maps, for error messages.
fn mapped_text(n: u64) -> String {
    match n {
        0 | 1 => "it maps only your own id, as 0".to_string(),
        n => format!(
            "it maps ids 0-{}: your own id and a subordinate range of {}",
            n - 1,
            n - 1
        ),
    }
}

/// Is `id` usable as a file owner here? (Only asked in rootless builds.)
pub fn is_mapped(id: u32) -> bool {
    !in_userns() || (id as u64) < mapped_ids()
}

/// An error for chown(2) of `what` to `uid:gid`: names the unmapped id when that is
/// why it failed.
pub fn chown_error(what: &std::path::Path, uid: u32, gid: u32) -> Option<RootlessError> {
    let id = [uid, gid].into_iter().find(|&i| !is_mapped(i))?;
    Some(RootlessError::Unmapped {
        what: what.display().to_string(),
        id,
        mapped: mapped_ids(),
    })
}

/// For a failed RUN step in a rootless build that maps fewer ids than an image may use:
/// the likely cause (chown to an unmapped id fails with EINVAL) and its fix.
pub fn run_hint(output: &str) -> Option<String> {
    let unmapped = output.contains("Invalid argument") || output.contains("invalid argument");
    let n = mapped_ids();
    (in_userns() && n < 65536 && unmapped).then(|| {
        format!(
            " (this rootless build cannot give files to other ids: {}; give your user ranges \
             of at least 65536 ids in /etc/subuid and /etc/subgid and install uidmap \
             (newuidmap, newgidmap))",
            mapped_text(n)
        )
    })
}

/// The store of a rootless user: $XDG_DATA_HOME/berth, else ~/.local/share/berth.
pub fn default_store() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("berth");
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // Without HOME: the passwd entry of the real (outer) user.
            let uid = nix::unistd::getuid();
            nix::unistd::User::from_uid(uid)
                .ok()
                .flatten()
                .map(|u| u.dir)
                .unwrap_or_else(|| PathBuf::from(format!("/tmp/berth-{uid}")))
        });
    home.join(".local/share/berth")
}
