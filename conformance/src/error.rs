//! Typed errors of the harness.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("runtime {runtime}: cannot run `{args}`: {source}")]
    Spawn {
        runtime: PathBuf,
        args: String,
        #[source]
        source: std::io::Error,
    },
    #[error("runtime {runtime}: `{args}` did not finish within {secs}s (killed)")]
    Timeout {
        runtime: PathBuf,
        args: String,
        secs: u64,
    },
    #[error("{what}: invalid JSON: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("bundle setup: {0}")]
    Bundle(String),
    #[error("schema {path}: {msg}")]
    Schema { path: PathBuf, msg: String },
    #[error("{0}")]
    Setup(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach a path to an io::Error.
pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
