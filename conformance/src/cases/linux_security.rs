//! config-linux.md: sysctl, seccomp, rootfsPropagation, maskedPaths, readonlyPaths,
//! personality, ioPriority (config.md), scheduler (config.md), mountLabel, intelRdt.

use super::{ensure, expect_eq, mount_at, probe_args, push, set};
use crate::case::{Case, Outcome, Setup};
use serde_json::{json, Value};

const SYS: &str = "config-linux.md#sysctl";
const SEC: &str = "config-linux.md#seccomp";
const PROP: &str = "config-linux.md#rootfs-mount-propagation";
const MASK: &str = "config-linux.md#masked-paths";
const RO: &str = "config-linux.md#readonly-paths";
const PERS: &str = "config-linux.md#personality";
const IOP: &str = "config.md#io-priority";
const SCHED: &str = "config.md#scheduler";
const EROFS: i64 = 30;

fn ptr(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1")
}

fn path_info<'a>(o: &'a Outcome, path: &str) -> Result<&'a Value, String> {
    o.get(&format!("/paths/{}", ptr(path)))
}

fn sysctl_case(key: &'static str, value: &'static str) -> Case {
    Case::probe(
        format!("sysctl.{key}"),
        SYS,
        move |c, _| {
            set(c, "/linux/sysctl", json!({ key: value }));
            Ok(())
        },
        move |o| {
            let got = o.get(&format!("/sysctls/{}", ptr(key)))?;
            expect_eq(key, got.as_str(), Some(value))
        },
    )
}

fn seccomp(c: &mut Value, rules: Value) {
    set(
        c,
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": rules}),
    );
}

fn mkdir_rule(action: &str, errno: Option<i64>) -> Value {
    let mut r = json!({"names": ["mkdir", "mkdirat"], "action": action});
    if let Some(e) = errno {
        r["errnoRet"] = json!(e);
    }
    json!([r])
}

fn mkdir_errno(o: &Outcome, want: i64) -> Result<(), String> {
    expect_eq(
        "mkdir errno under seccomp",
        o.get("/syscalls/mkdir")?.as_i64(),
        Some(want),
    )
}

fn sc_case(
    name: &str,
    setup: impl Fn(&mut Value, &mut Setup) + Send + Sync + 'static,
    check: fn(&Outcome) -> Result<(), String>,
) -> Case {
    Case::probe(
        name,
        SEC,
        move |c, st| {
            setup(c, st);
            probe_args(c, &["--syscall", "mkdir", "--syscall", "getcwd"]);
            Ok(())
        },
        check,
    )
}

fn killed(o: &Outcome) -> Result<(), String> {
    ensure(
        o.create.ok(),
        format!("create failed: {}", o.create.summary()),
    )?;
    ensure(
        o.probe.is_none(),
        "the filtered syscall did not kill the process",
    )?;
    ensure(
        o.stopped,
        "container not stopped after the process was killed",
    )
}

fn seccomp_cases() -> Vec<Case> {
    let mut v = seccomp_action_cases();
    v.extend(seccomp_privilege_and_arg_cases());
    v
}

fn seccomp_action_cases() -> Vec<Case> {
    vec![
        sc_case(
            "seccomp.mode-filter",
            |c, _| seccomp(c, mkdir_rule("SCMP_ACT_ERRNO", None)),
            |o| expect_eq("Seccomp mode", o.get("/seccomp")?.as_i64(), Some(2)),
        ),
        sc_case(
            "seccomp.errno.errnoRet",
            |c, _| seccomp(c, mkdir_rule("SCMP_ACT_ERRNO", Some(38))),
            |o| mkdir_errno(o, 38),
        ),
        sc_case(
            "seccomp.errno.default-eperm",
            |c, _| seccomp(c, mkdir_rule("SCMP_ACT_ERRNO", None)),
            |o| mkdir_errno(o, 1),
        ),
        sc_case(
            "seccomp.default-allow",
            |c, _| seccomp(c, mkdir_rule("SCMP_ACT_ERRNO", None)),
            |o| {
                expect_eq(
                    "getcwd under default allow",
                    o.get("/syscalls/getcwd")?.as_i64(),
                    Some(0),
                )
            },
        ),
        sc_case(
            "seccomp.kill",
            |c, _| seccomp(c, mkdir_rule("SCMP_ACT_KILL", None)),
            killed,
        ),
        sc_case(
            "seccomp.trap",
            |c, _| seccomp(c, mkdir_rule("SCMP_ACT_TRAP", None)),
            killed,
        ),
        sc_case(
            "seccomp.log",
            |c, _| seccomp(c, mkdir_rule("SCMP_ACT_LOG", None)),
            |o| mkdir_errno(o, 0),
        ),
        sc_case(
            "seccomp.architectures.multiple",
            |c, _| {
                seccomp(c, mkdir_rule("SCMP_ACT_ERRNO", Some(38)));
                set(
                    c,
                    "/linux/seccomp/architectures",
                    json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
                );
            },
            |o| mkdir_errno(o, 38),
        ),
        sc_case(
            "seccomp.flags.log",
            |c, _| {
                seccomp(c, mkdir_rule("SCMP_ACT_ERRNO", Some(38)));
                set(
                    c,
                    "/linux/seccomp/flags",
                    json!(["SECCOMP_FILTER_FLAG_LOG"]),
                );
            },
            |o| mkdir_errno(o, 38),
        ),
    ]
}

fn seccomp_privilege_and_arg_cases() -> Vec<Case> {
    vec![
        sc_case(
            "seccomp.without-nnp",
            |c, _| {
                seccomp(c, mkdir_rule("SCMP_ACT_ERRNO", Some(38)));
                set(c, "/process/noNewPrivileges", json!(false));
            },
            |o| {
                mkdir_errno(o, 38)?;
                expect_eq("NoNewPrivs", o.get("/nonewprivs")?.as_i64(), Some(0))
            },
        ),
        sc_case(
            "seccomp.nonroot-without-nnp",
            |c, _| {
                seccomp(c, mkdir_rule("SCMP_ACT_ERRNO", Some(38)));
                set(c, "/process/noNewPrivileges", json!(false));
                set(c, "/process/user", json!({"uid": 1000, "gid": 1000}));
            },
            |o| mkdir_errno(o, 38),
        ),
        Case::probe(
            "seccomp.args.condition",
            SEC,
            |c, _| {
                seccomp(
                    c,
                    json!([{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                "args": [{"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]}]),
                );
                probe_args(
                    c,
                    &[
                        "--syscall",
                        "personality-query",
                        "--syscall",
                        "personality-linux",
                    ],
                );
                Ok(())
            },
            |o| {
                expect_eq(
                    "personality(0xffffffff)",
                    o.get("/syscalls/personality-query")?.as_i64(),
                    Some(38),
                )?;
                expect_eq(
                    "personality(0)",
                    o.get("/syscalls/personality-linux")?.as_i64(),
                    Some(0),
                )
            },
        ),
        Case::probe(
            "seccomp.invalid-action.error",
            SEC,
            |c, _| {
                seccomp(c, mkdir_rule("SCMP_ACT_BERTH_BOGUS", None));
                Ok(())
            },
            |o| ensure(o.create_refused(), "an unknown seccomp action was accepted"),
        ),
    ]
}

fn propagation(mode: &'static str, check: fn(&str) -> Result<(), String>) -> Case {
    Case::probe(
        format!("rootfsPropagation.{mode}"),
        PROP,
        move |c, _| {
            set(c, "/linux/rootfsPropagation", json!(mode));
            Ok(())
        },
        move |o| {
            let m = mount_at(o.probe()?, "/").ok_or("no / mount")?;
            check(&m["propagation"].to_string())
        },
    )
}

fn propagation_cases() -> Vec<Case> {
    vec![
        propagation("shared", |p| {
            ensure(p.contains("shared:"), format!("/ is not shared: {p}"))
        }),
        propagation("private", |p| {
            ensure(
                !p.contains("shared:") && !p.contains("master:") && !p.contains("unbindable"),
                format!("/ is not private: {p}"),
            )
        }),
        // The host's / is private, so a slave root has no master: it must not be shared.
        propagation("slave", |p| {
            ensure(
                !p.contains("shared:"),
                format!("/ is shared, not slave: {p}"),
            )
        }),
        propagation("unbindable", |p| {
            ensure(
                p.contains("unbindable"),
                format!("/ is not unbindable: {p}"),
            )
        }),
    ]
}

fn masked(
    name: &str,
    path: &'static str,
    extra: bool,
    check: fn(&Value) -> Result<(), String>,
) -> Case {
    Case::probe(
        name,
        MASK,
        move |c, _| {
            if extra {
                push(c, "/linux/maskedPaths", json!(path));
            }
            Ok(())
        },
        move |o| check(path_info(o, path)?),
    )
}

fn masked_cases() -> Vec<Case> {
    let empty_file = |p: &Value| {
        ensure(
            p["read_ok"] == true && p["read_len"] == 0,
            format!("masked file still readable: {p}"),
        )
    };
    let empty_dir = |p: &Value| {
        ensure(
            p["entries"] == 0,
            format!("masked directory not empty: {p}"),
        )
    };
    vec![
        masked(
            "maskedPaths.proc-timer_list",
            "/proc/timer_list",
            false,
            empty_file,
        ),
        masked("maskedPaths.proc-acpi", "/proc/acpi", false, empty_dir),
        masked("maskedPaths.proc-keys", "/proc/keys", false, empty_file),
        masked(
            "maskedPaths.sys-firmware",
            "/sys/firmware",
            false,
            empty_dir,
        ),
        masked("maskedPaths.custom-file", "/etc/group", true, empty_file),
        masked("maskedPaths.custom-dir", "/etc", true, empty_dir),
        masked("maskedPaths.dir-readonly", "/etc", true, |p| {
            ensure(
                p["fs_readonly"] == true,
                format!("masked directory is writable: {p}"),
            )
        }),
        Case::probe(
            "maskedPaths.missing-ignored",
            MASK,
            |c, _| {
                push(c, "/linux/maskedPaths", json!("/berth/no/such/path"));
                Ok(())
            },
            |o| o.probe().map(|_| ()),
        ),
    ]
}

fn ro(
    name: &str,
    path: &'static str,
    extra: bool,
    check: fn(&Value) -> Result<(), String>,
) -> Case {
    Case::probe(
        name,
        RO,
        move |c, _| {
            if extra {
                set(c, "/root/readonly", json!(false));
                push(c, "/linux/readonlyPaths", json!(path));
            }
            Ok(())
        },
        move |o| check(path_info(o, path)?),
    )
}

fn readonly_cases() -> Vec<Case> {
    vec![
        ro("readonlyPaths.proc-sys", "/proc/sys", false, |p| {
            ensure(p["fs_readonly"] == true, format!("/proc/sys writable: {p}"))
        }),
        ro("readonlyPaths.proc-bus", "/proc/bus", false, |p| {
            ensure(p["fs_readonly"] == true, format!("/proc/bus writable: {p}"))
        }),
        ro("readonlyPaths.proc-irq", "/proc/irq", false, |p| {
            ensure(p["fs_readonly"] == true, format!("/proc/irq writable: {p}"))
        }),
        ro("readonlyPaths.custom-dir", "/mnt", true, |p| {
            ensure(p["fs_readonly"] == true, format!("/mnt writable: {p}"))
        }),
        ro("readonlyPaths.custom-file", "/etc/passwd", true, |p| {
            expect_eq(
                "open for write errno",
                p["write_errno"].as_i64(),
                Some(EROFS),
            )
        }),
        ro(
            "readonlyPaths.contents-readable",
            "/etc/passwd",
            true,
            |p| {
                ensure(
                    p["read_ok"] == true && p["read_len"].as_i64() > Some(0),
                    format!("read-only path not readable: {p}"),
                )
            },
        ),
        Case::probe(
            "readonlyPaths.missing-ignored",
            RO,
            |c, _| {
                push(c, "/linux/readonlyPaths", json!("/berth/no/such/path"));
                Ok(())
            },
            |o| o.probe().map(|_| ()),
        ),
    ]
}

fn personality_cases() -> Vec<Case> {
    vec![
        Case::probe(
            "personality.LINUX32",
            PERS,
            |c, _| {
                set(c, "/linux/personality", json!({"domain": "LINUX32"}));
                Ok(())
            },
            |o| {
                expect_eq(
                    "personality & 0xff",
                    o.get("/personality")?.as_i64().map(|p| p & 0xff),
                    Some(8),
                )?;
                expect_eq("uname -m", o.get("/machine")?.as_str(), Some("i686"))
            },
        ),
        Case::probe(
            "personality.LINUX",
            PERS,
            |c, _| {
                set(c, "/linux/personality", json!({"domain": "LINUX"}));
                Ok(())
            },
            |o| {
                expect_eq(
                    "personality & 0xff",
                    o.get("/personality")?.as_i64().map(|p| p & 0xff),
                    Some(0),
                )
            },
        ),
    ]
}

fn ioprio(name: &str, class: &'static str, prio: i64, want_class: i64) -> Case {
    Case::probe(
        name,
        IOP,
        move |c, _| {
            set(
                c,
                "/process/ioPriority",
                json!({"class": class, "priority": prio}),
            );
            Ok(())
        },
        move |o| {
            let v = o.get("/ioprio")?;
            expect_eq("ioprio class", v["class"].as_i64(), Some(want_class))?;
            if want_class != 3 {
                expect_eq("ioprio level", v["level"].as_i64(), Some(prio))?;
            }
            Ok(())
        },
    )
}

/// On a cgroup v1 host with RT group scheduling (CONFIG_RT_GROUP_SCHED) a new cpu cgroup has
/// no realtime budget, so SCHED_FIFO/SCHED_RR fail with EPERM in any runtime. As a user must,
/// give the cases' parent cgroup room and the container a linux.resources.cpu.realtimeRuntime.
fn rt_budget(c: &mut Value, s: &Setup) {
    let Some(cpu) = s.host.cgroup_v1.get("cpu") else {
        return;
    };
    if !cpu.join("cpu.rt_runtime_us").exists() {
        return;
    }
    let parent = cpu.join("berth-conformance");
    let _ = std::fs::create_dir_all(&parent);
    let _ = std::fs::write(parent.join("cpu.rt_runtime_us"), "100000");
    set(c, "/linux/resources/cpu/realtimeRuntime", json!(10000));
}

fn sched(name: &str, sched: Value, check: fn(&Value, i64) -> Result<(), String>) -> Case {
    Case::probe(
        name,
        SCHED,
        move |c, s| {
            let rt = matches!(sched["policy"].as_str(), Some("SCHED_FIFO" | "SCHED_RR"));
            set(c, "/process/scheduler", sched.clone());
            if rt {
                rt_budget(c, s);
            }
            Ok(())
        },
        move |o| check(o.get("/scheduler")?, o.get("/nice")?.as_i64().unwrap_or(99)),
    )
}

fn sched_cases() -> Vec<Case> {
    vec![
        sched(
            "scheduler.SCHED_BATCH",
            json!({"policy": "SCHED_BATCH"}),
            |s, _| expect_eq("policy", s["policy"].as_i64(), Some(3)),
        ),
        sched(
            "scheduler.SCHED_IDLE",
            json!({"policy": "SCHED_IDLE"}),
            |s, _| expect_eq("policy", s["policy"].as_i64(), Some(5)),
        ),
        sched(
            "scheduler.SCHED_FIFO.priority",
            json!({"policy": "SCHED_FIFO", "priority": 10}),
            |s, _| {
                expect_eq(
                    "policy/priority",
                    (s["policy"].as_i64(), s["priority"].as_i64()),
                    (Some(1), Some(10)),
                )
            },
        ),
        sched(
            "scheduler.SCHED_RR.priority",
            json!({"policy": "SCHED_RR", "priority": 5}),
            |s, _| {
                expect_eq(
                    "policy/priority",
                    (s["policy"].as_i64(), s["priority"].as_i64()),
                    (Some(2), Some(5)),
                )
            },
        ),
        sched(
            "scheduler.nice",
            json!({"policy": "SCHED_OTHER", "nice": 7}),
            |s, nice| {
                expect_eq("policy", s["policy"].as_i64(), Some(0))?;
                expect_eq("nice", nice, 7)
            },
        ),
        sched(
            "scheduler.flags.reset-on-fork",
            json!({"policy": "SCHED_BATCH", "flags": ["SCHED_FLAG_RESET_ON_FORK"]}),
            |s, _| expect_eq("reset_on_fork", s["reset_on_fork"].as_bool(), Some(true)),
        ),
    ]
}

fn lsm_cases() -> Vec<Case> {
    vec![
        Case::probe(
            "mountLabel",
            "config-linux.md#mount-label",
            |c, _| {
                set(
                    c,
                    "/linux/mountLabel",
                    json!("system_u:object_r:container_file_t:s0"),
                );
                Ok(())
            },
            // The label lands as the context= option of the mounts that take one (tmpfs /dev).
            |o| {
                let dev =
                    mount_at(o.probe()?, "/dev").ok_or("no /dev mount in the probe report")?;
                ensure(
                    dev.to_string().contains("container_file_t"),
                    format!("/dev mount carries no context= with the mountLabel: {dev}"),
                )
            },
        )
        .requires(|h| (!h.selinux).then(|| "SELinux is not enabled on this kernel".to_string())),
        intel_rdt_case(true),
        intel_rdt_case(false),
    ]
}

/// linux.intelRdt: with resctrl mounted, the container joins the closID group; without it,
/// the runtime cannot honour the field and create MUST fail rather than ignore it.
fn intel_rdt_case(have: bool) -> Case {
    const CLOS: &str = "berth-conformance";
    let name = if have {
        "intelRdt.closID"
    } else {
        "intelRdt.unsupported.refused"
    };
    Case::probe(
        name,
        "config-linux.md#intelrdt",
        |c, _| {
            set(c, "/linux/intelRdt", json!({"closID": CLOS}));
            Ok(())
        },
        move |o| {
            if !have {
                return ensure(
                    o.create_refused(),
                    "create with linux.intelRdt succeeded on a host without resctrl".to_string(),
                );
            }
            let pid = o
                .state_created
                .as_ref()
                .and_then(|s| s["pid"].as_i64())
                .ok_or("no pid in state")?;
            let tasks = std::fs::read_to_string(format!("/sys/fs/resctrl/{CLOS}/tasks"))
                .map_err(|e| format!("resctrl group {CLOS}: {e}"))?;
            ensure(
                tasks.lines().any(|l| l.trim() == pid.to_string()),
                format!("pid {pid} not in /sys/fs/resctrl/{CLOS}/tasks"),
            )
        },
    )
    .requires(move |_| {
        let mounted = std::path::Path::new("/sys/fs/resctrl/schemata").exists();
        match (have, mounted) {
            (true, false) => Some("no resctrl filesystem (Intel RDT) on this machine".to_string()),
            (false, true) => Some("resctrl is mounted here; intelRdt.closID covers it".to_string()),
            _ => None,
        }
    })
}

pub fn cases() -> Vec<Case> {
    let mut v = vec![
        sysctl_case("net.ipv4.ip_forward", "1"),
        sysctl_case("net.core.somaxconn", "1234"),
        sysctl_case("net.ipv4.tcp_syncookies", "0"),
        sysctl_case("kernel.shmmax", "68719476736"),
        sysctl_case("kernel.msgmax", "16384"),
        sysctl_case("fs.mqueue.msg_max", "20"),
    ];
    v.extend(seccomp_cases());
    v.extend(propagation_cases());
    v.extend(masked_cases());
    v.extend(readonly_cases());
    v.extend(personality_cases());
    v.push(ioprio("ioPriority.BE", "IOPRIO_CLASS_BE", 4, 2));
    v.push(ioprio("ioPriority.RT", "IOPRIO_CLASS_RT", 1, 1));
    v.push(ioprio("ioPriority.IDLE", "IOPRIO_CLASS_IDLE", 0, 3));
    v.extend(sched_cases());
    v.extend(lsm_cases());
    v
}
