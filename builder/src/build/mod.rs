//! Building: Dockerfile → image. `stage` runs a stage's steps, `run` RUN steps,
//! `copy` COPY/ADD, `config` the config-only instructions, `output` the exporters.

pub mod chmod;
pub mod config;
pub mod copy;
pub mod fetch;
pub mod fsutil;
pub mod import;
pub mod mounts;
pub mod output;
pub mod progress;
pub mod resolve;
pub mod run;
pub mod secrets;
pub mod sources;
pub mod stage;
pub mod state;
mod tmp;
pub mod workdir;

use crate::dockerfile::{expand, Dockerfile};
use crate::error::{Error, IoContext, Result};
use crate::layer::Compression;
use crate::plan::ignore::Ignore;
use crate::store::{Image, Store};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub use output::Output;

/// Build args every RUN gets when given with --build-arg, without an ARG (as docker).
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Values of the automatic platform ARGs (TARGETPLATFORM, BUILDARCH, …) for this host.
pub fn platform_arg(name: &str) -> Option<String> {
    let arch = crate::store::types::host_arch();
    let v = match name
        .trim_start_matches("TARGET")
        .trim_start_matches("BUILD")
    {
        "PLATFORM" => format!("linux/{arch}"),
        "OS" => "linux".into(),
        "ARCH" => arch.into(),
        "VARIANT" => String::new(),
        _ => return None,
    };
    (name.starts_with("TARGET") || name.starts_with("BUILD")).then_some(v)
}

/// SOURCE_DATE_EPOCH from the environment, if set and valid.
pub fn epoch_from_env() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH").ok()?.trim().parse().ok()
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub context: PathBuf,
    /// Dockerfile path (default: CONTEXT/Dockerfile).
    pub dockerfile: Option<PathBuf>,
    pub tags: Vec<String>,
    pub target: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub no_cache: bool,
    pub epoch: Option<i64>,
    pub compression: Compression,
    pub runtime: PathBuf,
    /// Default network for RUN: host unless "none".
    pub network_none: bool,
    pub outputs: Vec<Output>,
    pub quiet: bool,
    /// Plain lines or the live terminal view (`quiet` wins).
    pub progress: progress::Mode,
    /// `--secret` values for RUN --mount=type=secret.
    pub secrets: secrets::Secrets,
    /// `--label`: set on the final image's config, over the Dockerfile's LABELs.
    pub labels: BTreeMap<String, String>,
    /// `-f -`: the Dockerfile's text, read from stdin.
    pub dockerfile_text: Option<String>,
}

/// Everything a build reads, resolved once.
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub opts: &'a BuildOptions,
    pub df: Dockerfile,
    pub file_name: String,
    pub ignore: Ignore,
    pub context: PathBuf,
    /// The context as a tree for the in-root resolver: sources are read through it.
    pub context_root: berth_common::inroot::Root,
    /// Values of ARGs declared before the first FROM.
    pub meta: BTreeMap<String, String>,
    pub progress: progress::Progress,
    pub used_args: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// Digests of context files by inode/size/times.
    pub hashes: crate::plan::hashcache::HashCache,
}

fn load_dockerfile(opts: &BuildOptions) -> Result<(Dockerfile, String)> {
    if let Some(text) = &opts.dockerfile_text {
        return Ok((
            crate::dockerfile::parse(text, "Dockerfile")?,
            "Dockerfile".into(),
        ));
    }
    let path = opts
        .dockerfile
        .clone()
        .unwrap_or_else(|| opts.context.join("Dockerfile"));
    let src = std::fs::read_to_string(&path).at(&path)?;
    let name = path.display().to_string();
    Ok((crate::dockerfile::parse(&src, &name)?, name))
}

fn meta_args(df: &Dockerfile, opts: &BuildOptions, file: &str) -> Result<BTreeMap<String, String>> {
    let mut meta = BTreeMap::new();
    for ins in &df.meta_args {
        if let crate::dockerfile::Kind::Arg(list) = &ins.kind {
            for (name, def) in list {
                let v = match (opts.build_args.get(name), def) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(d)) => Some(
                        expand::word(d, &|n: &str| meta.get(n).cloned(), df.escape)
                            .map_err(|e| Error::invalid(format!("{file}:{}", ins.line), e))?,
                    ),
                    (None, None) => platform_arg(name),
                };
                if let Some(v) = v {
                    meta.insert(name.clone(), v);
                }
            }
        }
    }
    Ok(meta)
}

/// Build the Dockerfile; tag and export the result.
pub fn build(store: &Store, opts: &BuildOptions) -> Result<Image> {
    let context = std::fs::canonicalize(&opts.context).at(&opts.context)?;
    if !context.is_dir() {
        return Err(Error::invalid(
            context.display().to_string(),
            "build context is not a directory",
        ));
    }
    let (df, file_name) = load_dockerfile(opts)?;
    let ignore_path = context.join(".dockerignore");
    let ignore = match std::fs::read_to_string(&ignore_path) {
        Ok(s) => Ignore::parse(&s)
            .map_err(|e| Error::invalid(format!("{}:{}", ignore_path.display(), e.line), e.why))?,
        Err(_) => Ignore::default(),
    };
    let tags = opts
        .tags
        .iter()
        .map(|t| crate::store::reference::normalize(t))
        .collect::<Result<Vec<_>>>()?;
    let meta = meta_args(&df, opts, &file_name)?;
    let _lock = store.lock_shared()?;
    let cx = Ctx {
        store,
        opts,
        df,
        file_name,
        ignore,
        context_root: berth_common::inroot::Root::open(&context)?,
        context,
        meta,
        progress: match opts.quiet {
            true => progress::Progress::new(true),
            false => progress::Progress::with_mode(opts.progress),
        },
        used_args: Default::default(),
        hashes: crate::plan::hashcache::HashCache::load(store),
    };
    let img = build_checked(&cx);
    crate::store::cachegc::stamp_used();
    cx.hashes.save(store)?;
    let img = img?;
    let step = cx.progress.start("exporting to image");
    cx.progress
        .note(&step, &format!("writing image {} done", img.id()));
    for t in &tags {
        store.tag(&img.manifest_desc, t)?;
        cx.progress.note(&step, &format!("naming to {t} done"));
    }
    for o in &opts.outputs {
        output::export(store, &img, tags.first().map(|s| s.as_str()), o)?;
        cx.progress
            .note(&step, &format!("exporting to {} done", o.dest()));
    }
    cx.progress.done(&step);
    cx.progress.finish();
    let unused: Vec<&String> = opts
        .build_args
        .keys()
        .filter(|k| !PROXY_ARGS.contains(&k.as_str()))
        .filter(|k| {
            !cx.used_args.lock().expect("lock").contains(*k)
                && !cx.meta.contains_key(*k)
                && *k != "SOURCE_DATE_EPOCH"
        })
        .collect();
    if !unused.is_empty() && !opts.quiet {
        eprintln!("[Warning] One or more build-args {unused:?} were not consumed");
    }
    Ok(img)
}

/// Builds the target; the image's layers are all in the store when it returns (the output
/// needs their bytes). A layer of an imported cache that fails its checks (see
/// buildcache::session) makes the attempt fail and marks the layer bad: the build runs
/// again without the records that name it, so a bad cache never fails a build.
fn build_checked(cx: &Ctx) -> Result<Image> {
    loop {
        let failed = cx.store.session().map_or(0, |s| s.failures());
        let img = stage::build_all(cx).and_then(|img| {
            let diffs = &img.config.rootfs.diff_ids;
            for (l, d) in img.manifest.layers.iter().zip(diffs) {
                cx.store.ensure_layer(l, d)?;
            }
            Ok(img)
        });
        match cx.store.session() {
            Some(s) if img.is_err() && s.failures() > failed => s.restart(),
            _ => return img,
        }
    }
}

/// Run one instruction; Ok(true) when the result came from the cache.
fn run_step(
    cx: &Ctx,
    st: &mut state::StageState,
    ins: &crate::dockerfile::Instruction,
    stage: usize,
    step: &progress::Step,
    results: &[Option<state::StageState>],
) -> Result<bool> {
    use crate::dockerfile::Kind;
    let at = |e: String| Error::invalid(format!("{}:{}: {}", cx.file_name, ins.line, ins.text), e);
    match &ins.kind {
        Kind::Arg(list) => {
            let mut shown = vec![]; // BuildKit's history: `ARG K=V K2`, with the values used
            for (name, def) in list {
                let v = match (cx.opts.build_args.get(name), def) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(d)) => {
                        Some(expand::word(d, &|n: &str| st.lookup(n), cx.df.escape).map_err(at)?)
                    }
                    (None, None) => cx.meta.get(name).cloned().or_else(|| platform_arg(name)),
                };
                cx.used_args.lock().expect("lock").insert(name.clone());
                shown.push(match &v {
                    Some(v) => format!("{name}={v}"),
                    None => name.clone(),
                });
                st.set_arg(name, v);
            }
            st.history(&format!("ARG {}", shown.join(" ")), true, None);
            Ok(false)
        }
        Kind::Run(cmd, spec) => run::run(cx, st, ins, cmd, spec, step, (stage, results)),
        Kind::Copy(c) => {
            copy::copy(cx, st, ins, c, false, stage, results).map_err(|e| at_ins(cx, ins, e))
        }
        Kind::Add(c) => {
            copy::copy(cx, st, ins, c, true, stage, results).map_err(|e| at_ins(cx, ins, e))
        }
        Kind::Maintainer(m) => {
            let author = expand::word(m, &|n: &str| st.lookup(n), cx.df.escape).map_err(at)?;
            st.config.author = Some(author);
            st.history(&ins.text, true, None);
            Ok(false)
        }
        Kind::From { .. } => Err(at("FROM inside a stage".into())),
        kind => {
            // Expanded against the state as it is, then applied: nothing is copied, so a
            // config-only step costs the same at the 10,000th as at the first.
            let vars = |n: &str| st.lookup(n);
            let change = config::resolve(&st.config.config, kind, &vars, cx.df.escape)
                .map_err(at)?
                .ok_or_else(|| at(format!("{} is not a config instruction", kind.name())))?;
            st.apply(change);
            if let Kind::Workdir(_) = kind {
                let dir = st.config.config.working_dir.clone().unwrap_or_default();
                return workdir::ensure_dir(cx, st, &dir, &format!("WORKDIR {dir}"));
            }
            st.history(&ins.text, true, None);
            Ok(false)
        }
    }
}

/// An instruction's error with where it is (Dockerfile:N), unless it says already.
fn locate(cx: &Ctx, ins: &crate::dockerfile::Instruction, e: Error) -> Error {
    let at = format!("{}:{}", cx.file_name, ins.line);
    match e {
        Error::Invalid { what, why } if !what.starts_with(&at) => {
            Error::invalid(format!("{at}: {what}"), why)
        }
        e => at_ins(cx, ins, e),
    }
}

/// A rootless build's unmapped-id error names the instruction, not a staging path.
fn at_ins(cx: &Ctx, ins: &crate::dockerfile::Instruction, e: Error) -> Error {
    match e {
        Error::Rootless(crate::rootless::RootlessError::Unmapped { id, mapped, .. }) => {
            crate::rootless::RootlessError::Unmapped {
                what: format!("{}:{}: {}", cx.file_name, ins.line, ins.text),
                id,
                mapped,
            }
            .into()
        }
        e => e,
    }
}
