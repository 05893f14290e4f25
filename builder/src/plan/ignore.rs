//! .dockerignore: patterns with `!` exceptions, as moby/patternmatcher applies them:
//! the last matching pattern wins, and a pattern matching a parent directory
//! excludes everything under it.

use super::glob::Glob;

#[derive(Debug, Clone)]
struct Pattern {
    glob: Glob,
    exclusion: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Ignore {
    pats: Vec<Pattern>,
}

/// Go's `filepath.Clean`: one slash between names, no `.`, a `..` removes the name before
/// it; a leading `..` of a relative path stays (so `../../*` matches nothing in the
/// context), a `..` at the root goes.
pub fn go_clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = vec![];
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&l) if l != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            c => parts.push(c),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

/// A bad line of a .dockerignore: its number and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: usize,
    pub why: String,
}

impl Ignore {
    /// Reads patterns as BuildKit does (moby/patternmatcher's ReadAll): `#` at the very
    /// start of a line is a comment, spaces around are trimmed, `!` makes an exception,
    /// each pattern is cleaned (`go_clean`) and made relative to the context.
    pub fn parse(src: &str) -> Result<Ignore, BadLine> {
        let mut pats = vec![];
        let src = src.strip_prefix('\u{feff}').unwrap_or(src);
        for (n, line) in src.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let l = line.trim();
            if l.is_empty() {
                continue;
            }
            let (exclusion, p) = match l.strip_prefix('!') {
                Some(r) => (true, r.trim()),
                None => (false, l),
            };
            let p = go_clean(p);
            let p = match p.strip_prefix('/') {
                Some(r) if !r.is_empty() => r.to_string(),
                _ => p,
            };
            let glob = Glob::new(&p).map_err(|why| BadLine { line: n + 1, why })?;
            if p == "." || p == "/" {
                continue; // matches no path of the context
            }
            pats.push(Pattern { glob, exclusion });
        }
        Ok(Ignore { pats })
    }

    /// Is the context-relative path (no leading '/') excluded?
    pub fn excluded(&self, path: &str) -> bool {
        let mut excluded = false;
        let parents: Vec<&str> = path
            .match_indices('/')
            .map(|(i, _)| &path[..i])
            .chain([path])
            .collect();
        for p in &self.pats {
            let hit = parents.iter().any(|q| p.glob.matches(q));
            if hit {
                excluded = !p.exclusion;
            }
        }
        excluded
    }

    /// Could something under an excluded directory be re-included by an exception?
    pub fn has_exceptions(&self) -> bool {
        self.pats.iter().any(|p| p.exclusion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn rules() {
        let ig = Ignore::parse("# c\n*.log\n!keep.log\nbuild/\n/tmp/**\n**/*.o\n").unwrap();
        assert!(ig.excluded("a.log"));
        assert!(!ig.excluded("keep.log"));
        assert!(!ig.excluded("sub/a.log"));
        assert!(ig.excluded("build"));
        assert!(ig.excluded("build/x/y"));
        assert!(ig.excluded("tmp/q"));
        assert!(ig.excluded("x/y/z.o") && ig.excluded("z.o"));
        assert!(!ig.excluded("src/main.rs"));
        let ig = Ignore::parse("*\n!src\n").unwrap();
        assert!(ig.excluded("Dockerfile"));
        assert!(!ig.excluded("src/a"));
        let ig = Ignore::parse("../../*\n/x/../y\n !z/./w \n  # not a comment\n").unwrap();
        assert!(!ig.excluded("a") && !ig.excluded("x"));
        assert!(ig.excluded("y") && ig.excluded("y/q"));
        assert!(!ig.excluded("z/w"), "an exception with nothing excluded");
        assert!(ig.excluded("# not a comment"));
        let e = Ignore::parse("# c\n*.log\nfoo[\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.why.contains("foo["), "{}", e.why);
    }

    #[test]
    fn cleaned_like_go() {
        for (p, want) in [
            ("../../*", "../../*"),
            ("/../x", "/x"),
            ("a/../../b", "../b"),
            ("a//b/./c/..", "a/b"),
            ("./", "."),
            ("/", "/"),
            ("x/..", "."),
        ] {
            assert_eq!(go_clean(p), want, "{p}");
        }
    }
}
