//! The shim's errors, and the one place they become ttrpc status codes for containerd.

use containerd_shim::protos::ttrpc::{self, get_status, Code};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The runtime refused; `msg` is its own last error line from `--log`.
    #[error("berth {cmd} failed: {msg}")]
    Runtime { cmd: String, msg: String },
    #[error("starting {binary}: {source} (set BERTH_RUNTIME or the BinaryName runtime option)")]
    Spawn {
        binary: String,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("container {0} not found in this shim")]
    NotFound(String),
    #[error("process {0} not found")]
    ProcessNotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0} is not supported by containerd-shim-berth-v2")]
    Unsupported(&'static str),
    #[error("mounting the rootfs at {target}: {msg}")]
    Mount { target: String, msg: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

/// containerd reads the code (errdefs): NOT_FOUND makes `kill` of an exited task a no-op,
/// FAILED_PRECONDITION and ALREADY_EXISTS become its typed errors.
impl From<Error> for ttrpc::Error {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::NotFound(_) | Error::ProcessNotFound(_) => Code::NOT_FOUND,
            Error::AlreadyExists(_) => Code::ALREADY_EXISTS,
            Error::Precondition(_) => Code::FAILED_PRECONDITION,
            Error::InvalidArgument(_) => Code::INVALID_ARGUMENT,
            Error::Unsupported(_) => Code::UNIMPLEMENTED,
            _ => Code::UNKNOWN,
        };
        ttrpc::Error::RpcStatus(get_status(code, e.to_string()))
    }
}
