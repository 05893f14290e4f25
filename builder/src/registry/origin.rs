//! Origins (scheme, host, port) of URLs: credentials for a registry are sent to its
//! origin only, never to another host an upload `Location:` or a redirect names.

/// Where a URL points, as browsers compare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of an absolute http(s) URL; None for anything else.
    pub fn of(url: &str) -> Option<Origin> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return None,
        };
        let auth = rest.split(['/', '?', '#']).next()?;
        let auth = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
        let (host, port) = match auth.strip_prefix('[') {
            Some(v6) => {
                let (h, r) = v6.split_once(']')?;
                (h, r.strip_prefix(':'))
            }
            None => match auth.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (auth, None),
            },
        };
        let port = match port {
            Some(p) if !p.is_empty() => p.parse().ok()?,
            _ => default,
        };
        if host.is_empty() {
            return None;
        }
        Some(Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// `scheme://host:port`, for joining a path-only Location.
    fn prefix(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (self.scheme.as_str(), self.port) {
            ("https", 443) | ("http", 80) => format!("{}://{host}", self.scheme),
            _ => format!("{}://{host}:{}", self.scheme, self.port),
        }
    }
}

/// `loc` (a Location header) resolved against the URL it answered.
pub fn resolve(base: &str, loc: &str) -> Option<String> {
    if Origin::of(loc).is_some() {
        return Some(loc.to_string());
    }
    let o = Origin::of(base)?;
    if let Some(rest) = loc.strip_prefix("//") {
        return Some(format!("{}://{rest}", o.scheme));
    }
    if loc.starts_with('/') {
        return Some(format!("{}{loc}", o.prefix()));
    }
    let path = base.split(['?', '#']).next().unwrap_or(base);
    let dir = path.rsplit_once('/').map_or(path, |(d, _)| d);
    Some(format!("{dir}/{loc}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn origins() {
        let a = Origin::of("https://Reg.example:443/v2/").unwrap();
        assert_eq!(Some(a.clone()), Origin::of("https://reg.example/x"));
        assert_ne!(Some(a.clone()), Origin::of("http://reg.example/x"));
        assert_ne!(Some(a.clone()), Origin::of("https://reg.example:5000/x"));
        assert_ne!(Some(a), Origin::of("https://reg.example.evil/x"));
        let u = Origin::of("https://user@reg.example.evil@other/x").unwrap();
        assert_eq!(u.host, "other");
        assert_eq!(Origin::of("http://[::1]:5000/v2").unwrap().port, 5000);
        assert!(Origin::of("/v2/x").is_none());
    }
    #[test]
    fn locations() {
        let b = "http://127.0.0.1:5000/v2/r/blobs/uploads/";
        assert_eq!(resolve(b, "/up/1").unwrap(), "http://127.0.0.1:5000/up/1");
        assert_eq!(resolve(b, "http://h:1/u").unwrap(), "http://h:1/u");
        assert_eq!(resolve(b, "//h/u").unwrap(), "http://h/u");
        assert_eq!(
            resolve(b, "x?y").unwrap(),
            "http://127.0.0.1:5000/v2/r/blobs/uploads/x?y"
        );
    }
}
