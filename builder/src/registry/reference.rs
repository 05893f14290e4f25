//! Remote references: `[REGISTRY/]REPO[:TAG|@DIGEST]`, docker's rules for the
//! registry part (a first component with '.' or ':', or `localhost`).

use crate::error::{Error, Result};

pub const DEFAULT_REGISTRY: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    /// host[:port] as written (docker.io by default).
    pub registry: String,
    pub repo: String,
    /// Tag or digest (`sha256:…`).
    pub reference: String,
}

impl RemoteRef {
    pub fn parse(s: &str) -> Result<RemoteRef> {
        let bad = |why: &str| Error::invalid(format!("reference {s:?}"), why.to_string());
        let (name, reference) = match s.split_once('@') {
            Some((n, d)) => (n, d.to_string()),
            None => {
                let (n, t) = crate::store::reference::split(s);
                (n, t.unwrap_or("latest").to_string())
            }
        };
        let (registry, repo) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        let repo = if registry == DEFAULT_REGISTRY && !repo.contains('/') {
            format!("library/{repo}")
        } else {
            repo
        };
        let ok = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        };
        if !repo.split('/').all(ok) {
            return Err(bad("repository names are lowercase [a-z0-9._-] components"));
        }
        if reference.is_empty() {
            return Err(bad("empty tag"));
        }
        Ok(RemoteRef {
            registry,
            repo,
            reference,
        })
    }

    /// The host the API lives on.
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// Loopback registries are treated as `--tls-verify=false` (as docker does): HTTPS
    /// accepting any certificate, else plain http.
    pub fn is_loopback(&self) -> bool {
        let host = self
            .registry
            .rsplit_once(':')
            .map_or(self.registry.as_str(), |(h, _)| h);
        host == "localhost" || host.starts_with("127.") || host == "[::1]"
    }

    pub fn is_digest(&self) -> bool {
        self.reference.starts_with("sha256:")
    }

    /// The name for the local store: REGISTRY/REPO:TAG (or REGISTRY/REPO when by digest).
    pub fn local_name(&self) -> String {
        if self.is_digest() {
            format!("{}/{}:latest", self.registry, self.repo)
        } else {
            format!("{}/{}:{}", self.registry, self.repo, self.reference)
        }
    }

    pub fn display(&self) -> String {
        format!("{}/{}", self.registry, self.repo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parse() {
        let r = RemoteRef::parse("127.0.0.1:5000/a/b:v1").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repo.as_str(), r.reference.as_str()),
            ("127.0.0.1:5000", "a/b", "v1")
        );
        assert!(r.is_loopback());
        let r = RemoteRef::parse("busybox").unwrap();
        assert_eq!(r.repo, "library/busybox");
        assert_eq!(r.reference, "latest");
        let r = RemoteRef::parse("localhost/x@sha256:abc").unwrap();
        assert!(r.is_digest());
        assert!(RemoteRef::parse("localhost/Bad").is_err());
    }
}
