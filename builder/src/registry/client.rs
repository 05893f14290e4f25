//! Requests to one repository of a registry: auth challenges answered once (basic
//! or bearer token), transient failures (connection errors, 429, 5xx) retried with
//! backoff, statuses returned to the caller (only transport failures are errors).

use super::auth::{self, Challenge, Creds};
use super::origin::{self, Origin};
use super::{RegistryOptions, RemoteRef};
use crate::error::{Error, IoContext, Result};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

const RETRIES: u32 = 3;
/// Redirects followed per request (by hand, so each hop is checked for credentials).
const REDIRECTS: u32 = 5;

/// A request body that can be sent again on retry.
#[derive(Debug, Clone)]
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset`.
    File {
        path: PathBuf,
        offset: u64,
        len: u64,
    },
}

/// A request that got no answer.
struct Failure {
    error: Error,
    /// Worth trying again (connection refused or reset, timeout, …).
    transient: bool,
}

/// The TLS verifier's complaint, when that is why the connection failed.
fn untrusted_certificate(t: &ureq::Transport) -> Option<String> {
    use std::error::Error as _;
    let io = t.source()?.downcast_ref::<std::io::Error>()?;
    match io.get_ref()?.downcast_ref::<rustls::Error>()? {
        e @ (rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented) => {
            Some(e.to_string())
        }
        _ => None,
    }
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    /// The registry's origin: the only one credentials and tokens are ever sent to.
    origin: Option<Origin>,
    pub repo: String,
    registry: String,
    creds: Option<Creds>,
    authz: Option<String>,
    /// Extra token scopes (e.g. pull on a repo we mount from).
    pub extra_scopes: Vec<String>,
}

impl Client {
    pub fn new(r: &RemoteRef, o: &RegistryOptions) -> Result<Client> {
        let insecure = o.insecure || r.is_loopback();
        let mut b = ureq::AgentBuilder::new()
            .try_proxy_from_env(!r.is_loopback())
            .timeout_connect(Duration::from_secs(15))
            .timeout_read(Duration::from_secs(300))
            .redirects(0);
        if insecure {
            b = b.tls_config(super::tls::insecure_config());
        }
        let agent = b.build();
        let scheme = if insecure {
            super::tls::probe_scheme(&agent, r.api_host())
        } else {
            "https"
        };
        let base = format!("{scheme}://{}", r.api_host());
        Ok(Client {
            origin: Origin::of(&base),
            base,
            agent,
            repo: r.repo.clone(),
            registry: r.registry.clone(),
            creds: auth::find(&r.registry, o)?,
            authz: None,
            extra_scopes: vec![],
        })
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn fail(&self, why: impl std::fmt::Display) -> Error {
        Error::invalid(format!("registry {}", self.registry), why.to_string())
    }

    fn once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body,
    ) -> std::result::Result<ureq::Response, Failure> {
        let fatal = |error| Failure {
            error,
            transient: false,
        };
        let mut req = self.agent.request(method, url);
        for (k, v) in headers {
            req = req.set(k, v);
        }
        if let Some(a) = self.authz.as_ref().filter(|_| self.is_registry(url)) {
            req = req.set("Authorization", a);
        }
        let res = match body {
            Body::Empty => req.call(),
            Body::Bytes(b) => req.send_bytes(b),
            Body::File { path, offset, len } => {
                let mut f = std::fs::File::open(path).at(path).map_err(fatal)?;
                f.seek(SeekFrom::Start(*offset)).at(path).map_err(fatal)?;
                req.set("Content-Length", &len.to_string())
                    .send(f.take(*len))
            }
        };
        match res {
            Ok(r) => Ok(r),
            Err(ureq::Error::Status(_, r)) => Ok(r),
            Err(ureq::Error::Transport(t)) => Err(self.transport_failure(t)),
        }
    }

    /// A transport error, and whether trying again may help: not for a name that does not
    /// resolve, nor for a certificate that is not trusted (said so, with the way out).
    fn transport_failure(&self, t: ureq::Transport) -> Failure {
        if let Some(why) = untrusted_certificate(&t) {
            return Failure {
                error: self.fail(format!(
                    "TLS certificate not trusted ({why}): give --tls-verify=false to accept it"
                )),
                transient: false,
            };
        }
        let transient = match t.kind() {
            ureq::ErrorKind::Dns => t.to_string().contains("Temporary failure"),
            ureq::ErrorKind::InvalidUrl
            | ureq::ErrorKind::UnknownScheme
            | ureq::ErrorKind::InvalidProxyUrl
            | ureq::ErrorKind::InsecureRequestHttpsOnly => false,
            _ => true,
        };
        Failure {
            error: self.fail(t),
            transient,
        }
    }

    /// Is `url` at the registry's own origin (scheme, host and port)?
    fn is_registry(&self, url: &str) -> bool {
        self.origin.is_some() && Origin::of(url) == self.origin
    }

    /// Send with retries, auth and redirects; returns the response whatever its status.
    /// Credentials go to the registry's origin only: a redirect or an upload Location at
    /// another host gets the request without them.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Result<ureq::Response> {
        let (mut url, mut method, mut body) = (self.url(path), method.to_string(), body);
        for _ in 0..=REDIRECTS {
            let resp = self.send_one(&method, &url, headers, &body)?;
            let next = match resp.status() {
                301 | 302 | 303 | 307 | 308 => resp.header("Location"),
                _ => None,
            };
            let Some(next) = next.and_then(|l| origin::resolve(&url, l)) else {
                return Ok(resp);
            };
            // As browsers and Docker's client: 303 (and 301/302 after a POST) become GET.
            if resp.status() == 303 || (resp.status() < 303 && method == "POST") {
                (method, body) = ("GET".to_string(), Body::Empty);
            }
            url = next;
        }
        Err(self.fail(format!("too many redirects, the last to {url}")))
    }

    /// One request (retried when transient; answered once when the registry asks for auth).
    fn send_one(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body,
    ) -> Result<ureq::Response> {
        let mut authed = false;
        let mut attempt = 0;
        loop {
            let r = self.once(method, url, headers, body);
            let transient = match &r {
                Err(f) => f.transient,
                Ok(resp) => resp.status() == 429 || resp.status() >= 500,
            };
            if transient && attempt < RETRIES {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(200 * 3u64.pow(attempt - 1)));
                continue;
            }
            let resp = r.map_err(|f| f.error)?;
            if resp.status() == 401 && !self.is_registry(url) {
                return Err(self.fail(format!(
                    "{url} asks for credentials: they are only sent to the registry itself"
                )));
            }
            if resp.status() == 401 && !authed {
                authed = true;
                let ch = resp
                    .header("WWW-Authenticate")
                    .and_then(auth::parse_challenge);
                self.authenticate(ch)?;
                continue;
            }
            if resp.status() == 401 {
                let who = self
                    .creds
                    .as_ref()
                    .map_or("no credentials".to_string(), |c| {
                        format!("user {:?}", c.user)
                    });
                return Err(self.fail(format!(
                    "authentication failed ({who}): give --creds USER:PASSWORD or log in to the auth file"
                )));
            }
            return Ok(resp);
        }
    }

    fn authenticate(&mut self, ch: Option<Challenge>) -> Result<()> {
        match ch {
            Some(Challenge::Basic) | None => match &self.creds {
                Some(c) => {
                    self.authz = Some(c.basic_header());
                    Ok(())
                }
                None => Err(self.fail("authentication required: give --creds USER:PASSWORD or log in to the auth file")),
            },
            Some(Challenge::Bearer { realm, service, scope }) => {
                let token = self.token(&realm, service.as_deref(), scope.as_deref())?;
                self.authz = Some(format!("Bearer {token}"));
                Ok(())
            }
        }
    }

    fn token(&self, realm: &str, service: Option<&str>, scope: Option<&str>) -> Result<String> {
        let mut req = self.agent.get(realm);
        if let Some(s) = service {
            req = req.query("service", s);
        }
        let own = format!("repository:{}:pull,push", self.repo);
        let mut scopes: Vec<String> = scope
            .map(|s| vec![s.to_string()])
            .unwrap_or_else(|| vec![own]);
        scopes.extend(self.extra_scopes.iter().cloned());
        for s in &scopes {
            req = req.query("scope", s);
        }
        if let Some(c) = &self.creds {
            req = req.set("Authorization", &c.basic_header());
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(401 | 403, _)) => {
                return Err(self.fail(format!("token server {realm}: wrong credentials")))
            }
            Err(e) => return Err(self.fail(format!("token server {realm}: {e}"))),
        };
        let text = resp
            .into_string()
            .map_err(|e| self.fail(format!("token server {realm}: {e}")))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| self.fail(format!("token server {realm}: {e}")))?;
        v["token"]
            .as_str()
            .or(v["access_token"].as_str())
            .map(str::to_string)
            .ok_or_else(|| self.fail(format!("token server {realm}: no token in the answer")))
    }

    /// The error of an unexpected status: the registry's own error message if it sent one.
    pub fn status_error(&self, what: &str, resp: ureq::Response) -> Error {
        let status = resp.status();
        let text = resp.into_string().unwrap_or_default();
        let msg = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                let e = &v["errors"][0];
                e["message"]
                    .as_str()
                    .map(|m| format!("{}: {m}", e["code"].as_str().unwrap_or("")))
            })
            .unwrap_or_else(|| text.chars().take(200).collect());
        let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
        self.fail(format!("{what}: HTTP {status} {msg}"))
    }
}
