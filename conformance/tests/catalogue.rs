//! The case catalogue itself: enough cases, unique names, every case names a spec section,
//! and every known explanation refers to a real case.

use berth_conformance::cases::{all, Ctx};
use berth_conformance::known::KNOWN;
use std::collections::BTreeSet;

fn names() -> Vec<(String, &'static str)> {
    let ctx = Ctx {
        schema_dir: berth_conformance::schema::DEFAULT_SCHEMA_DIR.into(),
    };
    all(&ctx).into_iter().map(|c| (c.name, c.section)).collect()
}

#[test]
fn at_least_150_distinct_cases() {
    let list = names();
    let set: BTreeSet<&String> = list.iter().map(|(n, _)| n).collect();
    assert_eq!(set.len(), list.len(), "duplicate case names");
    assert!(list.len() >= 150, "only {} cases", list.len());
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
