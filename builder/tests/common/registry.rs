//! A real registry for the registry tests: Debian's docker-registry on a free port of a
//! local address, with a temp storage dir, optionally htpasswd auth or TLS with a
//! self-signed certificate made here with openssl; killed on drop. And `LocalAddr`, a
//! non-loopback address on a veth pair made for the test, removed on drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Registry {
    child: Child,
    pub ip: String,
    pub port: u16,
    pub storage: PathBuf,
    /// The access log (start_logged only).
    pub log: Option<PathBuf>,
}

impl Registry {
    /// A plain-http registry on 127.0.0.1; with `htpasswd` = (user, password), basic auth is
    /// required.
    pub fn start(dir: &Path, htpasswd: Option<(&str, &str)>) -> Registry {
        Registry::start_with(dir, "127.0.0.1", htpasswd, false)
    }

    /// A plain-http registry on 127.0.0.1 whose access log (one line a request) goes to
    /// `dir/registry.log`: tests count the blobs a client fetched (`blob_gets`).
    pub fn start_logged(dir: &Path) -> Registry {
        let log = dir.join("registry.log");
        let mut r = Registry::start_with_log(dir, "127.0.0.1", None, false, Some(&log));
        r.log = Some(log);
        r
    }

    /// The digests of blobs fetched (GET …/blobs/…, status 200) so far, in order.
    pub fn blob_gets(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.log.as_ref().expect("start_logged")).unwrap();
        log.lines()
            .filter_map(|l| {
                let req = l.split('"').nth(1)?;
                let rest = req.strip_prefix("GET /v2/")?;
                let (_, d) = rest.split_once("/blobs/")?;
                let status = l.split('"').nth(2)?.split_whitespace().next()?;
                (status == "200").then(|| d.split_whitespace().next().unwrap().to_string())
            })
            .collect()
    }

    /// A registry on 127.0.0.1 that speaks only TLS, with a self-signed certificate.
    pub fn start_tls(dir: &Path) -> Registry {
        Registry::start_with(dir, "127.0.0.1", None, true)
    }

    /// A TLS-only registry (self-signed certificate for `ip`) listening on `ip`.
    pub fn start_tls_on(dir: &Path, ip: &str) -> Registry {
        Registry::start_with(dir, ip, None, true)
    }

    fn start_with(dir: &Path, ip: &str, htpasswd: Option<(&str, &str)>, tls: bool) -> Registry {
        Registry::start_with_log(dir, ip, htpasswd, tls, None)
    }

    fn start_with_log(
        dir: &Path,
        ip: &str,
        htpasswd: Option<(&str, &str)>,
        tls: bool,
        log: Option<&Path>,
    ) -> Registry {
        let port = std::net::TcpListener::bind((ip, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let storage = dir.join("registry-data");
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {ip}:{port}\n",
            storage.display()
        );
        if tls {
            cfg.push_str(&self_signed(dir, ip));
        }
        if let Some((u, p)) = htpasswd {
            cfg.push_str(&htpasswd_file(dir, u, p));
        }
        let cfg_path = dir.join("registry.yml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let out = || match log {
            Some(l) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(l)
                    .unwrap(),
            ),
            None => Stdio::null(),
        };
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&cfg_path)
            .stdout(out())
            .stderr(out())
            .spawn()
            .expect("docker-registry (apt-get install docker-registry)");
        let r = Registry {
            child,
            ip: ip.to_string(),
            port,
            storage,
            log: None,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect((ip, port)).is_ok() {
                return r;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("registry did not start on {ip}:{port}");
    }

    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// The file a blob (or manifest) is kept in, in the registry's storage.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage.join(format!(
            "docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A key and a self-signed certificate for `ip` in `dir`; the registry config's tls part.
fn self_signed(dir: &Path, ip: &str) -> String {
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    let o = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", &format!("/CN={ip}")])
        .args(["-addext", &format!("subjectAltName=IP:{ip}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    format!(
        "  tls:\n    certificate: {}\n    key: {}\n",
        cert.display(),
        key.display()
    )
}

/// An htpasswd file with one user in `dir`; the registry config's auth part.
fn htpasswd_file(dir: &Path, user: &str, pass: &str) -> String {
    let f = dir.join("htpasswd");
    let st = Command::new("htpasswd")
        .args(["-B", "-b", "-c"])
        .arg(&f)
        .args([user, pass])
        .output()
        .expect("htpasswd (apt-get install apache2-utils)");
    assert!(st.status.success());
    format!(
        "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
        f.display()
    )
}

/// The layer digests of `inspect` output.
pub fn layers(v: &serde_json::Value) -> Vec<String> {
    v["Manifest"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

fn ip(args: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(args)
        .output()
        .expect("ip (apt-get install iproute2)")
}

/// A /32 of 10.213.77.0/24 on the host end of a veth pair made here, both ends up: an address
/// of this host that is not loopback (the client treats 127.0.0.0/8 as --tls-verify=false,
/// as docker does). The link, and with it the address, is deleted on drop.
pub struct LocalAddr {
    pub ip: String,
    link: String,
}

impl LocalAddr {
    pub fn new() -> LocalAddr {
        let pid = std::process::id();
        let (link, peer) = (
            format!("bbt{}", pid % 1_000_000),
            format!("bbt{}p", pid % 1_000_000),
        );
        let o = ip(&["link", "add", &link, "type", "veth", "peer", "name", &peer]);
        assert!(
            o.status.success(),
            "ip link add {link}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut a = LocalAddr {
            ip: String::new(),
            link,
        };
        let taken = String::from_utf8_lossy(&ip(&["-o", "-4", "addr", "show"]).stdout).to_string();
        let host = (2..250)
            .map(|i| 2 + (pid as usize + i) % 250)
            .find(|h| !taken.contains(&format!("inet 10.213.77.{h}/")))
            .expect("a free address in 10.213.77.0/24");
        a.ip = format!("10.213.77.{host}");
        let cidr = format!("{}/32", a.ip);
        for args in [
            vec!["addr", "add", &cidr, "dev", &a.link],
            vec!["link", "set", &a.link, "up"],
            vec!["link", "set", &peer, "up"],
        ] {
            let o = ip(&args);
            assert!(
                o.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        a
    }
}

impl Drop for LocalAddr {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.link]);
    }
}

/// A /32 of 10.213.78.0/24 routed as `unreachable` (connecting fails at once with "No route
/// to host", nothing is sent): a registry host that cannot be reached. Route deleted on drop.
pub struct UnreachableAddr {
    pub ip: String,
}

impl UnreachableAddr {
    pub fn new() -> UnreachableAddr {
        let pid = std::process::id() as usize;
        let routes = String::from_utf8_lossy(&ip(&["-4", "route", "show", "table", "all"]).stdout)
            .to_string();
        let host = (0..250)
            .map(|i| 2 + (pid + i) % 250)
            .find(|h| !routes.contains(&format!("10.213.78.{h} ")))
            .expect("a free address in 10.213.78.0/24");
        let a = UnreachableAddr {
            ip: format!("10.213.78.{host}"),
        };
        let o = ip(&["route", "add", "unreachable", &format!("{}/32", a.ip)]);
        assert!(
            o.status.success(),
            "ip route add: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        a
    }
}

impl Drop for UnreachableAddr {
    fn drop(&mut self) {
        let _ = ip(&["route", "del", "unreachable", &format!("{}/32", self.ip)]);
    }
}
