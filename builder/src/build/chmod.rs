//! `--chmod` of COPY/ADD: an octal mode, or a symbolic one (`u+x,g-w,o=r`, `a+X`) as
//! BuildKit takes it, applied to each source's own mode.

#[derive(Clone, Copy, PartialEq)]
pub enum Chmod {
    Octal(u32),
    Symbolic(SymbolicMode),
}

/// Up to 8 clauses of `[ugoa]*[+-=][rwxXst]*`, kept as (who mask, op, perm bits, X).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SymbolicMode {
    clauses: [(u32, u8, u32, bool); 8],
    n: usize,
}

impl Chmod {
    /// The mode for a source whose own mode is `old` (`is_dir`: X applies to it).
    pub fn apply(&self, old: u32, is_dir: bool) -> u32 {
        let s = match self {
            Chmod::Octal(m) => return *m,
            Chmod::Symbolic(s) => s,
        };
        let mut m = old & 0o7777;
        for &(who, op, perm, big_x) in &s.clauses[..s.n] {
            let x = if big_x && (is_dir || old & 0o111 != 0) {
                0o111
            } else {
                0
            };
            let bits = (perm | x) & who;
            match op {
                b'+' => m |= bits,
                b'-' => m &= !bits,
                _ => m = (m & !who) | bits,
            }
        }
        m
    }
}

/// The cache key's spelling: an octal mode prints as the number it always printed as.
impl std::fmt::Debug for Chmod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Chmod::Octal(m) => write!(f, "{m}"),
            Chmod::Symbolic(s) => write!(f, "sym{:?}", &s.clauses[..s.n]),
        }
    }
}

pub fn parse(s: &str) -> std::result::Result<Chmod, String> {
    let bad = || format!("invalid --chmod={s}: expected an octal or symbolic (u+x) mode");
    if let Ok(m) = u32::from_str_radix(s, 8) {
        return (m <= 0o7777).then_some(Chmod::Octal(m)).ok_or_else(bad);
    }
    let mut out = SymbolicMode {
        clauses: [(0, 0, 0, false); 8],
        n: 0,
    };
    for clause in s.split(',') {
        let opi = clause.find(['+', '-', '=']).ok_or_else(bad)?;
        let (who_s, rest) = clause.split_at(opi);
        let mut who = 0;
        for c in who_s.chars() {
            who |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                'a' => 0o7777,
                _ => return Err(bad()),
            };
        }
        let who = if who == 0 { 0o7777 } else { who };
        let (mut perm, mut big_x) = (0, false);
        for c in rest[1..].chars() {
            perm |= match c {
                'r' => 0o444,
                'w' => 0o222,
                'x' => 0o111,
                's' => 0o6000,
                't' => 0o1000,
                'X' => {
                    big_x = true;
                    0
                }
                _ => return Err(bad()),
            };
        }
        if out.n == out.clauses.len() {
            return Err(bad());
        }
        out.clauses[out.n] = (who, rest.as_bytes()[0], perm, big_x);
        out.n += 1;
    }
    Ok(Chmod::Symbolic(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_and_symbolic() {
        assert_eq!(parse("755").unwrap().apply(0o600, false), 0o755);
        assert_eq!(parse("u+x,g-r").unwrap().apply(0o644, false), 0o704);
        assert_eq!(parse("a+X").unwrap().apply(0o644, false), 0o644);
        assert_eq!(parse("a+X").unwrap().apply(0o644, true), 0o755);
        assert_eq!(parse("go=r").unwrap().apply(0o777, false), 0o744);
        assert_eq!(parse("+x").unwrap().apply(0o600, false), 0o711);
        assert_eq!(parse("u+s").unwrap().apply(0o755, false), 0o4755);
        for bad in ["u+q", "z+x", "9999", "u"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
