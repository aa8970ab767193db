//! `.dockerignore` as Docker reads it (moby's patternmatcher), which is not
//! gitignore: every pattern is anchored at the context's root (`*.log` is
//! only the root's; `**/*.log` is any folder's), a pattern that matches a
//! folder excludes what is inside it, and the last pattern that matches a
//! path or one of its parents decides, so `!keep` re-includes. The glob of
//! one pattern (Go's `filepath.Match` plus `**`) is globset's.

use globset::{GlobBuilder, GlobMatcher};

#[derive(Debug, Clone, Default)]
pub struct Ignore {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    glob: GlobMatcher,
    exception: bool,
}

impl Ignore {
    /// The patterns of a `.dockerignore` file; an error names the line.
    pub fn parse(text: &str) -> Result<Ignore, String> {
        let mut rules = Vec::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (n, line) in text.lines().enumerate() {
            // A comment is a `#` in the first column, before any trimming.
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if pattern.is_empty() {
                return Err(format!("line {}: `!` alone excludes nothing", n + 1));
            }
            let rule = Rule::new(&clean(pattern), exception)
                .map_err(|e| format!("line {}: `{line}`: {e}", n + 1))?;
            rules.push(rule);
        }
        Ok(Ignore { rules })
    }

    /// Always sends `path`, whatever the patterns say: the engine needs the
    /// Dockerfile and `.dockerignore` itself, as the docker CLI sends them.
    pub fn keep(&mut self, path: &str) {
        if let Ok(rule) = Rule::new(&clean(path), true) {
            self.rules.push(rule);
        }
    }

    /// Whether some pattern is an exception: then an excluded folder may
    /// still hold paths that are sent.
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.exception)
    }

    /// Whether `path` (relative to the context, `/`-separated) stays out.
    pub fn excludes(&self, path: &str) -> bool {
        let parents: Vec<&str> = match path.rsplit_once('/') {
            Some((parent, _)) => parent.split('/').collect(),
            None => Vec::new(),
        };
        let mut excluded = false;
        for rule in &self.rules {
            // An exclusion cannot change an excluded path, nor an exception
            // an included one.
            if rule.exception != excluded {
                continue;
            }
            let hit = rule.glob.is_match(path)
                || (1..=parents.len()).any(|i| rule.glob.is_match(parents[..i].join("/")));
            if hit {
                excluded = !rule.exception;
            }
        }
        excluded
    }
}

impl Rule {
    fn new(pattern: &str, exception: bool) -> Result<Rule, String> {
        let glob = GlobBuilder::new(&literal_braces(pattern))
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| e.kind().to_string())?;
        Ok(Rule {
            glob: glob.compile_matcher(),
            exception,
        })
    }
}

/// Go's `filepath.Clean`, then without a leading `/`: `/foo/`, `./foo` and
/// `foo` are one pattern.
fn clean(pattern: &str) -> String {
    let rooted = pattern.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return ".".into();
    }
    parts.join("/")
}

/// Go's globs have no `{a,b}` alternatives: braces are plain characters.
fn literal_braces(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> Ignore {
        Ignore::parse(text).unwrap()
    }

    #[test]
    fn patterns_are_anchored_at_the_root_as_docker_reads_them() {
        let i = ignore("*.log\n# a comment\n\n/build/\n");
        assert!(i.excludes("debug.log"));
        assert!(
            !i.excludes("sub/debug.log"),
            "not gitignore: *.log is the root's"
        );
        assert!(i.excludes("build"));
        assert!(
            i.excludes("build/out/x.o"),
            "a folder excludes what it holds"
        );
        assert!(!i.excludes("src/build"));
        let any = ignore("**/*.log");
        assert!(any.excludes("debug.log") && any.excludes("a/b/debug.log"));
    }

    #[test]
    fn the_last_matching_pattern_decides() {
        let i = ignore("data\n!data/keep.txt\n");
        assert!(i.excludes("data/big.bin"));
        assert!(!i.excludes("data/keep.txt"));
        assert!(i.has_exceptions());
        let i = ignore("!data/keep.txt\ndata\n");
        assert!(i.excludes("data/keep.txt"));
        let mut i = ignore("*\n");
        i.keep("Dockerfile");
        assert!(!i.excludes("Dockerfile") && i.excludes("other"));
    }

    #[test]
    fn globs_are_go_globs() {
        let i = ignore("a?c\n[0-9]x\n{b}\nd*/e\n");
        assert!(i.excludes("abc") && !i.excludes("a/c"));
        assert!(i.excludes("7x") && !i.excludes("yx"));
        assert!(i.excludes("{b}"), "braces are literal");
        assert!(i.excludes("dir/e") && !i.excludes("dir/sub/e"));
        assert!(Ignore::parse("!\n").is_err());
        assert!(Ignore::parse("[unclosed\n").unwrap_err().contains("line 1"));
    }
}
