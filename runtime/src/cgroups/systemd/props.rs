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
    /// "a(ss)" (DeviceAllow: device, access)
    Pairs(Vec<(String, String)>),
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

/// The device rules (`(allow, "c 1:3 rwm")`, applied after "deny all") as DevicePolicy
/// and DeviceAllow, as runc hands them to systemd. On v1 systemd writes these into the
/// devices cgroup whenever it re-applies the unit (a daemon-reload); left at its default
/// policy it would write "allow all" there. systemd has no deny entries: a deny rule after
/// the first is left to berth's own rules (then systemd's list is the wider one).
pub fn devices(rules: &[(bool, String)], proc_devices: &str) -> Vec<(&'static str, Prop)> {
    let mut allow = vec![];
    for (_, rule) in rules.iter().filter(|r| r.0) {
        let f: Vec<&str> = rule.split_whitespace().collect();
        let [t, node, access] = f[..] else { continue };
        let Some((maj, min)) = node.split_once(':') else {
            continue;
        };
        let kind = match t {
            "c" => "char",
            "b" => "block",
            // "a": every device is allowed: nothing for systemd to restrict.
            _ => return vec![],
        };
        let dev = match (maj, min) {
            ("*", _) => format!("{kind}-*"),
            (m, "*") => match major_name(proc_devices, kind, m) {
                Some(name) => format!("{kind}-{name}"),
                None => format!("{kind}-*"),
            },
            (m, n) => format!("/dev/{kind}/{m}:{n}"),
        };
        allow.push((dev, access.to_string()));
    }
    vec![
        ("DevicePolicy", Prop::Str("strict".into())),
        ("DeviceAllow", Prop::Pairs(allow)),
    ]
}

/// The driver name /proc/devices gives major `major` of `kind` ("char"/"block").
fn major_name(proc_devices: &str, kind: &str, major: &str) -> Option<String> {
    let header = if kind == "char" {
        "Character devices:"
    } else {
        "Block devices:"
    };
    let mut in_section = false;
    for l in proc_devices.lines() {
        if l.ends_with("devices:") {
            in_section = l == header;
            continue;
        }
        let mut it = l.split_whitespace();
        if in_section && it.next() == Some(major) {
            return it.next().map(str::to_string);
        }
    }
    None
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
    fn devices_as_device_allow() {
        let pd = "Character devices:\n  1 mem\n136 pts\n\nBlock devices:\n  8 sd\n";
        let rules = [
            (true, "c *:* m".to_string()),
            (true, "c 1:3 rwm".to_string()),
            (true, "c 136:* rwm".to_string()),
            (true, "b 8:* r".to_string()),
            (false, "c 1:5 rwm".to_string()),
            (true, "c 99:* rwm".to_string()),
        ];
        let p = devices(&rules, pd);
        assert_eq!(p[0], ("DevicePolicy", Prop::Str("strict".into())));
        let want: Vec<(String, String)> = [
            ("char-*", "m"),
            ("/dev/char/1:3", "rwm"),
            ("char-pts", "rwm"),
            ("block-sd", "r"),
            ("char-*", "rwm"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(p[1], ("DeviceAllow", Prop::Pairs(want)));
        assert!(devices(&[(true, "a *:* rwm".into())], pd).is_empty());
    }

    #[test]
    fn quota_rounds_up_to_whole_percent() {
        assert_eq!(quota_per_sec(Some(12345), Some(100_000)), 130_000);
        assert_eq!(quota_per_sec(Some(200_000), None), 2_000_000);
        assert_eq!(bitmask("9"), Some(vec![0, 0b10]));
        assert_eq!(bitmask("3-1"), None);
    }
}
