//! linux.seccomp compiled to classic BPF with seccompiler (pure Rust, no libseccomp).
//!
//! seccompiler builds filters with one match action and one mismatch action, while an OCI
//! profile gives each syscall rule its own action. We therefore load a stack of filters,
//! relying on the kernel taking the most severe verdict of all loaded filters:
//! - a base filter: every syscall named by any rule → ALLOW, anything else → defaultAction;
//! - one filter per other action (ERRNO(n), KILL, TRAP, LOG, TRACE(n)): its rules → that
//!   action, anything else → ALLOW.
//! A named syscall thus gets its rule's action, and an unnamed one the default.

use super::syscalls_x86_64::X86_64;
use crate::error::{Error, Result};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction as A, LinuxSeccompOperator as Op, LinuxSyscall,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

const EPERM: u32 = 1;

fn syscall_nr(name: &str) -> Option<i64> {
    X86_64.iter().find(|(n, _)| *n == name).map(|(_, nr)| *nr)
}

fn action(a: A, errno: Option<u32>, default_errno: Option<u32>) -> Result<SeccompAction> {
    Ok(match a {
        A::ScmpActAllow => SeccompAction::Allow,
        A::ScmpActErrno => SeccompAction::Errno(errno.or(default_errno).unwrap_or(EPERM)),
        A::ScmpActKill | A::ScmpActKillThread => SeccompAction::KillThread,
        A::ScmpActKillProcess => SeccompAction::KillProcess,
        A::ScmpActTrap => SeccompAction::Trap,
        A::ScmpActLog => SeccompAction::Log,
        A::ScmpActTrace => SeccompAction::Trace(errno.unwrap_or(0)),
        A::ScmpActNotify => {
            return Err(Error::Other(
                "linux.seccomp: SCMP_ACT_NOTIFY is not supported yet".into(),
            ))
        }
    })
}

fn rule(s: &LinuxSyscall, field: &str) -> Result<Option<SeccompRule>> {
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
        conds.push(c);
    }
    SeccompRule::new(conds)
        .map(Some)
        .map_err(|e| Error::Other(format!("{field}.args: {e}")))
}

type Rules = BTreeMap<i64, Vec<SeccompRule>>;

/// Rules per syscall; an unconditional rule makes the syscall match whatever its arguments.
#[derive(Default)]
struct RuleSet {
    cond: Rules,
    always: std::collections::BTreeSet<i64>,
}

impl RuleSet {
    fn add(&mut self, nr: i64, r: &Option<SeccompRule>) {
        match r {
            None => {
                self.always.insert(nr);
            }
            Some(r) => self.cond.entry(nr).or_default().push(r.clone()),
        }
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
pub fn compile(s: &LinuxSeccomp) -> Result<Vec<BpfProgram>> {
    let def = action(s.default_action(), s.default_errno_ret(), None)?;
    let mut allow = RuleSet::default();
    let mut groups: Vec<(SeccompAction, RuleSet)> = Vec::new();
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(sc.action(), sc.errno_ret(), s.default_errno_ret())
            .map_err(|e| Error::Other(format!("{field}.action: {e}")))?;
        let r = rule(sc, &field)?;
        let pos = match groups.iter().position(|(a, _)| *a == act) {
            Some(p) => p,
            None => {
                groups.push((act.clone(), RuleSet::default()));
                groups.len() - 1
            }
        };
        for name in sc.names() {
            let Some(nr) = syscall_nr(name) else {
                // runtime-spec: a syscall the runtime does not know on this architecture is skipped.
                crate::logger::debug(&format!(
                    "{field}: ignoring syscall {name:?} unknown on x86_64"
                ));
                continue;
            };
            allow.add(nr, &r);
            groups[pos].1.add(nr, &r);
        }
    }
    let mut progs = Vec::new();
    if def != SeccompAction::Allow {
        let empty = allow.cond.is_empty() && allow.always.is_empty();
        progs.push(if empty {
            build_default_only(def.clone())?
        } else {
            build(allow.into_rules(), def.clone(), SeccompAction::Allow)?
        });
    }
    for (act, rules) in groups {
        if act != SeccompAction::Allow && (!rules.cond.is_empty() || !rules.always.is_empty()) {
            progs.push(build(rules.into_rules(), SeccompAction::Allow, act)?);
        }
    }
    Ok(progs)
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
pub fn load(s: &LinuxSeccomp, progs: &[BpfProgram]) -> Result<()> {
    let fl = flags(s);
    for p in progs {
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
        if r != 0 {
            return Err(Error::Other(format!(
                "linux.seccomp: load filter: {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    Ok(())
}
