//! The schema validator resolves the runtime-spec schemas' relative $refs offline and
//! really rejects bad documents.

use berth_conformance::schema::{available, validate, DEFAULT_SCHEMA_DIR};
use serde_json::json;
use std::path::Path;

#[test]
fn state_schema_accepts_good_and_rejects_bad() {
    let dir = Path::new(DEFAULT_SCHEMA_DIR);
    if !available(dir) {
        eprintln!(
            "skipping: {DEFAULT_SCHEMA_DIR} not installed (golang-github-opencontainers-specs-dev)"
        );
        return;
    }
    let good =
        json!({"ociVersion": "1.0.2", "id": "x", "status": "created", "pid": 4, "bundle": "/b"});
    assert_eq!(
        validate(dir, "state-schema.json", &good).expect("validates"),
        Vec::<String>::new()
    );
    let bad = json!({"ociVersion": "1.0.2", "status": "created", "pid": "four", "bundle": "/b"});
    let errs = validate(dir, "state-schema.json", &bad).expect("validates");
    assert!(
        errs.len() >= 2,
        "expected missing id and bad pid, got {errs:?}"
    );
}

#[test]
fn config_schema_follows_refs_into_defs_files() {
    let dir = Path::new(DEFAULT_SCHEMA_DIR);
    if !available(dir) {
        return;
    }
    // linux.namespaces[].type is defined in defs-linux.json, reached through config-linux.json.
    let cfg = json!({"ociVersion": "1.0.2", "root": {"path": "rootfs"},
                     "linux": {"namespaces": [{"type": "not-a-namespace"}]}});
    let errs = validate(dir, "config-schema.json", &cfg).expect("validates");
    assert!(!errs.is_empty(), "a bad namespace type passed the schema");
}
