//! Applying a `process` object in the container, shared by the init and by exec:
//! rlimits, oom_score_adj, user and groups, capabilities, no_new_privs, cwd, and the
//! final execve. Runs in a single-threaded forked child, just before exec.

use crate::error::{Context, Error, Result};
use crate::security::caps;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{PosixRlimitType as R, Process};
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn rlimit_resource(t: R) -> Option<libc::__rlimit_resource_t> {
    Some(match t {
        R::RlimitCpu => libc::RLIMIT_CPU,
        R::RlimitFsize => libc::RLIMIT_FSIZE,
        R::RlimitData => libc::RLIMIT_DATA,
        R::RlimitStack => libc::RLIMIT_STACK,
        R::RlimitCore => libc::RLIMIT_CORE,
        R::RlimitRss => libc::RLIMIT_RSS,
        R::RlimitNproc => libc::RLIMIT_NPROC,
        R::RlimitNofile => libc::RLIMIT_NOFILE,
        R::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        R::RlimitAs => libc::RLIMIT_AS,
        R::RlimitLocks => libc::RLIMIT_LOCKS,
        R::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        R::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        R::RlimitNice => libc::RLIMIT_NICE,
        R::RlimitRtprio => libc::RLIMIT_RTPRIO,
        R::RlimitRttime => libc::RLIMIT_RTTIME,
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

pub fn apply_rlimits(p: &Process) -> Result<()> {
    for (i, rl) in p.rlimits().iter().flatten().enumerate() {
        let field = format!("process.rlimits[{i}]");
        let res = rlimit_resource(rl.typ())
            .ok_or_else(|| Error::Other(format!("{field}: unsupported type")))?;
        if rl.soft() > rl.hard() {
            return Err(Error::Other(format!(
                "{field}: soft limit {} is above hard limit {}",
                rl.soft(),
                rl.hard()
            )));
        }
        let lim = libc::rlimit {
            rlim_cur: rl.soft(),
            rlim_max: rl.hard(),
        };
        // SAFETY: setrlimit with a valid struct.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            let e = std::io::Error::last_os_error();
            let hint = if e.raw_os_error() == Some(libc::EPERM) {
                " (raising a hard limit needs CAP_SYS_RESOURCE, which this runtime lacks)"
            } else {
                ""
            };
            return Err(Error::Other(format!(
                "{field} ({:?} {}/{}): {e}{hint}",
                rl.typ(),
                rl.soft(),
                rl.hard()
            )));
        }
    }
    Ok(())
}

pub fn apply_oom_score_adj(p: &Process) -> Result<()> {
    let Some(v) = p.oom_score_adj() else {
        return Ok(());
    };
    crate::rootfs::procfs::write("self/oom_score_adj", v.to_string().as_bytes()).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            " (lowering it needs CAP_SYS_RESOURCE, which this runtime lacks)"
        } else {
            ""
        };
        Error::Other(format!("process.oomScoreAdj {v}: {e}{hint}"))
    })
}

/// When a seccomp profile is loaded. runtime-spec wants it last, after capabilities and
/// no_new_privs; without no_new_privs loading needs CAP_SYS_ADMIN, so then it is loaded
/// before the capabilities are dropped (as runc does). A profile with notify rules is
/// loaded while the parent still listens (before Ready), which must pass its listener fd on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SeccompAt {
    BeforeIdentity,
    BeforeReady,
    Last,
}

pub struct Seccomp {
    pub spec: oci_spec::runtime::LinuxSeccomp,
    compiled: crate::security::seccomp::Compiled,
    pub at: SeccompAt,
}

pub fn prepare_seccomp(
    s: Option<&oci_spec::runtime::LinuxSeccomp>,
    p: &Process,
) -> Result<Option<Seccomp>> {
    let Some(s) = s else { return Ok(None) };
    let compiled = crate::security::seccomp::compile(s)?;
    let at = if p.no_new_privileges() != Some(true) {
        SeccompAt::BeforeIdentity
    } else if compiled.notify.is_some() {
        SeccompAt::BeforeReady
    } else {
        SeccompAt::Last
    };
    Ok(Some(Seccomp {
        spec: s.clone(),
        compiled,
        at,
    }))
}

/// Loads the profile if `at` is its moment; the notify listener fd if it has one.
pub fn load_seccomp(s: &Option<Seccomp>, at: SeccompAt) -> Result<Option<OwnedFd>> {
    match s {
        Some(s) if s.at == at => crate::security::seccomp::load(&s.spec, &s.compiled),
        _ => Ok(None),
    }
}

/// Bounding set, then groups/gid/uid (keeping capabilities across the switch), then the
/// other capability sets, then no_new_privs.
pub fn apply_identity(p: &Process) -> Result<()> {
    let c = p.capabilities().as_ref();
    caps::apply_bounding(c)?;
    let u = p.user();
    // Checked at load too; here as well because -1 would mean "keep uid 0" to setresuid.
    crate::config::check_user(u).map_err(|(f, m)| Error::Other(format!("{f}: {m}")))?;
    nix::sys::prctl::set_keepcaps(true).ctx(|| "prctl(PR_SET_KEEPCAPS)".into())?;
    let groups: Vec<Gid> = u
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    if let Err(e) = nix::unistd::setgroups(&groups) {
        // In a user namespace with setgroups denied only an empty list can be refused too.
        if !groups.is_empty() || e != nix::Error::EPERM {
            return Err(Error::sys(
                format!("process.user.additionalGids {:?}", u.additional_gids()),
                e,
            ));
        }
    }
    let (g, uid) = (Gid::from_raw(u.gid()), Uid::from_raw(u.uid()));
    nix::unistd::setresgid(g, g, g).ctx(|| format!("process.user.gid {}", u.gid()))?;
    nix::unistd::setresuid(uid, uid, uid).ctx(|| format!("process.user.uid {}", u.uid()))?;
    nix::sys::prctl::set_keepcaps(false).ctx(|| "prctl(PR_SET_KEEPCAPS)".into())?;
    caps::apply_sets(c)?;
    if p.no_new_privileges() == Some(true) {
        nix::sys::prctl::set_no_new_privs().ctx(|| "process.noNewPrivileges".into())?;
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        u.umask().unwrap_or(0o022) as libc::mode_t,
    ));
    Ok(())
}

/// chdir into process.cwd, resolved with the container's root as `/` and no magic links, so
/// a host directory descriptor leaked into the runtime and named as /proc/self/fd/N
/// (CVE-2024-21626) is refused before anything is made. The init (`create`) makes a missing
/// cwd inside the container, as runc does; exec does not, as runc does not.
pub fn enter_cwd(p: &Process, create: bool) -> Result<()> {
    let cwd = p.cwd();
    let err =
        |e: &dyn std::fmt::Display| Error::Other(format!("process.cwd {}: {e}", cwd.display()));
    let root = crate::rootfs::paths::Root::open("/")?;
    let dir = match root.resolve(cwd) {
        Ok(fd) => fd,
        Err(e) if create && e.raw_os_error() == Some(libc::ENOENT) => {
            root.mkdir_all(cwd, 0o755).map_err(|e| err(&e.source))?
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(err(
                &"resolves through a magic link (outside the container root)",
            ))
        }
        Err(e) => return Err(err(&e)),
    };
    nix::unistd::fchdir(&dir).map_err(|e| err(&e))?;
    let now = nix::unistd::getcwd().ctx(|| "getcwd".into())?;
    if !now.is_absolute() || now.starts_with("(unreachable)") {
        return Err(err(&"resolves outside the container root"));
    }
    Ok(())
}

/// The program path, argv and envp for execve, looked up in the container's PATH.
pub struct Exec {
    pub path: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
}

pub fn prepare_exec(p: &Process) -> Result<Exec> {
    let args = p.args().clone().unwrap_or_default();
    let mut env: Vec<String> = p.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(p.user().uid())));
    }
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    // Checked when the config is read; an error here all the same, never a panic in init.
    let arg0 = args
        .first()
        .ok_or_else(|| Error::Other("process.args: must name the program to run".into()))?;
    let prog = lookup(arg0, &path_var).ok_or_else(|| {
        Error::Other(format!(
            "process.args[0] {arg0:?}: executable file not found in the container (PATH={path_var})"
        ))
    })?;
    let c = |s: &str| CString::new(s).map_err(|_| Error::Other(format!("NUL byte in {s:?}")));
    Ok(Exec {
        path: CString::new(prog.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::Other("NUL in path".into()))?,
        argv: args.iter().map(|a| c(a)).collect::<Result<_>>()?,
        envp: env.iter().map(|e| c(e)).collect::<Result<_>>()?,
    })
}

/// The program's path. This runs under a seccomp profile loaded before the identity switch,
/// so it uses stat(2) (newfstatat) and access(2), which every profile allows, and not std's
/// metadata: std keeps using statx once the runtime has seen it work (before the fork), and
/// profiles older than statx (runtime-tools' v0.9 default) refuse it with EPERM: every
/// program was "not found" where runc, which stats with newfstatat, runs it.
fn lookup(prog: &str, path_var: &str) -> Option<PathBuf> {
    let executable = |p: &Path| {
        nix::sys::stat::stat(p).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
            && nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok()
    };
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        return executable(&p).then_some(p);
    }
    path_var
        .split(':')
        .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(prog))
        .find(|p| executable(p))
}

/// HOME from the container's /etc/passwd, "/" when the user has no entry.
fn home_of(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && f[2].parse() == Ok(uid))
        .map(|f| f[5].to_string())
        .unwrap_or_else(|| "/".into())
}

/// execve; returns only on failure.
pub fn exec(e: &Exec) -> Error {
    match nix::unistd::execve(&e.path, &e.argv, &e.envp) {
        Err(err) => Error::sys(format!("exec {:?}", e.path), err),
        Ok(never) => match never {},
    }
}
