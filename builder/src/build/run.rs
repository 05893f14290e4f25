//! RUN: the step as a real container over an overlay of the parent's snapshots; the
//! overlay upper dir becomes the layer.

use super::config::{env_get, env_set, shell_argv};
use super::progress::Step;
use super::resolve::read_file;
use super::state::StageState;
use super::tmp::TmpDir;
use super::Ctx;
use crate::dockerfile::{Command, Heredoc, Instruction, RunSpec};
use crate::error::{Error, IoContext, Result};
use crate::exec::bundle::{write_config, ProcessSpec};
use crate::exec::{mount, runtime};
use crate::layer::pack::pack_dir_with;
use crate::layer::snapshot::adopt_snapshot;
use crate::layer::PackOptions;
use crate::plan::cache::{self, CacheRecord};
use berth_common::inroot::Root;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static IDS: AtomicU64 = AtomicU64::new(0);

/// argv for the step: a lone heredoc is the script (with its own interpreter: the file,
/// which `run` mounts, is run); other heredocs go to the shell.
fn argv<'a>(
    st: &StageState,
    cmd: &Command,
    spec: &'a RunSpec,
) -> (Vec<String>, Option<&'a Heredoc>) {
    let cfg = &st.config.config;
    match (cmd, spec.heredocs.first()) {
        (Command::Shell(s), Some(first)) => {
            let lone = s.split_whitespace().count() == 1
                && crate::dockerfile::lexer::heredoc_marker(s.trim()).is_some();
            if lone && first.content.starts_with("#!") {
                return (vec![format!("/dev/pipes/{}", first.name)], Some(first));
            }
            if lone {
                return (
                    shell_argv(cfg, &Command::Shell(first.content.clone())),
                    None,
                );
            }
            let mut full = s.clone();
            for h in &spec.heredocs {
                full.push('\n');
                full.push_str(&h.content);
                full.push_str(&h.name);
            }
            (shell_argv(cfg, &Command::Shell(full)), None)
        }
        (c, _) => (shell_argv(cfg, c), None),
    }
}

/// An /etc/passwd- or /etc/group-style file of the image (bounded: it is the image's).
fn id_file(rootfs: &Root, path: &str) -> String {
    let data = read_file(rootfs, Path::new(path), 16 << 20).unwrap_or_default();
    String::from_utf8_lossy(&data).into_owned()
}

/// Look NAME (or a number) up in an /etc/passwd- or /etc/group-style file.
fn lookup_id(data: &str, name: &str) -> Option<(u32, u32)> {
    data.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == name).then(|| {
            let id = f[2].parse().ok()?;
            let gid = f.get(3).and_then(|g| g.parse().ok()).unwrap_or(id);
            Some((id, gid))
        })?
    })
}

/// USER "name[:group]" → (uid, gid), resolved in `rootfs` (its files read in the tree).
pub fn resolve_user(rootfs: &Root, user: &str) -> Result<(u32, u32)> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let (uid, mut gid) = match u.parse::<u32>() {
        Ok(n) => (n, lookup_uid_gid(rootfs, n).unwrap_or(0)),
        Err(_) => lookup_id(&id_file(rootfs, "/etc/passwd"), u).ok_or_else(|| {
            Error::invalid(
                format!("USER {user}"),
                format!("no user {u:?} in the image's /etc/passwd"),
            )
        })?,
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                lookup_id(&id_file(rootfs, "/etc/group"), g)
                    .ok_or_else(|| {
                        Error::invalid(
                            format!("USER {user}"),
                            format!("no group {g:?} in the image's /etc/group"),
                        )
                    })?
                    .0
            }
        };
    }
    Ok((uid, gid))
}

/// Home directory and supplementary groups of `uid` (as docker sets them for RUN).
pub fn home_and_groups(rootfs: &Root, uid: u32, gid: u32) -> (String, Vec<u32>) {
    let passwd = id_file(rootfs, "/etc/passwd");
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid));
    let home = entry
        .as_ref()
        .map(|f| f[5].to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into());
    let name = entry.map(|f| f[0].to_string());
    let group = id_file(rootfs, "/etc/group");
    let mut gids: Vec<u32> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| {
            f.len() >= 4
                && name
                    .as_deref()
                    .is_some_and(|n| f[3].split(',').any(|m| m == n))
        })
        .filter_map(|f| f[2].parse().ok())
        .filter(|g| *g != gid)
        .collect();
    gids.sort_unstable();
    gids.dedup();
    (home, gids)
}

fn lookup_uid_gid(rootfs: &Root, uid: u32) -> Option<u32> {
    let data = id_file(rootfs, "/etc/passwd");
    data.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[3].parse().ok())?
    })
}

/// Remove mount points the runtime created in the upper dir (absent from the image): only
/// directories holding nothing but directories, examined and removed by descriptor (the
/// step wrote the upper dir: its symlinks are never followed).
fn clean_mountpoints(upper: &Root, lowers: &[Root]) {
    let Ok(top) = upper.top() else { return };
    for d in ["proc", "sys", "dev"] {
        let name = std::ffi::OsStr::new(d);
        let in_lower = lowers
            .iter()
            .any(|l| l.lstat(Path::new(d)).ok().flatten().is_some());
        let is_dir = top.lstat(name).ok().flatten().is_some_and(|m| m.is_dir());
        let Some(dir) = (!in_lower && is_dir)
            .then(|| top.open_dir(name).ok())
            .flatten()
        else {
            continue;
        };
        let mut only_dirs = true;
        let walked = super::sources::walk(&dir, Path::new(""), &mut |_, _, _, st| {
            only_dirs &= st.is_dir();
            Ok(only_dirs)
        });
        if walked.is_ok() && only_dirs {
            let _ = top.remove_all(name);
        }
    }
}

pub fn run(
    cx: &Ctx,
    st: &mut StageState,
    ins: &Instruction,
    cmd: &Command,
    spec: &RunSpec,
    step: &Step,
    (stage, results): (usize, &[Option<StageState>]),
) -> Result<bool> {
    let (args, script) = argv(st, cmd, spec);
    let network_none = match spec.network.as_deref() {
        Some("none") => true,
        Some("host") => false,
        _ => cx.opts.network_none,
    };
    let instr = format!(
        "RUN {args:?} network_none={network_none} epoch={:?}",
        cx.opts.epoch
    );
    let tmp = TmpDir::new(cx.store, "run")?;
    let mut prepared = super::mounts::prepare(cx, st, &spec.mounts, stage, results, tmp.path())
        .map_err(|e| super::locate(cx, ins, e))?;
    if let Some(h) = script {
        if !berth_common::inroot::is_plain_name(std::ffi::OsStr::new(&h.name)) {
            return Err(super::locate(
                cx,
                ins,
                Error::invalid(
                    format!("<<{}", h.name),
                    "a heredoc script needs a file name",
                ),
            ));
        }
        let file = tmp.path().join("heredoc-script");
        fs::write(&file, &h.content).at(&file)?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).at(&file)?;
        let dest = format!("/dev/pipes/{}", h.name);
        prepared.mounts.push(serde_json::json!({"destination": dest, "type": "bind", "source": file, "options": ["rbind", "ro"]}));
        prepared
            .key
            .push_str(&crate::digest::sha256_hex(h.content.as_bytes()));
    }
    let key = st.step_key(&instr, true, &prepared.key);
    // As BuildKit's runCommandString: build args, then the argv joined by spaces.
    let created_by = format!(
        "RUN {}{} # buildkit",
        st.run_history_prefix(),
        args.join(" ")
    );
    if !cx.opts.no_cache {
        if let Some(rec) = cache::get(cx.store, &key) {
            apply_record(st, &rec, &created_by);
            st.key = key;
            return Ok(true);
        }
    }
    let lowers = st.snapshots(cx.store)?;
    let (upper, work, rootfs) = (
        tmp.path().join("upper"),
        tmp.path().join("work"),
        tmp.path().join("rootfs"),
    );
    for d in [&upper, &work, &rootfs] {
        fs::create_dir_all(d).at(d)?;
    }
    let mnt = mount::overlay(
        &lowers,
        Some((&upper, &work)),
        &rootfs,
        &tmp.path().join("empty"),
    )?;
    let run = RunCx {
        args: &args,
        network_none,
        dir: tmp.path(),
        rootfs: &rootfs,
        mounts: &prepared.mounts,
    };
    let outcome = exec_in(cx, st, &run, step);
    mnt.unmount()?;
    let targets = prepared.targets.clone();
    let outcome = outcome?;
    if outcome.code != 0 {
        return Err(failed(cx, ins, &args, &outcome));
    }
    drop(prepared);
    let upper_root = Root::open(&upper)?;
    let lower_roots = lowers
        .iter()
        .map(Root::open)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    clean_mountpoints(&upper_root, &lower_roots);
    super::mounts::clean_targets(&upper_root, &lower_roots, &targets);
    let name_files: Vec<String> = crate::exec::bundle::NAME_FILES
        .iter()
        .map(|s| s.to_string())
        .collect();
    super::mounts::clean_targets(&upper_root, &lower_roots, &name_files);
    drop((upper_root, lower_roots));
    let rec = commit_dir(cx, st, &upper, &key, true, &HashMap::new())?;
    apply_record(st, &rec, &created_by);
    st.key = key;
    Ok(false)
}

/// The error of a failed step: where, what ran, its exit code and the end of its output.
fn failed(cx: &Ctx, ins: &Instruction, args: &[String], outcome: &runtime::Outcome) -> Error {
    let lines: Vec<&str> = outcome.output.lines().collect();
    let tail = &lines[lines.len().saturating_sub(20)..];
    let out = if tail.is_empty() {
        String::new()
    } else {
        format!("\noutput:\n  {}", tail.join("\n  "))
    };
    Error::Build(format!(
        "{}:{}: {}: process {:?} did not complete successfully: exit code: {}{}{out}",
        cx.file_name,
        ins.line,
        ins.text,
        args.join(" "),
        outcome.code,
        crate::rootless::run_hint(&outcome.output).unwrap_or_default(),
    ))
}

struct RunCx<'a> {
    args: &'a [String],
    network_none: bool,
    dir: &'a Path,
    rootfs: &'a Path,
    mounts: &'a [serde_json::Value],
}

fn exec_in(cx: &Ctx, st: &StageState, r: &RunCx, step: &Step) -> Result<runtime::Outcome> {
    let RunCx {
        args,
        network_none,
        dir,
        rootfs,
        ..
    } = *r;
    let cfg = &st.config.config;
    let tree = Root::open(rootfs)?;
    let (uid, gid) = resolve_user(&tree, cfg.user.as_deref().unwrap_or(""))?;
    let (home, additional_gids) = home_and_groups(&tree, uid, gid);
    drop(tree);
    let mut env = st.arg_env();
    for p in super::PROXY_ARGS {
        if let Some(v) = cx.opts.build_args.get(p) {
            env_set(&mut env, p, v);
        }
    }
    for e in cfg.env.as_deref().unwrap_or(&[]) {
        if let Some((k, v)) = e.split_once('=') {
            env_set(&mut env, k, v);
        }
    }
    if env_get(&env, "HOME").is_none() {
        env.push(format!("HOME={home}"));
    }
    if let Some(e) = cx.opts.epoch {
        if env_get(&env, "SOURCE_DATE_EPOCH").is_none() {
            env.push(format!("SOURCE_DATE_EPOCH={e}"));
        }
    }
    let bundle = dir.join("bundle");
    fs::create_dir_all(&bundle).at(&bundle)?;
    let p = ProcessSpec {
        args: args.to_vec(),
        env,
        cwd: cfg
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into()),
        uid,
        gid,
        additional_gids,
        network_none,
        hostname: "buildkitsandbox".into(),
        extra_mounts: r.mounts.to_vec(),
    };
    write_config(&bundle, rootfs, &p)?;
    let n = IDS.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let id = format!("berth-build-{}-{n}-{nanos:x}", std::process::id());
    let progress = &cx.progress;
    runtime::run(&cx.opts.runtime, &bundle, &id, &mut |l| {
        progress.line(step, l)
    })
}

/// Pack `dir` as the next layer (empty dir → no layer), adopt it as a snapshot (unless
/// some of its files' bytes are elsewhere: `content`, see fsutil::Deferred), and record
/// it in the cache under `key`.
pub fn commit_dir(
    cx: &Ctx,
    st: &StageState,
    dir: &Path,
    key: &str,
    overlay: bool,
    content: &HashMap<PathBuf, PathBuf>,
) -> Result<CacheRecord> {
    let empty = fs::read_dir(dir).at(dir)?.next().is_none();
    let created = super::stage::now_or_epoch(cx);
    let (layer, diff_id, chain_id) = if empty {
        (None, String::new(), String::new())
    } else {
        let opts = PackOptions {
            compression: cx.opts.compression,
            epoch: cx.opts.epoch,
            overlay_whiteouts: overlay,
        };
        let l = pack_dir_with(cx.store, dir, opts, &[], content)?;
        let chain = st.next_chain(&l.diff_id);
        if content.is_empty() {
            adopt_snapshot(cx.store, &chain, dir)?;
        }
        (Some(l.desc), l.diff_id, chain)
    };
    let rec = CacheRecord {
        key: key.to_string(),
        layer,
        diff_id,
        chain_id,
        created,
    };
    cache::put(cx.store, &rec)?;
    Ok(rec)
}

pub fn apply_record(st: &mut StageState, rec: &CacheRecord, created_by: &str) {
    st.clock = rec.created.clone();
    match &rec.layer {
        Some(l) => {
            st.add_layer(l.clone(), rec.diff_id.clone());
            st.history(created_by, false, Some(rec.created.clone()));
        }
        None => st.history(created_by, true, Some(rec.created.clone())),
    }
}
