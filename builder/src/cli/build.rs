//! build

use crate::build::output::Outputs;
use crate::build::{build, BuildOptions};
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
    /// type=local,dest=DIR | type=tar,dest=FILE|- | type=registry,name=REG/REPO:TAG |
    /// type=image,name=NAME[,push=true] | type=oci,dest=DIR | type=oci-archive,dest=FILE |
    /// type=docker-archive,dest=FILE | DIR (local) | - (tar on stdout); repeatable
    #[arg(short, long)]
    pub output: Vec<String>,
    /// Push every -t name to its registry after a successful build
    #[arg(long)]
    pub push: bool,
    /// Auth file for the registries (default: $REGISTRY_AUTH_FILE, else ~/.docker/config.json)
    #[arg(long)]
    pub authfile: Option<PathBuf>,
    /// Progress output: plain (BuildKit's plain lines), tty (a live view), auto (tty when
    /// stderr is a terminal, else plain) or quiet
    #[arg(long, default_value = "auto", value_parser = ["auto", "plain", "tty", "quiet"])]
    pub progress: String,
    /// Print only the image ID
    #[arg(short, long)]
    pub quiet: bool,
    /// Import build cache: type=registry,ref=REG/REPO[:TAG] (short: REG/REPO[:TAG]) or
    /// type=local,src=DIR (repeatable; consulted after the store's own; failures are warnings)
    #[arg(long)]
    pub cache_from: Vec<String>,
    /// Export this build's cache: type=registry,ref=REG/REPO[:TAG][,mode=min|max] (short:
    /// REG/REPO[:TAG]) or type=local,dest=DIR[,mode=min|max]
    #[arg(long)]
    pub cache_to: Option<String>,
    /// USER:PASSWORD for the registries (cache, pushes; pushes go to one registry then)
    #[arg(long)]
    pub creds: Option<String>,
    /// Verify TLS certificates of the registries (false: HTTPS accepting any
    /// certificate, else plain http)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// A secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR (repeatable)
    #[arg(long)]
    pub secret: Vec<String>,
    /// Write the image ID (its config digest) to FILE
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// KEY=VALUE label on the image (repeatable; over the Dockerfile's LABEL)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Target platform (only the host's for now: os/arch[/variant])
    #[arg(long)]
    pub platform: Option<String>,
    /// Write buildx's build result metadata (JSON: digests, image names) to FILE
    #[arg(long)]
    pub metadata_file: Option<PathBuf>,
}

/// `--label K=V` pairs.
fn labels(list: &[String]) -> Result<BTreeMap<String, String>> {
    list.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Error::invalid(
                format!("--label {kv}"),
                "expected KEY=VALUE",
            )),
        })
        .collect()
}

/// `--platform`: every platform listed must be the host's (one image per build today).
fn check_platform(p: &str) -> Result<()> {
    let arch = crate::store::types::host_arch();
    for one in p.split(',') {
        let parts: Vec<&str> = one.trim().split('/').collect();
        let ok = match parts.as_slice() {
            ["linux", a] | ["linux", a, _] => *a == arch,
            [a] => *a == arch,
            _ => false,
        };
        if !ok {
            return Err(Error::invalid(
                format!("--platform {p}"),
                format!("only the host's platform linux/{arch} can be built (no multi-platform builds yet)"),
            ));
        }
    }
    Ok(())
}

/// buildx's `--metadata-file` document for the built image.
fn metadata(img: &crate::store::Image, tags: &[String]) -> serde_json::Value {
    let d = &img.manifest_desc;
    serde_json::json!({
        "containerimage.config.digest": img.id(),
        "containerimage.digest": d.digest,
        "containerimage.descriptor": {"mediaType": d.media_type, "digest": d.digest, "size": d.size},
        "image.name": tags.join(","),
    })
}

/// Writes `text` to `path` whole or not at all (a temp file renamed over it).
fn write_file(path: &std::path::Path, text: &str) -> Result<()> {
    use crate::error::IoContext;
    let tmp = path.with_extension("berth-tmp");
    std::fs::write(&tmp, text).at(&tmp)?;
    std::fs::rename(&tmp, path).at(path)
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
    let outs = Outputs::parse(&a.output, a.push, &a.tags, a.creds.is_some())?;
    outs.check_stdout()?;
    if let Some(p) = &a.platform {
        check_platform(p)?;
    }
    let dockerfile_text = match a.file.as_deref() {
        Some(f) if f.as_os_str() == "-" => {
            let mut t = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
                .map_err(|e| Error::invalid("-f - (the Dockerfile on stdin)", e.to_string()))?;
            Some(t)
        }
        _ => None,
    };
    let opts = BuildOptions {
        secrets: crate::build::secrets::Secrets::parse(&a.secret)?,
        labels: labels(&a.labels)?,
        dockerfile_text,
        context: a.context,
        dockerfile: a.file,
        tags: a.tags.iter().chain(&outs.names).cloned().collect(),
        target: a.target,
        build_args,
        no_cache: a.no_cache,
        epoch,
        compression,
        runtime: a
            .runtime
            .unwrap_or_else(crate::exec::runtime::default_runtime),
        network_none,
        outputs: outs.files.clone(),
        quiet: a.quiet || a.progress == "quiet",
        progress: crate::build::progress::Mode::parse(&a.progress)
            .unwrap_or(crate::build::progress::Mode::Plain),
    };
    let reg = crate::registry::RegistryOptions {
        creds: a.creds.clone(),
        authfile: a.authfile.clone(),
        insecure: !a.tls_verify,
        ..Default::default()
    };
    let caches =
        crate::buildcache::Caches::parse(a.cache_to.as_deref(), &a.cache_from, reg.clone())?;
    let store = &caches.attach(store);
    // Held (shared) from the cache imports (lazy, during the build) to the last push: a
    // prune waits for all of it.
    let _lock = store.lock_shared()?;
    // Mounts made for RUN/COPY die with this process, whatever kills it.
    crate::exec::mount::private_mount_namespace()?;
    let img = build(store, &opts)?;
    caches.export(store, &img)?;
    outs.publish(store, &reg, &mut |l| {
        if !opts.quiet {
            eprintln!("{l}")
        }
    })?;
    if let Some(f) = &a.iidfile {
        write_file(f, img.id())?;
    }
    if let Some(f) = &a.metadata_file {
        let tags = opts
            .tags
            .iter()
            .map(|t| crate::store::reference::normalize(t))
            .collect::<Result<Vec<_>>>()?;
        write_file(f, &format!("{:#}\n", metadata(&img, &tags)))?;
    }
    if !outs.uses_stdout() {
        println!("{}", img.id());
    }
    Ok(0)
}
