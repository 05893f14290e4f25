//! CPU and I/O scheduling of a container process: process.scheduler (sched_setattr),
//! process.ioPriority (ioprio_set) and process.execCPUAffinity (sched_setaffinity).
//! Applied in the forked child before it drops privileges (SCHED_FIFO, negative nice and
//! IOPRIO_CLASS_RT need CAP_SYS_NICE); the kernel keeps all three across execve.

use crate::error::{Error, Result};
use oci_spec::runtime::{
    IOPriorityClass, LinuxSchedulerFlag as F, LinuxSchedulerPolicy as P, Process, Scheduler,
};

/// struct sched_attr, SCHED_ATTR_SIZE_VER0 (no utilization clamps: the spec has no values).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

fn policy_number(p: P) -> Option<u32> {
    Some(match p {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
        // SCHED_ISO was reserved but never merged into Linux.
        P::SchedIso => return None,
    })
}

fn flag_bit(f: F) -> u64 {
    match f {
        F::SchedResetOnFork => 0x01,
        F::SchedFlagReclaim => 0x02,
        F::SchedFlagDLOverrun => 0x04,
        F::SchedFlagKeepPolicy => 0x08,
        F::SchedFlagKeepParams => 0x10,
        F::SchedFlagUtilClampMin => 0x20,
        F::SchedFlagUtilClampMax => 0x40,
    }
}

/// The spec's checks on process.scheduler, made before anything is set up.
pub fn check_scheduler(s: &Scheduler) -> std::result::Result<(), (&'static str, String)> {
    let realtime = matches!(s.policy(), P::SchedFifo | P::SchedRr);
    if policy_number(*s.policy()).is_none() {
        return Err((
            "process.scheduler.policy",
            "SCHED_ISO is not implemented by Linux".into(),
        ));
    }
    if let Some(n) = s.nice().filter(|n| !(-20..=19).contains(n)) {
        return Err(("process.scheduler.nice", format!("{n} is outside -20..19")));
    }
    let prio = s.priority().unwrap_or(0);
    if realtime && !(1..=99).contains(&prio) {
        return Err((
            "process.scheduler.priority",
            format!("{prio}: SCHED_FIFO and SCHED_RR need 1..99"),
        ));
    }
    if !realtime && prio != 0 {
        return Err((
            "process.scheduler.priority",
            format!("{prio}: only SCHED_FIFO and SCHED_RR take a priority (use 0)"),
        ));
    }
    let dl = [s.runtime(), s.deadline(), s.period()];
    if *s.policy() == P::SchedDeadline && dl.iter().any(|v| v.unwrap_or(0) == 0) {
        return Err((
            "process.scheduler.runtime",
            "SCHED_DEADLINE needs runtime, deadline and period".into(),
        ));
    }
    Ok(())
}

pub fn apply_scheduler(p: &Process) -> Result<()> {
    let Some(s) = p.scheduler() else {
        return Ok(());
    };
    let field = |m: String| Error::Other(format!("process.scheduler: {m}"));
    check_scheduler(s).map_err(|(f, m)| Error::Other(format!("{f}: {m}")))?;
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: policy_number(*s.policy()).unwrap_or(0),
        flags: s.flags().iter().flatten().map(|f| flag_bit(*f)).sum(),
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    };
    // SAFETY: attr is a valid sched_attr of the size it declares; pid 0 is this thread.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        let rt = matches!(s.policy(), P::SchedFifo | P::SchedRr | P::SchedDeadline);
        let hint = if rt && e.raw_os_error() == Some(libc::EPERM) {
            " (with cgroup v1 RT group scheduling the container's cpu cgroup needs a budget: \
             set linux.resources.cpu.realtimeRuntime, with room for it in the parent cgroup)"
        } else {
            ""
        };
        return Err(field(format!("{} (sched_setattr): {e}{hint}", s.policy())));
    }
    Ok(())
}

const IOPRIO_CLASS_SHIFT: i64 = 13;
const IOPRIO_WHO_PROCESS: i32 = 1;

pub fn check_io_priority(
    io: &oci_spec::runtime::LinuxIOPriority,
) -> std::result::Result<(), String> {
    if !(0..=7).contains(&io.priority()) {
        return Err(format!("{} is outside 0..7", io.priority()));
    }
    Ok(())
}

pub fn apply_io_priority(p: &Process) -> Result<()> {
    let Some(io) = p.io_priority() else {
        return Ok(());
    };
    check_io_priority(io).map_err(|m| Error::Other(format!("process.ioPriority.priority: {m}")))?;
    let class: i64 = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let value = (class << IOPRIO_CLASS_SHIFT) | io.priority();
    // SAFETY: ioprio_set takes plain integers; who 0 is this process.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        return Err(Error::Other(format!(
            "process.ioPriority ({} {}): ioprio_set: {e}",
            io.class(),
            io.priority()
        )));
    }
    Ok(())
}

/// Parses a CPU list ("0-3,7") into CPU numbers.
pub fn parse_cpus(s: &str) -> std::result::Result<Vec<usize>, String> {
    let mut cpus = vec![];
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |n: &str| {
            n.parse::<usize>()
                .map_err(|_| format!("{part:?} is not a CPU number or range"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("range {part:?} runs backwards"));
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(num(part)?),
        }
    }
    Ok(cpus)
}

/// The host's online CPUs.
fn online_cpus() -> Vec<usize> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_cpus(s.trim()).ok())
        .unwrap_or_default()
}

/// Checks a CPU list against the host: every CPU must exist and be online.
pub fn check_cpus(s: &str) -> std::result::Result<Vec<usize>, String> {
    let cpus = parse_cpus(s)?;
    if cpus.is_empty() {
        return Err("names no CPU".into());
    }
    let online = online_cpus();
    if let Some(c) = cpus.iter().find(|c| !online.contains(c)) {
        return Err(format!(
            "CPU {c} is not online on this host (online: {online:?})"
        ));
    }
    Ok(cpus)
}

/// Which of execCPUAffinity's two lists: `initial` runs the runtime's child before it
/// joins the container's cgroups, `final` after.
#[derive(Clone, Copy)]
pub enum Affinity {
    Initial,
    Final,
}

pub fn apply_affinity(p: &Process, which: Affinity) -> Result<()> {
    let Some(a) = p.exec_cpu_affinity() else {
        return Ok(());
    };
    let (name, list) = match which {
        Affinity::Initial => ("initial", a.initial()),
        Affinity::Final => ("final", a.cpu_affinity_final()),
    };
    // An empty or absent list leaves the affinity to the kernel (runtime-spec).
    let Some(list) = list.as_deref().filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    let field = format!("process.execCPUAffinity.{name} {list:?}");
    let cpus = check_cpus(list).map_err(|m| Error::Other(format!("{field}: {m}")))?;
    let mut set = nix::sched::CpuSet::new();
    for c in cpus {
        set.set(c)
            .map_err(|e| Error::Other(format!("{field}: CPU {c}: {e}")))?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|e| Error::Other(format!("{field}: sched_setaffinity: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_ranges_and_reject_garbage() {
        assert_eq!(parse_cpus("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpus("1").unwrap(), vec![1]);
        assert!(parse_cpus("3-1").is_err());
        assert!(parse_cpus("a").is_err());
    }

    #[test]
    fn realtime_policy_needs_a_priority() {
        let s: Scheduler = serde_json::from_str(r#"{"policy":"SCHED_FIFO"}"#).unwrap();
        assert_eq!(
            check_scheduler(&s).unwrap_err().0,
            "process.scheduler.priority"
        );
        let s: Scheduler = serde_json::from_str(r#"{"policy":"SCHED_OTHER","nice":30}"#).unwrap();
        assert_eq!(check_scheduler(&s).unwrap_err().0, "process.scheduler.nice");
    }
}
