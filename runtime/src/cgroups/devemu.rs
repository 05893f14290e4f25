//! v1 devices cgroup changes as a transition, the way runc's device emulator computes them
//! (runc libcontainer/cgroups/devices: v1.go and the emulator): the cgroup's current state is
//! read from devices.list, the wanted state is the rule list reduced by v1's semantics, and
//! only what differs is written. A disruptive `a` (allow or deny all) is written only when
//! the default changes or the cgroup is allow-all now (whose deny exceptions devices.list does
//! not show). The kernel refuses `a` with EINVAL while the cgroup has children, so rewriting
//! an unchanged deny-all at every `update` made updates fail in any container with
//! sub-cgroups; and an existing exception is not dropped for a moment and re-added.

use super::devbpf::{parse, Rule};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// (major, minor, type) with -1 for a wildcard: runc's write order.
type Key = (i64, i64, char);

#[derive(Debug, Clone, PartialEq, Default)]
pub struct State {
    default_allow: bool,
    /// The exceptions to the default and their access bits (m=1, r=2, w=4).
    rules: BTreeMap<Key, u8>,
}

fn key(r: &Rule) -> Key {
    let n = |x: Option<u32>| x.map_or(-1, i64::from);
    (n(r.major), n(r.minor), r.typ)
}

impl State {
    /// Applies one rule with v1's semantics. A rule that would take access away from part of
    /// a wildcard exception is refused: the kernel would ignore it silently (runc refuses it).
    pub fn apply(&mut self, r: &Rule) -> std::result::Result<(), String> {
        if r.typ == 'a' {
            *self = State {
                default_allow: r.allow,
                rules: BTreeMap::new(),
            };
            return Ok(());
        }
        let k = key(r);
        if r.allow != self.default_allow {
            *self.rules.entry(k).or_insert(0) |= r.access;
            return Ok(());
        }
        for partial in [(-1, k.1, k.2), (k.0, -1, k.2), (-1, -1, k.2)] {
            let held = self.rules.get(&partial).copied().unwrap_or(0);
            if partial != k && held & r.access != 0 {
                return Err(format!(
                    "{} cannot take access away from part of the wildcard rule {} (the v1 devices cgroup would ignore it)",
                    rule_string(r),
                    rule_string(&rule_of(partial, held, !r.allow)),
                ));
            }
        }
        if let Some(a) = self.rules.get_mut(&k) {
            *a &= !r.access;
            if *a == 0 {
                self.rules.remove(&k);
            }
        }
        Ok(())
    }

    /// The state a devices.list shows: an allow list, or `a *:* rwm` for allow-all.
    pub fn from_list(list: &str) -> Result<State> {
        let mut s = State::default();
        for l in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let r = parse(true, l)?;
            s.apply(&r)
                .map_err(|e| Error::Other(format!("devices.list: {e}")))?;
        }
        Ok(s)
    }

    /// The fewest rules that take the cgroup from `self` to `target`, in an order the kernel
    /// accepts: the disruptive rule first (if any), then what is taken away, then what is
    /// added.
    pub fn transition(&self, target: &State) -> Vec<Rule> {
        let mut out = Vec::new();
        let mut old = &self.rules;
        let none = BTreeMap::new();
        if self.default_allow || self.default_allow != target.default_allow {
            out.push(Rule {
                allow: target.default_allow,
                typ: 'a',
                major: None,
                minor: None,
                access: 7,
            });
            old = &none;
        }
        for (k, a) in old {
            let dropped = a & !target.rules.get(k).copied().unwrap_or(0);
            if dropped != 0 {
                out.push(rule_of(*k, dropped, target.default_allow));
            }
        }
        for (k, a) in &target.rules {
            let gained = a & !old.get(k).copied().unwrap_or(0);
            if gained != 0 {
                out.push(rule_of(*k, gained, !target.default_allow));
            }
        }
        out
    }
}

fn rule_of(k: Key, access: u8, allow: bool) -> Rule {
    let n = |x: i64| u32::try_from(x).ok();
    Rule {
        allow,
        typ: k.2,
        major: n(k.0),
        minor: n(k.1),
        access,
    }
}

/// The rule as devices.allow/deny and devices.list spell it.
pub fn rule_string(r: &Rule) -> String {
    let n = |x: Option<u32>| x.map_or("*".to_string(), |v| v.to_string());
    let acc: String = [(2, 'r'), (4, 'w'), (1, 'm')]
        .iter()
        .filter(|(b, _)| r.access & b != 0)
        .map(|(_, c)| *c)
        .collect();
    match r.typ {
        'a' => format!("a *:* {acc}"),
        t => format!("{t} {}:{} {acc}", n(r.major), n(r.minor)),
    }
}

/// Takes the devices cgroup in `dir` to `target` and checks the result as runc does: an
/// allow list must then read back exactly as wanted.
pub fn set(dir: &Path, target: &State) -> Result<()> {
    let list = dir.join("devices.list");
    let read = || std::fs::read_to_string(&list).map_err(|e| Error::io(&list, e));
    let now = State::from_list(&read()?)?;
    for r in now.transition(target) {
        let file = if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        let rule = rule_string(&r);
        std::fs::write(dir.join(file), &rule).map_err(|e| {
            Error::Other(format!(
                "linux.resources.devices: {} {rule:?}: {e}",
                dir.join(file).display()
            ))
        })?;
    }
    let after = State::from_list(&read()?)?;
    let ok = match target.default_allow {
        false => after == *target,
        true => after.default_allow,
    };
    if !ok {
        return Err(Error::Other(format!(
            "linux.resources.devices: {} does not read back as the rules wanted (is the parent cgroup narrower?)",
            list.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(rules: &[(bool, &str)]) -> State {
        let mut s = State::default();
        for (allow, r) in rules {
            s.apply(&parse(*allow, r).unwrap()).unwrap();
        }
        s
    }

    fn strings(v: &[Rule]) -> Vec<String> {
        v.iter()
            .map(|r| {
                format!(
                    "{} {}",
                    if r.allow { "allow" } else { "deny" },
                    rule_string(r)
                )
            })
            .collect()
    }

    #[test]
    fn an_unchanged_deny_all_is_not_written_again() {
        let now = State::from_list("c 1:3 rwm\nc 1:5 rwm\nc *:* m\n").unwrap();
        let want = st(&[
            (false, "a"),
            (false, "a"),
            (true, "c 1:3 rwm"),
            (true, "c *:* m"),
            (true, "c 1:9 r"),
            (false, "c 1:3 w"),
        ]);
        assert_eq!(
            strings(&now.transition(&want)),
            ["deny c 1:3 w", "deny c 1:5 rwm", "allow c 1:9 r"]
        );
        assert!(want.transition(&want).is_empty());
    }

    #[test]
    fn allow_all_now_or_a_new_default_starts_with_the_disruptive_rule() {
        let all = State::from_list("a *:* rwm\n").unwrap();
        let want = st(&[(false, "a"), (true, "c 1:3 rwm")]);
        assert_eq!(
            strings(&all.transition(&want)),
            ["deny a *:* rwm", "allow c 1:3 rwm"]
        );
        assert_eq!(
            strings(&want.transition(&st(&[(true, "a")]))),
            ["allow a *:* rwm"]
        );
    }

    #[test]
    fn taking_part_of_a_wildcard_away_is_refused() {
        let mut s = st(&[(false, "a"), (true, "c *:* m")]);
        let e = s.apply(&parse(false, "c 1:3 m").unwrap()).unwrap_err();
        assert!(e.contains("c *:* m"), "{e}");
        // Access the wildcard does not hold is fine.
        s.apply(&parse(false, "c 1:3 r").unwrap()).unwrap();
    }
}
