//! What a case is: a name, the spec section it checks, and either a config mutation plus a
//! check over what the probe saw, or a custom driver for CLI/lifecycle behaviour.

use crate::host::Host;
use crate::runtime::CmdOut;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Child;

/// The result of one case on one runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail(String),
    Skip(String),
}

impl Verdict {
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail(_) => "FAIL",
            Verdict::Skip(_) => "skip",
        }
    }
    pub fn detail(&self) -> &str {
        match self {
            Verdict::Pass => "",
            Verdict::Fail(s) | Verdict::Skip(s) => s,
        }
    }
}

impl From<Result<(), String>> for Verdict {
    fn from(r: Result<(), String>) -> Self {
        match r {
            Ok(()) => Verdict::Pass,
            Err(e) => Verdict::Fail(e),
        }
    }
}

/// Context a setup function gets: where the bundle is, the container id, the host, and a
/// place to leave notes for the check and resources to release afterwards.
pub struct Setup<'a> {
    pub bundle: PathBuf,
    pub id: String,
    pub host: &'a Host,
    /// The probe binary on the host (used as the hook program).
    pub probe_host: PathBuf,
    pub notes: BTreeMap<String, String>,
    pub holders: Vec<Child>,
    pub mounts: Vec<PathBuf>,
}

/// Everything observed while running one probe case.
#[derive(Debug, Default)]
pub struct Outcome {
    pub config: Value,
    pub create: CmdOut,
    pub state_created: Option<Value>,
    pub start: Option<CmdOut>,
    pub stopped: bool,
    pub probe: Option<Value>,
    pub stdout: String,
    pub stderr: String,
    pub hooks: Vec<Value>,
    pub delete: Option<CmdOut>,
    pub gone_after_delete: bool,
    pub host_files: BTreeMap<String, Option<String>>,
    pub host_ns: BTreeMap<String, String>,
    pub notes: BTreeMap<String, String>,
    pub host: Host,
}

impl Outcome {
    /// The probe's report, or a failure that says why there is none.
    pub fn probe(&self) -> Result<&Value, String> {
        if let Some(p) = &self.probe {
            return Ok(p);
        }
        if !self.create.ok() {
            return Err(format!("create failed: {}", self.create.summary()));
        }
        let err: String = self.stderr.trim().chars().take(300).collect();
        if let Some(s) = self.start.as_ref().filter(|s| !s.ok()) {
            return Err(format!(
                "start failed: {} (container stderr: {err:?})",
                s.summary()
            ));
        }
        Err(format!("no probe output (container stderr: {err:?})"))
    }

    /// A field of the probe report by JSON pointer.
    pub fn get(&self, pointer: &str) -> Result<&Value, String> {
        self.probe()?
            .pointer(pointer)
            .ok_or_else(|| format!("probe report has no {pointer}"))
    }

    /// A host-side cgroup file read after create: `controller/file`.
    pub fn host_file(&self, key: &str) -> Result<&str, String> {
        if !self.create.ok() {
            return Err(format!("create failed: {}", self.create.summary()));
        }
        match self.host_files.get(key) {
            Some(Some(v)) => Ok(v),
            _ => Err(format!(
                "cannot read the container's cgroup file {key} from the host"
            )),
        }
    }

    /// Did the runtime itself refuse `create` (a non-zero exit, not our timeout kill)?
    pub fn create_refused(&self) -> bool {
        matches!(self.create.code, Some(c) if c != 0)
    }

    pub fn note(&self, key: &str) -> &str {
        self.notes.get(key).map(String::as_str).unwrap_or("")
    }
}

pub type SetupFn = Box<dyn Fn(&mut Value, &mut Setup) -> Result<(), String> + Send + Sync>;
pub type CheckFn = Box<dyn Fn(&Outcome) -> Result<(), String> + Send + Sync>;
pub type CustomFn = Box<dyn Fn(&crate::exec::Driver) -> Verdict + Send + Sync>;
pub type RequiresFn = Box<dyn Fn(&Host) -> Option<String> + Send + Sync>;

pub enum Body {
    Probe {
        setup: SetupFn,
        check: CheckFn,
        /// cgroup files (controller, file) to read from the host after create.
        host_files: Vec<(String, String)>,
    },
    Custom(CustomFn),
}

pub struct Case {
    pub name: String,
    pub section: &'static str,
    /// Returns a skip reason when this machine cannot run the case.
    pub requires: Option<RequiresFn>,
    pub body: Body,
}

impl Case {
    /// A probe case: mutate the baseline config, then check the outcome.
    pub fn probe(
        name: impl Into<String>,
        section: &'static str,
        setup: impl Fn(&mut Value, &mut Setup) -> Result<(), String> + Send + Sync + 'static,
        check: impl Fn(&Outcome) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        Case {
            name: name.into(),
            section,
            requires: None,
            body: Body::Probe {
                setup: Box::new(setup),
                check: Box::new(check),
                host_files: Vec::new(),
            },
        }
    }

    pub fn custom(
        name: impl Into<String>,
        section: &'static str,
        f: impl Fn(&crate::exec::Driver) -> Verdict + Send + Sync + 'static,
    ) -> Self {
        Case {
            name: name.into(),
            section,
            requires: None,
            body: Body::Custom(Box::new(f)),
        }
    }

    pub fn requires(mut self, f: impl Fn(&Host) -> Option<String> + Send + Sync + 'static) -> Self {
        self.requires = Some(Box::new(f));
        self
    }

    pub fn host_file(mut self, controller: &str, file: &str) -> Self {
        if let Body::Probe { host_files, .. } = &mut self.body {
            host_files.push((controller.to_string(), file.to_string()));
        }
        self
    }
}
