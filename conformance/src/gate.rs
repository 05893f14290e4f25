//! The strict CI gate: every target failure fails the run unless a checked-in known-failures
//! file lists the case with its reason, and a listed case that passes (or no longer exists)
//! fails the run too, so the list can only shrink by fixing, never rot.

use crate::case::Verdict;
use crate::report::Row;
use std::collections::BTreeMap;
use std::path::Path;

/// case name -> reason, from a file of `<case> <reason…>` lines (`#` starts a comment line).
#[derive(Debug, Default, Clone)]
pub struct KnownFailures(pub BTreeMap<String, String>);

impl KnownFailures {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("known-failures file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("known-failures file {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (case, reason) = line
                .split_once(char::is_whitespace)
                .map(|(c, r)| (c, r.trim()))
                .unwrap_or((line, ""));
            if reason.is_empty() {
                return Err(format!("line {}: case {case} has no reason", i + 1));
            }
            if map.insert(case.to_string(), reason.to_string()).is_some() {
                return Err(format!("line {}: case {case} listed twice", i + 1));
            }
        }
        Ok(KnownFailures(map))
    }
}

/// What the gate found; `ok()` is the exit status policy.
#[derive(Debug, Default)]
pub struct Verdicts {
    /// Target failures not in the list.
    pub unexcused: Vec<String>,
    /// Target failures the list explains: (case, reason).
    pub excused: Vec<(String, String)>,
    /// Listed cases that passed, were skipped or were not run although selected.
    pub stale: Vec<String>,
}

impl Verdicts {
    pub fn ok(&self) -> bool {
        self.unexcused.is_empty() && self.stale.is_empty()
    }
}

/// Judge the rows. Only cases that ran are judged, so a list entry for a case outside a
/// `--filter` is not called stale.
pub fn judge(rows: &[Row], known: &KnownFailures) -> Verdicts {
    let mut v = Verdicts::default();
    for r in rows {
        let listed = known.0.get(&r.name);
        match (&r.target, listed) {
            (Verdict::Fail(_), Some(why)) => v.excused.push((r.name.clone(), why.clone())),
            (Verdict::Fail(_), None) => v.unexcused.push(r.name.clone()),
            (_, Some(_)) => v.stale.push(r.name.clone()),
            (_, None) => {}
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, target: Verdict) -> Row {
        Row {
            name: name.into(),
            section: "s",
            target,
            reference: None,
            millis: 0,
        }
    }

    #[test]
    fn every_entry_needs_a_reason_and_appears_once() {
        assert!(KnownFailures::parse("# c\n\na.b   why it fails\n").is_ok());
        assert!(KnownFailures::parse("a.b\n")
            .unwrap_err()
            .contains("no reason"));
        assert!(KnownFailures::parse("a x\na y\n")
            .unwrap_err()
            .contains("twice"));
    }

    #[test]
    fn unlisted_failures_and_stale_entries_fail_the_gate() {
        let known = KnownFailures::parse("b.listed reason\nc.stale reason\n").unwrap();
        let rows = [
            row("a.new", Verdict::Fail("x".into())),
            row("b.listed", Verdict::Fail("y".into())),
            row("c.stale", Verdict::Pass),
            row("d.skip", Verdict::Skip("z".into())),
        ];
        let v = judge(&rows, &known);
        assert_eq!(v.unexcused, vec!["a.new".to_string()]);
        assert_eq!(v.excused.len(), 1);
        assert_eq!(v.stale, vec!["c.stale".to_string()]);
        assert!(!v.ok());
        let v = judge(&rows[1..2], &known);
        assert!(v.ok(), "{v:?}");
    }
}
