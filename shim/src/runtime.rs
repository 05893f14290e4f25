//! The berth runtime through its runc-compatible CLI: the shim's one interface to berth.
//!
//! Every command runs with `--log <bundle>/log.json --log-format json`, so a failure reaches
//! containerd's user as berth's own last error line. Children are never waited on directly:
//! the shim is a subreaper whose one reaper thread (containerd-shim's SIGCHLD handler) reaps
//! every exit and dispatches it through the monitor; a command subscribes before it spawns, so
//! its exit cannot be lost to that race.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use containerd_shim::monitor::{monitor_subscribe, wait_pid, Topic};

use crate::error::{Error, Result};

/// Where berth keeps its container state for one containerd namespace.
pub fn default_root(namespace: &str) -> PathBuf {
    Path::new("/run/containerd/berth").join(namespace)
}

/// The binary to run: an explicit name (runtime option BinaryName), else `$BERTH_RUNTIME`,
/// else `berth` next to the shim binary, else `berth` on PATH.
pub fn locate(binary_name: Option<&str>) -> PathBuf {
    let name = match binary_name.filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => match std::env::var("BERTH_RUNTIME") {
            Ok(v) if !v.is_empty() => v,
            _ => "berth".to_string(),
        },
    };
    if name.contains('/') {
        return PathBuf::from(name);
    }
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(&name)));
    if let Some(s) = sibling.filter(|s| s.is_file()) {
        return s;
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    path.split(':')
        .map(|d| Path::new(d).join(&name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The stdio a container process gets (FIFOs or pipes); `None` means /dev/null.
#[derive(Default)]
pub struct ProcStdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

impl ProcStdio {
    fn apply(self, cmd: &mut Command) {
        let to = |fd: Option<OwnedFd>| fd.map(Stdio::from).unwrap_or_else(Stdio::null);
        cmd.stdin(to(self.stdin))
            .stdout(to(self.stdout))
            .stderr(to(self.stderr));
    }
}

/// What `create` and `exec` need beyond the id.
pub struct Launch<'a> {
    pub pid_file: &'a Path,
    pub console_socket: Option<&'a Path>,
    pub stdio: ProcStdio,
}

#[derive(Clone, Debug)]
pub struct Berth {
    pub binary: PathBuf,
    pub root: PathBuf,
    /// `<bundle>/log.json`, berth's JSON log for this container.
    pub log: PathBuf,
    /// containerd's SystemdCgroup: --systemd-cgroup on every call, as runc's shim passes it.
    pub systemd_cgroup: bool,
    /// containerd's NoPivotRoot: create gets --no-pivot.
    pub no_pivot: bool,
}

impl Berth {
    pub fn new(binary: PathBuf, root: PathBuf, bundle: &Path) -> Berth {
        Berth {
            binary,
            root,
            log: bundle.join("log.json"),
            systemd_cgroup: false,
            no_pivot: false,
        }
    }

    fn command(&self, sub: &str) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .args(["--log-format", "json"]);
        if self.systemd_cgroup {
            c.arg("--systemd-cgroup");
        }
        c.arg(sub);
        c
    }

    pub fn create(&self, id: &str, bundle: &Path, launch: Launch) -> Result<()> {
        let mut c = self.command("create");
        c.arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(launch.pid_file);
        if let Some(sock) = launch.console_socket {
            c.arg("--console-socket").arg(sock);
        }
        if self.no_pivot {
            c.arg("--no-pivot");
        }
        c.arg(id);
        launch.stdio.apply(&mut c);
        self.run("create", c, None, false).map(drop)
    }

    pub fn exec(&self, id: &str, process_json: &Path, launch: Launch) -> Result<()> {
        let mut c = self.command("exec");
        c.arg("--process").arg(process_json).arg("--detach");
        c.arg("--pid-file").arg(launch.pid_file);
        if let Some(sock) = launch.console_socket {
            c.arg("--console-socket").arg(sock);
        }
        c.arg(id);
        launch.stdio.apply(&mut c);
        self.run("exec", c, None, false).map(drop)
    }

    pub fn simple(&self, sub: &str, args: &[&str]) -> Result<()> {
        let mut c = self.command(sub);
        c.args(args);
        self.run(sub, c, None, true).map(drop)
    }

    pub fn kill(&self, id: &str, signal: u32, all: bool) -> Result<()> {
        let sig = signal.to_string();
        let mut args = vec![];
        if all {
            args.push("--all");
        }
        args.extend([id, sig.as_str()]);
        self.simple("kill", &args)
    }

    /// `berth ps --format json`: the pids of the container's processes.
    pub fn ps(&self, id: &str) -> Result<Vec<u32>> {
        let mut c = self.command("ps");
        c.args(["--format", "json", id]);
        let out = self.run("ps", c, None, true)?;
        serde_json::from_slice(&out).map_err(|e| Error::Runtime {
            cmd: "ps".into(),
            msg: format!("unreadable output: {e}"),
        })
    }

    /// `berth update --resources -` with the linux.resources JSON containerd sent.
    pub fn update(&self, id: &str, resources_json: &[u8]) -> Result<()> {
        let mut c = self.command("update");
        c.args(["--resources", "-", id]);
        self.run("update", c, Some(resources_json), true).map(drop)
    }

    /// Spawns, feeds stdin, collects stdout, and waits through the monitor; a non-zero
    /// exit becomes the runtime's own error message.
    fn run(
        &self,
        sub: &str,
        mut c: Command,
        input: Option<&[u8]>,
        capture: bool,
    ) -> Result<Vec<u8>> {
        if capture {
            c.stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        let started = std::time::Instant::now();
        let log_start = std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let sub_monitor = monitor_subscribe(Topic::Pid).map_err(|e| Error::Runtime {
            cmd: sub.into(),
            msg: e.to_string(),
        })?;
        let mut child = c.spawn().map_err(|source| Error::Spawn {
            binary: self.binary.display().to_string(),
            source,
        })?;
        drop(c); // closes the parent's copies of the container's stdio
        if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
            let _ = stdin.write_all(data);
        }
        let (mut out, mut err) = (Vec::new(), Vec::new());
        if let Some(mut o) = child.stdout.take() {
            let _ = o.read_to_end(&mut out);
        }
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_end(&mut err);
        }
        let code = wait_pid(child.id() as i32, sub_monitor);
        log::debug!("berth {sub}: exit {code} after {:?}", started.elapsed());
        if code == 0 {
            return Ok(out);
        }
        let msg = last_log_error(&self.log, log_start)
            .or_else(|| {
                let s = String::from_utf8_lossy(&err).trim().to_string();
                (!s.is_empty()).then_some(s)
            })
            .unwrap_or_else(|| format!("exit status {code}"));
        Err(Error::Runtime {
            cmd: sub.into(),
            msg,
        })
    }
}

/// The `msg` of the last `"level":"error"` line written to the log after `offset`.
pub fn last_log_error(log: &Path, offset: u64) -> Option<String> {
    let mut f = File::open(log).ok()?;
    f.seek(SeekFrom::Start(offset)).ok()?;
    let mut text = String::new();
    f.read_to_string(&mut text).ok()?;
    text.lines().rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        (v.get("level")?.as_str()? == "error").then(|| v.get("msg")?.as_str().map(String::from))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_cgroup_goes_on_every_call() {
        let mut b = Berth::new("/bin/berth".into(), "/r".into(), Path::new("/b"));
        let args = |c: &Command| -> Vec<String> {
            c.get_args().map(|a| a.to_string_lossy().into()).collect()
        };
        assert!(!args(&b.command("kill")).contains(&"--systemd-cgroup".to_string()));
        b.systemd_cgroup = true;
        let a = args(&b.command("delete"));
        let flag = a.iter().position(|x| x == "--systemd-cgroup");
        let sub = a.iter().position(|x| x == "delete");
        assert!(flag.is_some() && flag < sub, "{a:?}");
    }

    #[test]
    fn last_error_line_after_offset() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.json");
        let old = "{\"level\":\"error\",\"msg\":\"old\"}\n";
        let new =
            "{\"level\":\"info\",\"msg\":\"x\"}\n{\"level\":\"error\",\"msg\":\"no such file\"}\n";
        std::fs::write(&log, format!("{old}{new}")).unwrap();
        assert_eq!(
            last_log_error(&log, old.len() as u64).as_deref(),
            Some("no such file")
        );
        assert_eq!(last_log_error(&log, 10_000), None);
    }

    #[test]
    fn explicit_path_wins() {
        assert_eq!(locate(Some("/opt/x/berth")), PathBuf::from("/opt/x/berth"));
    }
}
