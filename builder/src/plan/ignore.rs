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

fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = vec![];
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

impl Ignore {
    pub fn parse(src: &str) -> Result<Ignore, String> {
        let mut pats = vec![];
        for line in src.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (exclusion, p) = match l.strip_prefix('!') {
                Some(r) => (true, r.trim()),
                None => (false, l),
            };
            let p = clean(p);
            if p.is_empty() {
                continue;
            }
            pats.push(Pattern {
                glob: Glob::new(&p)?,
                exclusion,
            });
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

    /// Could something under directory `dir` be re-included by an exception?
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
    }
}
