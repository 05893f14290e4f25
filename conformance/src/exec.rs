//! Running cases against one runtime: bundle per case, create → observe → start → wait →
//! read the probe → delete, always cleaning up.

use crate::bundle::{baseline, Bundle};
use crate::case::{Body, Case, CheckFn, Outcome, Setup, SetupFn, Verdict};
use crate::host::Host;
use crate::runtime::Runtime;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How long a probe container may take to finish.
pub const RUN_LIMIT: Duration = Duration::from_secs(10);

/// Everything needed to run cases against one runtime.
pub struct Driver {
    pub runtime: Runtime,
    pub host: Host,
    pub template: PathBuf,
    pub work: PathBuf,
    pub probe_host: PathBuf,
    counter: AtomicU32,
}

impl Driver {
    pub fn new(
        runtime: Runtime,
        host: Host,
        template: PathBuf,
        work: PathBuf,
        probe: PathBuf,
    ) -> Self {
        Driver {
            runtime,
            host,
            template,
            work,
            probe_host: probe,
            counter: AtomicU32::new(0),
        }
    }

    /// A fresh container id, unique across the run.
    pub fn new_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("bc-{}-{}-{n}", self.runtime.label, std::process::id())
    }

    /// A new bundle with the baseline config (not yet written) and a fresh id.
    pub fn bundle(&self) -> Result<(Bundle, String, Value), String> {
        let id = self.new_id();
        let b = Bundle::new(self.work.join(&id), &self.template).map_err(|e| e.to_string())?;
        let cfg = baseline(&id);
        Ok((b, id, cfg))
    }

    /// Force-delete a container and remove its bundle and leftover cgroups.
    pub fn cleanup(&self, id: &str, bundle: &Bundle) {
        if self.runtime.status(id).is_some() {
            let _ = self.runtime.delete(id, true);
        }
        bundle.remove();
        self.remove_cgroups(id);
        reap_orphans();
    }

    fn remove_cgroups(&self, id: &str) {
        for mount in self.host.cgroup_v1.values() {
            let dir = mount.join("berth-conformance").join(id);
            if dir.exists() {
                let _ = std::fs::remove_dir(&dir);
            }
        }
    }

    pub fn run_case(&self, case: &Case) -> Verdict {
        if let Some(req) = &case.requires {
            if let Some(reason) = req(&self.host) {
                return Verdict::Skip(reason);
            }
        }
        match &case.body {
            Body::Custom(f) => f(self),
            Body::Probe {
                setup,
                check,
                host_files,
            } => self.run_probe(setup, check, host_files),
        }
    }

    fn run_probe(&self, setup: &SetupFn, check: &CheckFn, files: &[(String, String)]) -> Verdict {
        let (bundle, id, mut cfg) = match self.bundle() {
            Ok(x) => x,
            Err(e) => return Verdict::Fail(format!("test setup: {e}")),
        };
        let mut st = Setup {
            bundle: bundle.dir.clone(),
            id: id.clone(),
            host: &self.host,
            probe_host: self.probe_host.clone(),
            notes: Default::default(),
            holders: Vec::new(),
            mounts: Vec::new(),
        };
        let prepared = setup(&mut cfg, &mut st).and_then(|()| {
            add_probe_args(&mut cfg);
            bundle.write_config(&cfg).map_err(|e| e.to_string())
        });
        let verdict = match prepared {
            Err(e) => Verdict::Fail(format!("test setup: {e}")),
            Ok(()) => {
                let mut out = self.observe(&id, &bundle, files);
                out.config = cfg;
                out.notes = std::mem::take(&mut st.notes);
                check(&out).into()
            }
        };
        self.cleanup(&id, &bundle);
        release(st);
        verdict
    }

    /// create → host-side reads → start → wait for stopped → read output → delete.
    fn observe(&self, id: &str, bundle: &Bundle, files: &[(String, String)]) -> Outcome {
        let rt = &self.runtime;
        let mut out = Outcome {
            host: self.host.clone(),
            ..Default::default()
        };
        out.create = rt
            .create(id, &bundle.dir)
            .unwrap_or_else(|e| crate::runtime::CmdOut {
                code: None,
                stdout: String::new(),
                stderr: e.to_string(),
            });
        out.state_created = rt.state(id).ok().and_then(Result::ok);
        if out.create.ok() {
            let pid = out
                .state_created
                .as_ref()
                .and_then(|s| s.get("pid"))
                .and_then(Value::as_i64);
            if let Some(pid) = pid {
                self.host_side(pid, files, &mut out);
            }
            out.start = rt.start(id).ok();
            out.stopped = rt.wait_status(id, Some("stopped"), RUN_LIMIT);
        }
        out.stdout = std::fs::read_to_string(bundle.dir.join("stdout")).unwrap_or_default();
        out.stderr = std::fs::read_to_string(bundle.dir.join("stderr")).unwrap_or_default();
        out.probe = out.stdout.lines().rev().find_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(Value::is_object)
        });
        if rt.status(id).is_some() {
            out.delete = rt.delete(id, true).ok();
            out.gone_after_delete = rt.status(id).is_none();
        }
        out.hooks = read_hook_log(&bundle.dir.join("hooks.log"));
        out.hooks
            .extend(read_hook_log(&bundle.dir.join("rootfs/hooks.log")));
        out.hooks
            .sort_by_key(|h| h["mono_ns"].as_u64().unwrap_or(0));
        out
    }

    fn host_side(&self, pid: i64, files: &[(String, String)], out: &mut Outcome) {
        for (ctrl, file) in files {
            let v = self.host.read_cgroup_file(pid, ctrl, file);
            out.host_files.insert(format!("{ctrl}/{file}"), v);
        }
        // Where the container's cgroup is, seen from the host (a cgroup namespace would show
        // the container "/"): the memory hierarchy's path (v1) and the cgroup2 one.
        for ctrl in ["memory", ""] {
            let key = format!("path/{}", if ctrl.is_empty() { "unified" } else { ctrl });
            out.host_files
                .insert(key, crate::host::cgroup_path_of(pid, ctrl));
        }
        for name in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
            if let Ok(l) = std::fs::read_link(format!("/proc/{pid}/ns/{name}")) {
                out.host_ns
                    .insert(name.to_string(), l.display().to_string());
            }
        }
    }
}

/// Hooks append one JSON object per line to hooks.log in the bundle.
pub fn read_hook_log(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Tell the probe about the paths and sysctls the config names, so it reports on them.
fn add_probe_args(cfg: &mut Value) {
    let args = cfg.pointer("/process/args").and_then(Value::as_array);
    let is_report = args.is_some_and(|a| a.len() >= 2 && a[1] == "report");
    if !is_report {
        return;
    }
    let mut extra: Vec<Value> = Vec::new();
    for key in ["maskedPaths", "readonlyPaths"] {
        let list = cfg
            .pointer(&format!("/linux/{key}"))
            .and_then(Value::as_array);
        for p in list.into_iter().flatten() {
            extra.push("--path".into());
            extra.push(p.clone());
        }
    }
    if let Some(map) = cfg.pointer("/linux/sysctl").and_then(Value::as_object) {
        for k in map.keys() {
            extra.push("--sysctl".into());
            extra.push(k.clone().into());
        }
    }
    if let Some(a) = cfg
        .pointer_mut("/process/args")
        .and_then(Value::as_array_mut)
    {
        a.extend(extra);
    }
}

fn release(st: Setup) {
    for mut child in st.holders {
        let _ = child.kill();
        let _ = child.wait();
    }
    for m in st.mounts.iter().rev() {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(m)
            .status();
        let _ = std::fs::remove_file(m);
    }
}

/// Become the reaper of orphaned container processes (like a containerd shim), so exited
/// containers do not linger as zombies when pid 1 does not reap.
pub fn become_subreaper() {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Reap exited orphans. Called only between runtime commands, when every child the harness
/// spawned itself has already been waited for.
fn reap_orphans() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid on any child without blocking.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            break;
        }
    }
}
