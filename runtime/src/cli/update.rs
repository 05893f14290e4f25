//! update: change a running container's cgroup limits (runc's flags, or --resources JSON).

use berth::Error;
use clap::Args;
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};
use std::path::Path;

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// linux.resources JSON from a file, or - for stdin
    #[arg(short, long)]
    pub resources: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// memory + swap (v1 semantics), -1 for unlimited
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    #[arg(long = "cpu-shares", alias = "cpu-share")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    pub id: String,
}

/// "512m", "1g", "1024", "-1" → bytes (binary units, as runc's RAMInBytes).
fn size(flag: &str, s: &str) -> berth::Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: i64 = num
        .parse()
        .map_err(|_| Error::Other(format!("--{flag} {s:?}: not a size (e.g. 512m, 1g, -1)")))?;
    Ok(if n < 0 { -1 } else { n * mul })
}

fn from_flags(a: &UpdateArgs) -> berth::Result<Value> {
    let mut r = json!({});
    let mut set = |path: &[&str], v: Value| {
        let mut cur = &mut r;
        for p in &path[..path.len() - 1] {
            cur = cur.as_object_mut().unwrap().entry(*p).or_insert(json!({}));
        }
        cur[path[path.len() - 1]] = v;
    };
    if let Some(m) = &a.memory {
        set(&["memory", "limit"], json!(size("memory", m)?));
    }
    if let Some(m) = &a.memory_reservation {
        set(
            &["memory", "reservation"],
            json!(size("memory-reservation", m)?),
        );
    }
    if let Some(m) = &a.memory_swap {
        set(&["memory", "swap"], json!(size("memory-swap", m)?));
    }
    if let Some(v) = a.cpu_shares {
        set(&["cpu", "shares"], json!(v));
    }
    if let Some(v) = a.cpu_period {
        set(&["cpu", "period"], json!(v));
    }
    if let Some(v) = a.cpu_quota {
        set(&["cpu", "quota"], json!(v));
    }
    if let Some(v) = a.cpu_rt_period {
        set(&["cpu", "realtimePeriod"], json!(v));
    }
    if let Some(v) = a.cpu_rt_runtime {
        set(&["cpu", "realtimeRuntime"], json!(v));
    }
    if let Some(v) = &a.cpuset_cpus {
        set(&["cpu", "cpus"], json!(v));
    }
    if let Some(v) = &a.cpuset_mems {
        set(&["cpu", "mems"], json!(v));
    }
    if let Some(v) = a.pids_limit {
        set(&["pids", "limit"], json!(v));
    }
    if let Some(v) = a.blkio_weight {
        set(&["blockIO", "weight"], json!(v));
    }
    Ok(r)
}

pub fn update(root: &Path, a: UpdateArgs) -> berth::Result<i32> {
    let doc: Value = match &a.resources {
        Some(src) => {
            let data = if src == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                    .map_err(|e| Error::io("stdin", e))?;
                s
            } else {
                std::fs::read_to_string(src).map_err(|e| Error::io(src, e))?
            };
            serde_json::from_str(&data)
                .map_err(|e| Error::Other(format!("--resources {src}: {e}")))?
        }
        None => from_flags(&a)?,
    };
    let text = serde_json::to_vec(&doc).unwrap_or_default();
    let r: LinuxResources = berth::jsonpath::from_slice(&text).map_err(|e| {
        let field = match e.field.as_str() {
            "(document)" => String::new(),
            f => format!(".{f}"),
        };
        Error::Other(format!("--resources: linux.resources{field}: {}", e.msg))
    })?;
    berth::container::ops::update(root, &a.id, &r).map(|_| 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_runc() {
        assert_eq!(size("m", "512m").unwrap(), 512 << 20);
        assert_eq!(size("m", "1G").unwrap(), 1 << 30);
        assert_eq!(size("m", "4096").unwrap(), 4096);
        assert_eq!(size("m", "-1").unwrap(), -1);
        assert!(size("m", "lots").unwrap_err().to_string().contains("--m"));
    }
}
