//! Running a bundle with an OCI runtime binary, by runc's command line:
//! `RUNTIME run --bundle DIR ID`. Output is streamed and kept for error messages.

use crate::error::{Error, IoContext, Result};
use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The runtime to use: `--runtime`/BERTH_RUNTIME, else `berth` next to this
/// executable, else `berth` on PATH.
pub fn default_runtime() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_RUNTIME") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        let p = exe.with_file_name("berth");
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from("berth")
}

/// What a finished container did.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    /// The tail of its combined stdout/stderr.
    pub output: String,
}

const KEEP: usize = 16 * 1024;

/// Run the bundle; each output line goes to `line`. Always deletes the container.
pub fn run(runtime: &Path, bundle: &Path, id: &str, line: &mut dyn FnMut(&str)) -> Result<Outcome> {
    let (r, w) = nix::unistd::pipe().at("pipe")?;
    let w2: OwnedFd = w.try_clone().at("pipe")?;
    let mut cmd = Command::new(runtime);
    // If berth-build dies, the runtime gets SIGTERM and forwards it to the container.
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .arg("run")
        .arg("--bundle")
        .arg(bundle)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::from(w))
        .stderr(Stdio::from(w2))
        .spawn()
        .map_err(|e| {
            Error::invalid(
                format!("OCI runtime {}", runtime.display()),
                format!("{e} (choose one with --runtime or BERTH_RUNTIME)"),
            )
        })?;
    // The Command holds our copies of the pipe's write end: close them, or the read
    // below never sees EOF.
    drop(cmd);
    let mut tail = String::new();
    let reader = BufReader::new(std::fs::File::from(r));
    for l in reader.split(b'\n') {
        let Ok(l) = l else { break };
        let s = String::from_utf8_lossy(&l).to_string();
        line(&s);
        tail.push_str(&s);
        tail.push('\n');
        if tail.len() > 2 * KEEP {
            let cut = tail.len() - KEEP;
            let cut = (cut..tail.len())
                .find(|&i| tail.is_char_boundary(i))
                .unwrap_or(0);
            tail.drain(..cut);
        }
    }
    let status = child.wait().at(runtime)?;
    let _ = Command::new(runtime)
        .args(["delete", "--force", id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let code = status.code().unwrap_or_else(|| {
        128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
    });
    Ok(Outcome { code, output: tail })
}
