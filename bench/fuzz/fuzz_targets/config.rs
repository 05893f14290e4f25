//! config.json → parse (with the runtime's lenient rewrites) → validate → seccomp compile,
//! and the same bytes as an `exec --process` document: what `berth create`/`exec` check
//! before touching the system. Any panic or abort is a bug.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let file = Path::new("config.json");
    if let Ok(spec) = berth::config::parse_bytes(data, file) {
        if berth::config::validate(&spec, file).is_ok() {
            if let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
                let _ = berth::security::seccomp::unknown_names(s);
                let _ = berth::security::seccomp::warnings(s);
                let _ = berth::security::seccomp::compile(s);
            }
        }
    }
    let _ = berth::config::parse_process(data, Path::new("process.json"));
});
