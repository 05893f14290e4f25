//! config.md POSIX process: user (uid, gid, umask, additionalGids), capabilities (all five
//! sets), rlimits, noNewPrivileges, oomScoreAdj, apparmorProfile, selinuxLabel.

use super::{cap_mask, ensure, expect_eq, push, set};
use crate::case::{Case, Outcome, Setup};
use serde_json::{json, Value};

const USER: &str = "config.md#user";
const CAPS: &str = "config.md#linux-process";
const RL: &str = "config.md#posix-process";

fn cap_of(o: &Outcome, set: &str) -> Result<u64, String> {
    o.get(&format!("/caps/{set}"))?
        .as_u64()
        .ok_or(format!("no {set}"))
}

fn hexcmp(what: &str, got: u64, want: u64) -> Result<(), String> {
    ensure(got == want, format!("{what}: got {got:#x}, want {want:#x}"))
}

fn user_cases() -> Vec<Case> {
    vec![
        Case::probe(
            "process.user.uid-gid",
            USER,
            |c, _| {
                set(c, "/process/user", json!({"uid": 1000, "gid": 1001}));
                Ok(())
            },
            |o| {
                expect_eq("uid", o.get("/uid")?.as_u64(), Some(1000))?;
                expect_eq("euid", o.get("/euid")?.as_u64(), Some(1000))?;
                expect_eq("gid", o.get("/gid")?.as_u64(), Some(1001))?;
                expect_eq("egid", o.get("/egid")?.as_u64(), Some(1001))
            },
        ),
        Case::probe(
            "process.user.additionalGids",
            USER,
            |c, _| {
                set(
                    c,
                    "/process/user",
                    json!({"uid": 1000, "gid": 1000, "additionalGids": [2000, 2001]}),
                );
                Ok(())
            },
            |o| {
                let g = o.get("/groups")?.as_array().cloned().unwrap_or_default();
                for want in [2000, 2001] {
                    ensure(
                        g.contains(&json!(want)),
                        format!("groups {g:?} lack {want}"),
                    )?;
                }
                Ok(())
            },
        ),
        Case::probe(
            "process.user.umask",
            USER,
            |c, _| {
                set(c, "/process/user/umask", json!(0o027));
                Ok(())
            },
            |o| expect_eq("umask", o.get("/umask")?.as_u64(), Some(0o027)),
        ),
        Case::probe(
            "process.user.root",
            USER,
            |_, _| Ok(()),
            |o| {
                expect_eq("uid", o.get("/uid")?.as_u64(), Some(0))?;
                expect_eq("gid", o.get("/gid")?.as_u64(), Some(0))
            },
        ),
    ]
}

const BND: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_KILL",
    "CAP_NET_RAW",
    "CAP_SYS_CHROOT",
    "CAP_NET_BIND_SERVICE",
];
const PRM: &[&str] = &[
    "CAP_CHOWN",
    "CAP_KILL",
    "CAP_NET_RAW",
    "CAP_NET_BIND_SERVICE",
];
const EFF: &[&str] = &["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
const INH: &[&str] = &["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT"];
const AMB: &[&str] = &["CAP_KILL", "CAP_NET_BIND_SERVICE"];

fn distinct_caps(c: &mut Value, uid: u32) {
    set(
        c,
        "/process/capabilities",
        json!({
            "bounding": BND, "permitted": PRM, "effective": EFF, "inheritable": INH, "ambient": AMB
        }),
    );
    set(c, "/process/user", json!({"uid": uid, "gid": uid}));
    set(c, "/process/noNewPrivileges", json!(true));
}

fn caps_case(name: &str, uid: u32, check: fn(&Outcome) -> Result<(), String>) -> Case {
    Case::probe(
        name,
        CAPS,
        move |c, _| {
            distinct_caps(c, uid);
            Ok(())
        },
        check,
    )
}

fn cap_cases() -> Vec<Case> {
    let mut v = cap_set_cases();
    v.extend(cap_edge_cases());
    v
}

fn cap_set_cases() -> Vec<Case> {
    vec![
        caps_case("process.capabilities.bounding", 0, |o| {
            hexcmp("CapBnd", cap_of(o, "CapBnd")?, cap_mask(BND))
        }),
        caps_case("process.capabilities.inheritable", 0, |o| {
            hexcmp("CapInh", cap_of(o, "CapInh")?, cap_mask(INH))
        }),
        caps_case("process.capabilities.ambient", 0, |o| {
            hexcmp("CapAmb", cap_of(o, "CapAmb")?, cap_mask(AMB))
        }),
        // execve as uid 0 with no_new_privs: permitted = configured permitted (the kernel
        // refuses to gain more), effective = permitted (capabilities(7), "root" rules).
        caps_case("process.capabilities.permitted.root-nnp", 0, |o| {
            hexcmp("CapPrm", cap_of(o, "CapPrm")?, cap_mask(PRM))
        }),
        caps_case("process.capabilities.effective.root-nnp", 0, |o| {
            hexcmp("CapEff", cap_of(o, "CapEff")?, cap_mask(PRM))
        }),
        // execve as non-root: permitted = effective = ambient, which needs the runtime to
        // keep permitted/inheritable across setuid and raise ambient.
        caps_case("process.capabilities.nonroot.permitted", 1000, |o| {
            hexcmp("CapPrm", cap_of(o, "CapPrm")?, cap_mask(AMB))
        }),
        caps_case("process.capabilities.nonroot.effective", 1000, |o| {
            hexcmp("CapEff", cap_of(o, "CapEff")?, cap_mask(AMB))
        }),
        caps_case("process.capabilities.nonroot.bounding", 1000, |o| {
            hexcmp("CapBnd", cap_of(o, "CapBnd")?, cap_mask(BND))
        }),
        caps_case("process.capabilities.nonroot.ambient", 1000, |o| {
            hexcmp("CapAmb", cap_of(o, "CapAmb")?, cap_mask(AMB))
        }),
        Case::probe(
            "process.capabilities.empty",
            CAPS,
            |c, _| {
                set(
                    c,
                    "/process/capabilities",
                    json!({"bounding": [], "permitted": [], "effective": [], "inheritable": [], "ambient": []}),
                );
                Ok(())
            },
            |o| {
                for s in ["CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"] {
                    hexcmp(s, cap_of(o, s)?, 0)?;
                }
                Ok(())
            },
        ),
        // config.md: values that cannot be mapped or granted MUST be logged as a warning;
    ]
}

fn cap_edge_cases() -> Vec<Case> {
    vec![
        // runtimes SHOULD NOT fail.
        Case::probe(
            "process.capabilities.unknown.warn-not-fail",
            CAPS,
            |c, _| {
                push(
                    c,
                    "/process/capabilities/bounding",
                    json!("CAP_BERTH_NO_SUCH_CAP"),
                );
                Ok(())
            },
            |o| {
                let bnd = cap_of(o, "CapBnd")?;
                hexcmp(
                    "CapBnd",
                    bnd,
                    cap_mask(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]),
                )
            },
        ),
        Case::probe(
            "process.capabilities.ungrantable.no-fail",
            CAPS,
            |c, _| {
                // The host itself lacks CAP_SYS_RESOURCE, so it cannot be granted here.
                push(
                    c,
                    "/process/capabilities/bounding",
                    json!("CAP_SYS_RESOURCE"),
                );
                Ok(())
            },
            |o| o.probe().map(|_| ()),
        ),
    ]
}

/// (type, soft, hard) within this host's hard limits (we lack CAP_SYS_RESOURCE).
const RLIMITS: &[(&str, u64, u64)] = &[
    ("RLIMIT_AS", 1 << 34, 1 << 35),
    ("RLIMIT_CORE", 1024, 2048),
    ("RLIMIT_CPU", 1000, 2000),
    ("RLIMIT_DATA", 1 << 33, 1 << 34),
    ("RLIMIT_FSIZE", 1 << 30, 1 << 31),
    ("RLIMIT_LOCKS", 100, 200),
    ("RLIMIT_MEMLOCK", 65536, 131072),
    ("RLIMIT_MSGQUEUE", 4096, 8192),
    ("RLIMIT_NICE", 0, 0),
    ("RLIMIT_NOFILE", 512, 768),
    ("RLIMIT_NPROC", 500, 1000),
    ("RLIMIT_RSS", 1 << 30, 1 << 31),
    ("RLIMIT_RTPRIO", 0, 0),
    ("RLIMIT_RTTIME", 1_000_000, 2_000_000),
    ("RLIMIT_SIGPENDING", 100, 200),
    ("RLIMIT_STACK", 8 << 20, 16 << 20),
];

fn rlimit_case(ty: &'static str, soft: u64, hard: u64) -> Case {
    let name = format!(
        "process.rlimits.{}",
        ty.trim_start_matches("RLIMIT_").to_lowercase()
    );
    Case::probe(
        name,
        RL,
        move |c: &mut Value, _: &mut Setup| {
            set(
                c,
                "/process/rlimits",
                json!([{"type": ty, "soft": soft, "hard": hard}]),
            );
            Ok(())
        },
        move |o| {
            let got = o.get(&format!("/rlimits/{ty}"))?;
            expect_eq(&format!("{ty} soft"), got["soft"].as_u64(), Some(soft))?;
            expect_eq(&format!("{ty} hard"), got["hard"].as_u64(), Some(hard))
        },
    )
}

fn rlimit_cases() -> Vec<Case> {
    let mut v: Vec<Case> = RLIMITS
        .iter()
        .map(|(t, s, h)| rlimit_case(t, *s, *h))
        .collect();
    v.push(Case::probe(
        "process.rlimits.invalid-type.error",
        RL,
        |c, _| {
            push(
                c,
                "/process/rlimits",
                json!({"type": "RLIMIT_BERTH_BOGUS", "soft": 1, "hard": 1}),
            );
            Ok(())
        },
        |o| {
            ensure(
                o.create_refused(),
                "an rlimit type that maps to no kernel resource was accepted",
            )
        },
    ));
    v.push(Case::probe(
        "process.rlimits.multiple",
        RL,
        |c, _| {
            set(
                c,
                "/process/rlimits",
                json!([
            {"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
            {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400}]),
            );
            Ok(())
        },
        |o| {
            expect_eq(
                "NOFILE",
                o.get("/rlimits/RLIMIT_NOFILE")?,
                &json!({"soft": 256, "hard": 512}),
            )?;
            expect_eq(
                "CORE",
                o.get("/rlimits/RLIMIT_CORE")?,
                &json!({"soft": 0, "hard": 0}),
            )?;
            expect_eq(
                "NPROC",
                o.get("/rlimits/RLIMIT_NPROC")?,
                &json!({"soft": 300, "hard": 400}),
            )
        },
    ));
    v
}

fn misc_cases() -> Vec<Case> {
    vec![
        Case::probe(
            "process.noNewPrivileges.true",
            CAPS,
            |c, _| {
                set(c, "/process/noNewPrivileges", json!(true));
                Ok(())
            },
            |o| expect_eq("NoNewPrivs", o.get("/nonewprivs")?.as_i64(), Some(1)),
        ),
        Case::probe(
            "process.noNewPrivileges.false",
            CAPS,
            |c, _| {
                set(c, "/process/noNewPrivileges", json!(false));
                Ok(())
            },
            |o| expect_eq("NoNewPrivs", o.get("/nonewprivs")?.as_i64(), Some(0)),
        ),
        Case::probe(
            "process.oomScoreAdj",
            CAPS,
            |c, _| {
                set(c, "/process/oomScoreAdj", json!(789));
                Ok(())
            },
            |o| {
                expect_eq(
                    "oom_score_adj",
                    o.get("/oom_score_adj")?.as_str(),
                    Some("789"),
                )
            },
        ),
        Case::probe(
            "process.apparmorProfile",
            CAPS,
            |c, _| {
                set(c, "/process/apparmorProfile", json!("unconfined"));
                Ok(())
            },
            |o| {
                expect_eq(
                    "attr/current",
                    o.get("/apparmor")?.as_str(),
                    Some("unconfined"),
                )
            },
        )
        .requires(|h| (!h.apparmor).then(|| "AppArmor is not enabled on this kernel".to_string())),
        // A profile the kernel cannot apply (none loaded by that name, or no AppArmor at all)
        // must not leave a container running unconfined: runc fails create, as berth does.
        Case::probe(
            "process.apparmorProfile.unavailable.error",
            CAPS,
            |c, _| {
                set(
                    c,
                    "/process/apparmorProfile",
                    json!("berth-conformance-not-loaded"),
                );
                Ok(())
            },
            |o| unapplied_is_an_error(o, "process.apparmorProfile"),
        ),
        Case::probe(
            "process.selinuxLabel",
            CAPS,
            |c, _| {
                set(
                    c,
                    "/process/selinuxLabel",
                    json!("system_u:system_r:container_t:s0"),
                );
                Ok(())
            },
            |o| {
                expect_eq(
                    "attr/current",
                    o.get("/selinux")?.as_str(),
                    Some("system_u:system_r:container_t:s0"),
                )
            },
        )
        .requires(|h| (!h.selinux).then(|| "SELinux is not enabled on this kernel".to_string())),
        Case::probe(
            "process.selinuxLabel.unavailable.error",
            CAPS,
            |c, _| {
                set(
                    c,
                    "/process/selinuxLabel",
                    json!("system_u:system_r:container_t:s0"),
                );
                Ok(())
            },
            |o| unapplied_is_an_error(o, "process.selinuxLabel"),
        )
        .requires(|h| {
            h.selinux
                .then(|| "SELinux is enabled on this kernel".to_string())
        }),
    ]
}

/// A label the runtime cannot apply fails create or start (runtime.md: a container that
/// cannot be created as config.json says is an error).
fn unapplied_is_an_error(o: &Outcome, field: &str) -> Result<(), String> {
    let failed = o.create_refused() || o.start.as_ref().is_some_and(|s| !s.ok());
    ensure(
        failed && o.probe.is_none(),
        format!("the process ran although its {field} could not be applied"),
    )
}

pub fn cases() -> Vec<Case> {
    let mut v = user_cases();
    v.extend(cap_cases());
    v.extend(rlimit_cases());
    v.extend(misc_cases());
    v
}
