//! Protection against overwriting the runtime binary through /proc/self/exe
//! (CVE-2019-5736): before a command that enters a container, berth re-executes itself
//! from a sealed memfd copy, so a container process that reaches our /proc/PID/exe finds
//! a read-only, unlinked in-memory file instead of the binary on disk.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const ENV: &str = "_BERTH_CLONED";

pub fn ensure_cloned() -> crate::Result<()> {
    if std::env::var_os(ENV).is_some() {
        std::env::remove_var(ENV);
        return Ok(());
    }
    let err = |what: &str, e: std::io::Error| {
        crate::Error::Other(format!("clone runtime binary: {what}: {e}"))
    };
    let exe = std::fs::File::open("/proc/self/exe").map_err(|e| err("open /proc/self/exe", e))?;
    let len = exe.metadata().map_err(|e| err("stat", e))?.len();
    // SAFETY: memfd_create with a static name; the descriptor is ours.
    let fd = unsafe {
        libc::memfd_create(
            c"berth".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(err("memfd_create", std::io::Error::last_os_error()));
    }
    // SAFETY: fresh descriptor.
    let mem = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut off = 0u64;
    while off < len {
        // SAFETY: sendfile between two descriptors we own.
        let n = unsafe {
            libc::sendfile(
                mem.as_raw_fd(),
                exe.as_raw_fd(),
                std::ptr::null_mut(),
                (len - off) as usize,
            )
        };
        if n <= 0 {
            return Err(err("copy", std::io::Error::last_os_error()));
        }
        off += n as u64;
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our memfd.
    if unsafe { libc::fcntl(mem.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(err("seal", std::io::Error::last_os_error()));
    }
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_encoded_bytes()).unwrap_or_default())
        .collect();
    let mut env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv).unwrap_or_default()
        })
        .collect();
    env.push(CString::new(format!("{ENV}=1")).unwrap());
    let e = nix::unistd::fexecve(&mem, &args, &env).unwrap_err();
    Err(crate::Error::sys("re-exec sealed runtime copy", e))
}
