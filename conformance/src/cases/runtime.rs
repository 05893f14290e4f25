//! runtime.md: state, lifecycle, and the create/start/state/kill/delete operations with
//! their errors.

use super::{args, ensure, expect_eq, set};
use crate::bundle::Bundle;
use crate::case::{Case, Verdict};
use crate::exec::{Driver, RUN_LIMIT};
use serde_json::{json, Value};
use std::time::Duration;

const ST: &str = "runtime.md#state";
const LC: &str = "runtime.md#lifecycle";
const CR: &str = "runtime.md#create";
const SR: &str = "runtime.md#start";
const KL: &str = "runtime.md#kill";
const DL: &str = "runtime.md#delete";
const QS: &str = "runtime.md#query-state";

/// How a lifecycle case wants its container before the body runs.
#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Created,
    Running,
    Stopped,
}

/// Create a container (sleeping process unless `quick`), bring it to `phase`, run `body`.
fn with_container(
    d: &Driver,
    phase: Phase,
    tweak: impl Fn(&mut Value),
    body: impl Fn(&Driver, &str, &Bundle) -> Result<(), String>,
) -> Verdict {
    let (bundle, id, mut cfg) = match d.bundle() {
        Ok(x) => x,
        Err(e) => return Verdict::Fail(format!("test setup: {e}")),
    };
    if phase == Phase::Stopped {
        args(&mut cfg, &["/berth-probe", "exit", "0"]);
    } else {
        args(&mut cfg, &["/berth-probe", "sleep", "600"]);
    }
    tweak(&mut cfg);
    let r = (|| {
        bundle.write_config(&cfg).map_err(|e| e.to_string())?;
        let c = d
            .runtime
            .create(&id, &bundle.dir)
            .map_err(|e| e.to_string())?;
        ensure(c.ok(), format!("create failed: {}", c.summary()))?;
        if phase != Phase::Created {
            let s = d.runtime.start(&id).map_err(|e| e.to_string())?;
            ensure(s.ok(), format!("start failed: {}", s.summary()))?;
            let want = if phase == Phase::Running {
                "running"
            } else {
                "stopped"
            };
            let got = d.runtime.wait_status(&id, Some(want), RUN_LIMIT);
            ensure(
                got,
                format!(
                    "container never reached status {want:?} (now {:?})",
                    d.runtime.status(&id)
                ),
            )?;
        }
        body(d, &id, &bundle)
    })();
    d.cleanup(&id, &bundle);
    r.into()
}

/// Waits until the container's init (the probe, pid 1 of its pid namespace) catches
/// SIGTERM. "running" holds from its execve, before the probe's main installs the handler,
/// and a pid-namespace init drops a SIGTERM it has no handler for: a slow host (a VM under
/// TCG) otherwise loses the signal whatever the runtime.
fn await_term_handler(d: &Driver, id: &str) -> Result<(), String> {
    let pid = state_of(d, id)?["pid"].as_i64().unwrap_or(0);
    let term = 1u64 << (libc::SIGTERM - 1);
    let deadline = std::time::Instant::now() + RUN_LIMIT;
    while std::time::Instant::now() < deadline {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|h| u64::from_str_radix(h.trim(), 16).ok());
        if caught.is_some_and(|m| m & term != 0) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(format!("test setup: pid {pid} never caught SIGTERM"))
}

fn state_of(d: &Driver, id: &str) -> Result<Value, String> {
    match d.runtime.state(id).map_err(|e| e.to_string())? {
        Ok(v) => Ok(v),
        Err(out) => Err(format!("state failed: {}", out.summary())),
    }
}

fn pid_alive(pid: i64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

fn must_fail(what: &str, out: crate::runtime::CmdOut) -> Result<(), String> {
    ensure(
        !out.ok(),
        format!("{what} succeeded, but the spec requires an error"),
    )
}

fn run(d: &Driver, a: &[&str]) -> Result<crate::runtime::CmdOut, String> {
    d.runtime.run(a).map_err(|e| e.to_string())
}

fn field_case(
    name: &str,
    phase: Phase,
    check: fn(&Value, &str, &Bundle) -> Result<(), String>,
) -> Case {
    Case::custom(name, ST, move |d| {
        with_container(d, phase, |_| {}, |d, id, b| check(&state_of(d, id)?, id, b))
    })
}

pub fn cases() -> Vec<Case> {
    let mut v = vec![
        field_case("state.created.status", Phase::Created, |s, _, _| {
            expect_eq("status", s["status"].as_str(), Some("created"))
        }),
        field_case("state.ociVersion", Phase::Created, |s, _, _| {
            ensure(
                s["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
                format!("ociVersion missing: {s}"),
            )
        }),
        field_case("state.id", Phase::Created, |s, id, _| {
            expect_eq("id", s["id"].as_str(), Some(id))
        }),
        field_case("state.created.pid", Phase::Created, |s, _, _| {
            let pid = s["pid"].as_i64().ok_or(format!("no pid in state: {s}"))?;
            ensure(
                pid > 0 && pid_alive(pid),
                format!("pid {pid} is not a live host process"),
            )
        }),
        field_case("state.bundle.absolute", Phase::Created, |s, _, b| {
            let want = b.dir.display().to_string();
            expect_eq("bundle", s["bundle"].as_str(), Some(want.as_str()))
        }),
        field_case("state.running.status", Phase::Running, |s, _, _| {
            expect_eq("status", s["status"].as_str(), Some("running"))
        }),
        field_case("state.running.pid", Phase::Running, |s, _, _| {
            let pid = s["pid"].as_i64().ok_or(format!("no pid in state: {s}"))?;
            ensure(pid_alive(pid), format!("pid {pid} is not alive"))
        }),
        field_case("state.stopped.status", Phase::Stopped, |s, _, _| {
            expect_eq("status", s["status"].as_str(), Some("stopped"))
        }),
        Case::custom("state.annotations", ST, |d| {
            let tweak = |c: &mut Value| {
                set(
                    c,
                    "/annotations",
                    json!({"org.berth.test": "yes", "a.b": "c"}),
                )
            };
            with_container(d, Phase::Created, tweak, |d, id, _| {
                let s = state_of(d, id)?;
                expect_eq(
                    "annotations",
                    &s["annotations"],
                    &json!({"org.berth.test": "yes", "a.b": "c"}),
                )
            })
        }),
        Case::custom("state.unknown-id.error", QS, |d| {
            let out = run(d, &["state", "bc-no-such-container"]);
            out.and_then(|o| must_fail("state of an unknown id", o))
                .into()
        }),
        Case::custom("create.pid-in-container-pidns", CR, |d| {
            with_container(
                d,
                Phase::Created,
                |_| {},
                |d, id, _| {
                    let pid = state_of(d, id)?["pid"].as_i64().unwrap_or(0);
                    let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid"))
                        .map_err(|e| e.to_string())?;
                    let host = d.host.ns.get("pid").cloned().unwrap_or_default();
                    ensure(
                        ns.display().to_string() != host,
                        "state pid is not in the container's new pid namespace",
                    )
                },
            )
        }),
    ];
    v.extend(operation_cases());
    v.extend(error_cases());
    v.push(config_frozen_case());
    v
}

fn operation_cases() -> Vec<Case> {
    let mut v = create_start_cases();
    v.extend(kill_cases());
    v.extend(delete_cases());
    v
}

fn create_start_cases() -> Vec<Case> {
    vec![
        Case::custom("create.does-not-run-program", CR, |d| {
            let tweak = |c: &mut Value| args(c, &["/berth-probe", "report"]);
            with_container(d, Phase::Created, tweak, |_, _, b| {
                std::thread::sleep(Duration::from_millis(300));
                let out = std::fs::read_to_string(b.dir.join("stdout")).unwrap_or_default();
                ensure(out.is_empty(), "the user program ran before start")
            })
        }),
        Case::custom("start.runs-program", SR, |d| {
            let tweak = |c: &mut Value| args(c, &["/berth-probe", "report"]);
            with_container(d, Phase::Created, tweak, |d, id, b| {
                let s = d.runtime.start(id).map_err(|e| e.to_string())?;
                ensure(s.ok(), format!("start failed: {}", s.summary()))?;
                ensure(
                    d.runtime.wait_status(id, Some("stopped"), RUN_LIMIT),
                    "never stopped",
                )?;
                let out = std::fs::read_to_string(b.dir.join("stdout")).unwrap_or_default();
                ensure(
                    out.contains("\"namespaces\""),
                    "the user program produced no output after start",
                )
            })
        }),
        Case::custom("lifecycle.exit-means-stopped", LC, |d| {
            with_container(
                d,
                Phase::Running,
                |_| {},
                |d, id, _| {
                    let pid = state_of(d, id)?["pid"].as_i64().unwrap_or(0);
                    unsafe_kill(pid);
                    ensure(
                        d.runtime.wait_status(id, Some("stopped"), RUN_LIMIT),
                        "status did not become stopped after the process died",
                    )
                },
            )
        }),
    ]
}

fn kill_cases() -> Vec<Case> {
    vec![
        Case::custom("kill.created", KL, |d| {
            with_container(
                d,
                Phase::Created,
                |_| {},
                |d, id, _| {
                    let k = d.runtime.kill(id, "KILL").map_err(|e| e.to_string())?;
                    ensure(
                        k.ok(),
                        format!("kill of a created container failed: {}", k.summary()),
                    )?;
                    ensure(
                        d.runtime.wait_status(id, Some("stopped"), RUN_LIMIT),
                        "created container not stopped after SIGKILL",
                    )
                },
            )
        }),
        Case::custom("kill.running.sigterm", KL, |d| {
            with_container(
                d,
                Phase::Running,
                |_| {},
                |d, id, _| {
                    await_term_handler(d, id)?;
                    let k = d.runtime.kill(id, "TERM").map_err(|e| e.to_string())?;
                    ensure(k.ok(), format!("kill failed: {}", k.summary()))?;
                    ensure(
                        d.runtime.wait_status(id, Some("stopped"), RUN_LIMIT),
                        "not stopped after SIGTERM",
                    )
                },
            )
        }),
        Case::custom("kill.running.numeric-signal", KL, |d| {
            with_container(
                d,
                Phase::Running,
                |_| {},
                |d, id, _| {
                    let k = d.runtime.kill(id, "9").map_err(|e| e.to_string())?;
                    ensure(k.ok(), format!("kill 9 failed: {}", k.summary()))?;
                    ensure(
                        d.runtime.wait_status(id, Some("stopped"), RUN_LIMIT),
                        "not stopped after signal 9",
                    )
                },
            )
        }),
        Case::custom("kill.running.default-sigterm", KL, |d| {
            with_container(
                d,
                Phase::Running,
                |_| {},
                |d, id, _| {
                    await_term_handler(d, id)?;
                    let k = run(d, &["kill", id])?;
                    ensure(
                        k.ok(),
                        format!("kill without a signal failed: {}", k.summary()),
                    )?;
                    ensure(
                        d.runtime.wait_status(id, Some("stopped"), RUN_LIMIT),
                        "not stopped after default signal (SIGTERM)",
                    )
                },
            )
        }),
    ]
}

fn delete_cases() -> Vec<Case> {
    vec![
        Case::custom("delete.stopped", DL, |d| {
            with_container(
                d,
                Phase::Stopped,
                |_| {},
                |d, id, _| {
                    let o = d.runtime.delete(id, false).map_err(|e| e.to_string())?;
                    ensure(
                        o.ok(),
                        format!("delete of a stopped container failed: {}", o.summary()),
                    )?;
                    ensure(
                        d.runtime.status(id).is_none(),
                        "container still known after delete",
                    )
                },
            )
        }),
        Case::custom("delete.force.running", DL, |d| {
            with_container(
                d,
                Phase::Running,
                |_| {},
                |d, id, _| {
                    let pid = state_of(d, id)?["pid"].as_i64().unwrap_or(0);
                    let o = d.runtime.delete(id, true).map_err(|e| e.to_string())?;
                    ensure(o.ok(), format!("delete --force failed: {}", o.summary()))?;
                    ensure(
                        d.runtime.status(id).is_none(),
                        "container still known after delete --force",
                    )?;
                    std::thread::sleep(Duration::from_millis(100));
                    ensure(
                        !pid_alive(pid),
                        "container process still alive after delete --force",
                    )
                },
            )
        }),
        Case::custom("delete.removes-cgroup", DL, |d| {
            with_container(
                d,
                Phase::Stopped,
                |_| {},
                |d, id, _| {
                    let o = d.runtime.delete(id, false).map_err(|e| e.to_string())?;
                    ensure(o.ok(), format!("delete failed: {}", o.summary()))?;
                    let left: Vec<String> = d
                        .host
                        .cgroup_v1
                        .iter()
                        .filter(|(_, m)| m.join("berth-conformance").join(id).exists())
                        .map(|(c, _)| c.clone())
                        .collect();
                    ensure(
                        left.is_empty(),
                        format!("cgroups left behind after delete: {left:?}"),
                    )
                },
            )
        }),
    ]
}

fn unsafe_kill(pid: i64) {
    if pid > 0 {
        // SAFETY: kill(2) with a pid we read from the runtime's state.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
}

fn error_cases() -> Vec<Case> {
    let mut v = create_error_cases();
    v.extend(start_kill_error_cases());
    v.extend(delete_error_cases());
    v
}

fn create_error_cases() -> Vec<Case> {
    vec![
        Case::custom("create.duplicate-id.error", CR, |d| {
            with_container(
                d,
                Phase::Created,
                |_| {},
                |d, id, b| {
                    let o = d.runtime.create(id, &b.dir).map_err(|e| e.to_string())?;
                    must_fail("create with a duplicate id", o)?;
                    expect_eq(
                        "first container's status",
                        d.runtime.status(id).as_deref(),
                        Some("created"),
                    )
                },
            )
        }),
        Case::custom("create.missing-rootfs.error", CR, |d| {
            let tweak = |c: &mut Value| set(c, "/root/path", json!("no-such-rootfs"));
            let (bundle, id, mut cfg) = match d.bundle() {
                Ok(x) => x,
                Err(e) => return Verdict::Fail(e),
            };
            tweak(&mut cfg);
            let r = bundle
                .write_config(&cfg)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    let o = d
                        .runtime
                        .create(&id, &bundle.dir)
                        .map_err(|e| e.to_string())?;
                    must_fail("create with a missing root.path", o)?;
                    ensure(
                        d.runtime.status(&id).is_none(),
                        "a failed create left a container behind",
                    )
                });
            d.cleanup(&id, &bundle);
            r.into()
        }),
        Case::custom("create.invalid-config.error", CR, |d| {
            let (bundle, id, _) = match d.bundle() {
                Ok(x) => x,
                Err(e) => return Verdict::Fail(e),
            };
            let r = std::fs::write(bundle.dir.join("config.json"), "{ not json")
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    let o = d
                        .runtime
                        .create(&id, &bundle.dir)
                        .map_err(|e| e.to_string())?;
                    must_fail("create with an unparsable config.json", o)?;
                    ensure(
                        d.runtime.status(&id).is_none(),
                        "a failed create left a container behind",
                    )
                });
            d.cleanup(&id, &bundle);
            r.into()
        }),
    ]
}

fn start_kill_error_cases() -> Vec<Case> {
    vec![
        Case::custom("start.running.error", SR, |d| {
            with_container(
                d,
                Phase::Running,
                |_| {},
                |d, id, _| {
                    must_fail(
                        "start of a running container",
                        d.runtime.start(id).map_err(|e| e.to_string())?,
                    )
                },
            )
        }),
        Case::custom("start.stopped.error", SR, |d| {
            with_container(
                d,
                Phase::Stopped,
                |_| {},
                |d, id, _| {
                    must_fail(
                        "start of a stopped container",
                        d.runtime.start(id).map_err(|e| e.to_string())?,
                    )
                },
            )
        }),
        Case::custom("start.unknown-id.error", SR, |d| {
            run(d, &["start", "bc-no-such-container"])
                .and_then(|o| must_fail("start of an unknown id", o))
                .into()
        }),
        Case::custom("kill.stopped.error", KL, |d| {
            with_container(
                d,
                Phase::Stopped,
                |_| {},
                |d, id, _| {
                    must_fail(
                        "kill of a stopped container",
                        d.runtime.kill(id, "KILL").map_err(|e| e.to_string())?,
                    )?;
                    expect_eq("status", d.runtime.status(id).as_deref(), Some("stopped"))
                },
            )
        }),
        Case::custom("kill.unknown-id.error", KL, |d| {
            run(d, &["kill", "bc-no-such-container", "KILL"])
                .and_then(|o| must_fail("kill of an unknown id", o))
                .into()
        }),
    ]
}

fn delete_error_cases() -> Vec<Case> {
    vec![
        Case::custom("delete.running.error", DL, |d| {
            with_container(
                d,
                Phase::Running,
                |_| {},
                |d, id, _| {
                    must_fail(
                        "delete of a running container without --force",
                        d.runtime.delete(id, false).map_err(|e| e.to_string())?,
                    )?;
                    expect_eq(
                        "status after refused delete",
                        d.runtime.status(id).as_deref(),
                        Some("running"),
                    )
                },
            )
        }),
        Case::custom("delete.created.error", DL, |d| {
            with_container(
                d,
                Phase::Created,
                |_| {},
                |d, id, _| {
                    must_fail(
                        "delete of a created (not stopped) container without --force",
                        d.runtime.delete(id, false).map_err(|e| e.to_string())?,
                    )?;
                    expect_eq(
                        "status after refused delete",
                        d.runtime.status(id).as_deref(),
                        Some("created"),
                    )
                },
            )
        }),
        Case::custom("delete.unknown-id.error", DL, |d| {
            run(d, &["delete", "bc-no-such-container"])
                .and_then(|o| must_fail("delete of an unknown id", o))
                .into()
        }),
    ]
}

/// runtime.md lifecycle step 2: updates to config.json after create MUST NOT affect the
/// container.
fn config_frozen_case() -> Case {
    Case::custom("lifecycle.config-updates-after-create-ignored", LC, |d| {
        let tweak = |c: &mut Value| {
            args(c, &["/berth-probe", "report"]);
            set(c, "/hostname", json!("before-update"));
        };
        with_container(d, Phase::Created, tweak, |d, id, b| {
            let path = b.dir.join("config.json");
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            let changed = text.replace("before-update", "after-update");
            std::fs::write(&path, changed).map_err(|e| e.to_string())?;
            let s = d.runtime.start(id).map_err(|e| e.to_string())?;
            ensure(s.ok(), format!("start failed: {}", s.summary()))?;
            ensure(
                d.runtime.wait_status(id, Some("stopped"), RUN_LIMIT),
                "never stopped",
            )?;
            let out = std::fs::read_to_string(b.dir.join("stdout")).unwrap_or_default();
            let v: Value =
                serde_json::from_str(out.trim()).map_err(|e| format!("probe output: {e}"))?;
            expect_eq("hostname", v["hostname"].as_str(), Some("before-update"))
        })
    })
}
