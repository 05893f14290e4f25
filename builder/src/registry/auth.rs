//! Credentials and challenges. Credentials come from `--creds user:pass`, else the
//! auth file (`--authfile`, `$REGISTRY_AUTH_FILE`, `~/.docker/config.json`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`): `auths[REGISTRY].auth` = base64(user:pass).
//! A 401's `WWW-Authenticate` says how to use them: `Basic` → an Authorization header
//! on every request, `Bearer realm=…,service=…,scope=…` → a token from the realm.

use super::RegistryOptions;
use crate::error::{Error, Result};
use base64::Engine;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Creds {
    pub user: String,
    pub pass: String,
}

impl Creds {
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.user, self.pass);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

fn auth_files(o: &RegistryOptions) -> Vec<PathBuf> {
    if let Some(f) = &o.authfile {
        return vec![f.clone()];
    }
    let mut v = vec![];
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        v.push(PathBuf::from(f));
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        v.push(PathBuf::from(d).join("config.json"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        v.push(PathBuf::from(h).join(".docker/config.json"));
    }
    if let Some(r) = std::env::var_os("XDG_RUNTIME_DIR") {
        v.push(PathBuf::from(r).join("containers/auth.json"));
    }
    v
}

/// The credentials for `registry`, if any are configured.
pub fn find(registry: &str, o: &RegistryOptions) -> Result<Option<Creds>> {
    if let Some(c) = &o.creds {
        let (user, pass) = c
            .split_once(':')
            .ok_or_else(|| Error::invalid("--creds", "expected USER:PASSWORD"))?;
        return Ok(Some(Creds {
            user: user.into(),
            pass: pass.into(),
        }));
    }
    let keys = [
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v1/"),
    ];
    for f in auth_files(o) {
        let Ok(data) = std::fs::read(&f) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_slice(&data).map_err(|source| Error::Json {
            path: f.clone(),
            source,
        })?;
        for k in &keys {
            if let Some(a) = v["auths"][k]["auth"].as_str() {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(a.trim())
                    .map_err(|e| {
                        Error::invalid(format!("{}: auths.{k}.auth", f.display()), e.to_string())
                    })?;
                let s = String::from_utf8_lossy(&raw).to_string();
                if let Some((u, p)) = s.split_once(':') {
                    return Ok(Some(Creds {
                        user: u.into(),
                        pass: p.into(),
                    }));
                }
            }
        }
    }
    Ok(None)
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

pub fn parse_challenge(h: &str) -> Option<Challenge> {
    let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => {
            let mut realm = None;
            let (mut service, mut scope) = (None, None);
            for (k, v) in params(rest) {
                match k.as_str() {
                    "realm" => realm = Some(v),
                    "service" => service = Some(v),
                    "scope" => scope = Some(v),
                    _ => {}
                }
            }
            Some(Challenge::Bearer {
                realm: realm?,
                service,
                scope,
            })
        }
        _ => None,
    }
}

/// key="value" pairs separated by commas (commas may appear inside quotes).
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut rest = s.trim();
    while let Some((k, after)) = rest.split_once('=') {
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (q[..end].to_string(), q.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.push((k, v));
        rest = next.trim_start_matches(',').trim();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into())
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
    }
}
