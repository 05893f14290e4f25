//! Which stages a target needs, in build order.

use crate::dockerfile::{Dockerfile, Kind};

/// Index of the stage a name or number refers to, among stages before `before`.
pub fn stage_index(df: &Dockerfile, name: &str, before: usize) -> Option<usize> {
    let lname = name.to_ascii_lowercase();
    if let Some(i) = df.stages[..before.min(df.stages.len())]
        .iter()
        .position(|s| s.name.as_deref() == Some(lname.as_str()))
    {
        return Some(i);
    }
    name.parse::<usize>().ok().filter(|&i| i < before)
}

/// The stage a `--from` in stage `cur` names: as BuildKit, a name may be of any other stage,
/// earlier or later (the build is a graph); a number only of an earlier one.
pub fn from_index(df: &Dockerfile, name: &str, cur: usize) -> Option<usize> {
    let lname = name.to_ascii_lowercase();
    stage_index(df, name, cur).or_else(|| {
        (cur + 1..df.stages.len()).find(|&i| df.stages[i].name.as_deref() == Some(lname.as_str()))
    })
}

/// Stages that stage `i` uses directly.
pub fn deps(df: &Dockerfile, i: usize, base_of: &dyn Fn(usize) -> String) -> Vec<usize> {
    let mut out: Vec<usize> = stage_index(df, &base_of(i), i).into_iter().collect();
    for ins in &df.stages[i].instructions {
        let froms: Vec<&str> = match &ins.kind {
            Kind::Copy(c) => c.from.iter().map(|s| s.as_str()).collect(),
            Kind::Run(_, spec) => spec
                .mounts
                .iter()
                .flat_map(|m| m.split(','))
                .filter_map(|kv| kv.trim().strip_prefix("from="))
                .collect(),
            _ => vec![],
        };
        for f in froms {
            if f.contains('$') {
                // Named through a variable: depend on every earlier stage.
                out.extend(0..i);
            } else {
                out.extend(from_index(df, f, i));
            }
        }
    }
    out
}

/// Stages `target` depends on (FROM <stage>, COPY --from=<stage>, RUN --mount=from=<stage>),
/// target last.
/// `base_of(i)` gives stage i's FROM reference after meta-ARG expansion.
pub fn needed(df: &Dockerfile, target: usize, base_of: &dyn Fn(usize) -> String) -> Vec<usize> {
    let mut need = vec![false; df.stages.len()];
    let mut stack = vec![target];
    while let Some(i) = stack.pop() {
        if need[i] {
            continue;
        }
        need[i] = true;
        stack.extend(deps(df, i, base_of));
    }
    (0..df.stages.len()).filter(|&i| need[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parse;
    #[test]
    fn only_needed() {
        let df = parse(
            "FROM scratch AS a\nFROM scratch AS b\nCOPY --from=a /x /x\nFROM b AS c\nFROM scratch AS d\n",
            "D",
        )
        .unwrap();
        let base = |i: usize| df.stages[i].base.clone();
        assert_eq!(needed(&df, 2, &base), vec![0, 1, 2]);
        assert_eq!(needed(&df, 3, &base), vec![3]);
        let df = parse(
            "FROM scratch AS a\nFROM scratch AS b\nFROM scratch\nCOPY --from=$X /x /x\n",
            "D",
        )
        .unwrap();
        let base = |i: usize| df.stages[i].base.clone();
        assert_eq!(needed(&df, 2, &base), vec![0, 1, 2]);
        assert_eq!(stage_index(&df, "0", 1), Some(0));
        assert_eq!(stage_index(&df, "c", 2), None);
        assert_eq!(from_index(&df, "c", 0), stage_index(&df, "c", 9));
        assert_eq!(from_index(&df, "2", 0), None);
    }
}
