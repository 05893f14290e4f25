//! config-linux.md#devices, #default-devices, #dev-symbolic-links and the device cgroup
//! (config-linux.md#allowed-device-list).

use super::{device, ensure, expect_eq, probe_args, push};
use crate::case::{Case, Outcome};
use serde_json::json;

const DEV: &str = "config-linux.md#devices";
const DEF: &str = "config-linux.md#default-devices";
const LNK: &str = "config-linux.md#dev-symbolic-links";
const ALLOW: &str = "config-linux.md#allowed-device-list";

fn dev_ok(o: &Outcome, path: &str, kind: &str, major: u64, minor: u64) -> Result<(), String> {
    let d = device(o.probe()?, path).ok_or(format!("{path} missing"))?;
    expect_eq(&format!("{path} type"), d["type"].as_str(), Some(kind))?;
    expect_eq(
        &format!("{path} major:minor"),
        (d["major"].as_u64(), d["minor"].as_u64()),
        (Some(major), Some(minor)),
    )
}

fn default_dev(name: &'static str, major: u64, minor: u64) -> Case {
    Case::probe(
        format!("devices.default.{name}"),
        DEF,
        |_, _| Ok(()),
        move |o| {
            let path = format!("/dev/{name}");
            dev_ok(o, &path, "c", major, minor)?;
            let d = device(o.probe()?, &path).ok_or("missing")?;
            expect_eq(&format!("{path} mode"), d["mode"].as_u64(), Some(0o666))
        },
    )
}

fn link_case(name: &'static str, target: &'static str) -> Case {
    Case::probe(
        format!("devices.symlink.{name}"),
        LNK,
        |_, _| Ok(()),
        move |o| {
            let path = format!("/dev/{name}");
            let d = device(o.probe()?, &path).ok_or(format!("{path} missing"))?;
            expect_eq(&format!("{path} type"), d["type"].as_str(), Some("l"))?;
            expect_eq(&format!("{path} target"), d["link"].as_str(), Some(target))
        },
    )
}

fn custom(name: &str, entry: serde_json::Value, check: fn(&Outcome) -> Result<(), String>) -> Case {
    Case::probe(
        format!("devices.custom.{name}"),
        DEV,
        move |c, _| {
            push(c, "/linux/devices", entry.clone());
            Ok(())
        },
        check,
    )
}

fn custom_cases() -> Vec<Case> {
    vec![
        custom(
            "char",
            json!({"path": "/dev/berth-null", "type": "c", "major": 1, "minor": 3}),
            |o| dev_ok(o, "/dev/berth-null", "c", 1, 3),
        ),
        custom(
            "block",
            json!({"path": "/dev/berth-loop", "type": "b", "major": 7, "minor": 0}),
            |o| dev_ok(o, "/dev/berth-loop", "b", 7, 0),
        ),
        custom(
            "fifo",
            json!({"path": "/dev/berth-fifo", "type": "p"}),
            |o| {
                let d = device(o.probe()?, "/dev/berth-fifo").ok_or("/dev/berth-fifo missing")?;
                expect_eq("type", d["type"].as_str(), Some("p"))
            },
        ),
        custom(
            "unbuffered-char",
            json!({"path": "/dev/berth-u", "type": "u", "major": 1, "minor": 5}),
            |o| dev_ok(o, "/dev/berth-u", "c", 1, 5),
        ),
        custom(
            "fileMode",
            json!({"path": "/dev/berth-mode", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640}),
            |o| {
                let d = device(o.probe()?, "/dev/berth-mode").ok_or("/dev/berth-mode missing")?;
                expect_eq("mode", d["mode"].as_u64(), Some(0o640))
            },
        ),
        custom(
            "uid-gid",
            json!({"path": "/dev/berth-own", "type": "c", "major": 1, "minor": 3, "uid": 1234, "gid": 4321}),
            |o| {
                let d = device(o.probe()?, "/dev/berth-own").ok_or("/dev/berth-own missing")?;
                expect_eq(
                    "uid:gid",
                    (d["uid"].as_u64(), d["gid"].as_u64()),
                    (Some(1234), Some(4321)),
                )
            },
        ),
        custom(
            "nested-path",
            json!({"path": "/dev/berth/sub/null", "type": "c", "major": 1, "minor": 3}),
            |o| {
                let list = o.get("/devices")?.as_array().cloned().unwrap_or_default();
                ensure(
                    list.iter().any(|d| d["path"] == "/dev/berth/sub"),
                    "parent directories of /dev/berth/sub/null were not created",
                )
            },
        ),
    ]
}

/// /dev/fuse (10:229) is not in runc's or crun's default allow list (tun 10:200 is).
fn cgroup_cases() -> Vec<Case> {
    let tun = json!({"path": "/dev/berth-fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666});
    let tun2 = tun.clone();
    vec![
        Case::probe(
            "devices.cgroup.deny",
            ALLOW,
            move |c, _| {
                push(c, "/linux/devices", tun.clone());
                probe_args(c, &["--path", "/dev/berth-fuse"]);
                Ok(())
            },
            |o| {
                let p = o.get("/paths/~1dev~1berth-fuse")?;
                ensure(p["exists"] == true, "/dev/berth-fuse missing")?;
                ensure(
                    p["read_ok"] == false,
                    "opening a device outside the allow list succeeded (deny-all rule not applied)",
                )
            },
        ),
        Case::probe(
            "devices.cgroup.allow",
            ALLOW,
            move |c, _| {
                push(c, "/linux/devices", tun2.clone());
                push(
                    c,
                    "/linux/resources/devices",
                    json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}),
                );
                probe_args(c, &["--path", "/dev/berth-fuse"]);
                Ok(())
            },
            |o| {
                ensure(
                    o.get("/paths/~1dev~1berth-fuse/read_ok")? == true,
                    "opening an allowed device failed",
                )?;
                // cgroup v2 has no devices.list (the rules are an eBPF program): there the
                // open above is the check.
                if !o.host.cgroup_v1.contains_key("devices") {
                    return Ok(());
                }
                let list = o.host_file("devices/devices.list")?;
                ensure(
                    list.lines().any(|l| l.starts_with("c 10:229 rw")),
                    format!("devices.list lacks c 10:229 rw: {list:?}"),
                )
            },
        )
        .host_file("devices", "devices.list"),
        Case::probe(
            "devices.cgroup.default-allows-null",
            ALLOW,
            |c, _| {
                probe_args(c, &["--path", "/dev/null"]);
                Ok(())
            },
            |o| {
                ensure(
                    o.get("/paths/~1dev~1null/write_errno")?.as_i64() == Some(0),
                    "cannot open /dev/null for writing",
                )
            },
        ),
    ]
}

pub fn cases() -> Vec<Case> {
    let mut v = vec![
        default_dev("null", 1, 3),
        default_dev("zero", 1, 5),
        default_dev("full", 1, 7),
        default_dev("random", 1, 8),
        default_dev("urandom", 1, 9),
        default_dev("tty", 5, 0),
        Case::probe(
            "devices.default.ptmx",
            DEF,
            |_, _| Ok(()),
            |o| {
                let d = device(o.probe()?, "/dev/ptmx").ok_or("/dev/ptmx missing")?;
                let ok = d["link"] == "pts/ptmx"
                    || d["link"] == "/dev/pts/ptmx"
                    || (d["type"] == "c" && d["major"] == 5 && d["minor"] == 2);
                ensure(
                    ok,
                    format!("/dev/ptmx is neither a symlink to pts/ptmx nor a bind of it: {d}"),
                )
            },
        ),
        link_case("fd", "/proc/self/fd"),
        link_case("stdin", "/proc/self/fd/0"),
        link_case("stdout", "/proc/self/fd/1"),
        link_case("stderr", "/proc/self/fd/2"),
    ];
    v.extend(custom_cases());
    v.extend(cgroup_cases());
    v
}
