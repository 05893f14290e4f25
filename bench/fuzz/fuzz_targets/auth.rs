//! A registry's `WWW-Authenticate` challenge (a stranger's header): parsed without a panic,
//! and a Bearer challenge always carries its realm.
#![no_main]
use berth_builder::registry::auth::{parse_challenge, Challenge};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(h) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(Challenge::Bearer { realm, .. }) = parse_challenge(h) {
        assert!(h.contains(realm.as_str()), "realm {realm:?} not in {h:?}");
    }
});
