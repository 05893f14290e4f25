//! Physical lines → logical lines: parser directives at the top, comments, line
//! continuations (the escape char at end of line), and heredoc bodies.

use super::ast::Heredoc;
use super::ParseError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalLine {
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// Continuations joined, comments inside removed.
    pub text: String,
    pub heredocs: Vec<Heredoc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexed {
    pub syntax: Option<String>,
    pub escape: char,
    pub lines: Vec<LogicalLine>,
}

fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim().strip_prefix('#')?.trim_start();
    let (k, v) = rest.split_once('=')?;
    let k = k.trim();
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((k.to_ascii_lowercase(), v.trim().to_string()))
}

/// A heredoc marker in a word: `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'`, `3<<EOF`.
/// Returns (name, strip_tabs, expand).
pub fn heredoc_marker(word: &str) -> Option<(String, bool, bool)> {
    let w = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let w = w.strip_prefix("<<")?;
    let (strip, w) = match w.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, w),
    };
    let quoted = (w.starts_with('"') && w.ends_with('"')
        || w.starts_with('\'') && w.ends_with('\''))
        && w.len() >= 2;
    let name = if quoted { &w[1..w.len() - 1] } else { w };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return None;
    }
    Some((name.to_string(), strip, !quoted))
}

fn ends_with_escape(line: &str, escape: char) -> Option<&str> {
    let t = line.trim_end();
    t.strip_suffix(escape)
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Split a Dockerfile into logical lines.
pub fn lex(src: &str, file: &str) -> Result<Lexed, ParseError> {
    let phys: Vec<&str> = src.lines().collect();
    let mut escape = '\\';
    let mut syntax = None;
    let mut i = 0;
    while i < phys.len() {
        let Some((k, v)) = directive(phys[i]) else {
            break;
        };
        match k.as_str() {
            "escape" => {
                escape = match v.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(ParseError {
                            file: file.into(),
                            line: i + 1,
                            msg: "invalid escape token (must be ` or \\)".into(),
                            text: phys[i].into(),
                        })
                    }
                }
            }
            "syntax" => syntax = Some(v),
            _ => {}
        }
        i += 1;
    }
    let mut lines = vec![];
    while i < phys.len() {
        let raw = phys[i];
        if raw.trim().is_empty() || is_comment(raw) {
            i += 1;
            continue;
        }
        let start = i;
        let mut text = String::new();
        let mut cur = raw;
        loop {
            match ends_with_escape(cur, escape) {
                Some(body) => {
                    text.push_str(body);
                    i += 1;
                    // Skip comment and empty lines inside a continuation.
                    while i < phys.len() && (is_comment(phys[i]) || phys[i].trim().is_empty()) {
                        i += 1;
                    }
                    if i >= phys.len() {
                        break;
                    }
                    cur = phys[i];
                }
                None => {
                    text.push_str(cur);
                    i += 1;
                    break;
                }
            }
        }
        let text = text.trim().to_string();
        let heredocs = read_heredocs(&text, &phys, &mut i, file, start)?;
        lines.push(LogicalLine {
            line: start + 1,
            text,
            heredocs,
        });
    }
    Ok(Lexed {
        syntax,
        escape,
        lines,
    })
}

fn read_heredocs(
    text: &str,
    phys: &[&str],
    i: &mut usize,
    file: &str,
    start: usize,
) -> Result<Vec<Heredoc>, ParseError> {
    let kw = text
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    if !matches!(kw.as_str(), "RUN" | "COPY" | "ADD") {
        return Ok(vec![]);
    }
    let rest = text[kw.len()..].trim_start();
    if rest.starts_with('[') {
        return Ok(vec![]);
    }
    let mut out = vec![];
    for word in rest.split_whitespace() {
        let Some((name, strip, expand)) = heredoc_marker(word) else {
            continue;
        };
        let mut content = String::new();
        loop {
            if *i >= phys.len() {
                return Err(ParseError {
                    file: file.into(),
                    line: start + 1,
                    msg: format!("unterminated heredoc {name}"),
                    text: text.into(),
                });
            }
            let l = phys[*i];
            *i += 1;
            let l = if strip { l.trim_start_matches('\t') } else { l };
            if l == name {
                break;
            }
            content.push_str(l);
            content.push('\n');
        }
        out.push(Heredoc {
            name,
            content,
            expand,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_and_comments() {
        let l = lex(
            "FROM a\nRUN echo a \\\n# c\n\n  b\n# x\nCMD x\n",
            "Dockerfile",
        )
        .unwrap();
        assert_eq!(l.lines.len(), 3);
        assert_eq!(l.lines[1].text, "RUN echo a   b");
        assert_eq!(l.lines[1].line, 2);
        assert_eq!(l.lines[2].line, 7);
    }

    #[test]
    fn directives() {
        let l = lex(
            "# syntax=docker/dockerfile:1\n# escape=`\nFROM a\nRUN a `\n b\n",
            "D",
        )
        .unwrap();
        assert_eq!(l.escape, '`');
        assert_eq!(l.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(l.lines[1].text, "RUN a  b");
        // A directive after an instruction is a comment.
        let l = lex("FROM a\n# escape=`\nRUN a \\\nb\n", "D").unwrap();
        assert_eq!(l.escape, '\\');
        assert_eq!(l.lines[1].text, "RUN a b");
        assert!(lex("# escape=x\nFROM a\n", "D").is_err());
    }

    #[test]
    fn heredocs() {
        let src = "FROM a\nRUN <<EOF\necho hi\necho $X\nEOF\nCOPY <<-'A' <<B /d/\n\tone\n\tA\ntwo\nB\nCMD x\n";
        let l = lex(src, "D").unwrap();
        assert_eq!(l.lines.len(), 4);
        assert_eq!(l.lines[1].heredocs[0].content, "echo hi\necho $X\n");
        assert!(l.lines[1].heredocs[0].expand);
        let h = &l.lines[2].heredocs;
        assert_eq!(
            (h[0].name.as_str(), h[0].content.as_str(), h[0].expand),
            ("A", "one\n", false)
        );
        assert_eq!((h[1].name.as_str(), h[1].content.as_str()), ("B", "two\n"));
        assert_eq!(l.lines[3].line, 11);
        let e = lex("FROM a\nRUN <<EOF\necho\n", "D").unwrap_err();
        assert_eq!(e.line, 2);
    }
}
