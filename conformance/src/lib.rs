//! berth-conformance: an OCI runtime-spec conformance suite that drives any runtime binary
//! with generated bundles and an in-container probe, differential against runc.

pub mod bundle;
pub mod case;
pub mod cases;
pub mod error;
pub mod exec;
pub mod gate;
pub mod host;
pub mod known;
pub mod probe;
pub mod report;
pub mod runtime;
pub mod schema;
