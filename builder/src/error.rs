//! The crate error: every variant names the path, line or reference involved.

use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Dockerfile(#[from] crate::dockerfile::ParseError),
    #[error("image {0:?}: not found in the store")]
    ImageNotFound(String),
    #[error("{what}: {why}")]
    Invalid { what: String, why: String },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Build(String),
    #[error(transparent)]
    Rootless(#[from] crate::rootless::RootlessError),
}

impl Error {
    pub fn invalid(what: impl Into<String>, why: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            why: why.into(),
        }
    }
}

/// The in-root resolver's errors name the host path they were about.
impl From<berth_common::inroot::Error> for Error {
    fn from(e: berth_common::inroot::Error) -> Self {
        Error::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// Attach a path to an io::Error.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::Io {
            path: path.into(),
            source: std::io::Error::from(e),
        })
    }
}
