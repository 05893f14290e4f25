//! The few xattr calls overlay whiteouts need. Overlay keeps its own xattrs as
//! trusted.overlay.* when mounted by root, and as user.overlay.* with `userxattr` (in
//! a rootless build's user namespace): each mode reads and writes only its own, as
//! the other is ordinary data to that mount (copied up, and never meant for a layer).

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub const OPAQUE: &str = "trusted.overlay.opaque";
pub const USER_OPAQUE: &str = "user.overlay.opaque";
/// A regular file marked as a whiteout (overlay's "xwhiteout", Linux 6.7).
pub const WHITEOUT: &str = "trusted.overlay.whiteout";
pub const USER_WHITEOUT: &str = "user.overlay.whiteout";

/// The opaque-directory xattr of this process's overlays.
pub fn opaque_name() -> &'static str {
    if crate::rootless::in_userns() {
        USER_OPAQUE
    } else {
        OPAQUE
    }
}

/// The xattr marking a whiteout file in this process's overlays.
pub fn whiteout_name() -> &'static str {
    if crate::rootless::in_userns() {
        USER_WHITEOUT
    } else {
        WHITEOUT
    }
}

fn cpath(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))
}

/// fgetxattr on an open file or directory; None if absent.
pub fn fget(fd: &impl AsRawFd, key: &str) -> Option<Vec<u8>> {
    let k = CString::new(key).ok()?;
    let mut buf = vec![0u8; 256];
    // SAFETY: valid descriptor, C string and a buffer of the given length.
    let r = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            k.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (r >= 0).then(|| {
        buf.truncate(r as usize);
        buf
    })
}

/// lgetxattr; None if absent.
pub fn get(path: &Path, name: &str) -> std::io::Result<Option<Vec<u8>>> {
    let p = cpath(path)?;
    let n = CString::new(name).expect("static name");
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a buffer of the given length.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => Ok(None),
            _ => Err(e),
        };
    }
    buf.truncate(r as usize);
    Ok(Some(buf))
}

pub fn set(path: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    let p = cpath(path)?;
    let n = CString::new(name).expect("static name");
    // SAFETY: valid C strings and a buffer of the given length.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

pub fn is_opaque(path: &Path) -> bool {
    matches!(get(path, opaque_name()), Ok(Some(v)) if v == b"y")
}

/// A regular file overlay treats as a whiteout.
pub fn is_whiteout_file(path: &Path) -> bool {
    matches!(get(path, whiteout_name()), Ok(Some(_)))
}
