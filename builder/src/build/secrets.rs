//! Build secrets, as BuildKit/buildx: `--secret id=ID,src=FILE` or `id=ID,env=VAR` on the
//! command line, `RUN --mount=type=secret,id=ID[,target=…,required,mode,uid,gid]` in the
//! Dockerfile. A value is read once when the build starts and given to a RUN step as a
//! read-only file bound at the target (default `/run/secrets/ID`). Only the id and the target
//! enter the cache key; the value never enters a layer, the key, the history or the image.

use crate::error::{Error, IoContext, Result};
use std::collections::BTreeMap;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Secret values by id.
#[derive(Default, Clone)]
pub struct Secrets(BTreeMap<String, Vec<u8>>);

impl std::fmt::Debug for Secrets {
    // Ids only: a value must never reach a log or an error.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Secrets {
    /// Parses buildx's `--secret` forms: `[type=file|env,]id=ID[,src|source=FILE][,env=VAR]`;
    /// with neither src nor env, the environment variable named ID (buildx's default).
    pub fn parse(specs: &[String]) -> Result<Secrets> {
        let mut out = BTreeMap::new();
        for spec in specs {
            let bad = |why: String| Error::invalid(format!("--secret {spec}"), why);
            let (mut typ, mut id, mut src, mut env) = (None, None, None, None);
            for field in spec.split(',') {
                let (k, v) = field
                    .split_once('=')
                    .ok_or_else(|| bad(format!("{field:?} is not KEY=VALUE")))?;
                match k.trim() {
                    "type" => typ = Some(v.to_string()),
                    "id" => id = Some(v.to_string()),
                    "src" | "source" => src = Some(v.to_string()),
                    "env" => env = Some(v.to_string()),
                    k => return Err(bad(format!("unknown key {k:?} (type, id, src, env)"))),
                }
            }
            let id = id
                .filter(|i| !i.is_empty())
                .ok_or_else(|| bad("needs id=".into()))?;
            let value = match (typ.as_deref(), src, env) {
                (Some("file") | None, Some(f), None) => {
                    std::fs::read(&f).map_err(|e| bad(format!("{f}: {e}")))?
                }
                (Some("env"), Some(v), None) | (Some("env") | None, None, Some(v)) => {
                    std::env::var_os(&v)
                        .ok_or_else(|| bad(format!("environment variable {v} is not set")))?
                        .into_encoded_bytes()
                }
                (None, None, None) => std::env::var_os(&id)
                    .ok_or_else(|| bad(format!("no src= or env=, and no variable {id} is set")))?
                    .into_encoded_bytes(),
                (Some(t), _, _) if t != "file" && t != "env" => {
                    return Err(bad(format!("type={t}: expected file or env")))
                }
                _ => return Err(bad("give one of src= or env=".into())),
            };
            out.insert(id, value);
        }
        Ok(Secrets(out))
    }

    pub fn get(&self, id: &str) -> Option<&[u8]> {
        self.0.get(id).map(|v| v.as_slice())
    }
}

/// What a `type=secret` mount asks for.
pub struct SecretMount<'a> {
    pub id: &'a str,
    pub required: bool,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Writes the secret for one RUN step into `tmp` (the step's private directory, removed
/// with it) owned and moded as asked; None when it was not given and is not required
/// (BuildKit then makes no mount).
pub fn file(secrets: &Secrets, m: &SecretMount, tmp: &Path, n: usize) -> Result<Option<PathBuf>> {
    let Some(value) = secrets.get(m.id) else {
        if m.required {
            return Err(Error::invalid(
                format!("secret {}", m.id),
                format!("required, and not given (--secret id={},src=FILE)", m.id),
            ));
        }
        return Ok(None);
    };
    let path = tmp.join(format!("secret-{n}"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .at(&path)?;
    std::io::Write::write_all(&mut f, value).at(&path)?;
    drop(f);
    std::os::unix::fs::chown(&path, Some(m.uid), Some(m.gid)).at(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m.mode)).at(&path)?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_of_the_flag() {
        std::env::set_var("BERTH_SECRET_TEST_A", "from-env");
        let s = Secrets::parse(&[
            "id=a,env=BERTH_SECRET_TEST_A".into(),
            "type=env,id=b,src=BERTH_SECRET_TEST_A".into(),
            "id=BERTH_SECRET_TEST_A".into(),
        ])
        .unwrap();
        assert_eq!(s.get("a"), Some(&b"from-env"[..]));
        assert_eq!(s.get("b"), Some(&b"from-env"[..]));
        assert_eq!(s.get("BERTH_SECRET_TEST_A"), Some(&b"from-env"[..]));
        assert!(!format!("{s:?}").contains("from-env"));
        for bad in [
            "src=/etc/hostname",
            "id=x,src=/nonexistent/f",
            "id=x,type=ssh",
            "id=x,foo=1",
        ] {
            let e = Secrets::parse(&[bad.into()]).unwrap_err().to_string();
            assert!(e.contains("--secret"), "{bad}: {e}");
        }
    }
}
