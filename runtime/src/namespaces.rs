//! Which namespaces the container gets: joined by `path` (setns, user namespace first) or
//! made new (unshare). Namespace files are all opened before the first setns, because
//! joining a mount namespace changes how later paths resolve.

use crate::error::{Context, Error, Result};
use nix::sched::CloneFlags;
use oci_spec::runtime::{Linux, LinuxNamespaceType as T};
use std::fs::File;
use std::path::PathBuf;

pub fn flag(t: T) -> CloneFlags {
    match t {
        T::Mount => CloneFlags::CLONE_NEWNS,
        T::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        T::Uts => CloneFlags::CLONE_NEWUTS,
        T::Ipc => CloneFlags::CLONE_NEWIPC,
        T::User => CloneFlags::CLONE_NEWUSER,
        T::Pid => CloneFlags::CLONE_NEWPID,
        T::Network => CloneFlags::CLONE_NEWNET,
        T::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The `/proc/PID/ns/NAME` file name of a namespace type.
pub fn proc_name(t: T) -> &'static str {
    match t {
        T::Mount => "mnt",
        T::Cgroup => "cgroup",
        T::Uts => "uts",
        T::Ipc => "ipc",
        T::User => "user",
        T::Pid => "pid",
        T::Network => "net",
        T::Time => "time",
    }
}

#[derive(Debug, Default, Clone)]
pub struct Plan {
    pub join: Vec<(T, PathBuf)>,
    pub new: Vec<T>,
}

impl Plan {
    pub fn from_linux(linux: Option<&Linux>) -> Plan {
        let mut p = Plan::default();
        for ns in linux
            .and_then(|l| l.namespaces().as_ref())
            .into_iter()
            .flatten()
        {
            match ns.path() {
                Some(path) => p.join.push((ns.typ(), path.clone())),
                None => p.new.push(ns.typ()),
            }
        }
        p
    }
    pub fn is_new(&self, t: T) -> bool {
        self.new.contains(&t)
    }
    pub fn has(&self, t: T) -> bool {
        self.new.contains(&t) || self.join.iter().any(|(j, _)| *j == t)
    }
    /// Namespaces made new with unshare after the user namespace is settled.
    pub fn unshare_flags(&self) -> CloneFlags {
        self.new
            .iter()
            .filter(|t| **t != T::User)
            .fold(CloneFlags::empty(), |a, t| a | flag(*t))
    }
}

/// Opens every namespace path, then joins them: user first (it grants the rights for the
/// rest), the others in config order.
pub fn join(list: &[(T, PathBuf)]) -> Result<()> {
    let mut files: Vec<(T, File, &PathBuf)> = Vec::new();
    for (t, p) in list {
        let f = File::open(p)
            .map_err(|e| Error::Other(format!("linux.namespaces {t}: {}: {e}", p.display())))?;
        files.push((*t, f, p));
    }
    files.sort_by_key(|(t, _, _)| *t != T::User);
    for (t, f, p) in files {
        nix::sched::setns(&f, flag(t)).ctx(|| format!("join {t} namespace {}", p.display()))?;
    }
    Ok(())
}

/// Joins all namespaces of a running process that differ from ours (for exec).
pub fn join_process(pid: i32, types: &[T]) -> Result<()> {
    let list: Vec<(T, PathBuf)> = types
        .iter()
        .filter(|t| {
            let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{}", proc_name(**t)));
            let ours = std::fs::metadata(format!("/proc/self/ns/{}", proc_name(**t)));
            use std::os::unix::fs::MetadataExt;
            match (theirs, ours) {
                (Ok(a), Ok(b)) => a.ino() != b.ino() || a.dev() != b.dev(),
                _ => false,
            }
        })
        .map(|t| {
            (
                *t,
                PathBuf::from(format!("/proc/{pid}/ns/{}", proc_name(*t))),
            )
        })
        .collect();
    join(&list)
}

pub fn all_types() -> [T; 8] {
    [
        T::User,
        T::Mount,
        T::Cgroup,
        T::Uts,
        T::Ipc,
        T::Network,
        T::Pid,
        T::Time,
    ]
}
