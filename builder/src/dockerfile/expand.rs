//! BuildKit's shell-word processing (`shell.Lex`): quotes are removed, the escape
//! character escapes, and `$VAR`, `${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`,
//! `${VAR+w}`, `${VAR:?msg}`, `${VAR?msg}`, `${VAR#p}`, `${VAR%p}` (and `##`/`%%`)
//! are expanded from the given environment. Unset variables expand to "".

/// Variable lookup.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Env for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

struct Lexer<'a> {
    s: Vec<char>,
    i: usize,
    escape: char,
    env: &'a dyn Env,
    /// `${…}` nesting so far: bounded, so no input can exhaust the stack.
    depth: usize,
}

/// How deep `${a:-${b:-…}}` may nest.
const MAX_NESTING: usize = 64;

/// Expand one word (quotes removed; no splitting).
pub fn word(input: &str, env: &dyn Env, escape: char) -> Result<String, String> {
    Ok(words_inner(input, env, escape, false)?.join(""))
}

/// Expand and split into words on unquoted whitespace.
pub fn words(input: &str, env: &dyn Env, escape: char) -> Result<Vec<String>, String> {
    words_inner(input, env, escape, true)
}

/// Expand a heredoc body as a shell expands an unquoted heredoc: `$` expansions
/// only; quotes are plain characters, and `\$` is a literal `$`.
pub fn heredoc(input: &str, env: &dyn Env) -> Result<String, String> {
    let mut out = String::new();
    let mut lx = Lexer {
        s: input.chars().collect(),
        i: 0,
        escape: '\\',
        env,
        depth: 0,
    };
    while let Some(c) = lx.next() {
        match c {
            '\\' if lx.peek() == Some('$') => {
                out.push('$');
                lx.i += 1;
            }
            '$' => out.push_str(&lx.dollar()?),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn words_inner(
    input: &str,
    env: &dyn Env,
    escape: char,
    split: bool,
) -> Result<Vec<String>, String> {
    let mut lx = Lexer {
        s: input.chars().collect(),
        i: 0,
        escape,
        env,
        depth: 0,
    };
    lx.process(None, split)
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.i += 1;
        c
    }

    /// Process until `stop` (consumed) or end. Returns the words.
    fn process(&mut self, stop: Option<char>, split: bool) -> Result<Vec<String>, String> {
        let mut out = vec![];
        let mut cur = String::new();
        let mut in_word = false;
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.i += 1;
                break;
            }
            self.i += 1;
            if c == self.escape {
                match self.next() {
                    Some(n) => cur.push(n),
                    None => cur.push(c),
                }
                in_word = true;
            } else if c == '\'' {
                self.single_quote(&mut cur)?;
                in_word = true;
            } else if c == '"' {
                self.double_quote(&mut cur)?;
                in_word = true;
            } else if c == '$' {
                let v = self.dollar()?;
                if !split {
                    cur.push_str(&v);
                    in_word = true;
                    continue;
                }
                // Unquoted expansions are split into words, like the shell does.
                for ch in v.chars() {
                    if ch.is_whitespace() {
                        if in_word {
                            out.push(std::mem::take(&mut cur));
                            in_word = false;
                        }
                    } else {
                        cur.push(ch);
                        in_word = true;
                    }
                }
            } else if split && c.is_whitespace() {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            } else {
                cur.push(c);
                in_word = true;
            }
        }
        if in_word || !split {
            out.push(cur);
        }
        Ok(out)
    }

    fn single_quote(&mut self, cur: &mut String) -> Result<(), String> {
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => return Ok(()),
                Some(c) => cur.push(c),
            }
        }
    }

    fn double_quote(&mut self, cur: &mut String) -> Result<(), String> {
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => return Ok(()),
                Some('$') => {
                    let v = self.dollar()?;
                    cur.push_str(&v);
                }
                Some(c) if c == self.escape => match self.peek() {
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        cur.push(n);
                        self.i += 1;
                    }
                    _ => cur.push(c),
                },
                Some(c) => cur.push(c),
            }
        }
    }

    fn name(&mut self) -> String {
        let mut n = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                n.push(c);
                self.i += 1;
            } else {
                break;
            }
        }
        n
    }

    /// After a `$`.
    fn dollar(&mut self) -> Result<String, String> {
        match self.peek() {
            Some('{') => {
                self.i += 1;
                if self.depth >= MAX_NESTING {
                    return Err(format!(
                        "bad substitution: ${{…}} nested deeper than {MAX_NESTING}"
                    ));
                }
                self.depth += 1;
                let v = self.braced();
                self.depth -= 1;
                v
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let n = self.name();
                Ok(self.env.get(&n).unwrap_or_default())
            }
            _ => Ok("$".into()),
        }
    }

    fn braced(&mut self) -> Result<String, String> {
        let name = self.name();
        if name.is_empty() {
            return Err("bad substitution: missing variable name in ${}".into());
        }
        let val = self.env.get(&name);
        let c = self.next().ok_or("missing '}'")?;
        if c == '}' {
            return Ok(val.unwrap_or_default());
        }
        if c == '/' {
            return self.replace(val.unwrap_or_default());
        }
        let colon = c == ':';
        let op = if colon {
            self.next().ok_or("missing '}'")?
        } else {
            c
        };
        let op2 = if (op == '#' || op == '%') && self.peek() == Some(op) {
            self.i += 1;
            true
        } else {
            false
        };
        let w = self.process(Some('}'), false)?.join("");
        let empty = match &val {
            None => true,
            Some(v) => colon && v.is_empty(),
        };
        match op {
            '-' => Ok(if empty { w } else { val.unwrap_or_default() }),
            '+' => Ok(if empty { String::new() } else { w }),
            '?' if empty => Err(if w.is_empty() {
                format!("{name}: is not allowed to be unset")
            } else {
                format!("{name}: {w}")
            }),
            '?' => Ok(val.unwrap_or_default()),
            '#' | '%' if !colon => Ok(trim(&val.unwrap_or_default(), &w, op == '#', op2)),
            _ => Err(format!(
                "unsupported modifier ({op}) in substitution of {name}"
            )),
        }
    }
}

impl Lexer<'_> {
    /// `${V/pat/repl}` (first match) and `${V//pat/repl}` (every match), as BuildKit: `pat`
    /// is a glob matched longest-first, `repl` is expanded; `${V/pat}` deletes the match.
    fn replace(&mut self, val: String) -> Result<String, String> {
        let all = self.peek() == Some('/');
        if all {
            self.i += 1;
        }
        let mut pat = String::new();
        let mut ended = false;
        while let Some(c) = self.next() {
            match c {
                '/' => break,
                '}' => {
                    ended = true;
                    break;
                }
                c if c == self.escape => pat.extend(self.next()),
                c => pat.push(c),
            }
        }
        let repl = match ended {
            true => String::new(),
            false => self.process(Some('}'), false)?.join(""),
        };
        if pat.is_empty() {
            return Ok(val);
        }
        let re = regex::Regex::new(&crate::plan::glob::glob_body(&pat, true))
            .map_err(|e| format!("bad pattern {pat:?} in substitution: {e}"))?;
        let repl = regex::NoExpand(&repl);
        Ok(match all {
            true => re.replace_all(&val, repl).into_owned(),
            false => re.replace(&val, repl).into_owned(),
        })
    }
}

/// Remove the shortest/longest prefix (`#`) or suffix (`%`) matching a glob.
fn trim(v: &str, pat: &str, prefix: bool, longest: bool) -> String {
    let re = crate::plan::glob::glob_body(pat, true);
    let re = if prefix {
        format!("^(?:{re})")
    } else {
        format!("(?:{re})$")
    };
    let Ok(re) = regex::Regex::new(&re) else {
        return v.to_string();
    };
    let idx: Vec<usize> = v.char_indices().map(|(i, _)| i).chain([v.len()]).collect();
    let cands: Box<dyn Iterator<Item = &usize>> = if longest == prefix {
        Box::new(idx.iter().rev())
    } else {
        Box::new(idx.iter())
    };
    for &i in cands {
        let (part, rest) = if prefix {
            (&v[..i], &v[i..])
        } else {
            (&v[i..], &v[..i])
        };
        if re
            .find(part)
            .is_some_and(|m| m.as_str().len() == part.len())
        {
            return rest.to_string();
        }
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(n: &str) -> Option<String> {
        match n {
            "A" => Some("a".into()),
            "E" => Some(String::new()),
            "P" => Some("/usr/local/bin".into()),
            "SP" => Some("x y".into()),
            _ => None,
        }
    }

    fn w(s: &str) -> String {
        word(s, &env, '\\').unwrap()
    }

    #[test]
    fn basic() {
        assert_eq!(w("$A"), "a");
        assert_eq!(w("${A}b"), "ab");
        assert_eq!(w("$Ab"), "");
        assert_eq!(w("x$U-y"), "x-y");
        assert_eq!(w("$"), "$");
        assert_eq!(w("a$ b"), "a$ b");
    }

    #[test]
    fn modifiers() {
        assert_eq!(w("${U:-def}"), "def");
        assert_eq!(w("${E:-def}"), "def");
        assert_eq!(w("${E-def}"), "");
        assert_eq!(w("${A:-def}"), "a");
        assert_eq!(w("${A:+alt}"), "alt");
        assert_eq!(w("${E:+alt}"), "");
        assert_eq!(w("${E+alt}"), "alt");
        assert_eq!(w("${U:+alt}"), "");
        assert_eq!(w("${U:-${A}x}"), "ax");
        assert_eq!(w("${P#*/}"), "usr/local/bin");
        assert_eq!(w("${P##*/}"), "bin");
        assert_eq!(w("${P%/*}"), "/usr/local");
        assert_eq!(w("${P%%/l*}"), "/usr");
        assert_eq!(w("${P/l/L}"), "/usr/Local/bin");
        assert_eq!(w("${P//l/L}"), "/usr/LocaL/bin");
        assert_eq!(w("${P//\\//:}"), ":usr:local:bin");
        assert_eq!(w("${P/\\/usr}"), "/local/bin");
        assert_eq!(w("${P//o*a/_${A}_}"), "/usr/l_a_l/bin");
        assert_eq!(w("${U/x/y}"), "");
        assert!(word("${U:?must be set}", &env, '\\')
            .unwrap_err()
            .contains("must be set"));
        assert!(word("${U?}", &env, '\\').is_err());
        assert_eq!(w("${E?}"), "");
        assert!(word("${}", &env, '\\').is_err());
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(w("'$A'"), "$A");
        assert_eq!(w("\"$A b\""), "a b");
        assert_eq!(w("\\$A"), "$A");
        assert_eq!(w("\"a\\\"b\""), "a\"b");
        assert_eq!(w("\"a\\nb\""), "a\\nb");
        assert_eq!(word("`$A", &env, '`').unwrap(), "$A");
        assert!(word("'abc", &env, '\\').is_err());
    }

    #[test]
    fn heredoc_keeps_quotes() {
        assert_eq!(
            heredoc("it's \"$A\" '$A' \\$A ${U:-d}\n", &env).unwrap(),
            "it's \"a\" 'a' $A d\n"
        );
        assert_eq!(heredoc("say \"$A\"\n", &env).unwrap(), "say \"a\"\n");
    }

    #[test]
    fn splitting() {
        let ws = words("a  \"b c\" $SP '' d", &env, '\\').unwrap();
        assert_eq!(ws, vec!["a", "b c", "x", "y", "", "d"]);
        let ws = words("  ", &env, '\\').unwrap();
        assert!(ws.is_empty());
    }
}
