//! bundle, mounts, inspect-bundle, commit, and the hidden network-hook.

use crate::bundle::commit::{commit as commit_bundle, CommitOptions};
use crate::bundle::{self, BundleOptions, Meta};
use crate::error::{Error, Result};
use crate::layer::Compression;
use crate::network::{cni, Mode, NetworkOptions, Publish};
use crate::store::Store;
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct BundleArgs {
    /// Unmount and remove the bundle DIR (given as the only argument)
    #[arg(long)]
    pub rm: bool,
    /// Set an environment variable (K=V, or K to take it from here); repeatable
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Container host name (default: a short random id)
    #[arg(long)]
    pub hostname: Option<String>,
    /// Bind mount HOST:CONTAINER[:ro|rw]; repeatable
    #[arg(short, long)]
    pub volume: Vec<String>,
    /// USER[:GROUP] (names resolved through the image's /etc/passwd and /etc/group)
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Replace the image's ENTRYPOINT (and drop its CMD)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// none, host or bridge (default: none; bridge with --publish)
    #[arg(long)]
    pub network: Option<String>,
    /// HOSTPORT:CONTAINERPORT[/tcp|udp]; repeatable; implies --network bridge
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// IMAGE DIR [COMMAND [ARG...]]  (with --rm: DIR)
    #[arg(required = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

fn network(a: &BundleArgs) -> Result<NetworkOptions> {
    let publish = a
        .publish
        .iter()
        .map(|p| Publish::parse(p))
        .collect::<Result<Vec<_>>>()?;
    let mode = match a.network.as_deref() {
        Some(m) => Mode::parse(m)?,
        None if !publish.is_empty() => Mode::Bridge,
        None => Mode::None,
    };
    if mode != Mode::Bridge && !publish.is_empty() {
        return Err(Error::invalid("--publish", "needs --network bridge"));
    }
    Ok(NetworkOptions { mode, publish })
}

pub fn bundle(store: &Store, a: BundleArgs) -> Result<i32> {
    if a.rm {
        if a.rest.len() != 1 {
            return Err(Error::invalid("bundle --rm", "expected exactly one DIR"));
        }
        bundle::remove(store, Path::new(&a.rest[0]))?;
        return Ok(0);
    }
    if a.rest.len() < 2 {
        return Err(Error::invalid(
            "bundle",
            "expected IMAGE DIR [COMMAND [ARG...]]",
        ));
    }
    let opts = BundleOptions {
        env: a.env.clone(),
        hostname: a.hostname.clone(),
        volumes: a.volume.clone(),
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        entrypoint: a.entrypoint.clone(),
        args: a.rest[2..].to_vec(),
        network: network(&a)?,
    };
    let meta = bundle::create(store, &a.rest[0], Path::new(&a.rest[1]), &opts)?;
    println!("{}", meta.rootfs.parent().unwrap_or(&meta.rootfs).display());
    Ok(0)
}

/// `mounts DIR`: the overlay behind the bundle, and its network.
pub fn mounts(dir: &Path) -> Result<i32> {
    let meta = Meta::load(dir)?;
    let state = if bundle::is_mounted(&meta.rootfs) {
        "mounted"
    } else {
        "not mounted"
    };
    println!("rootfs:    {} (overlay, {state})", meta.rootfs.display());
    println!("image:     {} {}", meta.image, meta.manifest_digest);
    for (i, l) in meta.lowerdirs.iter().enumerate() {
        println!("lowerdir{}: {}", i + 1, l.display());
    }
    println!("upperdir:  {}", meta.upperdir.display());
    println!("workdir:   {}", meta.workdir.display());
    let mode = serde_json::to_value(meta.network.mode).unwrap_or_default();
    println!("network:   {}", mode.as_str().unwrap_or("none"));
    if let Some(a) = cni::state(dir) {
        println!("ip:        {} (bridge {})", a.ip, a.bridge);
    }
    for p in &meta.network.publish {
        println!(
            "publish:   0.0.0.0:{} -> {}/{}",
            p.host_port, p.container_port, p.protocol
        );
    }
    Ok(0)
}

/// `inspect-bundle DIR`: the bundle record and live network state as JSON.
pub fn inspect(dir: &Path) -> Result<i32> {
    let meta = Meta::load(dir)?;
    let mut v = serde_json::to_value(&meta).map_err(|e| Error::Build(e.to_string()))?;
    v["mounted"] = bundle::is_mounted(&meta.rootfs).into();
    if let Some(a) = cni::state(dir) {
        v["network"]["ip"] = a.ip.clone().into();
        v["network"]["attached"] = serde_json::to_value(&a).unwrap_or_default();
    }
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    Ok(0)
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// The bundle directory
    pub bundle: PathBuf,
    /// NAME[:TAG] for the new image
    pub reference: Option<String>,
    /// Apply a Dockerfile instruction to the config (CMD, ENV, …); repeatable
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Commit message (history comment)
    #[arg(short, long)]
    pub message: Option<String>,
    /// Author
    #[arg(short, long)]
    pub author: Option<String>,
    /// gzip, zstd or uncompressed
    #[arg(long, default_value = "gzip")]
    pub compression: String,
    /// Pause the container with this ID while committing (as docker commit does)
    #[arg(long, value_name = "ID")]
    pub pause: Option<String>,
    /// OCI runtime for --pause (default: $BERTH_RUNTIME, else berth next to berth-build)
    #[arg(long)]
    pub runtime: Option<PathBuf>,
}

pub fn commit(store: &Store, a: CommitArgs) -> Result<i32> {
    let compression = Compression::parse(&a.compression)
        .ok_or_else(|| Error::invalid("--compression", "expected gzip, zstd or uncompressed"))?;
    let o = CommitOptions {
        changes: a.change,
        message: a.message,
        author: a.author,
        compression,
        pause: a.pause,
        runtime: a.runtime,
    };
    let img = commit_bundle(store, &a.bundle, a.reference.as_deref(), &o)?;
    println!("{}", img.id());
    Ok(0)
}

/// The OCI hook (createRuntime: add, poststop: del); container state on stdin.
pub fn network_hook(cmd: &str, dir: &Path) -> Result<i32> {
    use std::io::Read;
    if cmd == "prune" {
        cni::prune()?;
        return Ok(0);
    }
    let mut buf = vec![];
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| Error::invalid("network hook: stdin", e.to_string()))?;
    cni::hook(cmd, dir, &buf)?;
    Ok(0)
}
