//! config.md#posix-platform-hooks and runtime.md#lifecycle: which hooks run, in what order,
//! in which namespace, with the state on stdin, and what a failing hook does.

use super::{ensure, expect_eq, push, set};
use crate::case::{Case, Outcome, Setup};
use serde_json::{json, Value};

const HK: &str = "config.md#posix-platform-hooks";
const LC: &str = "runtime.md#lifecycle";
const KINDS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A hook entry running the host probe in `hook` mode, logging to the bundle's hooks.log.
fn hook(st: &Setup, kind: &str, tag: &str, exit: i32) -> Value {
    if kind == "startContainer" {
        // Resolved and executed in the container: the probe inside the rootfs, log at /.
        return json!({"path": "/berth-probe", "args": ["berth-probe", "hook", "/hooks.log", tag, exit.to_string()]});
    }
    let log = st.bundle.join("hooks.log").display().to_string();
    let path = st.probe_host.display().to_string();
    json!({"path": path, "args": ["berth-probe", "hook", log, tag, exit.to_string()]})
}

fn add(c: &mut Value, st: &Setup, kind: &str, tag: &str, exit: i32) {
    if kind == "startContainer" {
        set(c, "/root/readonly", json!(false));
    }
    push(c, &format!("/hooks/{kind}"), hook(st, kind, tag, exit));
}

fn tags(o: &Outcome) -> Vec<String> {
    o.hooks
        .iter()
        .filter_map(|h| h["tag"].as_str().map(str::to_string))
        .collect()
}

fn entry<'a>(o: &'a Outcome, tag: &str) -> Result<&'a Value, String> {
    o.hooks
        .iter()
        .find(|h| h["tag"] == tag)
        .ok_or(format!("hook {tag} was not called (called: {:?})", tags(o)))
}

fn called_case(kind: &'static str) -> Case {
    Case::probe(
        format!("hooks.{kind}.called"),
        HK,
        move |c, st| {
            add(c, st, kind, kind, 0);
            Ok(())
        },
        move |o| {
            o.probe()?;
            entry(o, kind).map(|_| ())
        },
    )
}

fn state_case(kind: &'static str) -> Case {
    Case::probe(
        format!("hooks.{kind}.state-on-stdin"),
        HK,
        move |c, st| {
            add(c, st, kind, kind, 0);
            Ok(())
        },
        move |o| {
            let s = &entry(o, kind)?["state"];
            ensure(s.is_object(), format!("stdin was not the state JSON: {s}"))?;
            let id = o.config["linux"]["cgroupsPath"]
                .as_str()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("");
            expect_eq("state.id", s["id"].as_str(), Some(id))?;
            ensure(
                s["bundle"].as_str().is_some_and(|b| b.starts_with('/')),
                format!("state.bundle not absolute: {}", s["bundle"]),
            )?;
            ensure(s["ociVersion"].is_string(), "state.ociVersion missing")?;
            if kind != "poststop" {
                ensure(
                    s["pid"].as_i64().is_some_and(|p| p > 0),
                    format!("state.pid missing: {s}"),
                )?;
            }
            Ok(())
        },
    )
}

fn failure_case(kind: &'static str, must_fail: bool) -> Case {
    let name = if must_fail {
        format!("hooks.{kind}.failure.error")
    } else {
        format!("hooks.{kind}.failure.continues")
    };
    Case::probe(
        name,
        LC,
        move |c, st| {
            add(c, st, kind, kind, 1);
            Ok(())
        },
        move |o| {
            entry(o, kind)?;
            let start_failed = o.start.as_ref().is_some_and(|s| !s.ok());
            if must_fail {
                ensure(
                    o.create_refused() || start_failed,
                    format!("a failing {kind} hook did not make the operation fail"),
                )?;
                ensure(
                    o.probe.is_none(),
                    format!("the user program ran although a {kind} hook failed"),
                )
            } else {
                o.probe()?;
                ensure(
                    o.gone_after_delete || o.delete.is_none(),
                    "the container was not deleted after a failing poststop hook",
                )
            }
        },
    )
}

fn ns_case(kind: &'static str, in_container: bool) -> Case {
    let name = format!(
        "hooks.{kind}.{}-namespace",
        if in_container { "container" } else { "runtime" }
    );
    Case::probe(
        name,
        HK,
        move |c, st| {
            add(c, st, kind, kind, 0);
            Ok(())
        },
        move |o| {
            let e = entry(o, kind)?;
            let host = o.host.ns.get("mnt").map(String::as_str);
            let mnt = e["mnt_ns"].as_str();
            if in_container {
                ensure(
                    mnt != host,
                    format!("{kind} hook ran in the runtime mount namespace"),
                )
            } else {
                expect_eq(&format!("{kind} hook mount namespace"), mnt, host)
            }
        },
    )
}

fn order_case() -> Case {
    Case::probe(
        "hooks.order.all-kinds",
        LC,
        |c, st| {
            for k in KINDS {
                add(c, st, k, k, 0);
            }
            Ok(())
        },
        |o| {
            o.probe()?;
            let got = tags(o);
            // prestart and createRuntime both run in the runtime namespace during create; the
            // spec orders createRuntime, createContainer, startContainer, poststart, poststop.
            let order = [
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop",
            ];
            let pos: Vec<Option<usize>> = order
                .iter()
                .map(|t| got.iter().position(|g| g == t))
                .collect();
            ensure(
                pos.iter().all(Option::is_some),
                format!("not all hooks called: {got:?}"),
            )?;
            ensure(
                pos.windows(2).all(|w| w[0] < w[1]),
                format!("hooks out of order: {got:?}"),
            )?;
            let pre = got
                .iter()
                .position(|g| g == "prestart")
                .ok_or("prestart not called")?;
            ensure(
                pre < pos[1].unwrap_or(0),
                format!("prestart after createContainer: {got:?}"),
            )
        },
    )
}

fn misc_cases() -> Vec<Case> {
    vec![
        Case::probe(
            "hooks.multiple.in-order",
            HK,
            |c, st| {
                for t in ["first", "second", "third"] {
                    add(c, st, "createRuntime", t, 0);
                }
                Ok(())
            },
            |o| {
                expect_eq(
                    "hook order",
                    tags(o),
                    vec!["first".to_string(), "second".into(), "third".into()],
                )
            },
        ),
        Case::probe(
            "hooks.args-and-env",
            HK,
            |c, st| {
                let mut h = hook(st, "createRuntime", "argenv", 0);
                h["env"] = json!(["BERTH_HOOK=yes", "PATH=/bin"]);
                push(c, "/hooks/createRuntime", h);
                Ok(())
            },
            |o| {
                let e = entry(o, "argenv")?;
                let args = e["args"].as_array().cloned().unwrap_or_default();
                ensure(
                    args.len() == 5 && args[0] == "berth-probe" && args[3] == "argenv",
                    format!("hook argv: {args:?}"),
                )?;
                let env = e["env"].as_array().cloned().unwrap_or_default();
                ensure(
                    env.contains(&json!("BERTH_HOOK=yes")),
                    format!("hook env lacks BERTH_HOOK=yes: {env:?}"),
                )
            },
        ),
        Case::probe(
            "hooks.timeout.error",
            HK,
            |c, st| {
                let path = st.probe_host.display().to_string();
                push(
                    c,
                    "/hooks/createRuntime",
                    json!({"path": path, "args": ["berth-probe", "sleep", "30"], "timeout": 1}),
                );
                Ok(())
            },
            |o| {
                ensure(
                    o.create_refused(),
                    "a createRuntime hook exceeding its timeout did not fail create",
                )
            },
        ),
        Case::probe(
            "hooks.poststop.on-delete",
            LC,
            |c, st| {
                add(c, st, "poststop", "ps", 0);
                Ok(())
            },
            |o| {
                let e = entry(o, "ps")?;
                ensure(o.delete.as_ref().is_some_and(|d| d.ok()), "delete failed")?;
                ensure(e["state"].is_object(), "poststop got no state")
            },
        ),
    ]
}

pub fn cases() -> Vec<Case> {
    let mut v: Vec<Case> = KINDS.iter().map(|k| called_case(k)).collect();
    v.extend(KINDS.iter().map(|k| state_case(k)));
    for k in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
    ] {
        v.push(failure_case(k, true));
    }
    v.push(failure_case("poststart", false));
    v.push(failure_case("poststop", false));
    v.push(ns_case("prestart", false));
    v.push(ns_case("createRuntime", false));
    v.push(ns_case("createContainer", true));
    v.push(ns_case("startContainer", true));
    v.push(ns_case("poststart", false));
    v.push(ns_case("poststop", false));
    v.push(order_case());
    v.extend(misc_cases());
    v
}
