//! systemd's `slice:prefix:name` cgroupsPath: the scope unit it names, the slice it sits in,
//! and where that puts the scope in each cgroup hierarchy (runc's rules, so a path a
//! kubelet or containerd hands runc lands in the same place under berth).

use crate::cgroups::Hierarchy;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The container's transient scope: `unit` (e.g. `berth-c1.scope`) in `slice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub slice: String,
    pub unit: String,
    /// The scope's directory below each hierarchy's mount, in hierarchy order.
    pub paths: Vec<PathBuf>,
}

/// The default as runc's `system.slice:runc:<id>`.
pub const DEFAULT_SLICE: &str = "system.slice";
pub const DEFAULT_PREFIX: &str = "berth";

fn bad(p: &str, why: &str) -> Error {
    Error::Other(format!(
        "linux.cgroupsPath {p:?}: {why} (the systemd cgroup driver takes \"slice:prefix:name\")"
    ))
}

/// Parses `cgroups_path` (none or empty: `<default_slice>:berth:<id>`) into the slice and
/// the scope's unit name, as runc names them: `prefix-name.scope`, or `name.scope` without
/// a prefix. An empty slice field is `default_slice` too.
pub fn unit_of(
    cgroups_path: Option<&Path>,
    id: &str,
    default_slice: &str,
) -> Result<(String, String)> {
    let raw = cgroups_path
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    if raw.is_empty() {
        return Ok((default_slice.into(), format!("{DEFAULT_PREFIX}-{id}.scope")));
    }
    let parts: Vec<&str> = raw.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(bad(&raw, "not three fields separated by ':'"));
    };
    if name.is_empty() {
        return Err(bad(&raw, "the name is empty"));
    }
    if name.ends_with(".slice") {
        return Err(bad(
            &raw,
            "a slice as the container's own unit is not supported by berth; name a scope",
        ));
    }
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
    };
    if !ok(name) || (!prefix.is_empty() && !ok(prefix)) {
        return Err(bad(
            &raw,
            "the prefix or name has characters a unit name may not",
        ));
    }
    let slice = if slice.is_empty() {
        default_slice
    } else {
        slice
    };
    expand_slice(slice).map_err(|why| bad(&raw, &why))?;
    let unit = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok((slice.to_string(), unit))
}

/// A slice's cgroup path, nesting by '-' as systemd does: `a-b.slice` is
/// `/a.slice/a-b.slice`, and `-.slice` the root.
pub fn expand_slice(slice: &str) -> std::result::Result<PathBuf, String> {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err(format!("slice {slice:?} does not end in .slice"));
    };
    if slice.contains('/') {
        return Err(format!("slice {slice:?} contains '/'"));
    }
    if stem == "-" {
        return Ok(PathBuf::from("/"));
    }
    let mut out = PathBuf::from("/");
    let mut prefix = String::new();
    for part in stem.split('-') {
        if part.is_empty() {
            return Err(format!(
                "slice {slice:?} has an empty component ('--', or '-' at an end)"
            ));
        }
        out.push(format!("{prefix}{part}.slice"));
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(out)
}

/// The scope for `cgroups_path` and its directory in each hierarchy. `manager` is the
/// user manager's cgroup when rootless (its slices live below it, the default being
/// user.slice, as runc's), None for PID 1's.
pub fn scope(
    hs: &[Hierarchy],
    cgroups_path: Option<&Path>,
    id: &str,
    manager: Option<&Path>,
) -> Result<Scope> {
    let default = match manager {
        Some(_) => super::user::DEFAULT_SLICE,
        None => DEFAULT_SLICE,
    };
    let (slice, unit) = unit_of(cgroups_path, id, default)?;
    let rel = expand_slice(&slice).map_err(Error::Other)?.join(&unit);
    let rel = rel.strip_prefix("/").unwrap_or(&rel);
    let rel = match manager {
        Some(m) => m.strip_prefix("/").unwrap_or(m).join(rel),
        None => rel.to_path_buf(),
    };
    let paths = hs.iter().map(|h| h.mount.join(&rel)).collect();
    Ok(Scope { slice, unit, paths })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_nest_by_dash() {
        assert_eq!(expand_slice("-.slice").unwrap(), Path::new("/"));
        assert_eq!(
            expand_slice("system.slice").unwrap(),
            Path::new("/system.slice")
        );
        assert_eq!(
            expand_slice("kubepods-besteffort-pod12.slice").unwrap(),
            Path::new("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice")
        );
        for bad in ["a--b.slice", "-a.slice", "a-.slice", "a.scope", "a/b.slice"] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unit_names_as_runc() {
        let u = |p: &str| unit_of(Some(Path::new(p)), "c1", DEFAULT_SLICE);
        assert_eq!(
            unit_of(None, "c1", DEFAULT_SLICE).unwrap(),
            ("system.slice".into(), "berth-c1.scope".into())
        );
        assert_eq!(
            u("machine.slice:cri:abc").unwrap(),
            ("machine.slice".into(), "cri-abc.scope".into())
        );
        assert_eq!(u(":p:n").unwrap().0, "system.slice");
        assert_eq!(u("a.slice::n").unwrap().1, "n.scope");
        for bad in [
            "/a/b",
            "a.slice:p",
            "a.slice:p:",
            "x:p:n",
            "a.slice:p:n.slice",
        ] {
            assert!(u(bad).is_err(), "{bad}");
        }
        let hs = [Hierarchy {
            mount: "/sys/fs/cgroup".into(),
            controllers: String::new(),
            v2: true,
            current: "/".into(),
        }];
        let s = scope(&hs, Some(Path::new("a-b.slice:berth:x")), "c1", None).unwrap();
        assert_eq!(
            s.paths[0],
            Path::new("/sys/fs/cgroup/a.slice/a-b.slice/berth-x.scope")
        );
    }

    #[test]
    fn rootless_scopes_live_below_the_user_manager() {
        let hs = [Hierarchy {
            mount: "/sys/fs/cgroup".into(),
            controllers: String::new(),
            v2: true,
            current: "/".into(),
        }];
        let m = crate::cgroups::systemd::user::manager_cgroup(1000);
        let s = scope(&hs, None, "c1", Some(&m)).unwrap();
        assert_eq!(
            (s.slice.as_str(), s.unit.as_str()),
            ("user.slice", "berth-c1.scope")
        );
        assert_eq!(
            s.paths[0],
            Path::new("/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/user.slice/berth-c1.scope")
        );
        // The slice is named to the user manager without its own cgroup's prefix.
        let s = scope(&hs, Some(Path::new("a-b.slice:p:n")), "c1", Some(&m)).unwrap();
        assert_eq!(s.slice, "a-b.slice");
        assert_eq!(
            s.paths[0],
            Path::new("/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/a.slice/a-b.slice/p-n.scope")
        );
        assert_eq!(
            scope(&hs, Some(Path::new(":p:n")), "c1", Some(&m))
                .unwrap()
                .slice,
            "user.slice"
        );
    }
}
