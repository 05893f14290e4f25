//! push and pull against a real registry (Debian's docker-registry, started here on
//! a free 127.0.0.1 port with a temp storage dir, with and without htpasswd auth or TLS).
//! Bad input is in registry_bad.rs.

mod common;
#[path = "common/registry.rs"]
mod server;
use common::*;
use server::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// busybox plus an image built on it (one more layer).
fn two_images() -> Env {
    let e = Env::with_busybox();
    let ctx = e.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo app > /app.txt\nCMD [\"cat\", \"/app.txt\"]\n",
        )],
    );
    e.build(&ctx, &["-t", "app:v1"]);
    e
}

#[test]
fn push_mount_exists_and_pull_roundtrip() {
    let e = two_images();
    let reg = Registry::start(e.dir.path(), None);
    let h = reg.host();
    let out = e.ok(&["push", "busybox", &format!("{h}/library/busybox:v1")]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{h}/library/busybox]"
        )),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    let out = e.ok(&["push", "app:v1", &format!("{h}/team/app:v1")]);
    let base = layers(&e.inspect("busybox"))[0].trim_start_matches("sha256:")[..12].to_string();
    assert!(
        out.contains(&format!("{base}: Mounted from library/busybox")),
        "{out}"
    );
    assert_eq!(out.matches(": Pushed").count(), 1, "{out}");
    let digest = e.inspect("app:v1")["Digest"].as_str().unwrap().to_string();
    assert!(
        out.contains(&format!("v1: digest: {digest} size: ")),
        "{out}"
    );
    let again = e.ok(&["push", "app:v1", &format!("{h}/team/app:v1")]);
    assert_eq!(
        again.matches(": Layer already exists").count(),
        2,
        "{again}"
    );
    assert!(!again.contains("Pushed"), "{again}");
    // Pull into a fresh store: same digests.
    let f = Env::empty();
    let pulled = f.ok(&["pull", &format!("{h}/team/app:v1")]);
    assert!(
        pulled.contains("Pull complete") && pulled.contains(&digest),
        "{pulled}"
    );
    let p = f.inspect(&format!("{h}/team/app:v1"));
    assert_eq!(p["Digest"], digest);
    assert_eq!(layers(&p), layers(&e.inspect("app:v1")));
    let s = skopeo_remote(&format!("docker://{h}/team/app:v1"));
    assert_eq!(s["Digest"], digest);
}

fn skopeo_remote(r: &str) -> serde_json::Value {
    let o = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", r])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `--tls-verify=false` against a TLS-only registry whose certificate is self-signed: push and
/// pull go over HTTPS (the port refuses plain HTTP, checked first).
#[test]
fn push_and_pull_over_tls_with_a_self_signed_certificate() {
    use std::io::{Read, Write};
    let e = Env::with_busybox();
    let reg = Registry::start_tls(e.dir.path());
    let h = reg.host();
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", reg.port)).unwrap();
    plain.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = plain.read_to_string(&mut answer);
    assert!(
        answer.contains("HTTPS"),
        "the registry answered plain HTTP: {answer}"
    );
    let dest = format!("{h}/tls/busybox:v1");
    let out = e.ok(&["push", "--tls-verify=false", "busybox", &dest]);
    let digest = e.inspect("busybox")["Digest"].as_str().unwrap().to_string();
    assert!(out.contains(&digest), "{out}");
    let f = Env::empty();
    let pulled = f.ok(&["pull", "--tls-verify=false", &dest]);
    assert!(pulled.contains(&digest), "{pulled}");
    assert_eq!(f.inspect(&dest)["Digest"], digest);
}

/// `berth-build ARGS` with no proxy from the environment; (success, stderr).
fn run_direct(e: &Env, args: &[&str]) -> (bool, String) {
    let mut c = e.cmd(args);
    for v in [
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ] {
        c.env_remove(v);
    }
    let o = c.output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

/// Off loopback the flag is what decides: a TLS registry with a self-signed certificate on a
/// non-loopback address of this host is refused (one line naming the certificate problem and
/// the flag) until `--tls-verify=false` is given; nothing is pushed or pulled before that.
#[test]
fn tls_verify_decides_for_a_non_loopback_registry() {
    let e = Env::with_busybox();
    let addr = LocalAddr::new();
    let reg = Registry::start_tls_on(e.dir.path(), &addr.ip);
    let dest = format!("{}/tls/busybox:v1", reg.host());
    let (ok, err) = run_direct(&e, &["push", "busybox", &dest]);
    assert!(!ok, "push to an untrusted certificate succeeded");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("berth-build: registry {}: ", reg.host()))
            && err.contains("certificate")
            && err.contains("--tls-verify=false"),
        "{err}"
    );
    let repos = reg.storage.join("docker/registry/v2/repositories/tls");
    assert!(!repos.exists(), "something was pushed");
    let (ok, err) = run_direct(&e, &["push", "--tls-verify=false", "busybox", &dest]);
    assert!(ok, "{err}");
    let digest = e.inspect("busybox")["Digest"].as_str().unwrap().to_string();
    let f = Env::empty();
    let (ok, err) = run_direct(&f, &["pull", &dest]);
    assert!(
        !ok && err.trim().lines().count() == 1 && err.contains("certificate"),
        "{err}"
    );
    assert!(f.index()["manifests"].as_array().unwrap().is_empty());
    let (ok, err) = run_direct(&f, &["pull", "--tls-verify=false", &dest]);
    assert!(ok, "{err}");
    assert_eq!(f.inspect(&dest)["Digest"], digest.as_str());
}

#[test]
fn chunked_push_and_digest_pull() {
    let e = Env::with_busybox();
    let reg = Registry::start(e.dir.path(), None);
    let h = reg.host();
    let out = e.ok(&[
        "push",
        "--chunk-size",
        "65536",
        "busybox",
        &format!("{h}/chunked/bb:v1"),
    ]);
    assert!(out.contains(": Pushed"), "{out}");
    let digest = e.inspect("busybox")["Digest"].as_str().unwrap().to_string();
    let f = Env::empty();
    f.ok(&["pull", &format!("{h}/chunked/bb@{digest}")]);
    assert_eq!(
        f.inspect(&format!("{h}/chunked/bb:latest"))["Digest"],
        digest
    );
}

#[test]
fn auth_basic_creds_and_auth_file() {
    let e = Env::with_busybox();
    let reg = Registry::start(e.dir.path(), Some(("alice", "s3cret")));
    let dest = format!("{}/private/bb:v1", reg.host());
    let err = e.fails(&["push", "busybox", &dest]);
    assert!(err.contains("authentication required"), "{err}");
    let err = e.fails(&["push", "--creds", "alice:wrong", "busybox", &dest]);
    assert!(
        err.contains("authentication failed") && err.trim().lines().count() == 1,
        "{err}"
    );
    e.ok(&["push", "--creds", "alice:s3cret", "busybox", &dest]);
    // Credentials from an auth file (REGISTRY_AUTH_FILE), as docker/podman write it.
    let auth = e.path("auth.json");
    std::fs::write(
        &auth,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"YWxpY2U6czNjcmV0"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let f = Env::empty();
    let o = f
        .cmd(&["pull", &dest])
        .env("REGISTRY_AUTH_FILE", &auth)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(f.inspect(&dest)["Digest"], e.inspect("busybox")["Digest"]);
    // And from $HOME/.docker/config.json, as `docker login` writes it.
    let home = e.path("home");
    let pull_as = |home: &Path| {
        let g = Env::empty();
        let o = g
            .cmd(&["pull", &dest])
            .env("HOME", home)
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DOCKER_CONFIG")
            .env_remove("XDG_RUNTIME_DIR")
            .output()
            .unwrap();
        (g, o)
    };
    std::fs::create_dir_all(&home).unwrap();
    let (_, o) = pull_as(&home);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("authentication required"),
        "{err}"
    );
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    std::fs::write(
        home.join(".docker/config.json"),
        format!(
            r#"{{"auths":{{"https://{}":{{"auth":"YWxpY2U6czNjcmV0"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let (g, o) = pull_as(&home);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(g.inspect(&dest)["Digest"], e.inspect("busybox")["Digest"]);
}

/// A bearer-token front for a registry, as Docker Hub works: requests without the
/// token get a 401 `Bearer realm=…/token`; /token hands out the token for the right
/// basic credentials; everything else is relayed to the registry, one request per
/// connection. Scopes asked for are recorded.
struct TokenFront {
    port: u16,
    scopes: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

const TOKEN: &str = "tok-3f9a";

fn read_head(s: &mut std::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use std::io::Read;
    let mut buf = vec![];
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).ok()? == 0 {
            return None;
        }
        buf.push(b[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some((head, body))
}

impl TokenFront {
    fn start(registry_port: u16) -> TokenFront {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let scopes = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
        let sc = scopes.clone();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let sc = sc.clone();
                std::thread::spawn(move || Self::serve(s, port, registry_port, &sc));
            }
        });
        TokenFront { port, scopes }
    }

    fn serve(
        mut s: std::net::TcpStream,
        port: u16,
        reg: u16,
        scopes: &std::sync::Mutex<Vec<String>>,
    ) {
        use std::io::Write;
        let Some((head, body)) = read_head(&mut s) else {
            return;
        };
        let path = head.split(' ').nth(1).unwrap_or("").to_string();
        let reply = |s: &mut std::net::TcpStream, status: &str, extra: &str, body: &str| {
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        };
        if path.starts_with("/token") {
            for kv in path
                .split(['?', '&'])
                .filter_map(|p| p.strip_prefix("scope="))
            {
                scopes.lock().unwrap().push(
                    kv.replace("%3A", ":")
                        .replace("%2F", "/")
                        .replace("%2C", ","),
                );
            }
            if head.contains("Authorization: Basic Ym9iOmh1bnRlcjI=") {
                reply(
                    &mut s,
                    "200 OK",
                    "Content-Type: application/json\r\n",
                    &format!(r#"{{"token":"{TOKEN}"}}"#),
                );
            } else {
                reply(&mut s, "401 Unauthorized", "", "");
            }
            return;
        }
        if !head.contains(&format!("Authorization: Bearer {TOKEN}")) {
            let ch = format!("WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"test\"\r\n");
            reply(&mut s, "401 Unauthorized", &ch, "");
            return;
        }
        relay(s, &head, &body, reg);
    }
}

#[test]
fn auth_bearer_token() {
    let e = Env::with_busybox();
    let reg = Registry::start(e.dir.path(), None);
    let front = TokenFront::start(reg.port);
    let dest = format!("127.0.0.1:{}/tok/bb:v1", front.port);
    let err = e.fails(&["push", "--creds", "bob:wrong", "busybox", &dest]);
    assert!(err.contains("wrong credentials"), "{err}");
    let out = e.ok(&["push", "--creds", "bob:hunter2", "busybox", &dest]);
    assert!(out.contains(": Pushed"), "{out}");
    let f = Env::empty();
    f.ok(&["pull", "--creds", "bob:hunter2", &dest]);
    assert_eq!(f.inspect(&dest)["Digest"], e.inspect("busybox")["Digest"]);
    let scopes = front.scopes.lock().unwrap().clone();
    assert!(
        scopes.iter().any(|s| s == "repository:tok/bb:pull,push"),
        "{scopes:?}"
    );
}

#[test]
fn build_cache_to_and_from() {
    let e = Env::with_busybox();
    let reg = Registry::start(e.dir.path(), None);
    let cache = format!("{}/cache/app:buildcache", reg.host());
    let df = "FROM busybox\nRUN echo ran-the-step && echo data > /data.txt\nCOPY f.txt /f.txt\n";
    let ctx = e.context("ctx", &[("Dockerfile", df), ("f.txt", "file\n")]);
    let (_, err) = e.build(&ctx, &["-t", "app:v1", "--cache-to", &cache]);
    let ran = |err: &str| err.lines().any(|l| l.trim_end().ends_with(" ran-the-step"));
    assert!(ran(&err) && err.contains("exported cache"), "{err}");
    // Another machine: a fresh store with the same base, no local cache.
    let f = Env::with_busybox();
    let ctx2 = f.context("ctx", &[("Dockerfile", df), ("f.txt", "file\n")]);
    let (_, err) = f.build(&ctx2, &["-t", "app:v1", "--cache-from", &cache]);
    assert!(!ran(&err), "the RUN step ran again:\n{err}");
    assert_eq!(err.matches("CACHED").count(), 2, "{err}");
    assert_eq!(layers(&f.inspect("app:v1")), layers(&e.inspect("app:v1")));
    // An unreachable cache is a warning, not a failure.
    let (_, err) = f.build(&ctx2, &["--cache-from", "127.0.0.1:1/none/x:y"]);
    assert!(err.contains("warning: --cache-from"), "{err}");
}

/// containerd on a private socket and root in `dir`, killed on drop.
struct Containerd {
    child: Child,
    sock: PathBuf,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        let d = dir.join("ctrd");
        std::fs::create_dir_all(&d).unwrap();
        let sock = d.join("c.sock");
        let cfg = format!(
            "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{1}\"\n[ttrpc]\n  address = \"{1}.ttrpc\"\n",
            d.display(),
            sock.display()
        );
        std::fs::write(d.join("config.toml"), cfg).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("containerd (apt-get install containerd)");
        let c = Containerd { child, sock };
        for _ in 0..100 {
            if c.sock.exists() {
                return c;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("containerd did not start");
    }

    fn ctr(&self, args: &[&str]) -> String {
        let o = Command::new("ctr")
            .arg("--address")
            .arg(&self.sock)
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "ctr {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn containerd_pulls_pushed_image() {
    let e = two_images();
    let reg = Registry::start(e.dir.path(), None);
    let r = format!("{}/ctr/app:v1", reg.host());
    e.ok(&["push", "app:v1", &r]);
    let c = Containerd::start(e.dir.path());
    c.ctr(&["images", "pull", "--plain-http", &r]);
    let ls = c.ctr(&["images", "ls"]);
    let digest = e.inspect("app:v1")["Digest"].as_str().unwrap().to_string();
    assert!(ls.contains(&r) && ls.contains(&digest), "{ls}");
}

/// Send one request on to the registry and its answer back.
fn relay(mut s: std::net::TcpStream, head: &str, body: &[u8], reg: u16) {
    use std::io::{Read, Write};
    let head = head.replace("Connection: keep-alive", "Connection: close");
    let head = head.replacen("\r\n", "\r\nConnection: close\r\n", 1);
    let mut up = std::net::TcpStream::connect(("127.0.0.1", reg)).unwrap();
    up.write_all(head.as_bytes()).unwrap();
    up.write_all(body).unwrap();
    let mut resp = vec![];
    let _ = up.read_to_end(&mut resp);
    let _ = s.write_all(&resp);
}

/// A front that answers every other request with 503 Service Unavailable: pushes
/// and pulls through it only work by retrying.
fn flaky_front(reg: u16) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::Write;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let failed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let f = failed.clone();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let Some((head, body)) = read_head(&mut s) else {
                continue;
            };
            if n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                .is_multiple_of(2)
            {
                f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = write!(s, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                continue;
            }
            relay(s, &head, &body, reg);
        }
    });
    (port, failed)
}

#[test]
fn retries_transient_errors() {
    let e = Env::with_busybox();
    let reg = Registry::start(e.dir.path(), None);
    let (port, failed) = flaky_front(reg.port);
    let r = format!("127.0.0.1:{port}/flaky/bb:v1");
    e.ok(&["push", "busybox", &r]);
    let f = Env::empty();
    f.ok(&["pull", &r]);
    assert_eq!(f.inspect(&r)["Digest"], e.inspect("busybox")["Digest"]);
    assert!(failed.load(std::sync::atomic::Ordering::SeqCst) >= 5);
}

#[test]
fn push_index_and_pull_platform() {
    let e = Env::with_busybox();
    let reg = Registry::start(e.dir.path(), None);
    let bb = e.inspect("busybox");
    let (digest, arch) = (
        bb["Digest"].as_str().unwrap().to_string(),
        bb["Architecture"].as_str().unwrap().to_string(),
    );
    let size = std::fs::metadata(
        e.store()
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
    .len();
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size,
                       "platform": {"architecture": arch, "os": "linux"}}]
    });
    let bytes = serde_json::to_vec(&index).unwrap();
    let tmp = e.path("index.json");
    std::fs::write(&tmp, &bytes).unwrap();
    let sum = Command::new("sha256sum").arg(&tmp).output().unwrap();
    let hex = String::from_utf8_lossy(&sum.stdout)
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    std::fs::write(e.store().join("blobs/sha256").join(&hex), &bytes).unwrap();
    let mut idx = e.index();
    idx["manifests"].as_array_mut().unwrap().push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": format!("sha256:{hex}"),
        "size": bytes.len(), "annotations": {"org.opencontainers.image.ref.name": "multi:v1"}
    }));
    std::fs::write(
        e.store().join("index.json"),
        serde_json::to_vec(&idx).unwrap(),
    )
    .unwrap();
    let r = format!("{}/multi/bb:v1", reg.host());
    let out = e.ok(&["push", "multi:v1", &r]);
    assert!(out.contains(&format!("v1: digest: sha256:{hex}")), "{out}");
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{r}"))
        .output()
        .unwrap();
    let raw: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    let f = Env::empty();
    f.ok(&["pull", &r]);
    assert_eq!(f.inspect(&r)["Digest"], digest.as_str());
}
