//! config-linux.md#namespaces and #user-namespace-mappings: each namespace new, inherited,
//! and joined by path; errors for bad entries; uid/gid mappings; time offsets.

use super::{add_ns, ensure, expect_eq, remove_ns, set, unset};
use crate::case::{Case, Outcome, Setup};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;

const NS: &str = "config-linux.md#namespaces";
const MAP: &str = "config-linux.md#user-namespace-mappings";

/// (config type, /proc/<pid>/ns name, unshare(1) flag)
const TYPES: &[(&str, &str, &str)] = &[
    ("pid", "pid", "--pid"),
    ("network", "net", "--net"),
    ("mount", "mnt", "--mount"),
    ("ipc", "ipc", "--ipc"),
    ("uts", "uts", "--uts"),
    ("user", "user", "--user"),
    ("cgroup", "cgroup", "--cgroup"),
    ("time", "time", "--time"),
];

fn proc_name(kind: &str) -> &'static str {
    TYPES
        .iter()
        .find(|t| t.0 == kind)
        .map(|t| t.1)
        .unwrap_or("?")
}

fn time_ns_supported() -> Option<String> {
    (!std::path::Path::new("/proc/self/ns/time").exists())
        .then(|| "kernel has no time namespaces".into())
}

/// Give a new user namespace a mapping (container root = host 100000).
fn user_maps(c: &mut Value) {
    set(
        c,
        "/linux/uidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    set(
        c,
        "/linux/gidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
}

fn container_ns<'a>(o: &'a Outcome, kind: &str) -> Result<&'a str, String> {
    o.get(&format!("/namespaces/{}", proc_name(kind)))?
        .as_str()
        .ok_or(format!("no {kind} namespace link"))
}

fn new_case(kind: &'static str) -> Case {
    let c = Case::probe(
        format!("ns.{kind}.new"),
        NS,
        move |c, _| {
            add_ns(c, kind, None);
            if kind == "user" {
                user_maps(c);
            }
            Ok(())
        },
        move |o| {
            let host = o
                .host
                .ns
                .get(proc_name(kind))
                .map(String::as_str)
                .unwrap_or("");
            let got = container_ns(o, kind)?;
            ensure(
                got != host,
                format!("{kind}: container shares the runtime's namespace {got}"),
            )
        },
    );
    if kind == "time" {
        c.requires(|_| time_ns_supported())
    } else {
        c
    }
}

fn inherit_case(kind: &'static str) -> Case {
    let c = Case::probe(
        format!("ns.{kind}.inherit"),
        NS,
        move |c, _| {
            remove_ns(c, kind);
            if kind == "uts" {
                unset(c, "/hostname");
            }
            Ok(())
        },
        move |o| {
            let host = o.host.ns.get(proc_name(kind)).map(String::as_str);
            expect_eq(
                &format!("{kind} namespace"),
                Some(container_ns(o, kind)?),
                host,
            )
        },
    );
    if kind == "time" {
        c.requires(|_| time_ns_supported())
    } else {
        c
    }
}

/// Start `unshare FLAG [--fork] sleep 600` and return the ns path of the process in it.
fn holder(st: &mut Setup, kind: &str) -> Result<String, String> {
    let (_, name, flag) = TYPES.iter().find(|t| t.0 == kind).ok_or("unknown ns")?;
    let mut cmd = Command::new("unshare");
    cmd.arg(flag);
    let forks = matches!(kind, "pid" | "time");
    if forks {
        // --kill-child: the forked sleeper dies with unshare when the harness kills it.
        cmd.args(["--fork", "--kill-child"]);
    }
    cmd.args(["sleep", "600"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd.spawn().map_err(|e| format!("unshare: {e}"))?;
    let pid = child.id();
    st.holders.push(child);
    let mut target = pid.to_string();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(10));
        if !forks {
            let now = std::fs::read_link(format!("/proc/{pid}/ns/{name}")).ok();
            let host = st.host.ns.get(*name).cloned();
            if now.map(|p| p.display().to_string()) != host {
                break;
            }
            continue;
        }
        let kids =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(k) = kids.split_whitespace().next() {
            target = k.to_string();
            break;
        }
    }
    if kind == "user" {
        // Map like the new-namespace cases do; root in the parent namespace may write any map.
        for f in ["uid_map", "gid_map"] {
            let p = format!("/proc/{pid}/{f}");
            std::fs::write(&p, "0 100000 65536\n").map_err(|e| format!("{p}: {e}"))?;
        }
    }
    let path = format!("/proc/{target}/ns/{name}");
    let link = std::fs::read_link(&path).map_err(|e| format!("{path}: {e}"))?;
    st.notes.insert("expect".into(), link.display().to_string());
    Ok(path)
}

fn path_case(kind: &'static str) -> Case {
    let c = Case::probe(
        format!("ns.{kind}.path"),
        NS,
        move |c, st| {
            let path = holder(st, kind)?;
            add_ns(c, kind, Some(&path));
            if kind == "user" {
                // Describe the joined namespace's own mapping (unshare --map-root-user: 0 0 1).
                set(
                    c,
                    "/linux/uidMappings",
                    json!([{"containerID": 0, "hostID": 0, "size": 1}]),
                );
                set(
                    c,
                    "/linux/gidMappings",
                    json!([{"containerID": 0, "hostID": 0, "size": 1}]),
                );
            }
            Ok(())
        },
        move |o| {
            expect_eq(
                &format!("{kind} namespace"),
                container_ns(o, kind)?,
                o.note("expect"),
            )
        },
    );
    if kind == "time" {
        c.requires(|_| time_ns_supported())
    } else {
        c
    }
}

fn error_cases() -> Vec<Case> {
    vec![
        Case::probe(
            "ns.duplicate-type.error",
            NS,
            |c, _| {
                super::push(c, "/linux/namespaces", json!({"type": "network"}));
                Ok(())
            },
            |o| {
                ensure(
                    o.create_refused(),
                    "a namespace type listed twice was accepted",
                )
            },
        ),
        Case::probe(
            "ns.path.wrong-type.error",
            NS,
            |c, st| {
                let ipc = holder(st, "ipc")?;
                add_ns(c, "network", Some(&ipc));
                Ok(())
            },
            |o| {
                ensure(
                    o.create_refused(),
                    "an ipc namespace path was accepted for type network",
                )
            },
        ),
        Case::probe(
            "ns.path.missing.error",
            NS,
            |c, _| {
                add_ns(c, "network", Some("/proc/self/ns/berth-no-such-ns"));
                Ok(())
            },
            |o| {
                ensure(
                    o.create_refused(),
                    "a nonexistent namespace path was accepted",
                )
            },
        ),
        Case::probe(
            "ns.pid.new.is-pid-1",
            NS,
            |_, _| Ok(()),
            |o| expect_eq("pid in new pid namespace", o.get("/pid")?.as_i64(), Some(1)),
        ),
        Case::probe(
            "ns.cgroup.new.root-view",
            NS,
            |c, _| {
                add_ns(c, "cgroup", None);
                Ok(())
            },
            |o| {
                let cg = o.get("/cgroup")?.as_str().unwrap_or("").to_string();
                let bad: Vec<&str> = cg.lines().filter(|l| !l.ends_with(":/")).collect();
                ensure(
                    bad.is_empty(),
                    format!("cgroup namespace root is not the container's cgroup: {bad:?}"),
                )
            },
        ),
    ]
}

fn userns(c: &mut Value, _: &mut Setup) -> Result<(), String> {
    add_ns(c, "user", None);
    user_maps(c);
    Ok(())
}

fn map_cases() -> Vec<Case> {
    vec![
        Case::probe("userns.uid-map", MAP, userns, |o| {
            let m = o.get("/uid_map")?.as_str().unwrap_or("");
            let f: Vec<&str> = m.split_whitespace().collect();
            expect_eq("uid_map", f, vec!["0", "100000", "65536"])
        }),
        Case::probe("userns.gid-map", MAP, userns, |o| {
            let m = o.get("/gid_map")?.as_str().unwrap_or("");
            let f: Vec<&str> = m.split_whitespace().collect();
            expect_eq("gid_map", f, vec!["0", "100000", "65536"])
        }),
        Case::probe("userns.root-inside", MAP, userns, |o| {
            expect_eq("uid inside", o.get("/uid")?.as_u64(), Some(0))?;
            expect_eq("gid inside", o.get("/gid")?.as_u64(), Some(0))
        }),
        Case::probe("userns.multiple-ranges", MAP, |c, _| {
            add_ns(c, "user", None);
            set(c, "/linux/uidMappings", json!([{"containerID": 0, "hostID": 200000, "size": 1000}, {"containerID": 1000, "hostID": 300000, "size": 1000}]));
            set(c, "/linux/gidMappings", json!([{"containerID": 0, "hostID": 200000, "size": 2000}]));
            Ok(())
        }, |o| {
            let m = o.get("/uid_map")?.as_str().unwrap_or("");
            let rows: Vec<Vec<&str>> = m.lines().map(|l| l.split_whitespace().collect()).collect();
            expect_eq("uid_map", rows, vec![vec!["0", "200000", "1000"], vec!["1000", "300000", "1000"]])
        }),
        Case::probe("userns.nonroot-user", MAP, |c, st| {
            userns(c, st)?;
            set(c, "/process/user", json!({"uid": 1000, "gid": 1000}));
            Ok(())
        }, |o| expect_eq("uid inside", o.get("/uid")?.as_u64(), Some(1000))),
        Case::probe("ns.time.offsets", "config-linux.md#offset-for-time-namespace", |c, _| {
            add_ns(c, "time", None);
            set(c, "/linux/timeOffsets", json!({"monotonic": {"secs": 86400, "nanosecs": 0}, "boottime": {"secs": 7200, "nanosecs": 0}}));
            Ok(())
        }, |o| {
            let t = o.get("/timens_offsets")?.as_str().unwrap_or("").to_string();
            ensure(t.contains("86400") && t.contains("7200"), format!("timens_offsets: {t:?}"))
        }).requires(|_| time_ns_supported()),
    ]
}

pub fn cases() -> Vec<Case> {
    let mut v: Vec<Case> = TYPES.iter().map(|t| new_case(t.0)).collect();
    for (kind, _, _) in TYPES.iter().filter(|t| t.0 != "mount") {
        v.push(inherit_case(kind));
    }
    v.extend(TYPES.iter().map(|t| path_case(t.0)));
    v.extend(error_cases());
    v.extend(map_cases());
    v
}
