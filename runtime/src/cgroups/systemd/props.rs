//! linux.resources as systemd unit properties (runc's conversions). systemd keeps these in
//! the unit and writes them again whenever it re-applies the unit's cgroup settings (a
//! daemon-reload, say), so the container's limits survive that; everything is also written
//! to the cgroup files directly afterwards (resources.rs), which covers what systemd has no
//! property for and gives the exact values where systemd rounds (CPUQuotaPerSecUSec).

use oci_spec::runtime::LinuxResources;

/// A property value, in the D-Bus types systemd expects for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prop {
    /// "t"
    U64(u64),
    /// "b"
    Bool(bool),
    /// "s"
    Str(String),
    /// "au"
    U32s(Vec<u32>),
    /// "ay" (a CPU or NUMA node bitmask)
    Bytes(Vec<u8>),
}

/// systemd's "infinity" for a u64 limit.
const INFINITY: u64 = u64::MAX;

fn limit(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(INFINITY)
}

/// The properties of `r` systemd has on this host (`v2`: the unified hierarchy, else v1).
pub fn resources(r: &LinuxResources, v2: bool) -> Vec<(&'static str, Prop)> {
    let mut out = vec![];
    if let Some(m) = r.memory() {
        if let Some(l) = m.limit() {
            out.push((
                if v2 { "MemoryMax" } else { "MemoryLimit" },
                Prop::U64(limit(l)),
            ));
        }
        if v2 {
            if let Some(l) = m.reservation() {
                out.push(("MemoryLow", Prop::U64(limit(l))));
            }
            // v1's swap is memory+swap; MemorySwapMax is swap alone.
            match (m.swap(), m.limit()) {
                (Some(s), _) if s < 0 => out.push(("MemorySwapMax", Prop::U64(INFINITY))),
                (Some(s), Some(l)) if l >= 0 => {
                    out.push(("MemorySwapMax", Prop::U64((s - l).max(0) as u64)))
                }
                _ => {}
            }
        }
    }
    if let Some(p) = r.pids() {
        let v = if p.limit() > 0 {
            p.limit() as u64
        } else {
            INFINITY
        };
        out.push(("TasksMax", Prop::U64(v)));
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares() {
            if v2 {
                out.push(("CPUWeight", Prop::U64(crate::cgroups::plan::cpu_weight(s))));
            } else {
                out.push(("CPUShares", Prop::U64(s)));
            }
        }
        if let Some(p) = c.period().filter(|p| *p > 0) {
            out.push(("CPUQuotaPeriodUSec", Prop::U64(p)));
        }
        if c.quota().is_some() || c.period().is_some() {
            out.push((
                "CPUQuotaPerSecUSec",
                Prop::U64(quota_per_sec(c.quota(), c.period())),
            ));
        }
        if v2 {
            let sets = [(c.cpus(), "AllowedCPUs"), (c.mems(), "AllowedMemoryNodes")];
            for (v, name) in sets {
                if let Some(bits) = v.as_deref().filter(|s| !s.is_empty()).and_then(bitmask) {
                    out.push((name, Prop::Bytes(bits)));
                }
            }
        }
    }
    if let Some(w) = r.block_io().as_ref().and_then(|b| b.weight()) {
        if v2 {
            out.push(("IOWeight", Prop::U64(crate::cgroups::plan::io_weight(w))));
        } else {
            out.push(("BlockIOWeight", Prop::U64(u64::from(w))));
        }
    }
    out
}

/// runc's CPUQuotaPerSecUSec: quota per period scaled to a second, rounded up to whole
/// percent (systemd keeps 10 ms steps); no quota (or -1) is infinity.
fn quota_per_sec(quota: Option<i64>, period: Option<u64>) -> u64 {
    let period = period.filter(|p| *p > 0).unwrap_or(100_000);
    match quota {
        Some(q) if q > 0 => {
            let v = (q as u64).saturating_mul(1_000_000) / period;
            v.div_ceil(10_000) * 10_000
        }
        _ => INFINITY,
    }
}

/// A cpuset list ("0-3,8") as systemd's bitmask: bit n of byte n/8 for CPU (or node) n.
pub fn bitmask(list: &str) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = vec![];
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<usize>().ok()?,
                b.trim().parse::<usize>().ok()?,
            ),
            None => {
                let n = part.trim().parse::<usize>().ok()?;
                (n, n)
            }
        };
        if a > b || b >= 1 << 16 {
            return None;
        }
        for n in a..=b {
            if out.len() <= n / 8 {
                out.resize(n / 8 + 1, 0);
            }
            out[n / 8] |= 1 << (n % 8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn v2_and_v1_properties() {
        let r = res(serde_json::json!({
            "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728},
            "pids": {"limit": 64},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1,3"},
            "blockIO": {"weight": 500}
        }));
        let p = resources(&r, true);
        let get = |p: &[(&str, Prop)], n: &str| p.iter().find(|x| x.0 == n).map(|x| x.1.clone());
        assert_eq!(get(&p, "MemoryMax"), Some(Prop::U64(67108864)));
        assert_eq!(get(&p, "MemoryLow"), Some(Prop::U64(33554432)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(Prop::U64(67108864)));
        assert_eq!(get(&p, "TasksMax"), Some(Prop::U64(64)));
        assert_eq!(get(&p, "CPUWeight"), Some(Prop::U64(39)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(Prop::U64(500_000)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(Prop::U64(100_000)));
        assert_eq!(get(&p, "AllowedCPUs"), Some(Prop::Bytes(vec![0b1011])));
        assert_eq!(get(&p, "IOWeight"), Some(Prop::U64(4950)));
        let p = resources(&r, false);
        assert_eq!(get(&p, "MemoryLimit"), Some(Prop::U64(67108864)));
        assert_eq!(get(&p, "CPUShares"), Some(Prop::U64(1024)));
        assert_eq!(get(&p, "BlockIOWeight"), Some(Prop::U64(500)));
        assert!(get(&p, "AllowedCPUs").is_none() && get(&p, "MemoryMax").is_none());
        let unl = res(
            serde_json::json!({"memory": {"limit": -1}, "pids": {"limit": 0},
            "cpu": {"quota": -1, "period": 100000}}),
        );
        let p = resources(&unl, true);
        assert_eq!(get(&p, "MemoryMax"), Some(Prop::U64(u64::MAX)));
        assert_eq!(get(&p, "TasksMax"), Some(Prop::U64(u64::MAX)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(Prop::U64(u64::MAX)));
    }

    #[test]
    fn quota_rounds_up_to_whole_percent() {
        assert_eq!(quota_per_sec(Some(12345), Some(100_000)), 130_000);
        assert_eq!(quota_per_sec(Some(200_000), None), 2_000_000);
        assert_eq!(bitmask("9"), Some(vec![0, 0b10]));
        assert_eq!(bitmask("3-1"), None);
    }
}
