//! Driving a runtime binary through runc's command-line contract.

use crate::error::{io, Error, Result};
use serde_json::Value;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Default deadline for one runtime command.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(15);

/// A runtime under test: its binary and the state root it keeps containers in.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub path: PathBuf,
    pub label: String,
    pub root: PathBuf,
    pub scratch: PathBuf,
}

/// The result of one runtime command.
#[derive(Debug, Clone, Default)]
pub struct CmdOut {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOut {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
    /// One line for reports: exit code and the last stderr line.
    pub fn summary(&self) -> String {
        let last = self
            .stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let last: String = last.chars().take(400).collect();
        format!("exit {:?}: {}", self.code, last)
    }
}

impl Runtime {
    pub fn new(path: PathBuf, label: &str, work: &Path) -> Result<Self> {
        let root = work.join(format!("state-{label}"));
        let scratch = work.join(format!("io-{label}"));
        std::fs::create_dir_all(&root).map_err(io(&root))?;
        std::fs::create_dir_all(&scratch).map_err(io(&scratch))?;
        Ok(Self {
            path,
            label: label.to_string(),
            root,
            scratch,
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.arg("--root").arg(&self.root).args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Run a command with stdout/stderr in files (never pipes: a container may inherit them).
    pub fn run(&self, args: &[&str]) -> Result<CmdOut> {
        self.run_timeout(args, CMD_TIMEOUT)
    }

    pub fn run_timeout(&self, args: &[&str], limit: Duration) -> Result<CmdOut> {
        let tag = format!("{}-{}", std::process::id(), unique());
        let out_p = self.scratch.join(format!("{tag}.out"));
        let err_p = self.scratch.join(format!("{tag}.err"));
        let out_f = File::create(&out_p).map_err(io(&out_p))?;
        let err_f = File::create(&err_p).map_err(io(&err_p))?;
        let mut cmd = self.command(args);
        cmd.stdout(out_f).stderr(err_f);
        let code = self.wait(cmd, args, limit)?;
        let stdout = std::fs::read_to_string(&out_p).unwrap_or_default();
        let stderr = std::fs::read_to_string(&err_p).unwrap_or_default();
        let _ = std::fs::remove_file(&out_p);
        let _ = std::fs::remove_file(&err_p);
        Ok(CmdOut {
            code,
            stdout,
            stderr,
        })
    }

    fn wait(&self, mut cmd: Command, args: &[&str], limit: Duration) -> Result<Option<i32>> {
        let joined = args.join(" ");
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            runtime: self.path.clone(),
            args: joined.clone(),
            source,
        })?;
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Ok(st.code());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Timeout {
                    runtime: self.path.clone(),
                    args: joined,
                    secs: limit.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `create --bundle B ID` with the container's stdio going to files in the bundle.
    pub fn create(&self, id: &str, bundle: &Path) -> Result<CmdOut> {
        let out_p = bundle.join("stdout");
        let err_p = bundle.join("stderr");
        let out_f = File::create(&out_p).map_err(io(&out_p))?;
        let err_f = File::create(&err_p).map_err(io(&err_p))?;
        let b = bundle.display().to_string();
        let args = ["create", "--bundle", b.as_str(), id];
        let mut cmd = self.command(&args);
        cmd.stdout(out_f).stderr(err_f);
        let code = self.wait(cmd, &args, CMD_TIMEOUT)?;
        let stderr = std::fs::read_to_string(&err_p).unwrap_or_default();
        Ok(CmdOut {
            code,
            stdout: String::new(),
            stderr,
        })
    }

    pub fn start(&self, id: &str) -> Result<CmdOut> {
        self.run(&["start", id])
    }

    pub fn kill(&self, id: &str, sig: &str) -> Result<CmdOut> {
        self.run(&["kill", id, sig])
    }

    pub fn delete(&self, id: &str, force: bool) -> Result<CmdOut> {
        if force {
            self.run(&["delete", "--force", id])
        } else {
            self.run(&["delete", id])
        }
    }

    /// `state ID` parsed as JSON (Err when the command fails or prints no JSON).
    pub fn state(&self, id: &str) -> Result<Result<Value, CmdOut>> {
        let out = self.run(&["state", id])?;
        if !out.ok() {
            return Ok(Err(out));
        }
        match serde_json::from_str(&out.stdout) {
            Ok(v) => Ok(Ok(v)),
            Err(_) => Ok(Err(out)),
        }
    }

    /// The container's status, or None when `state` fails.
    pub fn status(&self, id: &str) -> Option<String> {
        let st = self.state(id).ok()?.ok()?;
        st.get("status").and_then(Value::as_str).map(str::to_string)
    }

    /// Poll `state` until the status is `want` (or the container is gone when want is None).
    pub fn wait_status(&self, id: &str, want: Option<&str>, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let st = self.status(id);
            if st.as_deref() == want {
                return true;
            }
            if want.is_some() && st.is_none() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
