//! `update`: the new `linux.resources` from runc's flags or from a JSON document, typed
//! (oci-spec's `LinuxResources`), then applied through the container's cgroup manager.

use crate::{Error, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

/// runc's `update` flags; only the ones given change anything.
#[derive(Debug, Clone, Default)]
pub struct ResourceFlags {
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
}

/// "512m", "1g", "1024", "-1" → bytes (binary units, as runc's RAMInBytes).
pub fn size(flag: &str, s: &str) -> Result<i64> {
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

impl ResourceFlags {
    /// The resources the flags name; sections no flag touches stay unset.
    pub fn resources(&self) -> Result<LinuxResources> {
        let mut r = LinuxResources::default();
        let sz = |flag: &str, v: &Option<String>| v.as_deref().map(|s| size(flag, s)).transpose();
        let (limit, reservation, swap) = (
            sz("memory", &self.memory)?,
            sz("memory-reservation", &self.memory_reservation)?,
            sz("memory-swap", &self.memory_swap)?,
        );
        if limit.or(reservation).or(swap).is_some() {
            let mut m = LinuxMemory::default();
            m.set_limit(limit);
            m.set_reservation(reservation);
            m.set_swap(swap);
            r.set_memory(Some(m));
        }
        let mut c = LinuxCpu::default();
        c.set_shares(self.cpu_shares);
        c.set_quota(self.cpu_quota);
        c.set_period(self.cpu_period);
        c.set_realtime_period(self.cpu_rt_period);
        c.set_realtime_runtime(self.cpu_rt_runtime);
        c.set_cpus(self.cpuset_cpus.clone());
        c.set_mems(self.cpuset_mems.clone());
        if c != LinuxCpu::default() {
            r.set_cpu(Some(c));
        }
        if let Some(limit) = self.pids_limit {
            let mut p = LinuxPids::default();
            p.set_limit(limit);
            r.set_pids(Some(p));
        }
        if let Some(w) = self.blkio_weight {
            let mut b = LinuxBlockIo::default();
            b.set_weight(Some(w));
            r.set_block_io(Some(b));
        }
        Ok(r)
    }
}

/// `--resources` JSON (`src` names it in errors): a `linux.resources` document, checked
/// field by field (an error names the field, as in config.json).
pub fn parse_resources(src: &str, data: &[u8]) -> Result<LinuxResources> {
    crate::jsonpath::from_slice(data).map_err(|e| {
        let field = match e.field.as_str() {
            "(document)" => String::new(),
            f => format!(".{f}"),
        };
        Error::Other(format!(
            "--resources {src}: linux.resources{field}: {}",
            e.msg
        ))
    })
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

    #[test]
    fn flags_set_only_their_fields() {
        let f = ResourceFlags {
            memory: Some("64m".into()),
            cpu_quota: Some(-1),
            pids_limit: Some(10),
            ..Default::default()
        };
        let json = serde_json::to_value(f.resources().unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"memory": {"limit": 67108864}, "cpu": {"quota": -1}, "pids": {"limit": 10}})
        );
        let none = serde_json::to_value(ResourceFlags::default().resources().unwrap()).unwrap();
        assert_eq!(none, serde_json::json!({}));
    }

    #[test]
    fn a_bad_resources_document_names_the_field() {
        let e = parse_resources("-", br#"{"memory": {"limit": "lots"}}"#).unwrap_err();
        assert!(
            e.to_string().contains("linux.resources.memory.limit"),
            "{e}"
        );
    }
}
