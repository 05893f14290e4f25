//! What `lstat`/`fstat` say of an entry, for the in-root resolver's callers.

use super::check;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// What `lstat` says of an entry.
#[derive(Clone, Copy)]
pub struct Stat(pub libc::stat);

impl Stat {
    pub(super) fn of(fd: RawFd, name: &CString, flags: libc::c_int) -> io::Result<Stat> {
        // SAFETY: all-zero is a valid libc::stat; the kernel fills it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `name` is NUL-terminated and `st` outlives the call.
        check(unsafe { libc::fstatat(fd, name.as_ptr(), &mut st, flags) })?;
        Ok(Stat(st))
    }
    pub fn file_type(&self) -> u32 {
        self.0.st_mode & libc::S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }
    pub fn is_file(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }
    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }
    /// Permission bits with setuid, setgid and sticky.
    pub fn mode(&self) -> u32 {
        self.0.st_mode & 0o7777
    }
    pub fn uid(&self) -> u32 {
        self.0.st_uid
    }
    pub fn gid(&self) -> u32 {
        self.0.st_gid
    }
    pub fn size(&self) -> u64 {
        self.0.st_size as u64
    }
    pub fn rdev(&self) -> u64 {
        self.0.st_rdev
    }
    pub fn dev(&self) -> u64 {
        self.0.st_dev
    }
    pub fn ino(&self) -> u64 {
        self.0.st_ino
    }
    pub fn nlink(&self) -> u64 {
        self.0.st_nlink
    }
    pub fn mtime(&self) -> (i64, i64) {
        (self.0.st_mtime, self.0.st_mtime_nsec)
    }
}

/// fstat of any descriptor (O_PATH included).
pub fn fstat(fd: &impl AsRawFd) -> io::Result<Stat> {
    Stat::of(fd.as_raw_fd(), &CString::default(), libc::AT_EMPTY_PATH)
}
