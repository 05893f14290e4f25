//! The in-container probe: reports what the container sees as one JSON object.
//!
//! It is copied into every bundle's rootfs as `/berth-probe` and run as the container
//! process; the harness then compares its report with the bundle's config.json. It also
//! serves as the hook program (run on the host) and as a sleeper for lifecycle cases.

mod fsinfo;
mod sysinfo;

use serde_json::{json, Map, Value};
use std::io::{Read, Write};

/// What the harness asks the probe to look at beyond the fixed report.
#[derive(Debug, Default)]
pub struct Request {
    pub sysctls: Vec<String>,
    pub paths: Vec<String>,
    pub reads: Vec<String>,
    pub syscalls: Vec<String>,
}

/// Entry point shared by the `berth-probe` binary. Returns the process exit code.
pub fn main_with_args(args: &[String]) -> i32 {
    match args.first().map(String::as_str) {
        Some("report") => report(&args[1..]),
        Some("sleep") => {
            // As pid 1 of a pid namespace we would ignore SIGTERM without a handler.
            // SAFETY: installing a handler that only calls _exit.
            unsafe {
                libc::signal(libc::SIGTERM, on_term as *const () as libc::sighandler_t);
            }
            let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3600);
            std::thread::sleep(std::time::Duration::from_secs(secs));
            0
        }
        Some("exit") => args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1),
        Some("hook") => hook(&args[1..]),
        _ => {
            eprintln!("usage: berth-probe report [--sysctl N] [--path P] [--read F] [--syscall S] | sleep SECS | exit CODE | hook LOG TAG [EXIT]");
            2
        }
    }
}

fn parse_request(args: &[String]) -> Request {
    let mut req = Request::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let Some(val) = it.next() else { break };
        match flag.as_str() {
            "--sysctl" => req.sysctls.push(val.clone()),
            "--path" => req.paths.push(val.clone()),
            "--read" => req.reads.push(val.clone()),
            "--syscall" => req.syscalls.push(val.clone()),
            _ => {}
        }
    }
    req
}

fn report(args: &[String]) -> i32 {
    let req = parse_request(args);
    let mut out = Map::new();
    sysinfo::identity(&mut out);
    sysinfo::process_status(&mut out);
    sysinfo::rlimits(&mut out);
    sysinfo::scheduling(&mut out);
    sysinfo::namespaces(&mut out);
    out.insert("sysctls".into(), sysinfo::sysctls(&req.sysctls));
    out.insert("syscalls".into(), sysinfo::syscalls(&req.syscalls));
    out.insert("mounts".into(), fsinfo::mounts());
    out.insert("devices".into(), fsinfo::devices());
    out.insert("paths".into(), fsinfo::paths(&req.paths));
    out.insert("files".into(), fsinfo::reads(&req.reads));
    out.insert("root_writable".into(), json!(fsinfo::root_writable()));
    let text = Value::Object(out).to_string();
    let mut stdout = std::io::stdout().lock();
    let ok = stdout.write_all(text.as_bytes()).is_ok() && stdout.write_all(b"\n").is_ok();
    if ok && stdout.flush().is_ok() {
        0
    } else {
        3
    }
}

/// `hook LOG TAG [EXIT]`: append one JSON line describing this hook call to LOG.
fn hook(args: &[String]) -> i32 {
    let (Some(log), Some(tag)) = (args.first(), args.get(1)) else {
        return 2;
    };
    let code: i32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut stdin = String::new();
    let _ = std::io::stdin().read_to_string(&mut stdin);
    let state: Value = serde_json::from_str(&stdin).unwrap_or(Value::String(stdin.clone()));
    let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    let line = json!({
        "tag": tag,
        "state": state,
        "args": std::env::args().collect::<Vec<_>>(),
        "env": env,
        "mnt_ns": sysinfo::ns_inode("mnt"),
        "pid": std::process::id(),
        "mono_ns": monotonic_ns(),
    });
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log);
    match file {
        Ok(mut f) => {
            let _ = writeln!(f, "{line}");
        }
        Err(e) => eprintln!("berth-probe hook: {log}: {e}"),
    }
    code
}

extern "C" fn on_term(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(143) };
}

fn monotonic_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the struct we own.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}
