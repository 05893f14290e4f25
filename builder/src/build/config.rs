//! Instructions that only change the image config (CMD, ENV, LABEL, …).

use crate::dockerfile::expand::{self, Env};
use crate::dockerfile::{parser::parse_instruction, Command, HealthSpec, Kind};
use crate::error::{Error, Result};
use crate::store::types::{ContainerConfig, Empty, Healthcheck};

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// Value of NAME in a KEY=VALUE list.
pub fn env_get(env: &[String], name: &str) -> Option<String> {
    env.iter().rev().find_map(|e| {
        e.strip_prefix(name)?
            .strip_prefix('=')
            .map(|v| v.to_string())
    })
}

pub fn env_set(env: &mut Vec<String>, name: &str, value: &str) {
    let kv = format!("{name}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map(|(k, _)| k) == Some(name))
    {
        Some(e) => *e = kv,
        None => env.push(kv),
    }
}

/// Shell form → argv with the configured SHELL.
pub fn shell_argv(cfg: &ContainerConfig, cmd: &Command) -> Vec<String> {
    match cmd {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut v: Vec<String> = match &cfg.shell {
                Some(sh) => sh.clone(),
                None => DEFAULT_SHELL.iter().map(|s| s.to_string()).collect(),
            };
            v.push(s.clone());
            v
        }
    }
}

/// Go-style duration ("30s", "1m30s", "500ms") → nanoseconds.
pub fn parse_duration(s: &str) -> std::result::Result<i64, String> {
    let mut total: f64 = 0.0;
    let mut num = String::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    if s.is_empty() {
        return Err("empty duration".into());
    }
    while i < cs.len() {
        if cs[i].is_ascii_digit() || cs[i] == '.' {
            num.push(cs[i]);
            i += 1;
            continue;
        }
        let mut unit = String::new();
        while i < cs.len() && !(cs[i].is_ascii_digit() || cs[i] == '.') {
            unit.push(cs[i]);
            i += 1;
        }
        let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
        let mul = match unit.as_str() {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(format!("invalid duration {s:?}")),
        };
        total += n * mul;
        num.clear();
    }
    if !num.is_empty() {
        return Err(format!("missing unit in duration {s:?}"));
    }
    Ok(total as i64)
}

fn health(
    h: &HealthSpec,
    ex: &dyn Fn(&str) -> std::result::Result<String, String>,
) -> std::result::Result<Healthcheck, String> {
    let test = match &h.cmd {
        None => vec!["NONE".to_string()],
        Some(Command::Exec(v)) => std::iter::once("CMD".to_string())
            .chain(v.iter().cloned())
            .collect(),
        Some(Command::Shell(s)) => vec!["CMD-SHELL".into(), s.clone()],
    };
    let dur = |v: &Option<String>| -> std::result::Result<Option<i64>, String> {
        v.as_ref().map(|s| parse_duration(&ex(s)?)).transpose()
    };
    let retries = h
        .retries
        .as_ref()
        .map(|r| {
            ex(r)?
                .parse::<i64>()
                .map_err(|_| format!("invalid retries {r:?}"))
        })
        .transpose()?;
    Ok(Healthcheck {
        test: Some(test),
        interval: dur(&h.interval)?,
        timeout: dur(&h.timeout)?,
        start_period: dur(&h.start_period)?,
        start_interval: dur(&h.start_interval)?,
        retries,
    })
}

fn clean_abs(p: &str) -> String {
    let mut parts: Vec<&str> = vec![];
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A config-only instruction with its words expanded: what it will change.
#[derive(Debug)]
pub enum Change {
    Cmd(Vec<String>),
    Entrypoint(Vec<String>),
    Labels(Vec<(String, String)>),
    Env(Vec<(String, String)>),
    Expose(Vec<String>),
    Volumes(Vec<String>),
    User(String),
    /// Absolute and cleaned.
    Workdir(String),
    StopSignal(String),
    Health(Healthcheck),
    Shell(Vec<String>),
    Onbuild(String),
}

/// Expand a config-only instruction against `vars` (ENV values see the variables as they
/// were before the instruction, as in docker). Nothing changes yet; Ok(None) if `kind` is
/// not config-only. `cfg` is only read (SHELL for CMD/ENTRYPOINT, WORKDIR's base).
pub fn resolve(
    cfg: &ContainerConfig,
    kind: &Kind,
    vars: &dyn Env,
    escape: char,
) -> std::result::Result<Option<Change>, String> {
    let ex = |s: &str| expand::word(s, vars, escape);
    let pairs = |kvs: &[(String, String)]| -> std::result::Result<Vec<(String, String)>, String> {
        kvs.iter().map(|(k, v)| Ok((ex(k)?, ex(v)?))).collect()
    };
    Ok(Some(match kind {
        Kind::Cmd(c) => Change::Cmd(shell_argv(cfg, c)),
        Kind::Entrypoint(c) => Change::Entrypoint(shell_argv(cfg, c)),
        Kind::Label(kvs) => Change::Labels(pairs(kvs)?),
        Kind::Env(kvs) => Change::Env(pairs(kvs)?),
        Kind::Expose(ports) => {
            let mut out = vec![];
            for p in ports {
                for p in expand::words(p, vars, escape)? {
                    let p = if p.contains('/') {
                        p.to_ascii_lowercase()
                    } else {
                        format!("{p}/tcp")
                    };
                    let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                    let (a, b) = num.split_once('-').unwrap_or((num, num));
                    let range = match (a.parse::<u16>(), b.parse::<u16>()) {
                        (Ok(a), Ok(b)) if a <= b => a..=b,
                        _ => return Err(format!("invalid port {p:?}")),
                    };
                    if !["tcp", "udp", "sctp"].contains(&proto) {
                        return Err(format!("invalid port {p:?}"));
                    }
                    // A range is every port in it, as BuildKit records it.
                    out.extend(range.map(|n| format!("{n}/{proto}")));
                }
            }
            Change::Expose(out)
        }
        Kind::Volume(vs) => {
            let mut out = vec![];
            for v in vs {
                let v = ex(v)?;
                if v.is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                out.push(v);
            }
            Change::Volumes(out)
        }
        Kind::User(u) => Change::User(ex(u)?),
        Kind::Workdir(w) => {
            let w = ex(w)?;
            let base = cfg.working_dir.as_deref().unwrap_or("/");
            Change::Workdir(clean_abs(&if w.starts_with('/') {
                w
            } else {
                format!("{base}/{w}")
            }))
        }
        Kind::Stopsignal(s) => {
            let s = ex(s)?;
            crate::dockerfile::signal::check_signal(&s)?;
            Change::StopSignal(s)
        }
        Kind::Healthcheck(h) => Change::Health(health(h, &ex)?),
        Kind::Shell(v) => Change::Shell(v.clone()),
        Kind::Onbuild(t) => Change::Onbuild(t.clone()),
        _ => return Ok(None),
    }))
}

/// Make the change. `cmd_set`: CMD was set in this stage (ENTRYPOINT clears an inherited
/// CMD). ENV goes through `set_env` (the stage keeps an index of its variables).
pub fn commit(
    cfg: &mut ContainerConfig,
    change: Change,
    cmd_set: &mut bool,
    set_env: &mut dyn FnMut(&mut Vec<String>, &str, &str),
) {
    match change {
        Change::Cmd(v) => {
            cfg.cmd = Some(v);
            *cmd_set = true;
        }
        Change::Entrypoint(v) => {
            cfg.entrypoint = Some(v);
            if !*cmd_set {
                cfg.cmd = None;
            }
        }
        Change::Labels(kvs) => cfg.labels.get_or_insert_with(Default::default).extend(kvs),
        Change::Env(kvs) => {
            let env = cfg.env.get_or_insert_with(Vec::new);
            for (k, v) in kvs {
                set_env(env, &k, &v);
            }
        }
        Change::Expose(ps) => {
            let map = cfg.exposed_ports.get_or_insert_with(Default::default);
            map.extend(ps.into_iter().map(|p| (p, Empty {})));
        }
        Change::Volumes(vs) => {
            let map = cfg.volumes.get_or_insert_with(Default::default);
            map.extend(vs.into_iter().map(|v| (v, Empty {})));
        }
        Change::User(u) => cfg.user = Some(u),
        Change::Workdir(w) => cfg.working_dir = Some(w),
        Change::StopSignal(s) => cfg.stop_signal = Some(s),
        Change::Health(h) => cfg.healthcheck = Some(h),
        Change::Shell(v) => cfg.shell = Some(v),
        Change::Onbuild(t) => cfg.on_build.get_or_insert_with(Vec::new).push(t),
    }
}

/// Apply a config-only instruction. Returns Ok(false) if `kind` is not one.
pub fn apply(
    cfg: &mut ContainerConfig,
    kind: &Kind,
    vars: &dyn Env,
    escape: char,
    cmd_set: &mut bool,
) -> std::result::Result<bool, String> {
    let Some(change) = resolve(cfg, kind, vars, escape)? else {
        return Ok(false);
    };
    commit(cfg, change, cmd_set, &mut |env, k, v| env_set(env, k, v));
    Ok(true)
}

/// `import --change 'CMD …'`: apply one config instruction, expanding from the config's ENV.
pub fn apply_change(cfg: &mut ContainerConfig, text: &str) -> Result<()> {
    let ins = parse_instruction(text, "--change", 1, '\\')?;
    let env = cfg.env.clone().unwrap_or_default();
    let vars = move |n: &str| env_get(&env, n);
    let mut cmd_set = false;
    match apply(cfg, &ins.kind, &vars, '\\', &mut cmd_set) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::invalid(
            format!("--change {text:?}"),
            format!("{} does not only change the config", ins.kind.name()),
        )),
        Err(e) => Err(Error::invalid(format!("--change {text:?}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), 30_000_000_000);
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
        assert!(parse_duration("5").is_err());
    }
    #[test]
    fn changes() {
        let mut c = ContainerConfig::default();
        apply_change(&mut c, "ENV A=1 B=\"two words\"").unwrap();
        apply_change(&mut c, "CMD echo $A").unwrap();
        apply_change(&mut c, "WORKDIR /app").unwrap();
        apply_change(&mut c, "WORKDIR sub/../x").unwrap();
        apply_change(&mut c, "EXPOSE 80 53/UDP").unwrap();
        apply_change(&mut c, "ENTRYPOINT [\"/bin/sh\"]").unwrap();
        assert_eq!(
            c.env.as_ref().unwrap(),
            &vec!["A=1".to_string(), "B=two words".to_string()]
        );
        assert_eq!(
            c.cmd, None,
            "ENTRYPOINT resets a CMD not set in this stage... per call"
        );
        assert_eq!(c.working_dir.as_deref(), Some("/app/x"));
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("53/udp"));
        assert!(apply_change(&mut c, "RUN true").is_err());
        assert!(apply_change(&mut c, "EXPOSE abc").is_err());
    }
}
