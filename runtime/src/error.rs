//! One error type for the runtime library. Every variant names what failed (a path, an id,
//! a config field) so the CLI can print a single line that tells the user what to fix.

use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {errno}")]
    Sys { what: String, errno: nix::Error },
    #[error("config {file}: {field}: {msg}")]
    Config {
        file: PathBuf,
        field: String,
        msg: String,
    },
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container {0:?} already exists")]
    Exists(String),
    #[error(
        "invalid container id {0:?}: use letters, digits, '_', '-', '.' (not starting with '.')"
    )]
    BadId(String),
    #[error("container {id}: {msg}")]
    State { id: String, msg: String },
    #[error("{0}")]
    Child(String),
    #[error("hook {stage}[{index}] {path}: {msg}")]
    Hook {
        stage: String,
        index: usize,
        path: PathBuf,
        msg: String,
    },
    /// The freezer did not reach `state` in time (then a freeze is undone: thawed).
    #[error("cgroup {path}: freezer did not reach {state} within {ms} ms")]
    FreezeTimeout {
        path: PathBuf,
        state: &'static str,
        ms: u64,
    },
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub fn sys(what: impl Into<String>, errno: nix::Error) -> Self {
        Error::Sys {
            what: what.into(),
            errno,
        }
    }
    pub fn state(id: &str, msg: impl Into<String>) -> Self {
        Error::State {
            id: id.to_string(),
            msg: msg.into(),
        }
    }
}

/// The in-root resolver's errors name the host path they failed on.
impl From<berth_common::inroot::Error> for Error {
    fn from(e: berth_common::inroot::Error) -> Self {
        Error::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// Adds "what was being done" to low-level errors.
pub trait Context<T> {
    fn ctx<F: FnOnce() -> String>(self, what: F) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn ctx<F: FnOnce() -> String>(self, what: F) -> Result<T> {
        self.map_err(|e| Error::sys(what(), e))
    }
}

impl<T> Context<T> for std::io::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, what: F) -> Result<T> {
        self.map_err(|e| Error::io(what(), e))
    }
}
