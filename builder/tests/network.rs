//! Bundle networking: none, host, bridge with published ports (CNI plugins run by
//! the bundle's OCI hooks); everything released on delete.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::RwLock;

static N: AtomicU32 = AtomicU32::new(0);

/// network_bad_input counts the host's address reservations and NAT rules before and after
/// each failure: it holds this for writing, the tests that add both hold it for reading.
static HOST_NET: RwLock<()> = RwLock::new(());

const RUN_DIR: &str = "/run/berth-build";

/// The addresses host-local holds for berth bundles (its files named by address).
fn reserved_ips() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(Path::new(RUN_DIR).join("cni/berth")) else {
        return vec![];
    };
    let mut v: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.parse::<std::net::Ipv4Addr>().is_ok())
        .collect();
    v.sort();
    v
}

/// The host end of the bundle's veth pair, from the bridge plugin's result in network.json.
fn host_veth(dir: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("network.json")).unwrap()).unwrap();
    v["result"]["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["sandbox"].is_null() && i["name"] != "berth0")
        .and_then(|i| i["name"].as_str())
        .unwrap_or_else(|| panic!("no host veth in {v}"))
        .to_string()
}

/// After delete: no port rule, no network.json, no pinned namespace, no port claim, no host
/// veth left.
fn assert_released(dir: &Path, id: &str, port: u16, veth: &str) {
    let nat = nat_rules();
    assert!(!nat.contains(id), "port rules left: {nat}");
    assert!(!dir.join("network.json").exists());
    let pin = Path::new(RUN_DIR).join("netns").join(id);
    assert!(!pin.exists(), "{} left after delete", pin.display());
    let claim = Path::new(RUN_DIR).join(format!("ports/tcp-{port}"));
    assert!(!claim.exists(), "{} left after delete", claim.display());
    assert!(
        !Path::new("/sys/class/net").join(veth).exists(),
        "veth {veth} left after delete"
    );
}

fn berth() -> String {
    common::berth_bin()
}

fn cid(what: &str) -> String {
    format!(
        "berth-build-test-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn curl(url: &str) -> Option<String> {
    for _ in 0..50 {
        let o = Command::new("curl")
            .args(["-s", "-m", "2", url])
            .output()
            .unwrap();
        if o.status.success() {
            return Some(String::from_utf8_lossy(&o.stdout).to_string());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

/// `iptables -t nat -S`: every NAT chain and rule (comments name the container), no counters.
fn nat_rules() -> String {
    let o = Command::new("iptables")
        .args(["-t", "nat", "-S"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Deletes the container and removes the bundle even when the test fails; then
/// drops the bridge and portmap chains if no other bundle uses them.
struct Cleanup {
    runtime: String,
    id: String,
    dir: PathBuf,
    store: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new(&self.runtime)
            .args(["delete", "-f", &self.id])
            .output();
        if self.dir.exists() {
            let _ = Command::new(bin())
                .arg("--store")
                .arg(&self.store)
                .args(["bundle", "--rm"])
                .arg(&self.dir)
                .output();
        }
        let _ = Command::new(bin())
            .args(["network-hook", "prune", "/"])
            .output();
    }
}

fn web_bundle(e: &Env, name: &str, port: u16) -> PathBuf {
    let www = e.path(&format!("www-{name}"));
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), format!("hello from {name}\n")).unwrap();
    let dir = e.path(name);
    let (p, v) = (format!("{port}:80"), format!("{}:/www:ro", www.display()));
    e.ok(&[
        "bundle",
        "--publish",
        &p,
        "--volume",
        &v,
        "--hostname",
        name,
        "busybox",
        dir.to_str().unwrap(),
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    dir
}

/// The running bundle answers on the host port and on its address, shown by inspect-bundle,
/// the annotation and `mounts`; its port rules, host veth and pinned netns are there.
/// (address, host veth).
fn reaches(e: &Env, dir: &Path, id: &str, port: u16) -> (String, String) {
    let info: serde_json::Value =
        serde_json::from_str(&e.ok(&["inspect-bundle", dir.to_str().unwrap()])).unwrap();
    let ip = info["network"]["ip"]
        .as_str()
        .expect("ip in inspect-bundle")
        .to_string();
    assert!(ip.starts_with("10.213."), "{ip}");
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["annotations"]["io.berth.network.ip"], ip.as_str());
    let mounts = e.ok(&["mounts", dir.to_str().unwrap()]);
    assert!(mounts.contains(&format!("ip:        {ip}")), "{mounts}");
    assert_eq!(
        curl(&format!("http://127.0.0.1:{port}/")).as_deref(),
        Some("hello from web\n")
    );
    assert_eq!(
        curl(&format!("http://{ip}:80/")).as_deref(),
        Some("hello from web\n")
    );
    assert!(nat_rules().contains(id), "port rules are set up");
    let veth = host_veth(dir);
    assert!(Path::new("/sys/class/net").join(&veth).exists(), "{veth}");
    assert!(Path::new(RUN_DIR).join("netns").join(id).exists());
    (ip, veth)
}

fn published_port_reaches(runtime: &str) {
    let _host = HOST_NET.read().unwrap_or_else(|p| p.into_inner());
    let e = Env::with_busybox();
    let port = free_port();
    let dir = web_bundle(&e, "web", port);
    let id = cid("web");
    let _g = Cleanup {
        runtime: runtime.into(),
        id: id.clone(),
        dir: dir.clone(),
        store: e.store(),
    };
    rt_ok(
        runtime,
        &["run", "-d", "--bundle", dir.to_str().unwrap(), &id],
    );
    let (ip, veth) = reaches(&e, &dir, &id, port);
    // A second bundle cannot publish the same port.
    let err = e.fails(&[
        "bundle",
        "--publish",
        &format!("{port}:80"),
        "busybox",
        e.path("web2").to_str().unwrap(),
        "true",
    ]);
    assert!(err.contains(&format!("port {port}/tcp")), "{err}");
    assert!(!e.path("web2").exists());
    // The container crashes; delete releases its IP and port rules.
    let _ = Command::new(runtime).args(["kill", &id, "KILL"]).status();
    std::thread::sleep(std::time::Duration::from_millis(300));
    rt_ok(runtime, &["delete", "-f", &id]);
    assert_released(&dir, &id, port, &veth);
    assert!(curl_once(&format!("http://127.0.0.1:{port}/")).is_none());
    // ... and its address: another bundle could take it now.
    let ip_file = Path::new("/run/berth-build/cni/berth").join(&ip);
    assert!(!ip_file.exists(), "IP still allocated after delete");
    // The bundle runs again with the same address (config.json names it).
    rt_ok(
        runtime,
        &["run", "-d", "--bundle", dir.to_str().unwrap(), &id],
    );
    assert!(ip_file.exists(), "the address is held again while it runs");
    assert_eq!(
        curl(&format!("http://127.0.0.1:{port}/")).as_deref(),
        Some("hello from web\n")
    );
    let veth = host_veth(&dir);
    rt_ok(runtime, &["delete", "-f", &id]);
    assert_released(&dir, &id, port, &veth);
    assert!(
        !ip_file.exists(),
        "IP still allocated after the second delete"
    );
    e.ok(&["bundle", "--rm", dir.to_str().unwrap()]);
    assert!(!ip_file.exists(), "IP still allocated after bundle --rm");
}

/// Runs the OCI runtime and asserts it succeeded.
fn rt_ok(runtime: &str, args: &[&str]) {
    let st = Command::new(runtime).args(args).status().unwrap();
    assert!(st.success(), "{runtime} {args:?} failed");
}

fn curl_once(url: &str) -> Option<String> {
    let o = Command::new("curl")
        .args(["-s", "-m", "1", url])
        .output()
        .unwrap();
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).to_string())
}

#[test]
fn publish_under_berth() {
    published_port_reaches(&berth());
}

#[test]
fn publish_under_runc() {
    published_port_reaches(RUNC);
}

fn run_out(dir: &Path, id: &str) -> String {
    let o = Command::new(berth())
        .args(["run", "--bundle"])
        .arg(dir)
        .arg(id)
        .output()
        .unwrap();
    let _ = Command::new(berth()).args(["delete", "-f", id]).output();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn network_none_and_host() {
    let e = Env::with_busybox();
    let ifaces = "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '";
    let none = e.path("none");
    e.ok(&[
        "bundle",
        "--network",
        "none",
        "busybox",
        none.to_str().unwrap(),
        "sh",
        "-c",
        ifaces,
    ]);
    let out = run_out(&none, &cid("none"));
    assert_eq!(out.trim(), "lo", "{out}");
    let host = e.path("host");
    e.ok(&[
        "bundle",
        "--network",
        "host",
        "busybox",
        host.to_str().unwrap(),
        "sh",
        "-c",
        ifaces,
    ]);
    let out = run_out(&host, &cid("host"));
    let host_dev = std::fs::read_to_string("/proc/net/dev").unwrap();
    assert!(out.split_whitespace().count() >= 2, "{out}");
    for i in out.split_whitespace() {
        assert!(
            host_dev.contains(&format!("{i}:")),
            "{i} not a host interface"
        );
    }
    for d in [&none, &host] {
        e.ok(&["bundle", "--rm", d.to_str().unwrap()]);
    }
}

/// The host's address reservations and NAT rules, to compare before and after a failure.
fn host_net() -> (Vec<String>, String) {
    (reserved_ips(), nat_rules())
}

/// `bundle ARGS` fails with one line containing each of `want`; no bundle dir, and no address
/// or NAT rule more than before.
fn bundle_fails(e: &Env, dir: &Path, args: &[&str], cni_path: Option<&Path>, want: &[&str]) {
    let before = host_net();
    let mut all = vec!["bundle"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["busybox", dir.to_str().unwrap(), "true"]);
    let mut c = e.cmd(&all);
    if let Some(p) = cni_path {
        c.env("BERTH_CNI_PATH", p);
    }
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "bundle {args:?} succeeded");
    assert!(
        want.iter().all(|w| err.contains(w)) && err.trim().lines().count() == 1,
        "bundle {args:?}: {err}"
    );
    assert!(!dir.exists(), "bundle {args:?} left {}", dir.display());
    let after = host_net();
    assert_eq!(before.0, after.0, "bundle {args:?}: addresses held");
    assert_eq!(before.1, after.1, "bundle {args:?}: NAT rules changed");
}

#[test]
fn network_bad_input() {
    let _host = HOST_NET.write().unwrap_or_else(|p| p.into_inner());
    let e = Env::with_busybox();
    let dir = e.path("bad");
    let no_cni = e.path("no-cni");
    let port = free_port();
    let p = format!("{port}:80");
    let missing = ["CNI plugin", "not found"];
    bundle_fails(&e, &dir, &["--publish", &p], Some(&no_cni), &missing);
    // Fails after the address is reserved (the volume is checked when config.json is made):
    // the address is released.
    let last = || std::fs::read_to_string(Path::new(RUN_DIR).join("cni/berth/last_reserved_ip.0"));
    let last_before = last().ok();
    let bad_volume = ["--publish", &p, "--volume", "relative/dir:/data"];
    bundle_fails(&e, &dir, &bad_volume, None, &["--volume", "absolute"]);
    assert_ne!(
        last().ok(),
        last_before,
        "no address was reserved before the failure"
    );
    let claim = Path::new(RUN_DIR).join(format!("ports/tcp-{port}"));
    assert!(!claim.exists(), "{}", claim.display());
    let busy = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let p = format!("{}:80", busy.local_addr().unwrap().port());
    bundle_fails(&e, &dir, &["--publish", &p], None, &["already in use"]);
    for bad in ["80", "x:80", "80:80/sctp", "0:80"] {
        bundle_fails(&e, &dir, &["--publish", bad], None, &["--publish"]);
    }
    let weird = ["--network", "weird"];
    bundle_fails(&e, &dir, &weird, None, &["none, host or bridge"]);
}

/// Four bundles publishing ports start at once from a host with no portmap chains:
/// every ADD, DEL and prune is serialised (portmap creates its shared chains
/// check-then-create, and a prune could drop them under another bundle's ADD).
#[test]
fn concurrent_publishes_and_prunes() {
    let _host = HOST_NET.read().unwrap_or_else(|p| p.into_inner());
    let e = Env::with_busybox();
    let mut guards = vec![];
    for i in 0..4 {
        let port = free_port();
        let name = format!("par{i}");
        let dir = web_bundle(&e, &name, port);
        guards.push((
            port,
            Cleanup {
                runtime: berth(),
                id: cid(&name),
                dir,
                store: e.store(),
            },
        ));
    }
    let _ = Command::new(bin())
        .args(["network-hook", "prune", "/"])
        .output();
    std::thread::scope(|s| {
        for (_, g) in &guards {
            s.spawn(|| {
                rt_ok(
                    &g.runtime,
                    &["run", "-d", "--bundle", g.dir.to_str().unwrap(), &g.id],
                )
            });
            // A prune racing the starts must not remove chains they use.
            s.spawn(|| {
                let _ = Command::new(bin())
                    .args(["network-hook", "prune", "/"])
                    .output();
            });
        }
    });
    for (port, g) in &guards {
        let name = g.dir.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(
            curl(&format!("http://127.0.0.1:{port}/")).as_deref(),
            Some(format!("hello from {name}\n").as_str()),
            "{name}"
        );
    }
}
