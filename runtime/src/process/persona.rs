//! Container-wide process attributes of `linux`: personality(2) (linux.personality) and the
//! NUMA memory policy (linux.memoryPolicy, set_mempolicy(2)). Both are kept across execve,
//! so they are set in the forked child just before exec, for the init and for exec alike.

use crate::error::{Error, Result};
use oci_spec::runtime::{
    LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain as D, MemoryPolicyFlagType as MF,
    MemoryPolicyModeType as M,
};

/// Linux's personality flags (include/uapi/linux/personality.h). runtime-spec defines no
/// flag values yet; these are the kernel's own names.
const PERSONALITY_FLAGS: &[(&str, u64)] = &[
    ("UNAME26", 0x0020000),
    ("ADDR_NO_RANDOMIZE", 0x0040000),
    ("FDPIC_FUNCPTRS", 0x0080000),
    ("MMAP_PAGE_ZERO", 0x0100000),
    ("ADDR_COMPAT_LAYOUT", 0x0200000),
    ("READ_IMPLIES_EXEC", 0x0400000),
    ("ADDR_LIMIT_32BIT", 0x0800000),
    ("SHORT_INODE", 0x1000000),
    ("WHOLE_SECONDS", 0x2000000),
    ("STICKY_TIMEOUTS", 0x4000000),
    ("ADDR_LIMIT_3GB", 0x8000000),
];

pub fn personality_flag_names() -> Vec<&'static str> {
    PERSONALITY_FLAGS.iter().map(|(n, _)| *n).collect()
}

/// The personality(2) value, or the field at fault.
pub fn personality_value(p: &LinuxPersonality) -> std::result::Result<u64, String> {
    let mut v = match p.domain() {
        D::PerLinux => 0,
        D::PerLinux32 => 0x0008,
    };
    for (i, f) in p.flags().iter().flatten().enumerate() {
        let bit = PERSONALITY_FLAGS
            .iter()
            .find(|(n, _)| n == f)
            .map(|(_, b)| *b)
            .ok_or_else(|| format!("flags[{i}]: unknown personality flag {f:?}"))?;
        v |= bit;
    }
    Ok(v)
}

pub fn apply_personality(p: Option<&LinuxPersonality>) -> Result<()> {
    let Some(p) = p else { return Ok(()) };
    let v = personality_value(p).map_err(|m| Error::Other(format!("linux.personality.{m}")))?;
    // SAFETY: personality takes a plain integer.
    if unsafe { libc::personality(v as libc::c_ulong) } == -1 {
        let e = std::io::Error::last_os_error();
        return Err(Error::Other(format!("linux.personality {v:#x}: {e}")));
    }
    Ok(())
}

fn mode_number(m: M) -> i32 {
    match m {
        M::MpolDefault => 0,
        M::MpolPreferred => 1,
        M::MpolBind => 2,
        M::MpolInterleave => 3,
        M::MpolLocal => 4,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    }
}

fn flag_number(f: MF) -> i32 {
    match f {
        MF::MpolFNumaBalancing => 1 << 13,
        MF::MpolFRelativeNodes => 1 << 14,
        MF::MpolFStaticNodes => 1 << 15,
    }
}

/// The memory policy modes and flags with their kernel numbers, for `berth features`.
const MODES: &[(&str, i32)] = &[
    ("MPOL_DEFAULT", 0),
    ("MPOL_PREFERRED", 1),
    ("MPOL_BIND", 2),
    ("MPOL_INTERLEAVE", 3),
    ("MPOL_LOCAL", 4),
    ("MPOL_PREFERRED_MANY", 5),
    ("MPOL_WEIGHTED_INTERLEAVE", 6),
];
const FLAGS: &[(&str, i32)] = &[
    ("MPOL_F_NUMA_BALANCING", 1 << 13),
    ("MPOL_F_RELATIVE_NODES", 1 << 14),
    ("MPOL_F_STATIC_NODES", 1 << 15),
];

/// The memory policy modes and flags this kernel accepts, found by trying each one
/// (flags with MPOL_BIND) on the first online node. set_mempolicy(2) is per thread, so
/// the probe runs on a thread of its own, which resets to MPOL_DEFAULT and ends.
pub fn supported_memory_policy() -> (Vec<&'static str>, Vec<&'static str>) {
    let node = std::fs::read_to_string("/sys/devices/system/node/online")
        .ok()
        .and_then(|s| crate::process::sched::parse_cpus(s.trim()).ok())
        .and_then(|l| l.first().copied())
        .unwrap_or(0);
    let probe = move || {
        let mut mask = [0u64; MASK_WORDS];
        mask[node / 64] |= 1 << (node % 64);
        let set = |mode: i32| {
            // DEFAULT and LOCAL take no nodes.
            let nodes = if mode == 0 || mode == 4 {
                std::ptr::null()
            } else {
                mask.as_ptr()
            };
            let maxnode = (MASK_WORDS * 64 + 1) as libc::c_ulong;
            // SAFETY: mask outlives the call and holds maxnode-1 bits; only this thread's
            // policy changes.
            unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, nodes, maxnode) == 0 }
        };
        let modes = MODES.iter().filter(|(_, m)| set(*m)).map(|(n, _)| *n);
        let modes: Vec<_> = modes.collect();
        let flags = FLAGS.iter().filter(|(_, f)| set(2 | f)).map(|(n, _)| *n);
        let flags: Vec<_> = flags.collect();
        set(0);
        (modes, flags)
    };
    std::thread::spawn(probe).join().unwrap_or_default()
}

const MASK_WORDS: usize = 16;

/// Checks linux.memoryPolicy against the spec and the host's NUMA nodes; returns the
/// node mask. Errors name the field.
pub fn check_memory_policy(
    p: &LinuxMemoryPolicy,
) -> std::result::Result<[u64; MASK_WORDS], (&'static str, String)> {
    let nodes = p.nodes().as_deref().unwrap_or("");
    let list = crate::process::sched::parse_cpus(nodes)
        .map_err(|m| ("linux.memoryPolicy.nodes", m.replace("CPU", "node")))?;
    let needs_nodes = !matches!(p.mode(), M::MpolDefault | M::MpolLocal | M::MpolPreferred);
    if matches!(p.mode(), M::MpolDefault | M::MpolLocal) && !list.is_empty() {
        let m = format!("{} takes no nodes", p.mode());
        return Err(("linux.memoryPolicy.nodes", m));
    }
    if needs_nodes && list.is_empty() {
        let m = format!("{} needs at least one node", p.mode());
        return Err(("linux.memoryPolicy.nodes", m));
    }
    let online = std::fs::read_to_string("/sys/devices/system/node/online")
        .ok()
        .and_then(|s| crate::process::sched::parse_cpus(s.trim()).ok())
        .unwrap_or_else(|| vec![0]);
    let mut mask = [0u64; MASK_WORDS];
    for n in list {
        // MPOL_F_RELATIVE_NODES numbers nodes within the allowed set, not host nodes.
        let relative = p
            .flags()
            .iter()
            .flatten()
            .any(|f| *f == MF::MpolFRelativeNodes);
        if n >= MASK_WORDS * 64 || (!relative && !online.contains(&n)) {
            let m = format!("node {n} is not online on this host (online: {online:?})");
            return Err(("linux.memoryPolicy.nodes", m));
        }
        mask[n / 64] |= 1 << (n % 64);
    }
    Ok(mask)
}

pub fn apply_memory_policy(p: Option<&LinuxMemoryPolicy>) -> Result<()> {
    let Some(p) = p else { return Ok(()) };
    let mask = check_memory_policy(p).map_err(|(f, m)| Error::Other(format!("{f}: {m}")))?;
    let flags: i32 = p.flags().iter().flatten().map(|f| flag_number(*f)).sum();
    let mode = mode_number(p.mode()) | flags;
    // maxnode counts one past the last bit the kernel reads (set_mempolicy(2)).
    let maxnode = (MASK_WORDS * 64 + 1) as libc::c_ulong;
    // SAFETY: mask outlives the call and holds maxnode-1 bits.
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, mask.as_ptr(), maxnode) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        return Err(Error::Other(format!(
            "linux.memoryPolicy ({} nodes {:?} flags {:?}): set_mempolicy: {e}",
            p.mode(),
            p.nodes().as_deref().unwrap_or(""),
            p.flags().as_deref().unwrap_or(&[])
        )));
    }
    Ok(())
}
