//! config.json of a bundle: runc's defaults (namespaces, mounts, masked paths),
//! docker's default capabilities, and the process from the image config with the
//! user's overrides. Annotations carry what the runtime spec has no field for
//! (StopSignal, ExposedPorts, Labels — as the image-spec's conversion rules say —
//! and the image's name and digest).

use super::{BundleOptions, Meta};
use crate::build::config::{env_get, env_set};
use crate::build::run::{home_and_groups, resolve_user};
use crate::error::{Error, IoContext, Result};
use crate::exec::bundle::CAPS;
use crate::store::Image;
use berth_common::inroot::Root;
use serde_json::{json, Map, Value};
use std::fs;
use std::path::Path;

pub const ANN_IMAGE_NAME: &str = "io.berth.image.name";
pub const ANN_IMAGE_DIGEST: &str = "io.berth.image.digest";
pub const ANN_IP: &str = "io.berth.network.ip";
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The full runtime spec for the bundle in `dir`.
pub fn build(dir: &Path, meta: &Meta, img: &Image, o: &BundleOptions) -> Result<Value> {
    let cfg = &img.config.config;
    let args = process_args(cfg, o)?;
    let user = o
        .user
        .clone()
        .or_else(|| cfg.user.clone())
        .unwrap_or_default();
    // The image's passwd and group files, read inside its rootfs (links resolve there).
    let rootfs = berth_common::inroot::Root::open(&meta.rootfs)?;
    let (uid, gid) = resolve_user(&rootfs, &user)
        .map_err(|e| Error::invalid(format!("user {user:?}"), e.to_string()))?;
    let (home, gids) = home_and_groups(&rootfs, uid, gid);
    let mut env: Vec<String> = cfg.env.clone().unwrap_or_default();
    if env_get(&env, "PATH").is_none() {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    for e in &o.env {
        match e.split_once('=') {
            Some((k, v)) => env_set(&mut env, k, v),
            None => match std::env::var(e) {
                Ok(v) => env_set(&mut env, e, &v),
                Err(_) => env.retain(|x| x.split_once('=').map(|p| p.0) != Some(e)),
            },
        }
    }
    if env_get(&env, "HOME").is_none() {
        env.push(format!("HOME={home}"));
    }
    let hostname = o.hostname.clone().unwrap_or_else(|| short_id(dir));
    let cwd = o
        .workdir
        .clone()
        .or_else(|| cfg.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(Error::invalid(
            format!("--workdir {cwd}"),
            "must be absolute",
        ));
    }
    let mut mounts = default_mounts();
    mounts.extend(name_files(dir, &meta.rootfs, &hostname)?);
    for v in &o.volumes {
        mounts.push(volume(v)?);
    }
    let caps: Vec<&str> = CAPS.to_vec();
    let linux = json!({
        "namespaces": namespaces(o),
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    });
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": uid, "gid": gid, "additionalGids": gids},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024u64, "soft": 1024u64}],
            "noNewPrivileges": false
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": hostname,
        "mounts": mounts,
        "annotations": annotations(meta, img),
        "linux": linux
    });
    if let Some(h) = crate::network::hooks(dir, &meta.network)? {
        spec["hooks"] = h;
    }
    Ok(spec)
}

/// Docker's rules: --entrypoint replaces Entrypoint and drops the image's Cmd; args
/// after the image replace Cmd.
fn process_args(
    cfg: &crate::store::types::ContainerConfig,
    o: &BundleOptions,
) -> Result<Vec<String>> {
    let (ep, cmd) = match &o.entrypoint {
        Some(e) if e.is_empty() => (vec![], vec![]),
        Some(e) => (vec![e.clone()], vec![]),
        None => (
            cfg.entrypoint.clone().unwrap_or_default(),
            cfg.cmd.clone().unwrap_or_default(),
        ),
    };
    let cmd = if o.args.is_empty() {
        cmd
    } else {
        o.args.clone()
    };
    let mut args = ep;
    args.extend(cmd);
    if args.is_empty() {
        return Err(Error::invalid(
            "bundle",
            "no command: the image has no Entrypoint or Cmd; give one after the image",
        ));
    }
    Ok(args)
}

fn namespaces(o: &BundleOptions) -> Vec<Value> {
    let mut ns = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    if o.network.mode != crate::network::Mode::Host {
        ns.push(json!({"type": "network"}));
    }
    ns
}

fn default_mounts() -> Vec<Value> {
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ]
}

/// /etc/hostname, /etc/hosts and /etc/resolv.conf of the bundle, bind-mounted where
/// the image has the file (a regular file, so nothing is created in its rootfs).
fn name_files(dir: &Path, rootfs: &Path, hostname: &str) -> Result<Vec<Value>> {
    let resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let files = [
        ("hostname", format!("{hostname}\n")),
        (
            "hosts",
            format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"),
        ),
        ("resolv.conf", resolv),
    ];
    let mut out = vec![];
    // Probed in the rootfs's own root: an image's /etc -> /host/dir is the image's /host/dir.
    let root = Root::open(rootfs)?;
    for (name, content) in files {
        let host = dir.join(name);
        fs::write(&host, content).at(&host)?;
        let inside = Path::new("/etc").join(name);
        if matches!(root.lstat(&inside), Ok(Some(st)) if st.is_file()) {
            out.push(json!({"destination": format!("/etc/{name}"), "type": "bind", "source": host, "options": ["rbind", "rprivate"]}));
        }
    }
    Ok(out)
}

/// --volume HOST:CTR[:ro|rw] → a bind mount (the host dir is made if missing, as docker does).
fn volume(v: &str) -> Result<Value> {
    let bad = |why: &str| Error::invalid(format!("--volume {v}"), why.to_string());
    let parts: Vec<&str> = v.split(':').collect();
    let (host, ctr, mode) = match parts.as_slice() {
        [h, c] => (*h, *c, "rw"),
        [h, c, m] if *m == "ro" || *m == "rw" => (*h, *c, *m),
        _ => return Err(bad("expected HOST:CONTAINER[:ro|rw]")),
    };
    if !host.starts_with('/') || !ctr.starts_with('/') {
        return Err(bad("both paths must be absolute"));
    }
    if !Path::new(host).exists() {
        fs::create_dir_all(host).at(host)?;
    }
    Ok(
        json!({"destination": ctr, "type": "bind", "source": host, "options": ["rbind", "rprivate", mode]}),
    )
}

fn annotations(meta: &Meta, img: &Image) -> Map<String, Value> {
    let cfg = &img.config.config;
    let mut a = Map::new();
    for (k, v) in cfg.labels.iter().flatten() {
        a.insert(k.clone(), json!(v));
    }
    if let Some(p) = &cfg.exposed_ports {
        let ports: Vec<&str> = p.keys().map(|s| s.as_str()).collect();
        a.insert(
            "org.opencontainers.image.exposedPorts".into(),
            json!(ports.join(",")),
        );
    }
    if let Some(s) = &cfg.stop_signal {
        a.insert("org.opencontainers.image.stopSignal".into(), json!(s));
    }
    a.insert("org.opencontainers.image.os".into(), json!(img.config.os));
    a.insert(
        "org.opencontainers.image.architecture".into(),
        json!(img.config.architecture),
    );
    if let Some(c) = &img.config.created {
        a.insert("org.opencontainers.image.created".into(), json!(c));
    }
    if let Some(r) = &meta.network.address {
        a.insert(ANN_IP.into(), json!(r.ip));
    }
    a.insert(ANN_IMAGE_NAME.into(), json!(meta.image));
    a.insert(ANN_IMAGE_DIGEST.into(), json!(meta.manifest_digest));
    a
}

/// Destinations of every mount, relative to the rootfs (for commit to skip).
pub fn mount_points(spec: &Value) -> Vec<String> {
    spec["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["destination"].as_str())
        .map(|d| d.trim_start_matches('/').to_string())
        .collect()
}

/// A docker-like short id for the hostname: 12 hex digits.
fn short_id(dir: &Path) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!("{}-{nanos}-{}", dir.display(), std::process::id());
    crate::digest::sha256_hex(seed.as_bytes())[..12].to_string()
}

#[cfg(test)]
mod tests {
    use std::fs;

    /// An image's /etc that is a symlink to a host directory holding the name files: probed
    /// in the rootfs's own root they do not exist, so none is bind-mounted; a real
    /// /etc/hosts in the rootfs is.
    #[test]
    fn name_files_are_probed_in_the_rootfs_not_on_the_host() {
        let t = tempfile::Builder::new()
            .prefix("fuzz-namefiles")
            .tempdir()
            .unwrap();
        let (dir, rootfs, host) = (t.path().join("b"), t.path().join("r"), t.path().join("h"));
        for d in [&dir, &rootfs, &host] {
            fs::create_dir_all(d).unwrap();
        }
        for f in ["hostname", "hosts", "resolv.conf"] {
            fs::write(host.join(f), "host\n").unwrap();
        }
        std::os::unix::fs::symlink(&host, rootfs.join("etc")).unwrap();
        let m = super::name_files(&dir, &rootfs, "h").unwrap();
        assert!(m.is_empty(), "bound through the host: {m:?}");
        fs::remove_file(rootfs.join("etc")).unwrap();
        fs::create_dir(rootfs.join("etc")).unwrap();
        fs::write(rootfs.join("etc/hosts"), "").unwrap();
        let m = super::name_files(&dir, &rootfs, "h").unwrap();
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0]["destination"], "/etc/hosts");
    }
}
