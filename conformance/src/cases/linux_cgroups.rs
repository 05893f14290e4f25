//! config-linux.md#control-groups: cgroupsPath and every resource, read back from the
//! container's cgroup on the host right after create.

use super::{ensure, expect_eq, set};
use crate::case::{Case, Outcome};
use crate::host::{Host, UNIFIED};
use serde_json::{json, Value};
use std::path::Path;

const CG: &str = "config-linux.md#control-groups";
const MEM: &str = "config-linux.md#memory";
const CPU: &str = "config-linux.md#cpu";
const BIO: &str = "config-linux.md#block-io";
const PIDS: &str = "config-linux.md#pids";
const HUGE: &str = "config-linux.md#huge-page-limits";
const NET: &str = "config-linux.md#network";
const RDMA: &str = "config-linux.md#rdma";
const UNI: &str = "config-linux.md#unified";

/// A resource case: set `pointer` to `value`, then expect `ctrl/file` to read `want`.
fn res(
    name: &str,
    section: &'static str,
    pointer: &'static str,
    value: Value,
    ctrl: &'static str,
    file: &'static str,
    want: &'static str,
) -> Case {
    let key = format!("{ctrl}/{file}");
    Case::probe(
        name,
        section,
        move |c, _| {
            set(c, &format!("/linux/resources/{pointer}"), value.clone());
            Ok(())
        },
        move |o| {
            let got = o.host_file(&key)?;
            ensure(
                got.lines().any(|l| l.trim() == want),
                format!("{key}: got {got:?}, want {want:?}"),
            )
        },
    )
    .host_file(ctrl, file)
    .requires(move |h| h.need_v1(ctrl, file))
}

fn membership_case() -> Vec<Case> {
    vec![
        Case::probe(
            "cgroups.path.memory",
            CG,
            |_, _| Ok(()),
            |o| {
                let want = o.config["linux"]["cgroupsPath"].as_str().unwrap_or("");
                // The memory hierarchy on v1 (and hybrid) hosts, the cgroup2 tree on v2-only.
                let key = if o.host.cgroup_v1.contains_key("memory") {
                    "path/memory"
                } else {
                    "path/unified"
                };
                expect_eq("container cgroup (host view)", o.host_file(key)?, want)
            },
        ),
        Case::probe(
            "cgroups.path.all-controllers",
            CG,
            |_, _| Ok(()),
            |o| {
                let want = o.config["linux"]["cgroupsPath"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let cg = o.get("/cgroup")?.as_str().unwrap_or("").to_string();
                let mut bad = Vec::new();
                for ctrl in [
                    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
                ] {
                    if !o.host.cgroup_v1.contains_key(ctrl) {
                        continue;
                    }
                    let line = cg.lines().find(|l| {
                        l.split(':')
                            .nth(1)
                            .is_some_and(|c| c.split(',').any(|x| x == ctrl))
                    });
                    if line.and_then(|l| l.splitn(3, ':').nth(2)) != Some(want.as_str()) {
                        bad.push(format!("{ctrl}: {line:?}"));
                    }
                }
                ensure(bad.is_empty(), format!("not in {want}: {bad:?}"))
            },
        ),
    ]
}

fn memory_cases() -> Vec<Case> {
    vec![
        res(
            "cgroups.memory.limit",
            MEM,
            "memory/limit",
            json!(67108864),
            "memory",
            "memory.limit_in_bytes",
            "67108864",
        ),
        res(
            "cgroups.memory.reservation",
            MEM,
            "memory/reservation",
            json!(33554432),
            "memory",
            "memory.soft_limit_in_bytes",
            "33554432",
        ),
        Case::probe(
            "cgroups.memory.swap",
            MEM,
            |c, _| {
                set(
                    c,
                    "/linux/resources/memory",
                    json!({"limit": 67108864, "swap": 134217728}),
                );
                Ok(())
            },
            |o| {
                expect_eq(
                    "memory.memsw.limit_in_bytes",
                    o.host_file("memory/memory.memsw.limit_in_bytes")?,
                    "134217728",
                )
            },
        )
        .host_file("memory", "memory.memsw.limit_in_bytes")
        .requires(|h| h.need_v1("memory", "memory.memsw.limit_in_bytes")),
        res(
            "cgroups.memory.kernelTCP",
            MEM,
            "memory/kernelTCP",
            json!(16777216),
            "memory",
            "memory.kmem.tcp.limit_in_bytes",
            "16777216",
        ),
        res(
            "cgroups.memory.swappiness",
            MEM,
            "memory/swappiness",
            json!(20),
            "memory",
            "memory.swappiness",
            "20",
        ),
        res(
            "cgroups.memory.disableOOMKiller",
            MEM,
            "memory/disableOOMKiller",
            json!(true),
            "memory",
            "memory.oom_control",
            "oom_kill_disable 1",
        ),
        res(
            "cgroups.memory.useHierarchy",
            MEM,
            "memory/useHierarchy",
            json!(true),
            "memory",
            "memory.use_hierarchy",
            "1",
        ),
        kernel_memory_case(),
    ]
}

fn cpu_cases() -> Vec<Case> {
    let mut v = cpu_share_and_quota_cases();
    v.extend(cpu_burst_rt_and_cpuset_cases());
    v
}

fn cpu_share_and_quota_cases() -> Vec<Case> {
    vec![
        res(
            "cgroups.cpu.shares",
            CPU,
            "cpu/shares",
            json!(512),
            "cpu",
            "cpu.shares",
            "512",
        ),
        Case::probe(
            "cgroups.cpu.quota",
            CPU,
            |c, _| {
                set(
                    c,
                    "/linux/resources/cpu",
                    json!({"quota": 50000, "period": 100000}),
                );
                Ok(())
            },
            |o| {
                expect_eq(
                    "cpu.cfs_quota_us",
                    o.host_file("cpu/cpu.cfs_quota_us")?,
                    "50000",
                )
            },
        )
        .host_file("cpu", "cpu.cfs_quota_us")
        .requires(|h| h.need_v1("cpu", "cpu.cfs_quota_us")),
        Case::probe(
            "cgroups.cpu.period",
            CPU,
            |c, _| {
                set(
                    c,
                    "/linux/resources/cpu",
                    json!({"quota": 50000, "period": 200000}),
                );
                Ok(())
            },
            |o| {
                expect_eq(
                    "cpu.cfs_period_us",
                    o.host_file("cpu/cpu.cfs_period_us")?,
                    "200000",
                )
            },
        )
        .host_file("cpu", "cpu.cfs_period_us")
        .requires(|h| h.need_v1("cpu", "cpu.cfs_period_us")),
    ]
}

fn cpu_burst_rt_and_cpuset_cases() -> Vec<Case> {
    vec![
        Case::probe(
            "cgroups.cpu.burst",
            CPU,
            |c, _| {
                set(
                    c,
                    "/linux/resources/cpu",
                    json!({"quota": 50000, "period": 100000, "burst": 20000}),
                );
                Ok(())
            },
            |o| {
                expect_eq(
                    "cpu.cfs_burst_us",
                    o.host_file("cpu/cpu.cfs_burst_us")?,
                    "20000",
                )
            },
        )
        .host_file("cpu", "cpu.cfs_burst_us")
        .requires(|h| h.need_v1("cpu", "cpu.cfs_burst_us")),
        res(
            "cgroups.cpu.realtimePeriod",
            CPU,
            "cpu/realtimePeriod",
            json!(500000),
            "cpu",
            "cpu.rt_period_us",
            "500000",
        ),
        res(
            "cgroups.cpu.realtimeRuntime",
            CPU,
            "cpu/realtimeRuntime",
            json!(0),
            "cpu",
            "cpu.rt_runtime_us",
            "0",
        ),
        res(
            "cgroups.cpu.cpus",
            CPU,
            "cpu/cpus",
            json!("0"),
            "cpuset",
            "cpuset.cpus",
            "0",
        ),
        res(
            "cgroups.cpu.mems",
            CPU,
            "cpu/mems",
            json!("0"),
            "cpuset",
            "cpuset.mems",
            "0",
        ),
        res(
            "cgroups.cpu.idle",
            CPU,
            "cpu/idle",
            json!(1),
            "cpu",
            "cpu.idle",
            "1",
        ),
        res(
            "cgroups.pids.limit",
            PIDS,
            "pids/limit",
            json!(77),
            "pids",
            "pids.max",
            "77",
        ),
    ]
}

/// "major:minor" of a real block device on this host.
/// `block_dev()` as (major, minor) numbers for the config (loop0's 7:0 if unparsable).
fn block_dev_numbers() -> (u64, u64) {
    let dev = block_dev();
    let (ma, mi) = dev.split_once(':').unwrap_or(("7", "0"));
    (ma.parse().unwrap_or(7), mi.parse().unwrap_or(0))
}

fn block_dev() -> String {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort_by_key(|n| (n.starts_with("loop") || n.starts_with("zram"), n.clone()));
    names
        .first()
        .and_then(|n| std::fs::read_to_string(format!("/sys/block/{n}/dev")).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "7:0".into())
}

fn throttle(name: &str, key: &'static str, file: &'static str, rate: u64) -> Case {
    let fkey = format!("blkio/{file}");
    Case::probe(
        name,
        BIO,
        move |c, _| {
            let (ma, mi) = block_dev_numbers();
            set(
                c,
                &format!("/linux/resources/blockIO/{key}"),
                json!([{"major": ma, "minor": mi, "rate": rate}]),
            );
            Ok(())
        },
        move |o: &Outcome| {
            let want = format!("{} {rate}", block_dev());
            let got = o.host_file(&fkey)?;
            ensure(
                got.lines().any(|l| l.trim() == want),
                format!("{fkey}: got {got:?}, want {want:?}"),
            )
        },
    )
    .host_file("blkio", file)
    .requires(move |h| h.need_v1("blkio", file))
}

fn blkio_cases() -> Vec<Case> {
    vec![
        res(
            "cgroups.blockIO.weight",
            BIO,
            "blockIO/weight",
            json!(300),
            "blkio",
            "blkio.weight",
            "300",
        ),
        res(
            "cgroups.blockIO.leafWeight",
            BIO,
            "blockIO/leafWeight",
            json!(300),
            "blkio",
            "blkio.leaf_weight",
            "300",
        ),
        weight_device_case(),
        throttle(
            "cgroups.blockIO.throttleReadBpsDevice",
            "throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            1048576,
        ),
        throttle(
            "cgroups.blockIO.throttleWriteBpsDevice",
            "throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            2097152,
        ),
        throttle(
            "cgroups.blockIO.throttleReadIOPSDevice",
            "throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            300,
        ),
        throttle(
            "cgroups.blockIO.throttleWriteIOPSDevice",
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            400,
        ),
    ]
}

/// weightDevice lands in blkio.weight_device (CFQ) or blkio.bfq.weight_device (BFQ), which
/// exist only while such a scheduler is active on some device.
fn weight_device_case() -> Case {
    fn file() -> &'static str {
        let bfq = Path::new("/sys/fs/cgroup/blkio/blkio.bfq.weight_device").exists();
        if bfq {
            "blkio.bfq.weight_device"
        } else {
            "blkio.weight_device"
        }
    }
    Case::probe(
        "cgroups.blockIO.weightDevice",
        BIO,
        |c, _| {
            let (ma, mi) = block_dev_numbers();
            set(
                c,
                "/linux/resources/blockIO/weightDevice",
                json!([{"major": ma, "minor": mi, "weight": 300}]),
            );
            Ok(())
        },
        |o| {
            let key = format!("blkio/{}", file());
            let want = format!("{} 300", block_dev());
            let got = o.host_file(&key)?;
            ensure(
                got.lines().any(|l| l.trim() == want),
                format!("{key}: got {got:?}, want {want:?}"),
            )
        },
    )
    .host_file("blkio", file())
    .requires(|h| h.need_v1("blkio", file()))
}

/// memory.kernel (deprecated): runtimes may ignore it, but it must never break create, and
/// where the kernel still has kmem limits the value must land.
fn kernel_memory_case() -> Case {
    Case::probe(
        "cgroups.memory.kernel",
        MEM,
        |c, _| {
            set(c, "/linux/resources/memory/kernel", json!(67108864));
            Ok(())
        },
        |o| {
            o.probe()?;
            match o.host_file("memory/memory.kmem.limit_in_bytes") {
                // Linux >= 5.16 keeps the file but ignores writes (it reads back unlimited).
                Ok(v)
                    if v.trim() == "67108864"
                        || v.trim().parse::<u64>().is_ok_and(|n| n >= 1 << 60) =>
                {
                    Ok(())
                }
                Ok(v) => Err(format!(
                    "memory.kmem.limit_in_bytes: got {v:?}, want 67108864 or unlimited"
                )),
                Err(_) => Ok(()),
            }
        },
    )
    .host_file("memory", "memory.kmem.limit_in_bytes")
    .requires(|h| {
        (!h.cgroup_v1.contains_key("memory") && h.cgroup_v2.is_none())
            .then(|| "no memory controller on this host".to_string())
    })
}

/// linux.resources.unified on a pure v2 host: the key lands verbatim in the container's cgroup.
fn unified_case() -> Case {
    Case::probe(
        "cgroups.unified",
        UNI,
        |c, _| {
            set(c, "/linux/resources/unified", json!({"pids.max": "42"}));
            Ok(())
        },
        |o| expect_eq("pids.max", o.host_file("unified/pids.max")?, "42"),
    )
    .host_file(UNIFIED, "pids.max")
    .requires(|h: &Host| h.need_v2())
}

fn unavailable_cases() -> Vec<Case> {
    vec![
        res(
            "cgroups.hugepageLimits",
            HUGE,
            "hugepageLimits",
            json!([{"pageSize": "2MB", "limit": 4194304}]),
            "hugetlb",
            "hugetlb.2MB.limit_in_bytes",
            "4194304",
        ),
        res(
            "cgroups.network.classID",
            NET,
            "network/classID",
            json!(1048577),
            "net_cls",
            "net_cls.classid",
            "1048577",
        ),
        Case::probe(
            "cgroups.network.priorities",
            NET,
            |c, _| {
                set(
                    c,
                    "/linux/resources/network/priorities",
                    json!([{"name": "lo", "priority": 5}]),
                );
                Ok(())
            },
            |o| {
                let got = o.host_file("net_prio/net_prio.ifpriomap")?;
                ensure(
                    got.lines().any(|l| l.trim() == "lo 5"),
                    format!("ifpriomap: {got:?}"),
                )
            },
        )
        .host_file("net_prio", "net_prio.ifpriomap")
        .requires(|h| h.need_v1("net_prio", "net_prio.ifpriomap")),
        res(
            "cgroups.rdma",
            RDMA,
            "rdma",
            json!({"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}}),
            "rdma",
            "rdma.max",
            "mlx5_1 hca_handle=3 hca_object=10000",
        ),
        unified_case(),
    ]
}

pub fn cases() -> Vec<Case> {
    let mut v = membership_case();
    v.extend(memory_cases());
    v.extend(cpu_cases());
    v.extend(blkio_cases());
    v.extend(unavailable_cases());
    v
}
