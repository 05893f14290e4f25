//! linux.seccomp compiled to classic BPF with seccompiler (pure Rust, no libseccomp).
//!
//! seccompiler builds filters with one match action and one mismatch action, while an OCI
//! profile gives each syscall rule its own action. We therefore load a stack of filters,
//! relying on the kernel taking the most severe verdict of all loaded filters:
//! - a base filter: every syscall named by any rule → ALLOW, anything else → defaultAction;
//! - one filter per other action (ERRNO(n), KILL, TRAP, LOG, TRACE(n)): its rules → that
//!   action, anything else → ALLOW.
//!
//! A named syscall thus gets its rule's action, and an unnamed one the default.
//!
//! SCMP_ACT_NOTIFY: seccompiler has no user-notification action, so notify rules are
//! compiled as TRACE with a marker value in their own filter, whose marked RET
//! instructions are then rewritten to SECCOMP_RET_USER_NOTIF. That filter is loaded with
//! SECCOMP_FILTER_FLAG_NEW_LISTENER; the listener fd goes to `linux.seccomp.listenerPath`.
//!
//! Only the native ABI is filtered. seccompiler's filters kill a process making a system call
//! through another audit arch (i386, `int 0x80`), and an x32 guard loaded first does the same
//! for x32 numbers (bit 30 set, same audit arch), which would otherwise slip past rules keyed
//! on x86_64 numbers where the kernel has the x32 ABI. `warnings` says so when the profile
//! lists SCMP_ARCH_X86 or SCMP_ARCH_X32; `unknown_names` names the syscalls it skips (debug log).

use super::syscalls_x86_64::X86_64;
use crate::error::{Error, Result};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction as A, LinuxSeccompOperator as Op, LinuxSyscall,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const EPERM: u32 = 1;
const ENOSYS: u32 = libc::ENOSYS as u32;
/// TRACE data marking a notify rule until its RET is rewritten (16 bits: SECCOMP_RET_DATA).
const NOTIFY_MARK: u32 = 0xb3e7;
const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: u64 = 8;

/// The filters to load, in order; `notify` is the index of the one with notify rules.
pub struct Compiled {
    pub progs: Vec<BpfProgram>,
    pub notify: Option<usize>,
}

fn syscall_nr(name: &str) -> Option<i64> {
    X86_64.iter().find(|(n, _)| *n == name).map(|(_, nr)| *nr)
}

/// Syscall names unknown on x86_64, skipped as the runtime-spec allows, in one line for the
/// debug log: docker's and containerd's default profiles list dozens of 32-bit names, so
/// they are normal and not worth a warning on every create.
pub fn unknown_names(s: &LinuxSeccomp) -> Option<String> {
    let unknown: BTreeSet<&str> = s
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|sc| sc.names())
        .map(String::as_str)
        .filter(|n| syscall_nr(n).is_none())
        .collect();
    (!unknown.is_empty()).then(|| {
        format!(
            "linux.seccomp.syscalls: {} name(s) unknown on x86_64 skipped: {}",
            unknown.len(),
            unknown.into_iter().collect::<Vec<_>>().join(", ")
        )
    })
}

/// What the profile asks that berth does not do, for the user to see once at create:
/// architectures other than x86_64 (not filtered: their system calls kill the process).
pub fn warnings(s: &LinuxSeccomp) -> Vec<String> {
    let mut out = Vec::new();
    let others: Vec<String> = s
        .architectures()
        .iter()
        .flatten()
        .filter_map(|a| serde_json::to_value(a).ok()?.as_str().map(String::from))
        .filter(|a| a != "SCMP_ARCH_X86_64" && a != "SCMP_ARCH_NATIVE")
        .collect();
    if !others.is_empty() {
        out.push(format!(
            "linux.seccomp.architectures: only SCMP_ARCH_X86_64 is filtered; a process making system calls as {} is killed, not filtered",
            others.join(", ")
        ));
    }
    out
}

/// runc's ENOSYS stub (patchbpf): an x86_64 syscall numbered above every one the profile
/// names is newer than the profile, so it gets ENOSYS and not the default action, and a
/// newer libc falls back (clone3 to clone, faccessat2 to faccessat) instead of failing.
/// Prepended to the default action's filter; other architectures fall through to it.
fn enosys_stub(last: i64) -> BpfProgram {
    use seccompiler::sock_filter;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    let ins = |code: u16, jt: u8, jf: u8, k: u32| sock_filter { code, jt, jf, k };
    vec![
        ins(0x20, 0, 0, 4),                 // ld seccomp_data.arch
        ins(0x15, 0, 3, AUDIT_ARCH_X86_64), // jeq x86_64, else to the filter
        ins(0x20, 0, 0, 0),                 // ld seccomp_data.nr
        ins(0x25, 0, 1, last as u32),       // jgt last, else to the filter
        ins(0x06, 0, 0, libc::SECCOMP_RET_ERRNO | ENOSYS),
    ]
}

/// Kills a process making an x32 system call (x86_64 audit arch, number with bit 30 set);
/// anything else is left to the filters after it. See the module comment.
fn x32_guard() -> BpfProgram {
    use seccompiler::sock_filter;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let ins = |code: u16, jt: u8, jf: u8, k: u32| sock_filter { code, jt, jf, k };
    vec![
        ins(0x20, 0, 0, 4),                 // ld seccomp_data.arch
        ins(0x15, 0, 3, AUDIT_ARCH_X86_64), // jeq x86_64, else allow
        ins(0x20, 0, 0, 0),                 // ld seccomp_data.nr
        ins(0x35, 0, 1, X32_SYSCALL_BIT),   // jge x32 bit, else allow
        ins(0x06, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        ins(0x06, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}

fn action(a: A, errno: Option<u32>, default_errno: Option<u32>) -> Result<SeccompAction> {
    Ok(match a {
        A::ScmpActAllow => SeccompAction::Allow,
        A::ScmpActErrno => SeccompAction::Errno(errno.or(default_errno).unwrap_or(EPERM)),
        A::ScmpActKill | A::ScmpActKillThread => SeccompAction::KillThread,
        A::ScmpActKillProcess => SeccompAction::KillProcess,
        A::ScmpActTrap => SeccompAction::Trap,
        A::ScmpActLog => SeccompAction::Log,
        A::ScmpActTrace if errno == Some(NOTIFY_MARK) => {
            return Err(Error::Other(format!(
                "SCMP_ACT_TRACE with errnoRet {NOTIFY_MARK} is reserved by berth"
            )))
        }
        A::ScmpActTrace => SeccompAction::Trace(errno.unwrap_or(0)),
        A::ScmpActNotify => SeccompAction::Trace(NOTIFY_MARK),
    })
}

/// The rules of one syscall entry: none (match always), one with every condition ANDed, or,
/// when an argument index repeats, one per condition (ORed), as runc 1.1 adds them ("revert
/// to old behavior": libseccomp cannot AND two conditions on one argument).
fn rules(s: &LinuxSyscall, field: &str) -> Result<Vec<SeccompRule>> {
    let Some(conds) = conditions(s, field)? else {
        return Ok(vec![]);
    };
    let mut seen = std::collections::HashSet::new();
    let repeats = conds.iter().any(|(idx, _)| !seen.insert(*idx));
    let groups: Vec<Vec<SeccompCondition>> = match repeats {
        true => conds.into_iter().map(|(_, c)| vec![c]).collect(),
        false => vec![conds.into_iter().map(|(_, c)| c).collect()],
    };
    groups
        .into_iter()
        .map(|g| SeccompRule::new(g).map_err(|e| Error::Other(format!("{field}.args: {e}"))))
        .collect()
}

/// The entry's argument conditions with their argument index; None without any.
fn conditions(s: &LinuxSyscall, field: &str) -> Result<Option<Vec<(u64, SeccompCondition)>>> {
    let Some(args) = s.args().as_ref().filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let mut conds = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let (op, value) = match a.op() {
            Op::ScmpCmpEq => (SeccompCmpOp::Eq, a.value()),
            Op::ScmpCmpNe => (SeccompCmpOp::Ne, a.value()),
            Op::ScmpCmpLt => (SeccompCmpOp::Lt, a.value()),
            Op::ScmpCmpLe => (SeccompCmpOp::Le, a.value()),
            Op::ScmpCmpGt => (SeccompCmpOp::Gt, a.value()),
            Op::ScmpCmpGe => (SeccompCmpOp::Ge, a.value()),
            // (arg & value) == valueTwo
            Op::ScmpCmpMaskedEq => (
                SeccompCmpOp::MaskedEq(a.value()),
                a.value_two().unwrap_or(0),
            ),
        };
        let c = SeccompCondition::new(a.index() as u8, SeccompCmpArgLen::Qword, op, value)
            .map_err(|e| Error::Other(format!("{field}.args[{i}]: {e}")))?;
        conds.push((a.index() as u64, c));
    }
    Ok(Some(conds))
}

type Rules = BTreeMap<i64, Vec<SeccompRule>>;

/// Rules per syscall; an unconditional rule makes the syscall match whatever its arguments.
#[derive(Default)]
struct RuleSet {
    cond: Rules,
    always: std::collections::BTreeSet<i64>,
}

impl RuleSet {
    /// `rs` empty: the syscall matches whatever its arguments.
    fn add(&mut self, nr: i64, rs: &[SeccompRule]) {
        if rs.is_empty() {
            self.always.insert(nr);
            return;
        }
        self.cond.entry(nr).or_default().extend(rs.iter().cloned());
    }
    /// seccompiler's form: an empty rule list means "always".
    fn into_rules(mut self) -> Rules {
        for nr in &self.always {
            self.cond.insert(*nr, vec![]);
        }
        self.cond
    }
}

/// Compiles the profile into the filters to load, in order.
pub fn compile(s: &LinuxSeccomp) -> Result<Compiled> {
    let def = action(s.default_action(), s.default_errno_ret(), None)?;
    let notify = SeccompAction::Trace(NOTIFY_MARK);
    if def == notify {
        // One listener per filter chain: notify as the default and in rules would need two.
        return Err(Error::Other(
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY as the default action is not supported"
                .into(),
        ));
    }
    let mut allow = RuleSet::default();
    // The highest syscall number the profile names, for the ENOSYS stub.
    let mut last: Option<i64> = None;
    let mut groups: Vec<(SeccompAction, RuleSet)> = Vec::new();
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        // A rule's errnoRet defaults to EPERM (runtime-spec, and runc), not to defaultErrnoRet.
        let act = action(sc.action(), sc.errno_ret(), None)
            .map_err(|e| Error::Other(format!("{field}.action: {e}")))?;
        if act == notify && sc.names().iter().any(|n| n == "write") {
            // The init writes the listener to its parent after loading the filter: a notified
            // write would deadlock it. runc 1.1 refuses this with the same words.
            return Err(Error::Other(format!(
                "{field}: SCMP_ACT_NOTIFY cannot be used for the write syscall"
            )));
        }
        let r = rules(sc, &field)?;
        let pos = match groups.iter().position(|(a, _)| *a == act) {
            Some(p) => p,
            None => {
                groups.push((act.clone(), RuleSet::default()));
                groups.len() - 1
            }
        };
        for name in sc.names() {
            let Some(nr) = syscall_nr(name) else {
                // runtime-spec: a syscall unknown on this architecture is skipped; create
                // warns about these once (`warnings`), this runs again at every exec.
                crate::logger::debug(&format!(
                    "{field}: ignoring syscall {name:?} unknown on x86_64"
                ));
                continue;
            };
            last = last.max(Some(nr));
            allow.add(nr, &r);
            groups[pos].1.add(nr, &r);
        }
    }
    let mut progs = Vec::new();
    if def != SeccompAction::Allow {
        let empty = allow.cond.is_empty() && allow.always.is_empty();
        let mut prog = if empty {
            build_default_only(def.clone())?
        } else {
            build(allow.into_rules(), def.clone(), SeccompAction::Allow)?
        };
        let permissive = matches!(def, SeccompAction::Log | SeccompAction::Errno(ENOSYS));
        if let Some(last) = last.filter(|_| !permissive) {
            prog.splice(0..0, enosys_stub(last));
        }
        progs.push(prog);
    }
    let mut notify_at = None;
    for (act, rules) in groups {
        if act != SeccompAction::Allow && (!rules.cond.is_empty() || !rules.always.is_empty()) {
            let mut prog = build(rules.into_rules(), SeccompAction::Allow, act.clone())?;
            if act == notify {
                mark_notify(&mut prog);
                notify_at = Some(progs.len());
            }
            progs.push(prog);
        }
    }
    if !progs.is_empty() {
        progs.insert(0, x32_guard());
        notify_at = notify_at.map(|i| i + 1);
    }
    if notify_at.is_some() && s.listener_path().is_none() {
        return Err(Error::Other(
            "linux.seccomp.listenerPath: required when a rule's action is SCMP_ACT_NOTIFY".into(),
        ));
    }
    Ok(Compiled {
        progs,
        notify: notify_at,
    })
}

/// RET TRACE|NOTIFY_MARK → RET USER_NOTIF.
fn mark_notify(prog: &mut BpfProgram) {
    const BPF_RET_K: u16 = 0x06;
    for ins in prog.iter_mut() {
        if ins.code == BPF_RET_K && ins.k == SECCOMP_RET_TRACE | NOTIFY_MARK {
            ins.k = SECCOMP_RET_USER_NOTIF;
        }
    }
}

/// A profile with no rules at all: every syscall gets the default action.
fn build_default_only(def: SeccompAction) -> Result<BpfProgram> {
    // seccompiler needs one rule; a syscall number no kernel has stands in for "nothing".
    let mut rules = Rules::new();
    rules.insert(4095, vec![]);
    build(
        rules,
        def.clone(),
        if def == SeccompAction::KillProcess {
            SeccompAction::KillThread
        } else {
            SeccompAction::KillProcess
        },
    )
}

fn build(rules: Rules, mismatch: SeccompAction, matched: SeccompAction) -> Result<BpfProgram> {
    let f = SeccompFilter::new(rules, mismatch, matched, TargetArch::x86_64)
        .map_err(|e| Error::Other(format!("linux.seccomp: {e}")))?;
    f.try_into()
        .map_err(|e: seccompiler::BackendError| Error::Other(format!("linux.seccomp: {e}")))
}

fn flags(s: &LinuxSeccomp) -> u64 {
    use oci_spec::runtime::LinuxSeccompFilterFlag as F;
    s.flags().iter().flatten().fold(0, |acc, f| {
        acc | match f {
            F::SeccompFilterFlagTsync => 1,
            F::SeccompFilterFlagLog => 2,
            F::SeccompFilterFlagSpecAllow => 4,
            F::SeccompFilterFlagWaitKillableRecv => 32,
        }
    })
}

/// Loads the compiled filters into the calling thread. Needs no_new_privs or CAP_SYS_ADMIN.
/// Returns the notify listener fd when the profile has notify rules.
pub fn load(s: &LinuxSeccomp, c: &Compiled) -> Result<Option<OwnedFd>> {
    let mut listener = None;
    for (i, p) in c.progs.iter().enumerate() {
        let fl = flags(s)
            | if c.notify == Some(i) {
                SECCOMP_FILTER_FLAG_NEW_LISTENER
            } else {
                0
            };
        let prog = libc::sock_fprog {
            len: p.len() as u16,
            filter: p.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: prog points at a live BPF program for the duration of the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                fl,
                &prog as *const libc::sock_fprog,
            )
        };
        if r < 0 {
            return Err(Error::Other(format!(
                "linux.seccomp: load filter: {}",
                std::io::Error::last_os_error()
            )));
        }
        if c.notify == Some(i) {
            // SAFETY: with NEW_LISTENER the kernel returned a fresh descriptor.
            listener = Some(unsafe { OwnedFd::from_raw_fd(r as i32) });
        }
    }
    Ok(listener)
}

/// Sends the notify fd to the seccomp agent at `listenerPath`, with the container process
/// state the runtime-spec defines (`fds: ["seccompFd"]`, pid, metadata, state).
pub fn send_to_listener(
    s: &LinuxSeccomp,
    fd: &OwnedFd,
    pid: i32,
    state: &serde_json::Value,
) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
    use std::os::unix::net::UnixStream;
    let path = s.listener_path().as_ref().expect("checked at compile");
    let field = format!("linux.seccomp.listenerPath {}", path.display());
    let sock = UnixStream::connect(path).map_err(|e| Error::Other(format!("{field}: {e}")))?;
    let msg = serde_json::json!({
        "ociVersion": crate::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": s.listener_metadata().clone().unwrap_or_default(),
        "state": state,
    })
    .to_string();
    let fds = [fd.as_raw_fd()];
    let iov = [std::io::IoSlice::new(msg.as_bytes())];
    sendmsg::<UnixAddr>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| Error::Other(format!("{field}: send: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn recent_syscalls_are_known() {
        for (n, nr) in [
            ("fchmodat2", 452),
            ("mseal", 462),
            ("file_setattr", 469),
            ("uretprobe", 335),
        ] {
            assert_eq!(syscall_nr(n), Some(nr), "{n}");
        }
        let mut nrs: Vec<i64> = X86_64.iter().map(|(_, nr)| *nr).collect();
        nrs.sort_unstable();
        nrs.dedup();
        assert_eq!(nrs.len(), X86_64.len(), "a number appears twice");
    }

    #[test]
    fn unknown_names_and_other_arches_are_warned_about() {
        let s = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["mkdir", "no_such_call", "chown32"], "action": "SCMP_ACT_ERRNO"}]
        }));
        let w = warnings(&s);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("SCMP_ARCH_X86, SCMP_ARCH_X32"), "{}", w[0]);
        let u = unknown_names(&s).unwrap();
        assert!(
            u.contains("chown32, no_such_call") && !u.contains("mkdir"),
            "{u}"
        );
        let c = compile(&s).unwrap();
        assert_eq!(c.progs[0], x32_guard(), "the x32 guard goes first");
        let plain = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"}));
        assert!(warnings(&plain).is_empty() && unknown_names(&plain).is_none());
        assert!(compile(&plain).unwrap().progs.is_empty());
    }
}
