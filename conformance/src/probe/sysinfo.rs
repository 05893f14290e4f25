//! Process-level facts: identity, /proc/self/status, rlimits, scheduling, namespaces.

use serde_json::{json, Map, Value};
use std::ffi::CStr;

fn read_trim(path: &str) -> Value {
    match std::fs::read_to_string(path) {
        Ok(s) => json!(s.trim_end()),
        Err(e) => json!({ "error": e.raw_os_error().unwrap_or(-1) }),
    }
}

fn cstr_field(buf: &[libc::c_char]) -> String {
    // SAFETY: utsname fields are NUL-terminated C strings inside the fixed buffer.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
}

pub fn identity(out: &mut Map<String, Value>) {
    // SAFETY: plain libc getters without pointers, or with buffers we own.
    unsafe {
        out.insert("uid".into(), json!(libc::getuid()));
        out.insert("gid".into(), json!(libc::getgid()));
        out.insert("euid".into(), json!(libc::geteuid()));
        out.insert("egid".into(), json!(libc::getegid()));
        out.insert("pid".into(), json!(libc::getpid()));
        out.insert("ppid".into(), json!(libc::getppid()));
        let mut groups = vec![0 as libc::gid_t; 256];
        let n = libc::getgroups(groups.len() as i32, groups.as_mut_ptr());
        groups.truncate(n.max(0) as usize);
        out.insert("groups".into(), json!(groups));
        let mut uts: libc::utsname = std::mem::zeroed();
        libc::uname(&mut uts);
        out.insert("hostname".into(), json!(cstr_field(&uts.nodename)));
        out.insert("domainname".into(), json!(cstr_field(&uts.domainname)));
        out.insert("machine".into(), json!(cstr_field(&uts.machine)));
        let ttys: Vec<bool> = (0..3).map(|fd| libc::isatty(fd) == 1).collect();
        out.insert("isatty".into(), json!(ttys));
        out.insert("personality".into(), json!(libc::personality(0xffff_ffff)));
    }
    let cwd = std::env::current_dir().map(|p| p.display().to_string());
    out.insert("cwd".into(), json!(cwd.unwrap_or_default()));
    let env: Vec<String> = std::env::vars_os()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    out.insert("env".into(), json!(env));
    out.insert("args".into(), json!(std::env::args().collect::<Vec<_>>()));
    let stdio: Vec<String> = (0..3)
        .map(|fd| {
            let link = std::fs::read_link(format!("/proc/self/fd/{fd}"));
            link.map(|p| p.display().to_string()).unwrap_or_default()
        })
        .collect();
    out.insert("stdio".into(), json!(stdio));
    for (key, path) in [
        ("oom_score_adj", "/proc/self/oom_score_adj"),
        ("uid_map", "/proc/self/uid_map"),
        ("gid_map", "/proc/self/gid_map"),
        ("setgroups", "/proc/self/setgroups"),
        ("cgroup", "/proc/self/cgroup"),
        ("timens_offsets", "/proc/self/timens_offsets"),
        ("apparmor", "/proc/self/attr/current"),
        // The same file: it holds the label of whichever major LSM the kernel runs.
        ("selinux", "/proc/self/attr/current"),
    ] {
        out.insert(key.into(), read_trim(path));
    }
}

/// Capabilities (all five sets), seccomp mode, NoNewPrivs and umask from /proc/self/status.
pub fn process_status(out: &mut Map<String, Value>) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut caps = Map::new();
    for line in status.lines() {
        let Some((key, val)) = line.split_once(':') else {
            continue;
        };
        let val = val.trim();
        match key {
            "CapInh" | "CapPrm" | "CapEff" | "CapBnd" | "CapAmb" => {
                let bits = u64::from_str_radix(val, 16).unwrap_or(0);
                caps.insert(key.to_string(), json!(bits));
            }
            "Seccomp" | "NoNewPrivs" => {
                let v: i64 = val.parse().unwrap_or(-1);
                out.insert(key.to_lowercase(), json!(v));
            }
            "Umask" => {
                let v = u32::from_str_radix(val, 8).unwrap_or(0);
                out.insert("umask".into(), json!(v));
            }
            _ => {}
        }
    }
    out.insert("caps".into(), Value::Object(caps));
}

pub const RLIMITS: &[(&str, libc::__rlimit_resource_t)] = &[
    ("RLIMIT_AS", libc::RLIMIT_AS),
    ("RLIMIT_CORE", libc::RLIMIT_CORE),
    ("RLIMIT_CPU", libc::RLIMIT_CPU),
    ("RLIMIT_DATA", libc::RLIMIT_DATA),
    ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
    ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
    ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
    ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
    ("RLIMIT_NICE", libc::RLIMIT_NICE),
    ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
    ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
    ("RLIMIT_RSS", libc::RLIMIT_RSS),
    ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
    ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
    ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
    ("RLIMIT_STACK", libc::RLIMIT_STACK),
];

pub fn rlimits(out: &mut Map<String, Value>) {
    let mut map = Map::new();
    for (name, res) in RLIMITS {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we own.
        if unsafe { libc::getrlimit(*res, &mut rl) } == 0 {
            map.insert(
                name.to_string(),
                json!({ "soft": rl.rlim_cur, "hard": rl.rlim_max }),
            );
        }
    }
    out.insert("rlimits".into(), Value::Object(map));
}

/// ioprio (class and level), scheduler policy and priority, nice value.
pub fn scheduling(out: &mut Map<String, Value>) {
    // SAFETY: syscalls with integer arguments or a param struct we own.
    unsafe {
        let v = libc::syscall(libc::SYS_ioprio_get, 1, 0) as i64;
        out.insert(
            "ioprio".into(),
            json!({ "class": v >> 13, "level": v & 0xff, "raw": v }),
        );
        let policy = libc::sched_getscheduler(0);
        let mut param: libc::sched_param = std::mem::zeroed();
        libc::sched_getparam(0, &mut param);
        out.insert(
            "scheduler".into(),
            json!({ "policy": policy & 0xff, "reset_on_fork": policy & 0x4000_0000 != 0,
                    "priority": param.sched_priority }),
        );
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, 0);
        out.insert("nice".into(), json!(nice));
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) == 0 {
            let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
                .filter(|c| libc::CPU_ISSET(*c, &set))
                .collect();
            out.insert("cpu_affinity".into(), json!(cpus));
        }
        let (mut mode, mut mask) = (-1i32, [0u64; 16]);
        let r = libc::syscall(
            libc::SYS_get_mempolicy,
            &mut mode,
            mask.as_mut_ptr(),
            1024u64,
            0u64,
            0u64,
        );
        if r == 0 {
            out.insert(
                "mempolicy".into(),
                json!({ "mode": mode, "nodes": mask[0] }),
            );
        }
    }
}

pub fn ns_inode(name: &str) -> Value {
    match std::fs::read_link(format!("/proc/self/ns/{name}")) {
        Ok(p) => json!(p.display().to_string()),
        Err(_) => Value::Null,
    }
}

pub fn namespaces(out: &mut Map<String, Value>) {
    let mut map = Map::new();
    for name in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        map.insert(name.into(), ns_inode(name));
    }
    out.insert("namespaces".into(), Value::Object(map));
}

pub fn sysctls(names: &[String]) -> Value {
    let mut map = Map::new();
    for name in names {
        let path = format!("/proc/sys/{}", name.replace('.', "/"));
        map.insert(name.clone(), read_trim(&path));
    }
    Value::Object(map)
}

/// Try a few syscalls seccomp cases filter on; report 0 or the errno.
pub fn syscalls(names: &[String]) -> Value {
    let mut map = Map::new();
    for name in names {
        // SAFETY: raw syscalls with static C strings or stack buffers.
        let rc = unsafe {
            match name.as_str() {
                "mkdir" => {
                    let p = c"/dev/shm/.berth-probe-sc";
                    let rc = libc::syscall(libc::SYS_mkdir, p.as_ptr(), 0o755);
                    if rc == 0 {
                        libc::rmdir(p.as_ptr());
                    }
                    rc
                }
                "chdir" => libc::syscall(libc::SYS_chdir, c"/".as_ptr()),
                "getcwd" => {
                    let mut buf = [0u8; 256];
                    let rc = libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len());
                    if rc > 0 {
                        0
                    } else {
                        rc
                    }
                }
                "personality-query" => libc::syscall(libc::SYS_personality, 0xffff_ffffu64),
                "personality-linux" => libc::syscall(libc::SYS_personality, 0u64),
                "getppid" => libc::syscall(libc::SYS_getppid).min(0),
                _ => -2,
            }
        };
        let v = if rc == -2 {
            json!("unknown")
        } else if rc < 0 {
            json!(errno())
        } else {
            json!(0)
        };
        map.insert(name.clone(), v);
    }
    Value::Object(map)
}
