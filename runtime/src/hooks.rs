//! OCI hooks: each gets the state document on stdin; `timeout` is enforced by killing it.

use crate::error::{Error, Result};
use oci_spec::runtime::{Hook, Hooks};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// (name as in config.json, hooks) for every stage, in lifecycle order.
pub fn stages(h: &Hooks) -> Vec<(&'static str, &[Hook])> {
    fn v(o: &Option<Vec<Hook>>) -> &[Hook] {
        o.as_deref().unwrap_or(&[])
    }
    vec![
        ("prestart", v(h.prestart())),
        ("createRuntime", v(h.create_runtime())),
        ("createContainer", v(h.create_container())),
        ("startContainer", v(h.start_container())),
        ("poststart", v(h.poststart())),
        ("poststop", v(h.poststop())),
    ]
}

pub fn hooks_of<'a>(h: Option<&'a Hooks>, stage: &str) -> &'a [Hook] {
    h.and_then(|h| {
        stages(h)
            .into_iter()
            .find(|(s, _)| *s == stage)
            .map(|(_, l)| l)
    })
    .unwrap_or(&[])
}

/// Runs the hooks of one stage in order; stops at the first failure. A hook without `env`
/// gets an empty environment.
pub fn run(hooks: Option<&Hooks>, stage: &str, state: &serde_json::Value) -> Result<()> {
    run_with_env(hooks, stage, state, &[])
}

/// As `run`, but a hook without `env` gets `default_env`: startContainer hooks get the
/// container process's environment, as runc (Go's exec with a nil Env inherits the init's,
/// which is process.env) and youki give it.
pub fn run_with_env(
    hooks: Option<&Hooks>,
    stage: &str,
    state: &serde_json::Value,
    default_env: &[String],
) -> Result<()> {
    let list = hooks_of(hooks, stage);
    if list.is_empty() {
        return Ok(());
    }
    let doc = state.to_string();
    for (i, h) in list.iter().enumerate() {
        run_one(h, &doc, default_env).map_err(|msg| Error::Hook {
            stage: stage.into(),
            index: i,
            path: h.path().clone(),
            msg,
        })?;
    }
    Ok(())
}

/// Runs every hook of a stage whose failure only warrants a warning (poststart, poststop).
pub fn run_warn(hooks: Option<&Hooks>, stage: &str, state: &serde_json::Value) {
    let doc = state.to_string();
    for (i, h) in hooks_of(hooks, stage).iter().enumerate() {
        if let Err(msg) = run_one(h, &doc, &[]) {
            crate::logger::warn(&format!("hook {stage}[{i}] {}: {msg}", h.path().display()));
        }
    }
}

fn run_one(h: &Hook, state: &str, default_env: &[String]) -> std::result::Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some((argv0, rest)) = args.split_first() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().as_deref().unwrap_or(default_env) {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error.
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(st) if st.success() => return Ok(()),
            Some(st) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                let how = match st.signal() {
                    Some(s) => format!("killed by signal {s}"),
                    None => format!("exit status {}", st.code().unwrap_or(-1)),
                };
                let err = err.trim();
                return Err(if err.is_empty() {
                    how
                } else {
                    format!("{how}: {err}")
                });
            }
            None if deadline.is_some_and(|d| Instant::now() >= d) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {}s", h.timeout().unwrap_or(0)));
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}
