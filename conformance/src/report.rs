//! The report: one row per case (case, section, target, reference, what differed), printed
//! as a table and written as markdown, ending with `N passed, M failed, K skipped`.

use crate::case::Verdict;
use crate::known;
use std::fmt::Write as _;

pub struct Row {
    pub name: String,
    pub section: &'static str,
    pub target: Verdict,
    pub reference: Option<Verdict>,
    /// Wall time of the target run, in milliseconds.
    pub millis: u128,
}

impl Row {
    /// What differed between the target and the reference, in one phrase.
    pub fn difference(&self) -> String {
        let Some(r) = &self.reference else {
            return String::new();
        };
        if r.word() == self.target.word() {
            return String::new();
        }
        match (&self.target, r) {
            (Verdict::Fail(t), Verdict::Pass) => {
                format!("target fails where reference passes: {t}")
            }
            (Verdict::Pass, Verdict::Fail(_)) => "reference fails, target passes".into(),
            (t, r) => format!("target {} / reference {}", t.word(), r.word()),
        }
    }

    /// Why the reference fails this case (from the known-explanations table).
    pub fn reference_note(&self, ref_label: &str) -> String {
        match &self.reference {
            Some(Verdict::Fail(d)) => match known::explain(&self.name) {
                Some(why) => format!("{why} (observed: {d})"),
                None => format!("UNEXPLAINED {ref_label} failure: {d}"),
            },
            _ => String::new(),
        }
    }
}

pub fn counts(rows: &[Row]) -> (usize, usize, usize) {
    let mut c = (0, 0, 0);
    for r in rows {
        match r.target {
            Verdict::Pass => c.0 += 1,
            Verdict::Fail(_) => c.1 += 1,
            Verdict::Skip(_) => c.2 += 1,
        }
    }
    c
}

pub fn summary_line(rows: &[Row]) -> String {
    let (p, f, s) = counts(rows);
    format!("{p} passed, {f} failed, {s} skipped")
}

/// One console line for a finished case.
pub fn console_row(row: &Row, width: usize) -> String {
    let r = row.reference.as_ref().map(Verdict::word).unwrap_or("-");
    let mut s = format!(
        "{:<width$} {:<34} {:<5} {:<5}",
        row.name,
        row.section,
        row.target.word(),
        r
    );
    if !row.target.detail().is_empty() {
        let d: String = row.target.detail().chars().take(160).collect();
        let _ = write!(s, "  {d}");
    }
    s
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The full markdown report.
pub fn markdown(rows: &[Row], target: &str, reference: Option<&str>) -> String {
    let rl = reference.unwrap_or("reference");
    let mut md = String::new();
    let _ = writeln!(md, "# OCI runtime-spec conformance\n");
    let _ = writeln!(md, "- target: `{target}`");
    let _ = writeln!(md, "- reference: `{}`\n", reference.unwrap_or("(none)"));
    let _ = writeln!(
        md,
        "| case | section | target | {rl} | differs | details | ms |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for row in rows {
        let refw = row.reference.as_ref().map(Verdict::word).unwrap_or("-");
        let mut details = String::new();
        if !row.target.detail().is_empty() {
            let _ = write!(details, "target: {} ", row.target.detail());
        }
        let note = row.reference_note(rl);
        if !note.is_empty() {
            let _ = write!(details, "{rl}: {note}");
        } else if let Some(Verdict::Skip(s)) = &row.reference {
            if !matches!(row.target, Verdict::Skip(_)) {
                let _ = write!(details, "{rl} skipped: {s}");
            }
        }
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            cell(&row.name),
            cell(row.section),
            row.target.word(),
            refw,
            cell(&row.difference()),
            cell(&details),
            row.millis
        );
    }
    let _ = writeln!(md, "\n{}", summary_line(rows));
    md
}
