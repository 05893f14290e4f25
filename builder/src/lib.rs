//! berth-build: Dockerfile → OCI image, daemonless, cached and reproducible.
//!
//! Module map: `dockerfile` (lexer, parser, AST, variable expansion), `plan` (stages,
//! cache keys, .dockerignore), `layer` (diff → tar, whiteouts, compression, unpack),
//! `store` (OCI image layout, index, locking, gc, archives), `exec` (RUN steps as OCI
//! bundles run by an OCI runtime binary), `build` (the step executor), `rootless` (the
//! user namespace of an ordinary user's build), `cli`.

pub mod build;
pub mod buildcache;
pub mod bundle;
pub mod cli;
pub mod digest;
pub mod dockerfile;
pub mod error;
pub mod exec;
pub mod layer;
pub mod network;
pub mod plan;
pub mod registry;
pub mod rootless;
pub mod store;
pub mod timefmt;

pub use error::{Error, Result};
