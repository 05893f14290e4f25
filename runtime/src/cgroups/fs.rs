//! The cgroupfs backends of [`Manager`]: berth writes the directories and files itself.
//! V1Manager serves hosts with v1 controllers (a hybrid host's unified tree is one more
//! directory there, frozen through it only when no v1 freezer is mounted); V2Manager serves
//! hosts whose only hierarchy is cgroup2.

use super::manager::{Driver, Manager};
use super::{resources, v1, v2, Hierarchy};
use crate::error::{Error, Result};
use oci_spec::runtime::LinuxResources;
use std::cell::OnceCell;
use std::path::{Component, Path, PathBuf};

/// What both cgroupfs backends hold: the host's hierarchies and the container's directories.
struct Fs {
    /// Read on first use by a loaded container (only exec --cgroup needs them).
    hs: OnceCell<Vec<Hierarchy>>,
    paths: Vec<PathBuf>,
}

impl Fs {
    fn new(hs: Option<Vec<Hierarchy>>, paths: Vec<PathBuf>) -> Fs {
        let cell = OnceCell::new();
        if let Some(hs) = hs {
            let _ = cell.set(hs);
        }
        Fs { hs: cell, paths }
    }

    fn hs(&self) -> &[Hierarchy] {
        self.hs.get_or_init(super::hierarchies)
    }

    fn create(&mut self, r: &LinuxResources, made: &mut Vec<PathBuf>) -> Result<()> {
        super::check_unused(&self.paths)?;
        if crate::rootless::is_rootless() {
            // Rootless keeps only the cgroups it could make; on failure `paths` stay whole,
            // so the caller's undo sees every directory that may have been made.
            let (hs, paths) =
                super::create_rootless(self.hs().to_vec(), self.paths.clone(), r, made)?;
            self.hs = OnceCell::from(hs);
            self.paths = paths;
        } else {
            super::create(self.hs(), &self.paths, made)?;
        }
        // After the directories exist: a new one under a frozen parent is frozen too.
        super::check_not_frozen(&self.paths)
    }

    fn freezer(&self, file: &str) -> Option<&PathBuf> {
        self.paths.iter().find(|p| p.join(file).exists())
    }

    /// The controllers of the hierarchy `p` lies in ("" for cgroup2).
    fn controllers_of(&self, p: &Path) -> &str {
        self.hs()
            .iter()
            .filter(|h| p.starts_with(&h.mount))
            .max_by_key(|h| h.mount.components().count())
            .map_or("", |h| h.controllers.as_str())
    }
}

fn no_freezer() -> Error {
    Error::Other("no freezer cgroup for this container".into())
}

pub struct V1Manager(Fs);

impl V1Manager {
    pub fn new(hs: Option<Vec<Hierarchy>>, paths: Vec<PathBuf>) -> V1Manager {
        V1Manager(Fs::new(hs, paths))
    }
}

impl Manager for V1Manager {
    fn driver(&self) -> Driver {
        Driver::V1
    }
    fn is_v2(&self) -> bool {
        false
    }
    fn paths(&self) -> &[PathBuf] {
        &self.0.paths
    }
    fn hierarchies(&self) -> &[Hierarchy] {
        self.0.hs()
    }
    fn create(&mut self, r: &LinuxResources, made: &mut Vec<PathBuf>) -> Result<()> {
        self.0.create(r, made)
    }
    fn set(&self, r: &LinuxResources, devices: Option<&[String]>) -> Result<()> {
        resources::apply(&self.0.paths, false, r, devices)
    }
    fn freeze(&self, frozen: bool) -> Result<()> {
        match self.0.freezer("freezer.state") {
            Some(p) => v1::set_frozen(p, frozen),
            None => v2::set_frozen(
                self.0.freezer("cgroup.freeze").ok_or_else(no_freezer)?,
                frozen,
            ),
        }
    }
    fn is_frozen(&self) -> bool {
        match self.0.freezer("freezer.state") {
            Some(p) => v1::is_frozen(p),
            None => self
                .0
                .freezer("cgroup.freeze")
                .is_some_and(|p| v2::is_frozen(p)),
        }
    }
    fn remove(&self, made: Option<&[PathBuf]>) -> Result<()> {
        super::remove(&self.0.paths, made)
    }
    fn exec_paths(&self, subs: &[String]) -> Result<Vec<PathBuf>> {
        sub_paths(&self.0, false, subs)
    }
}

pub struct V2Manager(Fs);

impl V2Manager {
    pub fn new(hs: Option<Vec<Hierarchy>>, paths: Vec<PathBuf>) -> V2Manager {
        V2Manager(Fs::new(hs, paths))
    }
}

impl Manager for V2Manager {
    fn driver(&self) -> Driver {
        Driver::V2
    }
    fn is_v2(&self) -> bool {
        true
    }
    fn paths(&self) -> &[PathBuf] {
        &self.0.paths
    }
    fn hierarchies(&self) -> &[Hierarchy] {
        self.0.hs()
    }
    fn create(&mut self, r: &LinuxResources, made: &mut Vec<PathBuf>) -> Result<()> {
        self.0.create(r, made)
    }
    fn set(&self, r: &LinuxResources, devices: Option<&[String]>) -> Result<()> {
        resources::apply(&self.0.paths, true, r, devices)
    }
    fn freeze(&self, frozen: bool) -> Result<()> {
        v2::set_frozen(
            self.0.freezer("cgroup.freeze").ok_or_else(no_freezer)?,
            frozen,
        )
    }
    fn is_frozen(&self) -> bool {
        self.0
            .freezer("cgroup.freeze")
            .is_some_and(|p| v2::is_frozen(p))
    }
    fn remove(&self, made: Option<&[PathBuf]>) -> Result<()> {
        super::remove(&self.0.paths, made)
    }
    fn exec_paths(&self, subs: &[String]) -> Result<Vec<PathBuf>> {
        sub_paths(&self.0, true, subs)
    }
}

/// One `--cgroup` value: the controllers named (none: every hierarchy) and the sub-path.
struct Sub<'a> {
    arg: &'a str,
    ctrls: Vec<&'a str>,
    rel: PathBuf,
}

fn bad_sub(arg: &str, why: impl std::fmt::Display) -> Error {
    Error::Other(format!("exec --cgroup {arg:?}: {why}"))
}

/// Parses `PATH` or `CTRL[,CTRL...]:PATH` (runc's forms). The path is taken below the
/// container's cgroup (a leading '/' too, as runc joins it) and may not climb out of it.
fn parse_sub(arg: &str, v2: bool) -> Result<Sub<'_>> {
    let (ctrls, path) = match arg.split_once(':') {
        Some((c, p)) => (c.split(',').collect::<Vec<_>>(), p),
        None => (vec![], arg),
    };
    if ctrls.iter().any(|c| c.is_empty()) {
        return Err(bad_sub(arg, "empty controller name"));
    }
    if v2 && !ctrls.is_empty() {
        return Err(bad_sub(
            arg,
            "cgroup v2 has one hierarchy: give a bare PATH, without controllers",
        ));
    }
    let p = Path::new(path);
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(bad_sub(arg, "'..' would leave the container's cgroup"));
    }
    let rel: PathBuf = p
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    Ok(Sub { arg, ctrls, rel })
}

/// The container's directories with each `--cgroup` sub-path put in (per-controller ones
/// before a bare one), every one refused unless it exists.
fn sub_paths(fs: &Fs, v2: bool, args: &[String]) -> Result<Vec<PathBuf>> {
    if args.is_empty() {
        return Ok(fs.paths.clone());
    }
    if fs.paths.is_empty() {
        return Err(bad_sub(
            &args[0],
            "the container has no cgroup (rootless, none delegated)",
        ));
    }
    let subs = args
        .iter()
        .map(|a| parse_sub(a, v2))
        .collect::<Result<Vec<_>>>()?;
    let bare: Vec<&Sub> = subs.iter().filter(|s| s.ctrls.is_empty()).collect();
    if bare.len() > 1 {
        return Err(bad_sub(bare[1].arg, "a bare PATH may be given once"));
    }
    let named = |c: &str| subs.iter().find(|s| s.ctrls.contains(&c));
    for s in &subs {
        for c in &s.ctrls {
            if named(c).is_some_and(|f| !std::ptr::eq(f, s))
                || s.ctrls.iter().filter(|x| *x == c).count() > 1
            {
                return Err(bad_sub(
                    s.arg,
                    format_args!("controller {c} is given twice"),
                ));
            }
            let known = fs
                .paths
                .iter()
                .any(|p| fs.controllers_of(p).split(',').any(|x| x == *c));
            if !known {
                return Err(bad_sub(
                    s.arg,
                    format_args!("no {c} hierarchy holds the container"),
                ));
            }
        }
    }
    let mut out = Vec::with_capacity(fs.paths.len());
    for p in &fs.paths {
        let ctrls = fs.controllers_of(p);
        let sub = ctrls.split(',').find_map(named).or(bare.first().copied());
        let Some(sub) = sub else {
            out.push(p.clone());
            continue;
        };
        let d = p.join(&sub.rel);
        if !d.is_dir() {
            return Err(bad_sub(
                sub.arg,
                format_args!("cgroup {} does not exist (make it first)", d.display()),
            ));
        }
        out.push(d);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(t: &Path) -> Fs {
        let h = |c: &str| Hierarchy {
            mount: t.join(c),
            controllers: c.into(),
            v2: false,
            current: "/".into(),
        };
        let hs = vec![h("memory"), h("cpu,cpuacct"), h("pids")];
        let paths: Vec<PathBuf> = hs.iter().map(|h| h.mount.join("c1")).collect();
        for p in &paths {
            std::fs::create_dir_all(p.join("sub")).unwrap();
        }
        Fs::new(Some(hs), paths)
    }

    #[test]
    fn exec_sub_cgroups_per_controller_and_bare() {
        let t = tempfile::tempdir().unwrap();
        let f = fs(t.path());
        let s = |a: &[&str]| {
            sub_paths(
                &f,
                false,
                &a.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
            )
        };
        let got = s(&["cpuacct,memory:/sub"]).unwrap();
        assert!(got[0].ends_with("memory/c1/sub") && got[1].ends_with("cpu,cpuacct/c1/sub"));
        assert!(got[2].ends_with("pids/c1"));
        let got = s(&["sub"]).unwrap();
        assert!(got.iter().all(|p| p.ends_with("c1/sub")));
        for bad in [
            &["../x"][..],
            &["memory:nope"],
            &["net_cls:sub"],
            &["a", "b"],
            &["memory:sub", "memory:sub"],
        ] {
            assert!(s(bad).is_err(), "{bad:?}");
        }
        assert!(sub_paths(&f, true, &["memory:sub".to_string()]).is_err());
    }

    #[test]
    fn the_backend_is_the_one_the_state_recorded() {
        use crate::cgroups::manager::load;
        let p = [PathBuf::from("/nonexistent/c1")];
        assert_eq!(load(&p, None, false, Some(false)).driver(), Driver::V1);
        assert_eq!(load(&p, None, false, Some(true)).driver(), Driver::V2);
        let s = load(&p, Some("berth-c1.scope"), false, Some(true));
        assert_eq!(
            (s.driver(), s.is_v2(), s.unit(), s.user_manager()),
            (Driver::Systemd, true, Some("berth-c1.scope"), false)
        );
        assert!(load(&p, Some("berth-c1.scope"), true, Some(true)).user_manager());
    }

    /// Temporary directories stand in for cgroups: a v1 freezer.state (a plain file reads
    /// back what was written), a hybrid host's unified directory (cgroup.freeze only).
    #[test]
    fn v1_freezes_through_its_freezer_or_else_the_unified_directory() {
        let t = tempfile::tempdir().unwrap();
        let (cpu, freezer, unified) = (
            t.path().join("cpu"),
            t.path().join("freezer"),
            t.path().join("unified"),
        );
        for d in [&cpu, &freezer, &unified] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(freezer.join("freezer.state"), "THAWED").unwrap();
        std::fs::write(unified.join("cgroup.freeze"), "0").unwrap();
        std::fs::write(unified.join("cgroup.events"), "frozen 0\n").unwrap();
        let m = V1Manager::new(
            Some(vec![]),
            vec![cpu.clone(), freezer.clone(), unified.clone()],
        );
        m.freeze(true).unwrap();
        assert!(m.is_frozen());
        assert_eq!(
            std::fs::read_to_string(unified.join("cgroup.freeze")).unwrap(),
            "0"
        );
        // Without a v1 freezer: the unified directory, whose freeze here never completes.
        let m = V1Manager::new(Some(vec![]), vec![cpu.clone(), unified.clone()]);
        let e = m.freeze(true).unwrap_err();
        assert!(
            matches!(e, Error::FreezeTimeout { ref path, .. } if *path == unified),
            "{e}"
        );
        assert!(!m.is_frozen());
        let none = V2Manager::new(Some(vec![]), vec![cpu]);
        assert!(none
            .freeze(true)
            .unwrap_err()
            .to_string()
            .contains("no freezer"));
    }
}
