//! flock(2)-based locks on files in the store.

use crate::error::{IoContext, Result};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::path::Path;

/// Held until dropped.
pub struct Lock {
    _f: Flock<File>,
}

impl Lock {
    fn take(path: &Path, arg: FlockArg) -> Result<Lock> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .at(path)?;
        let f = Flock::lock(f, arg).map_err(|(_, e)| e).at(path)?;
        Ok(Lock { _f: f })
    }
    pub fn shared(path: &Path) -> Result<Lock> {
        Lock::take(path, FlockArg::LockShared)
    }
    pub fn exclusive(path: &Path) -> Result<Lock> {
        Lock::take(path, FlockArg::LockExclusive)
    }
    /// The exclusive lock if nobody holds the file locked now, else an error (EWOULDBLOCK).
    pub fn try_exclusive(path: &Path) -> Result<Lock> {
        Lock::take(path, FlockArg::LockExclusiveNonblock)
    }
}
