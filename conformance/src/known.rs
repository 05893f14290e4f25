//! Known explanations for cases the reference runtime (runc 1.1.x) fails on this machine.
//! Every reference failure in a report must be answered: environment, runc bug, or test bug.

/// (case name, explanation)
pub const KNOWN: &[(&str, &str)] = &[
    ("delete.created.error", "runc bug (long-standing, by design): `runc delete` without --force destroys a container in the created state instead of refusing (crun 1.8 does the same); runtime.md says deleting a container that is not stopped MUST generate an error"),
    ("domainname", "runc 1.1 does not implement `domainname` (added in runc 1.2); the UTS domainname stays \"(none)\""),
    ("hooks.startContainer.failure.error", "runc bug: a failing startContainer hook makes runc's init exit before exec, but `runc start` has already returned success (start only opens the exec fifo), so no error is generated; the user program does not run (crun 1.8 behaves the same)"),
    ("hooks.poststart.failure.continues", "runc deviation: runc 1.1 runs poststart hooks at the end of `create` (not after `start`), and a failing poststart hook fails `create`; runtime-spec 1.0.2 says a poststart failure is only logged and the lifecycle continues"),
    ("hooks.order.all-kinds", "runc deviation: runc 1.1 runs poststart hooks during `create`, so they come before startContainer hooks (which run at `start`)"),
    ("ns.mount.inherit", "runc limitation (measured with runc 1.1.5): without a mount namespace runc chroots into the rootfs but needs a /proc there (`error closing exec fds: open /proc/self/fd`), which only a mount in the caller's namespace could give it; with one, runc leaves its rootfs bind and every config mount behind in that namespace"),
    ("ns.time.new", "runc 1.1 does not implement time namespaces (added in runc 1.2): `namespace {\"time\" \"\"} does not exist`"),
    ("ns.time.path", "runc 1.1 does not implement time namespaces (added in runc 1.2)"),
    ("ns.time.offsets", "runc 1.1 does not implement time namespaces or linux.timeOffsets (added in runc 1.2)"),
    ("cgroups.cpu.burst", "runc 1.1 does not implement linux.resources.cpu.burst (added in runc 1.2); cpu.cfs_burst_us stays 0"),
    ("cgroups.cpu.idle", "runc 1.1 writes cpu.idle only on cgroup v2; on this cgroup v1 host cpu.idle stays 0 (the kernel supports it in v1)"),
    ("cgroups.memory.kernelTCP", "runc 1.1 leaves memory.kmem.tcp.limit_in_bytes unset here although the kernel accepts the write (checked by hand: echo 16777216 > memory.kmem.tcp.limit_in_bytes works); runc limitation"),
    ("seccomp.flags.log", "runc 1.1.5 rejects linux.seccomp.flags (`seccomp flags are not yet supported by runc`); flags support arrived in runc 1.2"),
    ("rootfsPropagation.shared", "runc bug: runc makes the root's parent private for pivot_root and the container's / ends up private instead of shared; crun 1.8 passes this case on the same host"),
    ("rootfsPropagation.unbindable", "runc bug: with rootfsPropagation unbindable runc's init fails to bind the rootfs (`error during container init`); crun 1.8 passes this case on the same host"),
    ("personality.LINUX32", "runc 1.1 does not implement linux.personality (runc#3126, added in runc 1.2)"),
    ("ioPriority.BE", "runc 1.1 does not implement process.ioPriority (added in runc 1.2; runtime-spec 1.1)"),
    ("ioPriority.RT", "runc 1.1 does not implement process.ioPriority (added in runc 1.2; runtime-spec 1.1)"),
    ("ioPriority.IDLE", "runc 1.1 does not implement process.ioPriority (added in runc 1.2; runtime-spec 1.1)"),
    ("scheduler.SCHED_BATCH", "runc 1.1 does not implement process.scheduler (added in runc 1.2; runtime-spec 1.2)"),
    ("scheduler.SCHED_IDLE", "runc 1.1 does not implement process.scheduler (added in runc 1.2; runtime-spec 1.2)"),
    ("scheduler.SCHED_FIFO.priority", "runc 1.1 does not implement process.scheduler (added in runc 1.2; runtime-spec 1.2)"),
    ("scheduler.SCHED_RR.priority", "runc 1.1 does not implement process.scheduler (added in runc 1.2; runtime-spec 1.2)"),
    ("scheduler.nice", "runc 1.1 does not implement process.scheduler (added in runc 1.2; runtime-spec 1.2)"),
    ("scheduler.flags.reset-on-fork", "runc 1.1 does not implement process.scheduler (added in runc 1.2; runtime-spec 1.2)"),
    ("memoryPolicy.MPOL_BIND", "runc 1.1 does not implement linux.memoryPolicy (runtime-spec 1.3, runc 1.3): the policy stays MPOL_DEFAULT"),
    ("memoryPolicy.MPOL_INTERLEAVE.static", "runc 1.1 does not implement linux.memoryPolicy (runtime-spec 1.3, runc 1.3): the policy stays MPOL_DEFAULT"),
    ("memoryPolicy.MPOL_LOCAL", "runc 1.1 does not implement linux.memoryPolicy (runtime-spec 1.3, runc 1.3): the policy stays MPOL_DEFAULT"),
    ("intelRdt.unsupported.refused", "runc 1.1 checks for resctrl only when l3CacheSchema or memBwSchema is set: with closID alone on a host without resctrl it creates the container and ignores the field (runtime.md: a config the runtime cannot apply is an error)"),
    ("mounts.idmap", "runc 1.1 has no idmapped mounts (mount uidMappings/gidMappings and the idmap option arrived in runc 1.2)"),
];

pub fn explain(case: &str) -> Option<&'static str> {
    KNOWN.iter().find(|(n, _)| *n == case).map(|(_, why)| *why)
}
