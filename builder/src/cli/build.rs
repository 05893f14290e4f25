//! build

use crate::build::{build, BuildOptions, Output};
use crate::error::{Error, Result};
use crate::layer::Compression;
use crate::store::Store;
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Build context directory
    #[arg(default_value = ".")]
    pub context: PathBuf,
    /// Dockerfile (default: CONTEXT/Dockerfile)
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Name (and tag) for the image; repeatable
    #[arg(short, long = "tag")]
    pub tags: Vec<String>,
    /// Stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// KEY=VALUE (or KEY, taken from the environment); repeatable
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Do not use the build cache
    #[arg(long)]
    pub no_cache: bool,
    /// Unix time for every timestamp (like SOURCE_DATE_EPOCH)
    #[arg(long)]
    pub timestamp: Option<i64>,
    /// Layer compression: gzip, zstd or uncompressed
    #[arg(long, default_value = "gzip")]
    pub compression: String,
    /// OCI runtime binary for RUN (default: $BERTH_RUNTIME, else berth next to berth-build, else on PATH)
    #[arg(long)]
    pub runtime: Option<PathBuf>,
    /// Network for RUN steps: host (default) or none
    #[arg(long, default_value = "host")]
    pub network: String,
    /// type=oci,dest=DIR | type=oci-archive,dest=FILE | type=docker-archive,dest=FILE
    #[arg(short, long)]
    pub output: Vec<String>,
    /// Progress output: plain (BuildKit's plain lines), tty (a live view), auto (tty when
    /// stderr is a terminal, else plain) or quiet
    #[arg(long, default_value = "auto", value_parser = ["auto", "plain", "tty", "quiet"])]
    pub progress: String,
    /// Print only the image ID
    #[arg(short, long)]
    pub quiet: bool,
    /// Import build cache from REGISTRY/REPO:TAG (repeatable; failures are warnings)
    #[arg(long)]
    pub cache_from: Vec<String>,
    /// Export this build's cache to REGISTRY/REPO:TAG
    #[arg(long)]
    pub cache_to: Option<String>,
    /// USER:PASSWORD for the cache registries
    #[arg(long)]
    pub creds: Option<String>,
    /// Verify TLS certificates of the cache registries (false: HTTPS accepting any
    /// certificate, else plain http)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
}

pub fn run(store: &Store, a: BuildArgs) -> Result<i32> {
    let mut build_args = BTreeMap::new();
    for kv in &a.build_args {
        match kv.split_once('=') {
            Some((k, v)) => build_args.insert(k.to_string(), v.to_string()),
            None => match std::env::var(kv) {
                Ok(v) => build_args.insert(kv.clone(), v),
                Err(_) => None,
            },
        };
    }
    let epoch = match (a.timestamp, build_args.get("SOURCE_DATE_EPOCH")) {
        (Some(t), _) => Some(t),
        (None, Some(v)) => Some(
            v.parse()
                .map_err(|_| Error::invalid("--build-arg SOURCE_DATE_EPOCH", "not a number"))?,
        ),
        (None, None) => crate::build::epoch_from_env(),
    };
    let compression = Compression::parse(&a.compression).ok_or_else(|| {
        Error::invalid(
            format!("--compression {}", a.compression),
            "expected gzip, zstd or uncompressed",
        )
    })?;
    let network_none = match a.network.as_str() {
        "host" | "default" => false,
        "none" => true,
        n => {
            return Err(Error::invalid(
                format!("--network {n}"),
                "expected host or none",
            ))
        }
    };
    let outputs = a
        .output
        .iter()
        .map(|o| Output::parse(o))
        .collect::<Result<Vec<_>>>()?;
    let opts = BuildOptions {
        context: a.context,
        dockerfile: a.file,
        tags: a.tags,
        target: a.target,
        build_args,
        no_cache: a.no_cache,
        epoch,
        compression,
        runtime: a
            .runtime
            .unwrap_or_else(crate::exec::runtime::default_runtime),
        network_none,
        outputs,
        quiet: a.quiet || a.progress == "quiet",
        progress: crate::build::progress::Mode::parse(&a.progress)
            .unwrap_or(crate::build::progress::Mode::Plain),
    };
    let reg = crate::registry::RegistryOptions {
        creds: a.creds.clone(),
        insecure: !a.tls_verify,
        ..Default::default()
    };
    let cache_to = a
        .cache_to
        .as_deref()
        .map(crate::registry::RemoteRef::parse)
        .transpose()?;
    for f in &a.cache_from {
        let r = crate::registry::RemoteRef::parse(f)
            .and_then(|r| crate::registry::cache::import(store, &r, &reg));
        match r {
            Ok(n) => eprintln!("#0 importing cache from {f}: {n} records"),
            Err(e) => eprintln!("berth-build: warning: --cache-from {f}: {e}"),
        }
    }
    // Mounts made for RUN/COPY die with this process, whatever kills it.
    crate::exec::mount::private_mount_namespace()?;
    let img = build(store, &opts)?;
    if let Some(t) = cache_to {
        let n = crate::registry::cache::export(store, &img, &t, &reg, &mut |l| eprintln!("{l}"))?;
        eprintln!("#0 exported cache to {}: {n} layers", t.display());
    }
    println!("{}", img.id());
    Ok(0)
}
