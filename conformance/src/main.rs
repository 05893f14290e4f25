//! berth-conformance: run the OCI runtime-spec conformance cases against a runtime binary
//! (default: the workspace's `berth` beside this executable), differential against runc.

use anyhow::{bail, Context, Result};
use berth_conformance::case::{Case, Verdict};
use berth_conformance::exec::Driver;
use berth_conformance::host::Host;
use berth_conformance::report::{self, Row};
use berth_conformance::runtime::Runtime;
use berth_conformance::{bundle, cases, gate};
use clap::Parser;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "OCI runtime-spec conformance suite, differential against runc"
)]
struct Cli {
    /// Runtime binary under test (default: `berth` beside this executable).
    #[arg(long)]
    runtime: Option<PathBuf>,
    /// Reference runtime run on every case (default: /usr/sbin/runc when it exists).
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Do not run the reference runtime.
    #[arg(long)]
    no_reference: bool,
    /// Write the full markdown report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// The probe binary (default: `berth-probe` beside this executable).
    #[arg(long)]
    probe: Option<PathBuf>,
    /// Directory holding the runtime-spec JSON schemas.
    #[arg(long, default_value = berth_conformance::schema::DEFAULT_SCHEMA_DIR)]
    schema_dir: PathBuf,
    /// Scratch directory for bundles and runtime state (removed afterwards).
    #[arg(long)]
    work: Option<PathBuf>,
    /// Run only cases whose name contains this string.
    #[arg(long)]
    filter: Option<String>,
    /// Exit status policy: `any` = 1 when any target case fails; `regression` = 1 only when
    /// the target fails a case the reference passes (CI gate "passes all runc passes").
    #[arg(long, value_enum, default_value = "any")]
    fail_on: FailOn,
    /// With `--fail-on any`: target failures excused by this file (`<case> <reason>` lines);
    /// an unlisted failure, or a listed case that passes, fails the run.
    #[arg(long)]
    known_failures: Option<PathBuf>,
    /// Run the reference only on cases the target does not pass (halves a slow run; the
    /// differential verdict is kept where it matters).
    #[arg(long)]
    reference_on_failure: bool,
    /// List the cases and exit.
    #[arg(long)]
    list: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum FailOn {
    Any,
    Regression,
}

fn beside_exe(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this executable's path")?;
    Ok(exe
        .parent()
        .map(|d| d.join(name))
        .unwrap_or_else(|| PathBuf::from(name)))
}

fn label_of(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect();
    if clean.is_empty() {
        "rt".into()
    } else {
        clean
    }
}

fn make_driver(
    path: &Path,
    label: &str,
    host: &Host,
    template: &Path,
    work: &Path,
    probe: &Path,
) -> Result<Driver> {
    if !path.exists() {
        bail!(
            "runtime binary {} does not exist (build it, or pass --runtime PATH)",
            path.display()
        );
    }
    let rt = Runtime::new(path.to_path_buf(), label, work)?;
    let bundles = work.join(format!("bundles-{label}"));
    std::fs::create_dir_all(&bundles)?;
    Ok(Driver::new(
        rt,
        host.clone(),
        template.to_path_buf(),
        bundles,
        probe.to_path_buf(),
    ))
}

/// The runtime under test, the reference runtime and the probe, all checked to exist.
fn resolve_binaries(cli: &Cli) -> Result<(PathBuf, Option<PathBuf>, PathBuf)> {
    let target = match cli.runtime.clone() {
        Some(p) => p,
        None => beside_exe("berth")?,
    };
    let reference = if cli.no_reference {
        None
    } else {
        cli.reference
            .clone()
            .or_else(|| Some(PathBuf::from("/usr/sbin/runc")).filter(|p| p.exists()))
    };
    let probe = match cli.probe.clone() {
        Some(p) => p,
        None => beside_exe("berth-probe")?,
    };
    if !probe.exists() {
        bail!(
            "probe {} does not exist: build berth-conformance first",
            probe.display()
        );
    }
    for rt in std::iter::once(&target).chain(reference.as_ref()) {
        if !rt.exists() {
            bail!(
                "runtime binary {} does not exist (build it, or pass --runtime PATH)",
                rt.display()
            );
        }
    }
    Ok((target, reference, probe))
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("berth-conformance: {e:#}");
        std::process::exit(2);
    }
}

fn run(cli: Cli) -> Result<()> {
    let ctx = cases::Ctx {
        schema_dir: cli.schema_dir.clone(),
    };
    let all: Vec<Case> = cases::all(&ctx);
    let selected: Vec<&Case> = all
        .iter()
        .filter(|c| {
            cli.filter
                .as_ref()
                .map_or(true, |f| c.name.contains(f.as_str()))
        })
        .collect();
    if cli.list {
        for c in &selected {
            println!("{:<48} {}", c.name, c.section);
        }
        println!("{} cases", selected.len());
        return Ok(());
    }
    let known = match &cli.known_failures {
        Some(p) => gate::KnownFailures::load(p).map_err(anyhow::Error::msg)?,
        None => gate::KnownFailures::default(),
    };
    let (target, reference, probe) = resolve_binaries(&cli)?;
    let work = cli.work.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("berth-conformance-{}", std::process::id()))
    });
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let template = work.join("template-rootfs");
    if let Err(e) = bundle::make_template(&template, &probe) {
        let _ = std::fs::remove_dir_all(&work);
        return Err(e.into());
    }
    berth_conformance::exec::become_subreaper();
    let host = Host::detect();
    let tlabel = label_of(&target);
    let rlabel = if tlabel == "runc" {
        "ref-runc".to_string()
    } else {
        "runc".to_string()
    };
    let drivers = make_driver(&target, &tlabel, &host, &template, &work, &probe).and_then(|t| {
        let r = match &reference {
            Some(r) => Some(make_driver(r, &rlabel, &host, &template, &work, &probe)?),
            None => None,
        };
        Ok((t, r))
    });
    let (tdrv, rdrv) = match drivers {
        Ok(d) => d,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&work);
            return Err(e);
        }
    };
    let rows = run_all(&selected, &tdrv, rdrv.as_ref(), cli.reference_on_failure);
    finish(
        &rows,
        (&target, reference.as_deref()),
        cli.report.as_deref(),
        &work,
        (cli.fail_on, &known),
    )
}

/// Run every selected case on the target, then on the reference (only where the target did
/// not pass, with `on_failure`); print a row per case.
fn run_all(selected: &[&Case], tdrv: &Driver, rdrv: Option<&Driver>, on_failure: bool) -> Vec<Row> {
    let width = selected.iter().map(|c| c.name.len()).max().unwrap_or(20);
    println!(
        "{:<width$} {:<34} {:<5} {:<5}",
        "case", "section", "target", "ref"
    );
    let mut rows = Vec::new();
    for case in selected {
        let started = std::time::Instant::now();
        let target = tdrv.run_case(case);
        let millis = started.elapsed().as_millis();
        let reference = rdrv
            .filter(|_| !(on_failure && target == Verdict::Pass))
            .map(|d| d.run_case(case));
        let row = Row {
            name: case.name.clone(),
            section: case.section,
            target,
            reference,
            millis,
        };
        println!("{}", report::console_row(&row, width));
        rows.push(row);
    }
    rows
}

/// Remove the (now empty) /berth-conformance parent cgroups the runtimes created.
fn remove_parent_cgroups() {
    let host = Host::detect();
    let mut mounts: Vec<PathBuf> = host.cgroup_v1.values().cloned().collect();
    mounts.extend(host.cgroup_v2.clone());
    mounts.push(PathBuf::from("/sys/fs/cgroup/systemd"));
    for m in mounts {
        let _ = std::fs::remove_dir(m.join("berth-conformance"));
    }
}

/// Print the strict gate's findings; true when it passes.
fn gate_verdicts(rows: &[Row], known: &gate::KnownFailures) -> bool {
    let v = gate::judge(rows, known);
    for (case, why) in &v.excused {
        println!("known failure: {case}: {why}");
    }
    for case in &v.stale {
        println!("STALE known-failures entry: {case} did not fail (remove it from the list)");
    }
    if !v.unexcused.is_empty() {
        println!("unexcused failures: {:?}", v.unexcused);
    }
    v.ok()
}

fn finish(
    rows: &[Row],
    paths: (&Path, Option<&Path>),
    out: Option<&Path>,
    work: &Path,
    (fail_on, known): (FailOn, &gate::KnownFailures),
) -> Result<()> {
    let (target, reference) = paths;
    let rl = reference.map(|p| p.display().to_string());
    let md = report::markdown(rows, &target.display().to_string(), rl.as_deref());
    if let Some(path) = out {
        std::fs::write(path, &md).with_context(|| format!("writing {}", path.display()))?;
    }
    let ref_failed: Vec<&Row> = rows
        .iter()
        .filter(|r| matches!(r.reference, Some(Verdict::Fail(_))))
        .collect();
    if !ref_failed.is_empty() {
        println!("\nreference failures:");
        for r in ref_failed {
            println!("  {}: {}", r.name, r.reference_note("reference"));
        }
    }
    let regressions: Vec<&str> = rows
        .iter()
        .filter(|r| matches!(r.target, Verdict::Fail(_)) && r.reference == Some(Verdict::Pass))
        .map(|r| r.name.as_str())
        .collect();
    if reference.is_some() {
        println!(
            "\ntarget fails {} case(s) the reference passes: {regressions:?}",
            regressions.len()
        );
    }
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| matches!(r.target, Verdict::Fail(_)))
        .map(|r| r.name.as_str())
        .collect();
    println!("target failures: {failed:?}");
    let _ = std::fs::remove_dir_all(work);
    remove_parent_cgroups();
    let bad = match fail_on {
        FailOn::Any => !gate_verdicts(rows, known),
        FailOn::Regression => !regressions.is_empty(),
    };
    println!("{}", report::summary_line(rows));
    if bad {
        std::process::exit(1);
    }
    Ok(())
}
