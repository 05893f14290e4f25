//! Schema checks: `spec`, `state` and `features` output against the runtime-spec schemas.

use super::ensure;
use crate::case::{Case, Verdict};
use crate::exec::{Driver, RUN_LIMIT};
use crate::schema;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn validate(dir: &Path, name: &str, v: &Value) -> Verdict {
    if !schema::available(dir) {
        return Verdict::Skip(format!(
            "schemas not installed at {} (apt-get install golang-github-opencontainers-specs-dev)",
            dir.display()
        ));
    }
    match schema::validate(dir, name, v) {
        Ok(errs) if errs.is_empty() => Verdict::Pass,
        Ok(errs) => Verdict::Fail(format!("{name}: {}", errs.join("; "))),
        Err(e) => Verdict::Fail(e.to_string()),
    }
}

fn spec_case(dir: PathBuf) -> Case {
    Case::custom(
        "schema.spec-output",
        "runtime.md#operations / config-schema.json",
        move |d| {
            let out_dir = d.work.join(format!("spec-{}", d.new_id()));
            if let Err(e) = std::fs::create_dir_all(&out_dir) {
                return Verdict::Fail(format!("test setup: {e}"));
            }
            let b = out_dir.display().to_string();
            let r = d.runtime.run(&["spec", "--bundle", b.as_str()]);
            let text = std::fs::read_to_string(out_dir.join("config.json"));
            let _ = std::fs::remove_dir_all(&out_dir);
            let out = match r {
                Ok(o) => o,
                Err(e) => return Verdict::Fail(e.to_string()),
            };
            if !out.ok() {
                return Verdict::Fail(format!("spec failed: {}", out.summary()));
            }
            match text.map(|t| serde_json::from_str::<Value>(&t)) {
                Ok(Ok(v)) => validate(&dir, "config-schema.json", &v),
                Ok(Err(e)) => Verdict::Fail(format!("spec wrote invalid JSON: {e}")),
                Err(e) => Verdict::Fail(format!("spec wrote no config.json: {e}")),
            }
        },
    )
}

fn state_case(dir: PathBuf, name: &'static str, phase: &'static str) -> Case {
    Case::custom(name, "runtime.md#state / state-schema.json", move |d| {
        let (bundle, id, mut cfg) = match d.bundle() {
            Ok(x) => x,
            Err(e) => return Verdict::Fail(format!("test setup: {e}")),
        };
        let sleep = if phase == "stopped" { "0" } else { "600" };
        super::args(&mut cfg, &["/berth-probe", "sleep", sleep]);
        super::set(
            &mut cfg,
            "/annotations",
            serde_json::json!({"org.berth.schema": "1"}),
        );
        let v = (|| {
            bundle.write_config(&cfg).map_err(|e| e.to_string())?;
            let c = d
                .runtime
                .create(&id, &bundle.dir)
                .map_err(|e| e.to_string())?;
            ensure(c.ok(), format!("create failed: {}", c.summary()))?;
            if phase != "created" {
                let s = d.runtime.start(&id).map_err(|e| e.to_string())?;
                ensure(s.ok(), format!("start failed: {}", s.summary()))?;
                ensure(
                    d.runtime.wait_status(&id, Some(phase), RUN_LIMIT),
                    format!("never {phase}"),
                )?;
            }
            match d.runtime.state(&id).map_err(|e| e.to_string())? {
                Ok(v) => Ok(v),
                Err(o) => Err(format!("state failed: {}", o.summary())),
            }
        })();
        d.cleanup(&id, &bundle);
        match v {
            Ok(v) => validate(&dir, "state-schema.json", &v),
            Err(e) => Verdict::Fail(e),
        }
    })
}

/// Is this runc older than 1.2 (which had no `features` command)?
fn is_old_runc(d: &Driver) -> bool {
    let v = d
        .runtime
        .run(&["--version"])
        .map(|o| o.stdout)
        .unwrap_or_default();
    v.lines()
        .next()
        .is_some_and(|l| l.starts_with("runc version 1.0") || l.starts_with("runc version 1.1"))
}

/// features.md: ociVersionMin/ociVersionMax REQUIRED strings; the other known fields have
/// fixed types. Used when the installed schemas predate features-schema.json.
fn check_features_shape(v: &Value) -> Result<(), String> {
    for k in ["ociVersionMin", "ociVersionMax"] {
        ensure(v[k].is_string(), format!("{k} missing or not a string"))?;
    }
    for k in ["hooks", "mountOptions"] {
        ensure(
            v[k].is_null()
                || v[k]
                    .as_array()
                    .is_some_and(|a| a.iter().all(Value::is_string)),
            format!("{k} is not an array of strings"),
        )?;
    }
    let linux = &v["linux"];
    ensure(
        linux.is_null() || linux.is_object(),
        "linux is not an object",
    )?;
    for k in ["namespaces", "capabilities"] {
        let f = &linux[k];
        ensure(
            f.is_null() || f.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            format!("linux.{k} is not an array of strings"),
        )?;
    }
    for k in ["cgroup", "seccomp", "apparmor", "selinux"] {
        ensure(
            linux[k].is_null() || linux[k].is_object(),
            format!("linux.{k} is not an object"),
        )?;
    }
    Ok(())
}

fn features_case(dir: PathBuf) -> Case {
    Case::custom(
        "schema.features-output",
        "features.md / features-schema.json",
        move |d| {
            if is_old_runc(d) {
                return Verdict::Skip("runc < 1.2 has no `features` command".into());
            }
            let out = match d.runtime.run(&["features"]) {
                Ok(o) => o,
                Err(e) => return Verdict::Fail(e.to_string()),
            };
            if !out.ok() {
                return Verdict::Fail(format!("features failed: {}", out.summary()));
            }
            let v: Value = match serde_json::from_str(&out.stdout) {
                Ok(v) => v,
                Err(e) => return Verdict::Fail(format!("features printed invalid JSON: {e}")),
            };
            if dir.join("features-schema.json").exists() {
                validate(&dir, "features-schema.json", &v)
            } else {
                check_features_shape(&v).into()
            }
        },
    )
}

pub fn cases(ctx: &super::Ctx) -> Vec<Case> {
    let dir = ctx.schema_dir.clone();
    vec![
        spec_case(dir.clone()),
        state_case(dir.clone(), "schema.state.created", "created"),
        state_case(dir.clone(), "schema.state.running", "running"),
        state_case(dir.clone(), "schema.state.stopped", "stopped"),
        features_case(dir),
    ]
}
