//! Known explanations for cases the reference runtime (runc 1.1.x) fails on this machine.
//! Every reference failure in a report must be answered: environment, runc bug, or test bug.

/// (case name, explanation)
pub const KNOWN: &[(&str, &str)] = &[
    ("delete.created.error", "runc bug (long-standing, by design): `runc delete` without --force destroys a container in the created state instead of refusing; runtime.md says deleting a container that is not stopped MUST generate an error"),
    ("domainname", "runc 1.1 does not implement `domainname` (added in runc 1.2); the UTS domainname stays \"(none)\""),
    ("hooks.startContainer.failure.error", "runc bug: a failing startContainer hook makes runc's init exit before exec, but `runc start` has already returned success (start only opens the exec fifo), so no error is generated; the user program does not run"),
    ("hooks.poststart.failure.continues", "runc deviation: runc 1.1 runs poststart hooks at the end of `create` (not after `start`), and a failing poststart hook fails `create`; runtime-spec 1.0.2 says a poststart failure is only logged and the lifecycle continues"),
    ("hooks.order.all-kinds", "runc deviation: runc 1.1 runs poststart hooks during `create`, so they come before startContainer hooks (which run at `start`)"),
];

pub fn explain(case: &str) -> Option<&'static str> {
    KNOWN.iter().find(|(n, _)| *n == case).map(|(_, why)| *why)
}
