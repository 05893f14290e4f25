//! Glob patterns → regexes: Go `filepath.Match` (as COPY uses), with `**` for
//! .dockerignore (as moby/patternmatcher), and shell patterns for `${VAR#pat}`.

/// Regex body for a glob. `star_crosses_slash`: `*` also matches '/'.
pub fn glob_body(pat: &str, star_crosses_slash: bool) -> String {
    let mut re = String::new();
    let cs: Vec<char> = pat.chars().collect();
    let mut i = 0;
    let star = if star_crosses_slash { ".*" } else { "[^/]*" };
    let one = if star_crosses_slash { "." } else { "[^/]" };
    while i < cs.len() {
        let c = cs[i];
        match c {
            '*' if cs.get(i + 1) == Some(&'*') => {
                i += 1;
                if cs.get(i + 1) == Some(&'/') {
                    // "**/" : zero or more directories
                    i += 1;
                    re.push_str("(?:.*/)?");
                } else {
                    re.push_str(".*");
                }
            }
            '*' => re.push_str(star),
            '?' => re.push_str(one),
            '[' => {
                let mut j = i + 1;
                let mut class = String::from("[");
                if cs.get(j) == Some(&'^') || cs.get(j) == Some(&'!') {
                    class.push('^');
                    j += 1;
                }
                let mut closed = false;
                while j < cs.len() {
                    match cs[j] {
                        ']' => {
                            closed = true;
                            break;
                        }
                        '\\' if j + 1 < cs.len() => {
                            class.push_str(&regex::escape(&cs[j + 1].to_string()));
                            j += 1;
                        }
                        ch => {
                            if ch == '-' {
                                class.push('-')
                            } else {
                                class.push_str(&regex::escape(&ch.to_string()))
                            }
                        }
                    }
                    j += 1;
                }
                if closed {
                    class.push(']');
                    re.push_str(&class);
                    i = j;
                } else {
                    re.push_str("\\[");
                }
            }
            '\\' if i + 1 < cs.len() => {
                i += 1;
                re.push_str(&regex::escape(&cs[i].to_string()));
            }
            _ => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re
}

/// A compiled path glob (Go filepath.Match semantics plus `**`).
#[derive(Debug, Clone)]
pub struct Glob(regex::Regex);

/// Go's `filepath.Match` refuses a `[` without its `]` and a trailing `\\`
/// (ErrBadPattern); shell patterns (`glob_body` alone) take them literally.
fn check(pat: &str) -> Result<(), String> {
    let mut cs = pat.chars();
    while let Some(c) = cs.next() {
        match c {
            '\\' if cs.next().is_none() => {
                return Err(format!("bad pattern {pat:?}: trailing backslash"))
            }
            '[' => loop {
                match cs.next() {
                    None => return Err(format!("bad pattern {pat:?}: [ without its ]")),
                    Some('\\') => {
                        cs.next();
                    }
                    Some(']') => break,
                    Some(_) => {}
                }
            },
            _ => {}
        }
    }
    Ok(())
}

impl Glob {
    pub fn new(pat: &str) -> Result<Glob, String> {
        check(pat)?;
        regex::Regex::new(&format!("^(?:{})$", glob_body(pat, false)))
            .map(Glob)
            .map_err(|e| format!("bad pattern {pat:?}: {e}"))
    }
    pub fn matches(&self, path: &str) -> bool {
        self.0.is_match(path)
    }
}

pub fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn globs() {
        let g = Glob::new("*.txt").unwrap();
        assert!(g.matches("a.txt") && !g.matches("d/a.txt"));
        let g = Glob::new("**/*.go").unwrap();
        assert!(g.matches("a.go") && g.matches("x/y/a.go"));
        let g = Glob::new("a/**").unwrap();
        assert!(g.matches("a/b/c"));
        let g = Glob::new("f[0-9]?").unwrap();
        assert!(g.matches("f1x") && !g.matches("fax"));
        let g = Glob::new("[!a]b").unwrap();
        assert!(g.matches("xb") && !g.matches("ab"));
        assert!(Glob::new("a[").is_err() && Glob::new("[a-").is_err());
        assert!(Glob::new("a\\").is_err());
        assert!(Glob::new("a\\[").unwrap().matches("a["));
    }
}
