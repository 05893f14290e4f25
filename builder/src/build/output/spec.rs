//! `--output` and `--push`, parsed before the build starts: BuildKit's CSV form
//! (`type=T,key=value,…`, a field in double quotes may hold commas: `"name=a,b"`) and
//! buildx's short forms (`-o DIR` is `type=local,dest=DIR`, `-o -` is a tar on stdout).

use super::{Output, TarDest};
use crate::error::{Error, Result};
use crate::registry::RemoteRef;
use std::path::PathBuf;

/// What a build writes besides the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    /// Files and directories, written inside the build (under the store lock).
    pub files: Vec<Output>,
    /// Names the image gets in the store (`type=image|registry,name=…`), besides `-t`.
    pub names: Vec<String>,
    /// Names pushed after the build: `--push` (every `-t`) and `push=true`/`type=registry`.
    pub push: Vec<String>,
}

/// Splits on commas outside double quotes; the quotes go.
fn fields(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (vec![], String::new(), false);
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

const TYPES: &str = "local, tar, image, registry, oci, oci-archive or docker-archive";

/// The keys each type takes.
fn keys_of(kind: &str) -> Option<&'static [&'static str]> {
    let keys: &'static [&'static str] = match kind {
        "local" | "tar" | "oci" | "oci-archive" | "docker-archive" | "docker" => &["dest"],
        "image" => &["name", "push"],
        "registry" => &["name"],
        _ => return None,
    };
    Some(keys)
}

/// One `--output` value.
fn parse_one(s: &str, out: &mut Outputs) -> Result<()> {
    let bad = |why: String| Error::invalid(format!("--output {s:?}"), why);
    if !s.contains('=') {
        // buildx: a bare path is a local directory, "-" a tar on stdout.
        out.files.push(match s {
            "" => return Err(bad("empty".into())),
            "-" => Output::Tar(TarDest::Stdout),
            dir => Output::Local(PathBuf::from(dir)),
        });
        return Ok(());
    }
    let mut kv: Vec<(String, String)> = vec![];
    for f in fields(s) {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| bad(format!("{f:?} is not key=value")))?;
        if kv.iter().any(|(k2, _)| k2 == k) {
            return Err(bad(format!("key {k:?} given twice")));
        }
        kv.push((k.to_string(), v.to_string()));
    }
    let get = |k: &str| kv.iter().find(|(k2, _)| k2 == k).map(|(_, v)| v.as_str());
    let kind = get("type").ok_or_else(|| bad("missing type=".into()))?;
    let keys =
        keys_of(kind).ok_or_else(|| bad(format!("unknown type {kind:?} (expected {TYPES})")))?;
    if let Some((k, _)) = kv
        .iter()
        .find(|(k, _)| k != "type" && !keys.contains(&k.as_str()))
    {
        return Err(bad(format!(
            "unknown key {k:?} for type={kind} (it takes {})",
            keys.join(", ")
        )));
    }
    let dest = || match get("dest") {
        Some(d) if !d.is_empty() => Ok(PathBuf::from(d)),
        _ => Err(bad(format!("type={kind} needs dest="))),
    };
    match kind {
        "local" => out.files.push(Output::Local(dest()?)),
        "tar" => out.files.push(match dest()? {
            d if d.as_os_str() == "-" => Output::Tar(TarDest::Stdout),
            d => Output::Tar(TarDest::File(d)),
        }),
        "oci" => out.files.push(Output::OciDir(dest()?)),
        "oci-archive" => out.files.push(Output::OciArchive(dest()?)),
        "docker-archive" | "docker" => out.files.push(Output::DockerArchive(dest()?)),
        _ => image(kind, get("name"), get("push"), out).map_err(bad)?,
    }
    Ok(())
}

/// `type=image|registry`: names for the store, pushed when asked.
fn image(
    kind: &str,
    name: Option<&str>,
    push: Option<&str>,
    out: &mut Outputs,
) -> std::result::Result<(), String> {
    let push = match (kind, push) {
        ("registry", _) | (_, Some("true")) => true,
        (_, None | Some("false")) => false,
        (_, Some(v)) => return Err(format!("push={v:?}: expected true or false")),
    };
    let names: Vec<&str> = name
        .unwrap_or("")
        .split(',')
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() && push {
        return Err(format!(
            "type={kind} pushes, so it needs name=REGISTRY/REPO[:TAG]"
        ));
    }
    for n in names {
        crate::store::reference::normalize(n).map_err(|e| e.to_string())?;
        if push {
            RemoteRef::parse(n).map_err(|e| e.to_string())?;
            out.push.push(n.to_string());
        }
        out.names.push(n.to_string());
    }
    Ok(())
}

impl Outputs {
    /// Parse every `--output`; `push` (`--push`) pushes every `-t` tag. `creds`: whether
    /// `--creds` was given, which names one registry's user, so it cannot go to several.
    pub fn parse(specs: &[String], push: bool, tags: &[String], creds: bool) -> Result<Outputs> {
        let mut out = Outputs::default();
        for s in specs {
            parse_one(s, &mut out)?;
        }
        if push {
            if tags.is_empty() {
                return Err(Error::invalid(
                    "--push",
                    "nothing to push: name the image with -t REGISTRY/REPO[:TAG]",
                ));
            }
            for t in tags {
                RemoteRef::parse(t)
                    .map_err(|e| Error::invalid(format!("--push -t {t}"), e.to_string()))?;
                out.push.push(t.clone());
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.push.retain(|p| seen.insert(p.clone()));
        let stdout = out
            .files
            .iter()
            .filter(|o| matches!(o, Output::Tar(TarDest::Stdout)));
        if stdout.count() > 1 {
            return Err(Error::invalid(
                "--output",
                "more than one output writes to stdout",
            ));
        }
        let mut regs: Vec<String> = vec![];
        for p in &out.push {
            let r = RemoteRef::parse(p)?.registry;
            if !regs.contains(&r) {
                regs.push(r);
            }
        }
        if creds && regs.len() > 1 {
            return Err(Error::invalid(
                "--creds",
                format!(
                    "one USER:PASSWORD would be sent to {}: push to one registry, or give each its credentials in an auth file (--authfile)",
                    regs.join(" and ")
                ),
            ));
        }
        Ok(out)
    }

    /// A tar is not written to a terminal (as buildx refuses).
    pub fn check_stdout(&self) -> Result<()> {
        use std::io::IsTerminal;
        if self.uses_stdout() && std::io::stdout().is_terminal() {
            return Err(Error::invalid(
                "--output type=tar,dest=-",
                "stdout is a terminal: redirect it to a file or a pipe",
            ));
        }
        Ok(())
    }

    /// Does an output take stdout (so the image ID must not be printed there)?
    pub fn uses_stdout(&self) -> bool {
        self.files
            .iter()
            .any(|o| matches!(o, Output::Tar(TarDest::Stdout)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(specs: &[&str]) -> Result<Outputs> {
        let s: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        Outputs::parse(&s, false, &[], false)
    }

    #[test]
    fn forms() {
        let o = parse(&["out", "type=tar,dest=-", "type=local,dest=d"]).unwrap();
        assert_eq!(
            o.files,
            vec![
                Output::Local("out".into()),
                Output::Tar(TarDest::Stdout),
                Output::Local("d".into())
            ]
        );
        let o = parse(&[r#"type=image,"name=r.io/a:1,r.io/b:2",push=true"#]).unwrap();
        assert_eq!(o.push, vec!["r.io/a:1", "r.io/b:2"]);
        let o = parse(&["type=image,name=x"]).unwrap();
        assert_eq!((o.names.len(), o.push.len()), (1, 0));
        assert_eq!(
            parse(&["type=registry,name=r.io/a"]).unwrap().push,
            vec!["r.io/a"]
        );
    }

    #[test]
    fn refusals() {
        for (spec, why) in [
            ("type=zip,dest=x", "unknown type"),
            ("type=local", "needs dest="),
            ("type=tar,dest=", "needs dest="),
            ("type=local,dest=x,mode=1", "unknown key \"mode\""),
            ("type=registry", "needs name="),
            ("type=image,name=x,push=yes", "expected true or false"),
            ("type=local,dest=x,dest=y", "twice"),
            ("dest=x", "missing type="),
        ] {
            let e = parse(&[spec]).unwrap_err().to_string();
            assert!(e.contains(why), "{spec}: {e}");
            assert!(!e.contains('\n'), "{spec}: {e}");
        }
        assert!(parse(&["-", "type=tar,dest=-"]).is_err());
        let s = vec![];
        let e = Outputs::parse(&s, true, &[], false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--push"), "{e}");
        let tags = vec!["a.io/x".to_string(), "b.io/y".to_string()];
        assert!(Outputs::parse(&s, true, &tags, true).is_err());
        assert_eq!(
            Outputs::parse(&s, true, &tags, false).unwrap().push.len(),
            2
        );
    }
}
