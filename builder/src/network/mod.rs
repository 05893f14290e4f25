//! Networking for bundles: `none` (a new, empty network namespace), `host` (the
//! host's), `bridge` (a new namespace wired to the `berth0` bridge by the standard CNI
//! plugins, with published ports through `portmap`). Bridge networking is set up by
//! OCI hooks in the bundle's config.json — createRuntime runs
//! `berth-build network-hook add DIR`, poststop runs `… del DIR` — so it works with
//! any OCI runtime. The hook reads the container state from stdin (its pid gives the
//! namespace, /proc/PID/ns/net) and records the result in DIR/network.json.

pub mod cni;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    None,
    Host,
    Bridge,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode> {
        match s {
            "none" => Ok(Mode::None),
            "host" => Ok(Mode::Host),
            "bridge" => Ok(Mode::Bridge),
            _ => Err(Error::invalid(
                format!("--network {s}"),
                "expected none, host or bridge",
            )),
        }
    }
}

/// A published port: HOSTPORT:CTRPORT[/tcp|udp].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publish {
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

impl Publish {
    pub fn parse(s: &str) -> Result<Publish> {
        let bad = |why: &str| Error::invalid(format!("--publish {s}"), why.to_string());
        let (ports, proto) = match s.split_once('/') {
            Some((p, pr)) => (p, pr.to_ascii_lowercase()),
            None => (s, "tcp".to_string()),
        };
        if proto != "tcp" && proto != "udp" {
            return Err(bad("protocol must be tcp or udp"));
        }
        let (h, c) = ports
            .split_once(':')
            .ok_or_else(|| bad("expected HOSTPORT:CONTAINERPORT[/tcp|udp]"))?;
        let port = |p: &str| p.parse::<u16>().ok().filter(|n| *n > 0);
        Ok(Publish {
            host_port: port(h).ok_or_else(|| bad("bad host port"))?,
            container_port: port(c).ok_or_else(|| bad("bad container port"))?,
            protocol: proto,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct NetworkOptions {
    pub mode: Mode,
    pub publish: Vec<Publish>,
}

/// The network part of a bundle's record (what was asked for; the live state is in
/// DIR/network.json, written by the hooks).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetworkMeta {
    pub mode: Mode,
    #[serde(default)]
    pub publish: Vec<Publish>,
    /// Bridge: the address reserved for the bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<cni::Reserved>,
}

/// Check the request (plugins present, ports free) and reserve the bundle's address.
pub fn prepare(dir: &Path, o: &NetworkOptions) -> Result<NetworkMeta> {
    let mut address = None;
    if o.mode == Mode::Bridge {
        cni::check_plugins()?;
        for p in &o.publish {
            cni::check_port_free(p)?;
        }
        address = Some(cni::reserve(dir)?);
    }
    Ok(NetworkMeta {
        mode: o.mode,
        publish: o.publish.clone(),
        address,
    })
}

/// The `hooks` member of config.json for this network, if it needs any.
pub fn hooks(dir: &Path, n: &NetworkMeta) -> Result<Option<serde_json::Value>> {
    if n.mode != Mode::Bridge {
        return Ok(None);
    }
    let exe = std::env::current_exe()
        .map_err(|e| Error::invalid("berth-build executable", e.to_string()))?;
    let hook = |cmd: &str| {
        serde_json::json!({
            "path": exe,
            "args": ["berth-build", "network-hook", cmd, dir],
            "timeout": 30
        })
    };
    Ok(Some(serde_json::json!({
        "createRuntime": [hook("add")],
        "poststop": [hook("del")]
    })))
}

/// Undo what the hooks set up, if it is still set up (bundle --rm after a crash), and
/// release the reserved address.
pub fn release(dir: &Path, n: &NetworkMeta) -> Result<()> {
    let Some(r) = &n.address else {
        return Ok(());
    };
    let _lock = cni::lock()?;
    cni::del(dir, r)?;
    cni::unreserve(r)
}
