//! Linux security modules: the AppArmor profile and SELinux label a container's processes
//! run under (`process.apparmorProfile`, `process.selinuxLabel`, and exec's `--apparmor` /
//! `--process-label`), and the SELinux context of its mounts (`linux.mountLabel`), applied
//! as runc applies them.
//!
//! What happens when the host lacks the LSM is runc's (1.1 and main, checked in its source
//! and on a host without either LSM):
//! - `selinuxLabel` is refused before anything is made (runc's validator: "selinux label
//!   is specified in config, but selinux is disabled or not supported");
//! - `apparmorProfile` is not checked up front: the init writes it and the kernel refuses
//!   the write (EINVAL with no AppArmor, ENOENT for a profile that is not loaded), which
//!   fails create/exec. No host probe decides it, so a host whose securityfs is not mounted
//!   (a nested runtime) still gets its profile applied;
//! - `mountLabel` is added to the mounts' data as runc's label.FormatMountLabel does,
//!   whether or not SELinux is enabled, so without SELinux the kernel refuses the mount.
//!
//! The attributes are written through rootfs::procfs (the container's /proc, checked to be
//! procfs, nothing mounted over the file) to /proc/thread-self: they are per task, and the
//! task that writes them is the one that calls execve.

use crate::error::{Error, Result};
use crate::rootfs::procfs;
use oci_spec::runtime::Process;
use std::path::Path;

const SELINUX_MAGIC: i64 = 0xf97c_ff8c;

/// AppArmor is enabled on this host (runc's apparmor.IsEnabled): its securityfs directory
/// exists and the module's `enabled` parameter is `Y`.
pub fn apparmor_enabled() -> bool {
    Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|b| b.first() == Some(&b'Y'))
}

/// SELinux is enabled on this host (go-selinux's GetEnabled): a writable selinuxfs is
/// mounted and this process's context is not "kernel".
pub fn selinux_enabled() -> bool {
    selinuxfs_mounted()
        && std::fs::read_to_string("/proc/self/attr/current")
            .is_ok_and(|c| c.trim_end_matches(['\0', '\n']) != "kernel")
}

fn selinuxfs_mounted() -> bool {
    let writable_selinuxfs = |p: &str| {
        let Ok(c) = std::ffi::CString::new(p) else {
            return false;
        };
        // SAFETY: all-zero is a valid statfs; `c` and `st` outlive the call.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
            return false;
        }
        if st.f_type as i64 != SELINUX_MAGIC {
            return false;
        }
        // SAFETY: as above, for statvfs (which has the mount flags).
        let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
        unsafe { libc::statvfs(c.as_ptr(), &mut vfs) == 0 && vfs.f_flag & libc::ST_RDONLY == 0 }
    };
    if writable_selinuxfs("/sys/fs/selinux") {
        return true;
    }
    // Elsewhere (old systems mount it on /selinux): the mount table says where.
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| {
        m.lines().any(|l| {
            let mut post = l.split(" - ");
            let (pre, post) = (post.next().unwrap_or(""), post.next().unwrap_or(""));
            post.split(' ').next() == Some("selinuxfs")
                && pre.split(' ').nth(4).is_some_and(&writable_selinuxfs)
        })
    })
}

/// The up-front check runc makes on a process (config.json's, or exec's): a SELinux label
/// needs SELinux. Returns the field and why.
pub fn check_process(p: &Process) -> std::result::Result<(), (String, String)> {
    if let Some(l) = p.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        if !selinux_enabled() {
            return Err((
                "process.selinuxLabel".into(),
                format!("{l:?} is given, but SELinux is disabled or not supported on this host"),
            ));
        }
    }
    Ok(())
}

/// Sets the AppArmor profile and SELinux label the next execve of this task switches to.
/// Called once in the init and in each exec'd process, before seccomp and the identity
/// change (a seccomp profile may forbid the writes, as runc orders it too).
pub fn apply_exec_attrs(p: &Process) -> Result<()> {
    if let Some(name) = p.apparmor_profile().as_deref().filter(|n| !n.is_empty()) {
        apparmor_change_onexec(name)?;
    }
    if let Some(l) = p.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        procfs::write("thread-self/attr/exec", l.as_bytes())
            .map_err(|e| Error::Other(format!("process.selinuxLabel {l:?}: {e}")))?;
    }
    Ok(())
}

/// libapparmor's aa_change_onexec: `exec NAME` into the AppArmor exec attribute, the
/// per-LSM file where the kernel has it (5.8+), else the shared one.
fn apparmor_change_onexec(name: &str) -> Result<()> {
    let rel = if Path::new("/proc/thread-self/attr/apparmor/exec").exists() {
        "thread-self/attr/apparmor/exec"
    } else {
        "thread-self/attr/exec"
    };
    procfs::write(rel, format!("exec {name}").as_bytes()).map_err(|e| {
        // procfs::write keeps the error's kind (not its errno) under its message.
        let hint = match e.kind() {
            // The host's securityfs is not in the container: a question, not a verdict.
            std::io::ErrorKind::InvalidInput => " (is AppArmor enabled on this host?)",
            std::io::ErrorKind::NotFound => " (is the profile loaded?)",
            _ => "",
        };
        Error::Other(format!("process.apparmorProfile {name:?}: {e}{hint}"))
    })
}

/// runc's label.FormatMountLabel: the mount data with `context="LABEL"` added.
pub fn format_mount_label(data: Option<&str>, label: Option<&str>) -> Option<String> {
    match (
        data.filter(|d| !d.is_empty()),
        label.filter(|l| !l.is_empty()),
    ) {
        (d, None) => d.map(str::to_string),
        (None, Some(l)) => Some(format!("context=\"{l}\"")),
        (Some(d), Some(l)) => Some(format!("{d},context=\"{l}\"")),
    }
}

/// Mount types whose data gets the mount label, as runc's mountToRootfs: not proc and
/// sysfs (mounted unlabelled), mqueue (labelled with an xattr instead), cgroup (its own
/// path) or bind mounts (the kernel ignores their data).
pub fn takes_context(typ: &str) -> bool {
    !matches!(
        typ,
        "proc" | "sysfs" | "mqueue" | "cgroup" | "cgroup2" | "bind"
    )
}

/// runc's label.SetFileLabel for mqueue: the mount's root (through its fd link, followed) gets the label as its
/// security.selinux attribute, only where SELinux is enabled.
pub fn label_file(fd_path: &str, label: Option<&str>) -> Result<()> {
    let Some(l) = label.filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    if !selinux_enabled() {
        return Ok(());
    }
    let (p, v) = (
        std::ffi::CString::new(fd_path).map_err(|_| Error::Other(fd_path.into()))?,
        std::ffi::CString::new(l)
            .map_err(|_| Error::Other(format!("linux.mountLabel {l:?}: contains NUL")))?,
    );
    // SAFETY: valid NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::setxattr(
            p.as_ptr(),
            c"security.selinux".as_ptr(),
            v.as_ptr().cast(),
            l.len(),
            0,
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        return Err(Error::Other(format!("linux.mountLabel {l:?}: {e}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_label_is_formatted_as_runc() {
        let l = Some("system_u:object_r:container_file_t:s0:c1,c2");
        assert_eq!(
            format_mount_label(Some("mode=755,size=65536k"), l).as_deref(),
            Some("mode=755,size=65536k,context=\"system_u:object_r:container_file_t:s0:c1,c2\"")
        );
        assert_eq!(
            format_mount_label(None, l).as_deref(),
            Some("context=\"system_u:object_r:container_file_t:s0:c1,c2\"")
        );
        assert_eq!(format_mount_label(Some(""), l), format_mount_label(None, l));
        assert_eq!(
            format_mount_label(Some("a=1"), None).as_deref(),
            Some("a=1")
        );
        assert_eq!(
            format_mount_label(Some("a=1"), Some("")).as_deref(),
            Some("a=1")
        );
        assert_eq!(format_mount_label(None, None), None);
    }

    #[test]
    fn which_mounts_take_the_label() {
        for t in ["tmpfs", "devpts", "overlay", "ramfs"] {
            assert!(takes_context(t), "{t}");
        }
        for t in ["proc", "sysfs", "mqueue", "cgroup", "bind"] {
            assert!(!takes_context(t), "{t}");
        }
    }

    #[test]
    fn host_probes_agree_with_the_kernel() {
        // AppArmor enabled <=> its securityfs directory; SELinux <=> selinuxfs.
        assert_eq!(
            apparmor_enabled(),
            Path::new("/sys/kernel/security/apparmor").exists()
        );
        if !Path::new("/sys/fs/selinux").exists() && !selinuxfs_mounted() {
            assert!(!selinux_enabled());
        }
    }
}
