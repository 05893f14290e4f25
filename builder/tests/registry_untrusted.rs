//! A registry's answers are a stranger's input: credentials go to the registry's own
//! origin only (an upload Location or a redirect at another host gets none), a manifest
//! is bounded, and a blob stops at its descriptor's size. The registries here are tiny
//! HTTP servers on real sockets that record every request's headers.

mod common;
use common::*;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One request a server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, k: &str) -> Option<&str> {
        let k = k.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(h, _)| *h == k)
            .map(|(_, v)| v.as_str())
    }
}

/// What a handler answers: status, headers, body; `endless` streams bytes forever.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    endless: bool,
}

fn reply(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    Reply {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.to_vec(),
        endless: false,
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A one-connection-at-a-time HTTP/1.1 server on 127.0.0.1 recording requests.
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(h: Arc<Handler>) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(vec![]));
        let s2 = seen.clone();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let (h, s) = (h.clone(), s2.clone());
                std::thread::spawn(move || serve(c, &*h, &s));
            }
        });
        Server { port, seen }
    }
    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(c: TcpStream, h: &Handler, seen: &Mutex<Vec<Seen>>) {
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut w = c;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut headers = vec![];
        loop {
            let mut l = String::new();
            if r.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                break;
            }
            if let Some((k, v)) = l.trim_end().split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let req = Seen {
            method,
            path,
            headers,
        };
        let len: u64 = req
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if req
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            read_chunked(&mut r);
        } else {
            std::io::copy(&mut (&mut r).take(len), &mut std::io::sink()).unwrap();
        }
        seen.lock().unwrap().push(req.clone());
        let rep = h(&req);
        let mut head = format!("HTTP/1.1 {} X\r\n", rep.status);
        for (k, v) in &rep.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if rep.endless {
            head.push_str("Content-Length: 100000000000\r\n\r\n");
            let _ = w.write_all(head.as_bytes());
            let buf = vec![b'x'; 1 << 16];
            while w.write_all(&buf).is_ok() {}
            return;
        }
        if req.method != "HEAD" {
            head.push_str(&format!("Content-Length: {}\r\n", rep.body.len()));
        } else {
            head.push_str("Content-Length: 0\r\n");
        }
        head.push_str("\r\n");
        if w.write_all(head.as_bytes()).is_err() {
            return;
        }
        if req.method != "HEAD" && w.write_all(&rep.body).is_err() {
            return;
        }
    }
}

fn read_chunked(r: &mut impl BufRead) {
    loop {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        let n = usize::from_str_radix(l.trim().split(';').next().unwrap(), 16).unwrap_or(0);
        let mut buf = vec![0; n + 2];
        r.read_exact(&mut buf).unwrap();
        if n == 0 {
            return;
        }
    }
}

fn sha256(b: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(b))
}

const BASIC: &str = "Basic dTpw"; // base64("u:p")

/// Is this request to the registry authorised? Else the 401 that asks for Basic auth.
fn needs_auth(r: &Seen) -> Option<Reply> {
    (r.header("authorization") != Some(BASIC))
        .then(|| reply(401, &[("WWW-Authenticate", "Basic realm=\"r\"")], b""))
}

/// Every request the other host saw carried no Authorization.
fn assert_no_creds(other: &Server) {
    let seen = other.seen();
    assert!(!seen.is_empty(), "the other host was never asked");
    for s in &seen {
        assert!(
            s.header("authorization").is_none(),
            "credentials leaked to the other host: {s:?}"
        );
    }
}

/// An upload `Location:` at another host (another port is another origin): the blob
/// goes there without the registry's credentials; the registry itself gets them.
#[test]
fn push_sends_no_credentials_to_an_upload_location_elsewhere() {
    let e = Env::with_busybox();
    let other = Server::start(Arc::new(|r: &Seen| match r.method.as_str() {
        "PUT" => reply(201, &[("Location", "/v2/x/y/blobs/done")], b""),
        _ => reply(202, &[("Location", "/up/next")], b""),
    }));
    let up = format!("{}/up/1", other.origin());
    let reg = Server::start(Arc::new(move |r: &Seen| {
        if let Some(no) = needs_auth(r) {
            return no;
        }
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", p) if p.contains("/blobs/uploads/") => reply(202, &[("Location", &up)], b""),
            ("PUT", p) if p.contains("/manifests/") => reply(201, &[], b""),
            _ => reply(404, &[], b""),
        }
    }));
    let dest = format!("127.0.0.1:{}/x/y:v1", reg.port);
    e.ok(&["push", "--creds", "u:p", "busybox", &dest]);
    assert!(reg
        .seen()
        .iter()
        .any(|s| s.header("authorization") == Some(BASIC)));
    assert_no_creds(&other);
}

/// A small image: (manifest, config, layer).
fn image() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut b = tar::Builder::new(vec![]);
    let mut h = tar::Header::new_ustar();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "hello", &b"hi\n"[..]).unwrap();
    let layer = b.into_inner().unwrap();
    let config = serde_json::json!({"architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"), "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}});
    let config = config.to_string().into_bytes();
    let m = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(&layer), "size": layer.len()}]});
    (m.to_string().into_bytes(), config, layer)
}

const MT: &str = "application/vnd.oci.image.manifest.v1+json";

/// A registry whose blobs redirect to `blobs` (another origin) and whose manifest is `m`.
fn redirecting_registry(m: Vec<u8>, blobs: String) -> Server {
    Server::start(Arc::new(move |r: &Seen| {
        if let Some(no) = needs_auth(r) {
            return no;
        }
        match r.path.split_once("/blobs/") {
            Some((_, d)) => reply(307, &[("Location", &format!("{blobs}/b/{d}"))], b""),
            None if r.path.contains("/manifests/") => reply(200, &[("Content-Type", MT)], &m),
            None => reply(404, &[], b""),
        }
    }))
}

/// A blob GET redirected to another host (as registries do to a CDN) follows the redirect
/// without credentials; blob bodies longer than the descriptor stop at its size.
#[test]
fn pull_follows_a_blob_redirect_without_credentials() {
    let (m, config, layer) = image();
    let (cd, ld) = (sha256(&config), sha256(&layer));
    let cdn = Server::start(Arc::new(move |r: &Seen| {
        let mut body = if r.path.ends_with(&cd) {
            config.clone()
        } else if r.path.ends_with(&ld) {
            layer.clone()
        } else {
            vec![]
        };
        body.extend_from_slice(b"trailing garbage past the descriptor's size");
        reply(200, &[], &body)
    }));
    let reg = redirecting_registry(m, cdn.origin());
    let e = Env::empty();
    e.ok(&[
        "pull",
        "--creds",
        "u:p",
        &format!("127.0.0.1:{}/x/y:v1", reg.port),
    ]);
    assert_no_creds(&cdn);
}

/// An endless blob body stops at the descriptor's size and fails its digest check, fast;
/// a manifest over 4 MiB is refused with a clear error.
#[test]
fn pull_bounds_blobs_and_manifests() {
    let (m, _, _) = image();
    let cdn = Server::start(Arc::new(|_: &Seen| Reply {
        endless: true,
        ..reply(200, &[], b"")
    }));
    let reg = redirecting_registry(m, cdn.origin());
    let e = Env::empty();
    let t = std::time::Instant::now();
    let err = e.fails(&[
        "pull",
        "--creds",
        "u:p",
        &format!("127.0.0.1:{}/x/y:v1", reg.port),
    ]);
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(30),
        "took {:?}",
        t.elapsed()
    );
    let big = vec![b' '; 5 << 20];
    let reg = Server::start(Arc::new(move |_: &Seen| {
        reply(200, &[("Content-Type", MT)], &big)
    }));
    let err = e.fails(&["pull", &format!("127.0.0.1:{}/x/y:v1", reg.port)]);
    assert!(err.contains("4 MiB"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
