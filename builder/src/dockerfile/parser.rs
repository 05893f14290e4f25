//! Logical lines → instructions and stages.

use super::ast::*;
use super::lexer::{heredoc_marker, lex, LogicalLine};
use super::ParseError;

struct Ctx<'a> {
    file: &'a str,
    line: usize,
    text: &'a str,
    escape: char,
}

impl Ctx<'_> {
    fn err(&self, msg: impl Into<String>) -> ParseError {
        ParseError {
            file: self.file.into(),
            line: self.line,
            msg: msg.into(),
            text: self.text.into(),
        }
    }
}

/// Parse a whole Dockerfile.
pub fn parse(src: &str, file: &str) -> Result<Dockerfile, ParseError> {
    let lexed = lex(src, file)?;
    let mut df = Dockerfile {
        syntax: lexed.syntax,
        escape: lexed.escape,
        meta_args: vec![],
        stages: vec![],
    };
    for l in &lexed.lines {
        let ins = parse_line(l, lexed.escape, file)?;
        match (&ins.kind, df.stages.last_mut()) {
            (Kind::Arg(_), None) => df.meta_args.push(ins),
            (
                Kind::From {
                    base,
                    name,
                    platform,
                },
                _,
            ) => {
                if name.is_some() && df.stages.iter().any(|s| s.name == *name) {
                    return Err(ParseError {
                        file: file.into(),
                        line: ins.line,
                        msg: format!("duplicate stage name {:?}", name.as_deref().unwrap_or("")),
                        text: ins.text.clone(),
                    });
                }
                df.stages.push(Stage {
                    name: name.clone(),
                    base: base.clone(),
                    platform: platform.clone(),
                    from_line: ins.line,
                    from_text: ins.text.clone(),
                    instructions: vec![],
                })
            }
            (_, Some(stage)) => stage.instructions.push(ins),
            (_, None) => {
                return Err(ParseError {
                    file: file.into(),
                    line: ins.line,
                    msg: "no build stage in current context (only ARG may come before FROM)".into(),
                    text: ins.text,
                })
            }
        }
    }
    if df.stages.is_empty() {
        return Err(ParseError {
            file: file.into(),
            line: lexed.lines.last().map(|l| l.line).unwrap_or(1),
            msg: "the Dockerfile has no FROM instruction".into(),
            text: String::new(),
        });
    }
    Ok(df)
}

fn keyword(text: &str) -> (String, &str) {
    let t = text.trim_start();
    let end = t.find(char::is_whitespace).unwrap_or(t.len());
    (t[..end].to_ascii_uppercase(), t[end..].trim())
}

fn parse_from(cx: &Ctx, rest: &str) -> Result<Kind, ParseError> {
    let (flags, rest) = take_flags(cx, rest, &["platform"])?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let name = match words.as_slice() {
        [_] => None,
        [_, as_, n] if as_.eq_ignore_ascii_case("as") => {
            let n = n.to_ascii_lowercase();
            let ok = n.starts_with(|c: char| c.is_ascii_alphabetic())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err(cx.err(format!("invalid stage name {n:?}")));
            }
            Some(n)
        }
        _ => {
            return Err(
                cx.err("FROM requires either one argument, or three: FROM <source> [AS <name>]")
            )
        }
    };
    Ok(Kind::From {
        base: words[0].to_string(),
        name,
        platform: flag(&flags, "platform"),
    })
}

/// Parse one instruction's text (also used for ONBUILD triggers and `--change`).
pub fn parse_instruction(
    text: &str,
    file: &str,
    line: usize,
    escape: char,
) -> Result<Instruction, ParseError> {
    let l = LogicalLine {
        line,
        text: text.trim().to_string(),
        heredocs: vec![],
    };
    parse_line(&l, escape, file)
}

fn parse_line(l: &LogicalLine, escape: char, file: &str) -> Result<Instruction, ParseError> {
    let cx = Ctx {
        file,
        line: l.line,
        text: &l.text,
        escape,
    };
    let (kw, rest) = keyword(&l.text);
    let kind = match kw.as_str() {
        "FROM" => parse_from(&cx, rest)?,
        "RUN" => parse_run(&cx, rest, &l.heredocs)?,
        "CMD" => Kind::Cmd(command(&cx, rest, "CMD")?),
        "ENTRYPOINT" => Kind::Entrypoint(command(&cx, rest, "ENTRYPOINT")?),
        "LABEL" => Kind::Label(name_vals(&cx, rest, "LABEL")?),
        "ENV" => Kind::Env(name_vals(&cx, rest, "ENV")?),
        "EXPOSE" => Kind::Expose(nonempty(&cx, split_raw(rest, escape), "EXPOSE")?),
        "COPY" => Kind::Copy(parse_copy(&cx, rest, &l.heredocs, false)?),
        "ADD" => Kind::Add(parse_copy(&cx, rest, &l.heredocs, true)?),
        "VOLUME" => Kind::Volume(nonempty(&cx, json_or_words(rest, escape), "VOLUME")?),
        "USER" => Kind::User(single(&cx, rest, "USER")?),
        "WORKDIR" => Kind::Workdir(single(&cx, rest, "WORKDIR")?),
        "ARG" => Kind::Arg(parse_arg(&cx, rest)?),
        "ONBUILD" => parse_onbuild(&cx, rest)?,
        "STOPSIGNAL" => Kind::Stopsignal(stopsignal(&cx, rest)?),
        "HEALTHCHECK" => Kind::Healthcheck(parse_health(&cx, rest)?),
        "SHELL" => match json_array(rest) {
            Some(v) if !v.is_empty() => Kind::Shell(v),
            _ => return Err(cx.err("SHELL requires the arguments to be in JSON form")),
        },
        "MAINTAINER" => Kind::Maintainer(single(&cx, rest, "MAINTAINER")?),
        "" => return Err(cx.err("empty instruction")),
        _ => return Err(cx.err(format!("unknown instruction: {kw}"))),
    };
    Ok(Instruction {
        line: l.line,
        text: l.text.clone(),
        kind,
    })
}

type Flags = Vec<(String, Option<String>)>;

fn flag(flags: &Flags, name: &str) -> Option<String> {
    flags
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.clone())
}

/// Leading `--name[=value]` flags.
fn take_flags<'a>(
    cx: &Ctx,
    mut rest: &'a str,
    allowed: &[&str],
) -> Result<(Flags, &'a str), ParseError> {
    let mut out = vec![];
    while let Some(f) = rest.strip_prefix("--") {
        let end = f.find(char::is_whitespace).unwrap_or(f.len());
        let (name, val) = match f[..end].split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (f[..end].to_string(), None),
        };
        if !allowed.contains(&name.as_str()) {
            return Err(cx.err(format!("unknown flag: --{name}")));
        }
        out.push((name, val));
        rest = f[end..].trim_start();
    }
    Ok((out, rest))
}

fn json_array(rest: &str) -> Option<Vec<String>> {
    if !rest.trim_start().starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(rest.trim()).ok()
}

fn command(cx: &Ctx, rest: &str, what: &str) -> Result<Command, ParseError> {
    if let Some(v) = json_array(rest) {
        return Ok(Command::Exec(v));
    }
    if rest.is_empty() && what == "RUN" {
        return Err(cx.err("RUN requires at least one argument"));
    }
    Ok(Command::Shell(rest.to_string()))
}

fn nonempty(cx: &Ctx, v: Vec<String>, what: &str) -> Result<Vec<String>, ParseError> {
    if v.is_empty() {
        return Err(cx.err(format!("{what} requires at least one argument")));
    }
    Ok(v)
}

fn single(cx: &Ctx, rest: &str, what: &str) -> Result<String, ParseError> {
    if rest.is_empty() {
        return Err(cx.err(format!("{what} requires exactly one argument")));
    }
    Ok(rest.to_string())
}

/// A literal value is checked now (BuildKit refuses it before building anything); one
/// with variables or quotes once expanded.
fn stopsignal(cx: &Ctx, rest: &str) -> Result<String, ParseError> {
    let s = single(cx, rest, "STOPSIGNAL")?;
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-')
    {
        super::signal::check_signal(&s).map_err(|e| cx.err(e))?;
    }
    Ok(s)
}

fn json_or_words(rest: &str, escape: char) -> Vec<String> {
    json_array(rest).unwrap_or_else(|| split_raw(rest, escape))
}

/// Split on unquoted whitespace, keeping quotes and escapes (expanded later).
pub fn split_raw(s: &str, escape: char) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == escape && quote != Some('\'') {
            cur.push(c);
            if let Some(n) = chars.next() {
                cur.push(n);
            }
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn name_vals(cx: &Ctx, rest: &str, what: &str) -> Result<Vec<(String, String)>, ParseError> {
    let words = split_raw(rest, cx.escape);
    let Some(first) = words.first() else {
        return Err(cx.err(format!("{what} requires at least one argument")));
    };
    if !first.contains('=') {
        // Legacy form: NAME value with spaces
        let val = rest[first.len()..].trim();
        if val.is_empty() {
            return Err(cx.err(format!("{what} must have two arguments")));
        }
        return Ok(vec![(first.clone(), val.to_string())]);
    }
    let mut out = vec![];
    for w in words {
        match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => out.push((k.to_string(), v.to_string())),
            _ => {
                return Err(cx.err(format!(
                    "syntax error - can't find = in {w:?}; must be of the form: name=value"
                )))
            }
        }
    }
    Ok(out)
}

fn parse_arg(cx: &Ctx, rest: &str) -> Result<Vec<(String, Option<String>)>, ParseError> {
    let words = nonempty(cx, split_raw(rest, cx.escape), "ARG")?;
    let mut out = vec![];
    for w in words {
        let (k, v) = match w.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (w.clone(), None),
        };
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(cx.err(format!("invalid ARG name {k:?}")));
        }
        out.push((k, v));
    }
    Ok(out)
}

fn parse_run(cx: &Ctx, rest: &str, heredocs: &[Heredoc]) -> Result<Kind, ParseError> {
    let (flags, rest) = take_flags(cx, rest, &["network", "mount", "security"])?;
    let network = flag(&flags, "network");
    if let Some(n) = &network {
        if !matches!(n.as_str(), "default" | "none" | "host") {
            return Err(cx.err(format!(
                "unsupported network mode {n:?} (default, none or host)"
            )));
        }
    }
    let spec = RunSpec {
        network,
        mounts: flags
            .iter()
            .filter(|(n, _)| n == "mount")
            .filter_map(|(_, v)| v.clone())
            .collect(),
        security: flag(&flags, "security"),
        heredocs: heredocs.to_vec(),
    };
    Ok(Kind::Run(command(cx, rest, "RUN")?, spec))
}

fn parse_copy(
    cx: &Ctx,
    rest: &str,
    heredocs: &[Heredoc],
    add: bool,
) -> Result<CopySpec, ParseError> {
    let allowed: &[&str] = if add {
        &[
            "chown",
            "chmod",
            "link",
            "checksum",
            "keep-git-dir",
            "exclude",
            "parents",
        ]
    } else {
        &["from", "chown", "chmod", "link", "exclude", "parents"]
    };
    let what = if add { "ADD" } else { "COPY" };
    let (flags, rest) = take_flags(cx, rest, allowed)?;
    // Known to BuildKit, not built here yet: refused, never silently dropped.
    if let Some((f, _)) = flags.iter().find(|(f, _)| f == "exclude" || f == "parents") {
        return Err(cx.err(format!(
            "{what} --{f} is not supported by berth-build yet (use .dockerignore or separate {what} lines)"
        )));
    }
    let (mut words, json) = match json_array(rest) {
        Some(v) => (v, true),
        None => (split_raw(rest, cx.escape), false),
    };
    if words.len() < 2 {
        return Err(cx.err(format!(
            "{what} requires at least two arguments, but got {}",
            words.len()
        )));
    }
    let dest = words.pop().unwrap_or_default();
    let docs: Vec<Heredoc> = if json {
        vec![]
    } else {
        words
            .iter()
            .filter_map(|w| heredoc_marker(w))
            .filter_map(|(n, _, _)| heredocs.iter().find(|h| h.name == n).cloned())
            .collect()
    };
    let b = |n: &str| {
        flags
            .iter()
            .any(|(f, v)| f == n && v.as_deref() != Some("false"))
    };
    Ok(CopySpec {
        srcs: words,
        dest,
        from: flag(&flags, "from"),
        chown: flag(&flags, "chown"),
        chmod: flag(&flags, "chmod"),
        link: b("link"),
        checksum: flag(&flags, "checksum"),
        keep_git_dir: b("keep-git-dir"),
        heredocs: docs,
        json,
    })
}

fn parse_onbuild(cx: &Ctx, rest: &str) -> Result<Kind, ParseError> {
    let (kw, _) = keyword(rest);
    match kw.as_str() {
        "" => return Err(cx.err("ONBUILD requires an instruction")),
        "ONBUILD" => return Err(cx.err("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")),
        "FROM" | "MAINTAINER" => {
            return Err(cx.err(format!("{kw} isn't allowed as an ONBUILD trigger")))
        }
        _ => {}
    }
    parse_instruction(rest, cx.file, cx.line, cx.escape)?;
    Ok(Kind::Onbuild(rest.to_string()))
}

fn parse_health(cx: &Ctx, rest: &str) -> Result<HealthSpec, ParseError> {
    let (flags, rest) = take_flags(
        cx,
        rest,
        &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
    )?;
    let (kw, cmd) = keyword(rest);
    let mut h = HealthSpec {
        cmd: None,
        interval: flag(&flags, "interval"),
        timeout: flag(&flags, "timeout"),
        start_period: flag(&flags, "start-period"),
        start_interval: flag(&flags, "start-interval"),
        retries: flag(&flags, "retries"),
    };
    match kw.as_str() {
        "NONE" if cmd.is_empty() => {
            if !flags.is_empty() {
                return Err(cx.err("HEALTHCHECK NONE takes no options"));
            }
        }
        "CMD" if !cmd.is_empty() => h.cmd = Some(command(cx, cmd, "HEALTHCHECK")?),
        _ => return Err(cx.err("HEALTHCHECK expects NONE or CMD <command>")),
    }
    Ok(h)
}
