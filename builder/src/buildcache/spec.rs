//! `--cache-to` / `--cache-from` specs, as buildx writes them:
//! `type=registry,ref=REG/REPO[:TAG][,mode=min|max]` (short form: `REG/REPO[:TAG]`) and
//! `type=local,dest=DIR[,mode=min|max]` / `type=local,src=DIR`. Anything else is refused
//! before the build starts (nothing accepted and ignored).

use crate::error::{Error, Result};
use crate::registry::RemoteRef;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Which steps are exported: the final stage's (`min`, the default) or every stage's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Min,
    Max,
}

/// Where a cache artifact lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An OCI image manifest in a registry.
    Registry(RemoteRef),
    /// An OCI image layout folder.
    Local(PathBuf),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Registry(r) => write!(f, "{}", r.display()),
            Location::Local(d) => write!(f, "{}", d.display()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheTo {
    pub at: Location,
    pub mode: Mode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheFrom {
    pub at: Location,
}

/// KEY=VALUE fields of a spec; a spec without '=' is the short form of type=registry.
fn fields(flag: &str, spec: &str) -> Result<BTreeMap<String, String>> {
    let bad = |why: String| Error::invalid(format!("{flag} {spec}"), why);
    let mut out = BTreeMap::new();
    if !spec.contains('=') {
        out.insert("type".into(), "registry".into());
        out.insert("ref".into(), spec.to_string());
        return Ok(out);
    }
    for f in spec.split(',') {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| bad(format!("{f:?} is not KEY=VALUE")))?;
        if v.is_empty() {
            return Err(bad(format!("{k}= has no value")));
        }
        if out.insert(k.trim().to_string(), v.to_string()).is_some() {
            return Err(bad(format!("{k} given twice")));
        }
    }
    out.entry("type".into())
        .or_insert_with(|| "registry".into());
    Ok(out)
}

/// Refuses keys other than `allowed` (with the type's own list in the message).
fn only(flag: &str, spec: &str, f: &BTreeMap<String, String>, allowed: &[&str]) -> Result<()> {
    match f.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(Error::invalid(
            format!("{flag} {spec}"),
            format!(
                "unknown key {k:?} for type={} (keys: {})",
                f["type"],
                allowed.join(", ")
            ),
        )),
    }
}

fn location(
    flag: &str,
    spec: &str,
    f: &BTreeMap<String, String>,
    dir_key: &str,
) -> Result<Location> {
    let bad = |why: String| Error::invalid(format!("{flag} {spec}"), why);
    match f["type"].as_str() {
        "registry" => {
            only(flag, spec, f, &["type", "ref", "mode"])?;
            let r = f
                .get("ref")
                .ok_or_else(|| bad("type=registry needs ref=".into()))?;
            Ok(Location::Registry(RemoteRef::parse(r)?))
        }
        "local" => {
            only(flag, spec, f, &["type", dir_key, "mode"])?;
            let d = f
                .get(dir_key)
                .ok_or_else(|| bad(format!("type=local needs {dir_key}=")))?;
            Ok(Location::Local(PathBuf::from(d)))
        }
        "inline" => Err(bad(
            "type=inline is not supported (use type=registry or type=local)".into(),
        )),
        t => Err(bad(format!("unknown type {t:?} (registry, local)"))),
    }
}

impl CacheTo {
    pub fn parse(spec: &str) -> Result<CacheTo> {
        let f = fields("--cache-to", spec)?;
        let at = location("--cache-to", spec, &f, "dest")?;
        let mode = match f.get("mode").map(String::as_str) {
            None | Some("min") => Mode::Min,
            Some("max") => Mode::Max,
            Some(m) => {
                return Err(Error::invalid(
                    format!("--cache-to {spec}"),
                    format!("mode={m}: expected min or max"),
                ))
            }
        };
        Ok(CacheTo { at, mode })
    }
}

impl CacheFrom {
    pub fn parse(spec: &str) -> Result<CacheFrom> {
        let f = fields("--cache-from", spec)?;
        if f.contains_key("mode") {
            return Err(Error::invalid(
                format!("--cache-from {spec}"),
                "mode= is for --cache-to",
            ));
        }
        Ok(CacheFrom {
            at: location("--cache-from", spec, &f, "src")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let short = CacheTo::parse("127.0.0.1:5000/c/app:cache").unwrap();
        let long = CacheTo::parse("type=registry,ref=127.0.0.1:5000/c/app:cache").unwrap();
        assert_eq!(short, long);
        assert_eq!(short.mode, Mode::Min);
        let max = CacheTo::parse("type=registry,ref=r.io/c/app,mode=max").unwrap();
        assert_eq!(max.mode, Mode::Max);
        let local = CacheTo::parse("type=local,dest=/tmp/c,mode=max").unwrap();
        assert_eq!(local.at, Location::Local("/tmp/c".into()));
        let from = CacheFrom::parse("type=local,src=/tmp/c").unwrap();
        assert_eq!(from.at, Location::Local("/tmp/c".into()));
        assert!(CacheFrom::parse("r.io/c/app:cache").is_ok());
    }

    #[test]
    fn refusals_are_one_line() {
        for (to, spec, want) in [
            (true, "type=s3,bucket=x", "unknown type \"s3\""),
            (
                true,
                "type=registry,ref=r.io/a,compression=zstd",
                "unknown key \"compression\"",
            ),
            (true, "type=local,src=/x", "unknown key \"src\""),
            (true, "type=local", "needs dest="),
            (true, "type=registry,ref=r.io/a,mode=all", "mode=all"),
            (true, "type=inline", "type=inline is not supported"),
            (false, "type=local,dest=/x", "unknown key \"dest\""),
            (
                false,
                "type=registry,ref=r.io/a,mode=max",
                "mode= is for --cache-to",
            ),
            (
                false,
                "type=registry,ref=r.io/a,ref=r.io/b",
                "ref given twice",
            ),
        ] {
            let e = match to {
                true => CacheTo::parse(spec).unwrap_err(),
                false => CacheFrom::parse(spec).unwrap_err(),
            }
            .to_string();
            assert!(e.contains(want) && !e.contains('\n'), "{spec}: {e}");
        }
    }
}
