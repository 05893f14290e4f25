//! state, list, ps, spec, features.

use super::{order, outln};
use berth::container::ops;
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: Format,
    /// Print only the ids
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: Format,
    pub id: String,
    /// Options passed to ps(1)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Generate a config for an unprivileged user
    #[arg(long)]
    pub rootless: bool,
    /// Directory to write config.json to
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Print one stats event and exit
    #[arg(long)]
    pub stats: bool,
    /// Time between stats events: 5s, 500ms, 1m (a bare number is seconds)
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

fn parse_interval(s: &str) -> berth::Result<std::time::Duration> {
    let bad = || {
        berth::Error::Other(format!(
            "--interval {s:?}: expected a duration like 5s, 500ms or 1m"
        ))
    };
    let (n, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

pub fn events(root: &Path, a: EventsArgs) -> berth::Result<i32> {
    let interval = if a.stats {
        None
    } else {
        Some(parse_interval(&a.interval)?)
    };
    berth::container::events::events(root, &a.id, interval, &mut |e| {
        let line = serde_json::to_string(&order::ordered(&e, order::EVENT));
        outln!("{}", line.unwrap_or_default())
    })?;
    Ok(0)
}

fn print_json(v: &serde_json::Value) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub fn state(root: &Path, id: &str) -> berth::Result<i32> {
    let st = ops::state(root, id)?;
    let text = serde_json::to_string_pretty(&order::ordered(&st, order::STATE));
    outln!("{}", text.unwrap_or_default());
    Ok(0)
}

pub fn list(root: &Path, a: ListArgs) -> berth::Result<i32> {
    let all = ops::list(root)?;
    if a.quiet {
        all.iter()
            .for_each(|s| outln!("{}", s["id"].as_str().unwrap_or("")));
        return Ok(0);
    }
    match a.format {
        Format::Json => {
            let list: Vec<_> = all
                .iter()
                .map(|s| order::ordered(s, order::STATE))
                .collect();
            outln!("{}", serde_json::to_string(&list).unwrap_or_default())
        }
        Format::Table => {
            outln!(
                "{:<20} {:<8} {:<10} {:<40} {:<31} OWNER",
                "ID",
                "PID",
                "STATUS",
                "BUNDLE",
                "CREATED"
            );
            for s in &all {
                let g = |k: &str| s[k].as_str().unwrap_or("").to_string();
                outln!(
                    "{:<20} {:<8} {:<10} {:<40} {:<31} {}",
                    g("id"),
                    s["pid"],
                    g("status"),
                    g("bundle"),
                    g("created"),
                    g("owner")
                );
            }
        }
    }
    Ok(0)
}

pub fn ps(root: &Path, a: PsArgs) -> berth::Result<i32> {
    let pids = ops::pids(root, &a.id)?;
    if let Format::Json = a.format {
        outln!("{}", serde_json::to_string(&pids).unwrap_or_default());
        return Ok(0);
    }
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| berth::Error::Other(format!("ps: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| berth::Error::Other("ps output has no PID column".into()))?;
    outln!("{header}");
    for l in lines {
        if l.split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| pids.contains(&p))
        {
            outln!("{l}");
        }
    }
    Ok(0)
}

pub fn spec(a: SpecArgs) -> berth::Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        return Err(berth::Error::Other(format!(
            "{}: file already exists",
            path.display()
        )));
    }
    let data = serde_json::to_string_pretty(&berth::features::default_spec(a.rootless))
        .unwrap_or_default();
    std::fs::write(&path, data + "\n").map_err(|e| berth::Error::io(&path, e))?;
    Ok(0)
}

pub fn features() -> berth::Result<i32> {
    print_json(&berth::features::features());
    Ok(0)
}
