//! The CNI plugins (bridge + host-local, portmap, loopback from /usr/lib/cni) run by
//! hand, as libcni would: each plugin gets its config on stdin (with `prevResult`
//! and `runtimeConfig.portMappings`), CNI_* in the environment. ADD runs the chain
//! in order, DEL in reverse with the ADD result. IPs come from 10.213.0.0/24 on the
//! `berth0` bridge (host-local keeps its allocations in /run/berth-build/cni).

use super::Publish;
use crate::error::{Error, IoContext, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const CNI_PATH: &str = "/usr/lib/cni";
pub const BRIDGE: &str = "berth0";
pub const SUBNET: &str = "10.213.0.0/24";
const RUN_DIR: &str = "/run/berth-build";
const PLUGINS: [&str; 5] = ["bridge", "host-local", "static", "portmap", "loopback"];
pub const STATE: &str = "network.json";

/// What the createRuntime hook set up, in DIR/network.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attached {
    pub container_id: String,
    pub netns: String,
    /// The container's address, without prefix length.
    pub ip: String,
    pub cidr: String,
    pub gateway: Option<String>,
    pub bridge: String,
    pub publish: Vec<Publish>,
    /// The bridge plugin's ADD result (prevResult for portmap and for DEL).
    pub result: Value,
}

fn cni_path() -> PathBuf {
    std::env::var_os("BERTH_CNI_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CNI_PATH))
}

pub fn check_plugins() -> Result<()> {
    let dir = cni_path();
    for p in PLUGINS {
        if !dir.join(p).is_file() {
            return Err(Error::invalid(
                format!("CNI plugin {}", dir.join(p).display()),
                "not found (apt-get install containernetworking-plugins, or set BERTH_CNI_PATH)",
            ));
        }
    }
    Ok(())
}

fn port_file(p: &Publish) -> PathBuf {
    Path::new(RUN_DIR)
        .join("ports")
        .join(format!("{}-{}", p.protocol, p.host_port))
}

/// The port is free: no other bundle publishes it and nothing on the host listens on it.
pub fn check_port_free(p: &Publish) -> Result<()> {
    let busy = |why: String| Error::invalid(format!("port {}/{}", p.host_port, p.protocol), why);
    if let Ok(owner) = fs::read_to_string(port_file(p)) {
        if Path::new(owner.trim()).join(STATE).is_file() {
            return Err(busy(format!(
                "already published by bundle {}",
                owner.trim()
            )));
        }
    }
    let addr = ("0.0.0.0", p.host_port);
    let r = if p.protocol == "udp" {
        std::net::UdpSocket::bind(addr).map(|_| ())
    } else {
        std::net::TcpListener::bind(addr).map(|_| ())
    };
    r.map_err(|e| busy(format!("already in use on the host: {e}")))
}

/// The network config with host-local IPAM (used to reserve a bundle's address).
fn conf_reserve() -> Value {
    json!({
        "cniVersion": "1.0.0", "name": "berth", "type": "host-local",
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": SUBNET}]],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": format!("{RUN_DIR}/cni")
        }
    })
}

/// The bridge with the bundle's reserved address (static IPAM).
fn conf_bridge(r: &Reserved) -> Value {
    let mut addr = json!({"address": r.cidr});
    if let Some(g) = &r.gateway {
        addr["gateway"] = json!(g);
    }
    json!({
        "cniVersion": "1.0.0", "name": "berth", "type": "bridge",
        "bridge": BRIDGE, "isGateway": true, "ipMasq": true, "hairpinMode": true,
        "ipam": {"type": "static", "addresses": [addr], "routes": [{"dst": "0.0.0.0/0"}]}
    })
}

/// An address reserved for a bundle when it is made (so config.json can carry it as
/// an annotation); released by `bundle --rm`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reserved {
    /// The CNI container id the reservation is held under.
    pub id: String,
    pub ip: String,
    pub cidr: String,
    pub gateway: Option<String>,
}

pub fn reserve(dir: &Path) -> Result<Reserved> {
    let key = crate::digest::sha256_hex(dir.as_os_str().as_encoded_bytes());
    let id = format!("bundle-{}", &key[..16]);
    // host-local ignores the namespace, but the plugin skeleton wants one for ADD.
    let r = exec("ADD", &conf_reserve(), &id, "/proc/self/ns/net", "eth0")?;
    let ip0 = &r["ips"][0];
    let cidr = ip0["address"].as_str().unwrap_or_default().to_string();
    let ip = cidr.split('/').next().unwrap_or_default().to_string();
    if ip.is_empty() {
        let _ = exec("DEL", &conf_reserve(), &id, "", "eth0");
        return Err(Error::invalid(
            "CNI host-local ADD",
            format!("no IP in result {r}"),
        ));
    }
    Ok(Reserved {
        id,
        ip,
        cidr,
        gateway: ip0["gateway"].as_str().map(str::to_string),
    })
}

pub fn unreserve(r: &Reserved) -> Result<()> {
    exec("DEL", &conf_reserve(), &r.id, "", "eth0").map(|_| ())
}

/// Hold the bundle's address again for a new run of it: poststop released it (delete
/// releases the IP, as the container's end does for docker), but config.json already
/// names it, so ask host-local for that one address. A bundle made and not yet run
/// still holds it, and host-local refuses a second ADD for one id: DEL first.
pub fn rereserve(r: &Reserved) -> Result<()> {
    let _ = unreserve(r);
    let args = format!("IgnoreUnknown=1;IP={}", r.ip);
    exec_with(
        "ADD",
        &conf_reserve(),
        &r.id,
        "/proc/self/ns/net",
        "eth0",
        &args,
    )
    .map(|_| ())
    .map_err(|e| {
        Error::invalid(
            format!("the bundle's address {}", r.ip),
            format!("cannot be taken again (another bundle holds it?): {e}"),
        )
    })
}

fn conf_portmap(publish: &[Publish], prev: &Value) -> Value {
    let maps: Vec<Value> = publish
        .iter()
        .map(|p| json!({"hostPort": p.host_port, "containerPort": p.container_port, "protocol": p.protocol}))
        .collect();
    json!({
        "cniVersion": "1.0.0", "name": "berth", "type": "portmap",
        "capabilities": {"portMappings": true}, "snat": true,
        "runtimeConfig": {"portMappings": maps},
        "prevResult": prev
    })
}

fn conf_loopback() -> Value {
    json!({"cniVersion": "1.0.0", "name": "berth-lo", "type": "loopback"})
}

/// Run one plugin; its stdout (the result) on success.
fn exec(cmd: &str, conf: &Value, id: &str, netns: &str, ifname: &str) -> Result<Value> {
    exec_with(cmd, conf, id, netns, ifname, "")
}

/// Run one plugin with CNI_ARGS (`K=V;K=V`).
fn exec_with(
    cmd: &str,
    conf: &Value,
    id: &str,
    netns: &str,
    ifname: &str,
    cni_args: &str,
) -> Result<Value> {
    let ty = conf["type"].as_str().unwrap_or_default().to_string();
    let plugin = cni_path().join(&ty);
    let mut child = Command::new(&plugin)
        .env_clear()
        .env("CNI_COMMAND", cmd)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", ifname)
        .env("CNI_ARGS", cni_args)
        .env("CNI_PATH", cni_path())
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .at(&plugin)?;
    let data = serde_json::to_vec(conf).expect("json");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&data)
        .at(&plugin)?;
    let out = child.wait_with_output().at(&plugin)?;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    if !out.status.success() || v.get("code").is_some() {
        let msg = v["msg"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&out.stderr).trim().to_string());
        return Err(Error::invalid(format!("CNI {ty} {cmd}"), msg));
    }
    Ok(v)
}

fn pin_path(id: &str) -> PathBuf {
    Path::new(RUN_DIR).join("netns").join(id)
}

/// Keep the container's network namespace alive (a bind mount of /proc/PID/ns/net)
/// until DEL: the bridge plugin needs it to find what to tear down (its ipMasq
/// rules), and poststop runs after the container's processes are gone.
fn pin(id: &str, ns: &str) -> Result<PathBuf> {
    use nix::mount::{mount, MsFlags};
    let p = pin_path(id);
    let parent = p.parent().expect("parent");
    fs::create_dir_all(parent).at(parent)?;
    fs::write(&p, "").at(&p)?;
    if let Err(e) = mount(Some(ns), &p, None::<&str>, MsFlags::MS_BIND, None::<&str>).at(&p) {
        let _ = fs::remove_file(&p);
        return Err(e);
    }
    Ok(p)
}

fn unpin(p: &Path) {
    use nix::mount::{umount2, MntFlags};
    if p.starts_with(RUN_DIR) {
        let _ = umount2(p, MntFlags::MNT_DETACH);
        let _ = fs::remove_file(p);
    }
}

/// The ADD chain for container `id` in `netns`; on failure, what was added is removed.
pub fn add(
    dir: &Path,
    id: &str,
    netns: &str,
    publish: &[Publish],
    rsv: &Reserved,
) -> Result<Attached> {
    check_plugins()?;
    for p in publish {
        claim_port(dir, p)?;
    }
    let pinned = match pin(id, netns) {
        Ok(p) => p,
        Err(e) => {
            release_ports(dir, publish);
            return Err(e);
        }
    };
    let netns = &pinned.display().to_string();
    let res = add_chain(id, netns, publish, rsv);
    let res = res.and_then(|a| {
        let att = attached(id, netns, publish, a)?;
        write_state(dir, &att)?;
        Ok(att)
    });
    if res.is_err() {
        let _ = exec(
            "DEL",
            &conf_portmap(publish, &Value::Null),
            id,
            netns,
            "eth0",
        );
        let _ = exec("DEL", &conf_bridge(rsv), id, netns, "eth0");
        release_ports(dir, publish);
        unpin(&pinned);
    }
    res
}

fn add_chain(id: &str, netns: &str, publish: &[Publish], rsv: &Reserved) -> Result<Value> {
    exec("ADD", &conf_loopback(), id, netns, "lo")?;
    let r = exec("ADD", &conf_bridge(rsv), id, netns, "eth0")?;
    if !publish.is_empty() {
        exec("ADD", &conf_portmap(publish, &r), id, netns, "eth0")?;
    }
    Ok(r)
}

fn attached(id: &str, netns: &str, publish: &[Publish], r: Value) -> Result<Attached> {
    let ip0 = &r["ips"][0];
    let cidr = ip0["address"].as_str().unwrap_or_default().to_string();
    let ip = cidr.split('/').next().unwrap_or_default().to_string();
    if ip.is_empty() {
        return Err(Error::invalid(
            "CNI bridge ADD",
            format!("no IP in result {r}"),
        ));
    }
    Ok(Attached {
        container_id: id.to_string(),
        netns: netns.to_string(),
        ip,
        cidr,
        gateway: ip0["gateway"].as_str().map(str::to_string),
        bridge: BRIDGE.into(),
        publish: publish.to_vec(),
        result: r,
    })
}

fn claim_port(dir: &Path, p: &Publish) -> Result<()> {
    let f = port_file(p);
    let parent = f.parent().expect("parent");
    fs::create_dir_all(parent).at(parent)?;
    if let Ok(owner) = fs::read_to_string(&f) {
        if Path::new(owner.trim()) != dir {
            check_port_free(p)?;
        }
    } else {
        check_port_free(p)?;
    }
    fs::write(&f, dir.display().to_string()).at(&f)
}

fn release_ports(dir: &Path, publish: &[Publish]) {
    for p in publish {
        let f = port_file(p);
        if fs::read_to_string(&f).is_ok_and(|o| Path::new(o.trim()) == dir) {
            let _ = fs::remove_file(&f);
        }
    }
}

fn write_state(dir: &Path, a: &Attached) -> Result<()> {
    let p = dir.join(STATE);
    let tmp = dir.join(format!(".{STATE}.tmp"));
    let data = serde_json::to_vec_pretty(a).expect("json");
    fs::write(&tmp, data).at(&tmp)?;
    fs::rename(&tmp, &p).at(&p)
}

/// What the hooks set up for the bundle in `dir`, if it is set up.
pub fn state(dir: &Path) -> Option<Attached> {
    let data = fs::read(dir.join(STATE)).ok()?;
    serde_json::from_slice(&data).ok()
}

/// The DEL chain, from DIR/network.json; releases the IP, the port rules and the
/// port claims. Nothing to do when nothing is attached.
pub fn del(dir: &Path, rsv: &Reserved) -> Result<()> {
    let Some(a) = state(dir) else {
        return Ok(());
    };
    // The pinned namespace, if still there; else DEL without one (IP and ports only).
    let netns = if Path::new(&a.netns).exists() {
        a.netns.as_str()
    } else {
        ""
    };
    let mut first_err = None;
    if !a.publish.is_empty() {
        let c = conf_portmap(&a.publish, &a.result);
        if let Err(e) = exec("DEL", &c, &a.container_id, netns, "eth0") {
            first_err.get_or_insert(e);
        }
    }
    let mut c = conf_bridge(rsv);
    c["prevResult"] = a.result.clone();
    if let Err(e) = exec("DEL", &c, &a.container_id, netns, "eth0") {
        first_err.get_or_insert(e);
    }
    unpin(Path::new(&a.netns));
    release_ports(dir, &a.publish);
    match first_err {
        Some(e) => Err(e),
        None => {
            let p = dir.join(STATE);
            fs::remove_file(&p).at(&p)
        }
    }
}

/// Serialises every ADD, DEL and prune on this host: the portmap plugin creates its
/// shared chains (CNI-HOSTPORT-*) check-then-create, so two concurrent ADDs race
/// ("CHAIN_USER_ADD failed (File exists)"), and a prune between another bundle's pin
/// and its portmap ADD would remove chains in use. Held until dropped.
pub fn lock() -> Result<crate::store::lock::Lock> {
    fs::create_dir_all(RUN_DIR).at(Path::new(RUN_DIR))?;
    crate::store::lock::Lock::exclusive(&Path::new(RUN_DIR).join("cni.lock"))
}

/// The OCI hook: `berth-build network-hook add|del DIR`, state JSON on stdin.
pub fn hook(cmd: &str, dir: &Path, state_json: &[u8]) -> Result<()> {
    let _lock = lock()?;
    if cmd == "prune" {
        return prune_locked();
    }
    let st: Value = serde_json::from_slice(state_json)
        .map_err(|e| Error::invalid("network hook: container state on stdin", e.to_string()))?;
    let meta = crate::bundle::Meta::load(dir)?;
    let rsv = meta.network.address.as_ref().ok_or_else(|| {
        Error::invalid(
            dir.display().to_string(),
            "the bundle has no reserved address",
        )
    })?;
    match cmd {
        "add" => {
            let id = st["id"].as_str().unwrap_or_default();
            let pid = st["pid"].as_u64().unwrap_or(0);
            if id.is_empty() || pid == 0 {
                return Err(Error::invalid("network hook", "state has no id or pid"));
            }
            let netns = format!("/proc/{pid}/ns/net");
            rereserve(rsv)?;
            add(dir, id, &netns, &meta.network.publish, rsv)
                .map(|_| ())
                .inspect_err(|_| {
                    let _ = unreserve(rsv);
                })
        }
        // Delete (poststop) releases the port rules and the address.
        "del" => del(dir, rsv).and_then(|_| unreserve(rsv)),
        "prune" => prune_locked(),
        other => Err(Error::invalid(
            format!("network-hook {other}"),
            "expected add or del",
        )),
    }
}

/// Remove the `berth0` bridge and the portmap plugin's shared chains when no bundle
/// is attached any more (and the chains hold no rules of anyone else).
pub fn prune() -> Result<()> {
    let _lock = lock()?;
    prune_locked()
}

fn prune_locked() -> Result<()> {
    let pinned = Path::new(RUN_DIR).join("netns");
    if fs::read_dir(&pinned).is_ok_and(|mut d| d.next().is_some()) {
        return Ok(());
    }
    let run = |args: &[&str]| {
        Command::new(args[0])
            .args(&args[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    run(&["ip", "link", "del", BRIDGE]);
    let chains = [
        (
            "PREROUTING",
            "CNI-HOSTPORT-DNAT",
            vec!["-m", "addrtype", "--dst-type", "LOCAL"],
        ),
        (
            "OUTPUT",
            "CNI-HOSTPORT-DNAT",
            vec!["-m", "addrtype", "--dst-type", "LOCAL"],
        ),
        (
            "POSTROUTING",
            "CNI-HOSTPORT-MASQ",
            vec![
                "-m",
                "comment",
                "--comment",
                "CNI portfwd requiring masquerade",
            ],
        ),
    ];
    let empty = |c: &str| {
        Command::new("iptables")
            .args(["-t", "nat", "-S", c])
            .output()
            .is_ok_and(|o| {
                let text = String::from_utf8_lossy(&o.stdout).to_string();
                // Only the chain itself and portmap's own mark/masquerade rules.
                o.status.success()
                    && text
                        .lines()
                        .all(|l| l.starts_with("-N ") || l.contains("0x2000/0x2000"))
            })
    };
    if !(empty("CNI-HOSTPORT-DNAT") && empty("CNI-HOSTPORT-MASQ")) {
        return Ok(());
    }
    for (from, to, m) in &chains {
        let mut a = vec!["iptables", "-t", "nat", "-D", from];
        a.extend(m.iter().copied());
        a.extend(["-j", to]);
        run(&a);
    }
    for c in [
        "CNI-HOSTPORT-DNAT",
        "CNI-HOSTPORT-MASQ",
        "CNI-HOSTPORT-SETMARK",
    ] {
        if empty(c) {
            run(&["iptables", "-t", "nat", "-F", c]);
            run(&["iptables", "-t", "nat", "-X", c]);
        }
    }
    Ok(())
}
