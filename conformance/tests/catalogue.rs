//! The case catalogue itself: enough cases, unique names, every case names a spec section,
//! and every known explanation refers to a real case.

use berth_conformance::case::{Body, Outcome};
use berth_conformance::cases::{all, Ctx};
use berth_conformance::known::KNOWN;
use berth_conformance::runtime::CmdOut;
use std::collections::BTreeSet;

fn names() -> Vec<(String, &'static str)> {
    let ctx = Ctx {
        schema_dir: berth_conformance::schema::DEFAULT_SCHEMA_DIR.into(),
    };
    all(&ctx).into_iter().map(|c| (c.name, c.section)).collect()
}

#[test]
fn case_names_are_unique() {
    let list = names();
    let set: BTreeSet<&String> = list.iter().map(|(n, _)| n).collect();
    assert_eq!(set.len(), list.len(), "duplicate case names");
}

/// An outcome in which the runtime did everything and the probe reported nothing.
fn ran_and_saw_nothing() -> Outcome {
    let ok = || CmdOut {
        code: Some(0),
        ..Default::default()
    };
    Outcome {
        create: ok(),
        start: Some(ok()),
        stopped: true,
        probe: Some(serde_json::json!({})),
        delete: Some(ok()),
        gone_after_delete: true,
        ..Default::default()
    }
}

/// Every probe case asserts something: its check fails when nothing happened (create never
/// ran), and fails when the container ran but the probe observed nothing, except the cases
/// whose whole point is that the container runs (listed, each with why).
#[test]
fn every_case_asserts_something() {
    // The cases whose assertion is that the container runs at all (and the probe ran in it).
    const RUNNING_IS_THE_POINT: &[(&str, &str)] = &[
        (
            "root.path.absolute",
            "an absolute root.path must work as a relative one does",
        ),
        (
            "process.args.path-lookup",
            "args[0] without a slash is found on the config's PATH",
        ),
        (
            "process.capabilities.ungrantable.no-fail",
            "an unknown capability is ignored, not fatal",
        ),
        (
            "maskedPaths.missing-ignored",
            "a masked path absent from the rootfs is not an error",
        ),
        (
            "readonlyPaths.missing-ignored",
            "a read-only path absent from the rootfs is not an error",
        ),
        (
            "cgroups.memory.kernel",
            "deprecated: create must not fail; the value is checked where the kernel keeps it",
        ),
    ];
    let ctx = Ctx {
        schema_dir: berth_conformance::schema::DEFAULT_SCHEMA_DIR.into(),
    };
    let mut empty = Vec::new();
    for case in all(&ctx) {
        let Body::Probe { check, .. } = &case.body else {
            continue;
        };
        if check(&Outcome::default()).is_ok() {
            empty.push(format!("{} (passes when create never ran)", case.name));
        }
        if check(&ran_and_saw_nothing()).is_ok()
            && !RUNNING_IS_THE_POINT.iter().any(|(n, _)| *n == case.name)
        {
            empty.push(format!("{} (passes on an empty probe report)", case.name));
        }
    }
    assert!(
        empty.is_empty(),
        "cases that check nothing:\n{}",
        empty.join("\n")
    );
}

#[test]
fn every_case_names_a_spec_section() {
    for (name, section) in names() {
        assert!(
            section.contains(".md"),
            "{name}: section {section:?} names no spec document"
        );
    }
}

#[test]
fn known_explanations_name_real_cases() {
    let list: BTreeSet<String> = names().into_iter().map(|(n, _)| n).collect();
    for (case, why) in KNOWN {
        assert!(
            list.contains(*case),
            "known explanation for unknown case {case}"
        );
        assert!(!why.is_empty());
    }
}
