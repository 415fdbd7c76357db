//! `.dockerignore` with Docker's matching rules (moby/patternmatcher):
//! patterns are cleaned paths relative to the context root; `*` and `?` stay
//! within one path component, `**` crosses any number of them; a path is
//! ignored when it or a parent matches; `!` re-includes; the last matching
//! pattern wins.

#[derive(Debug, Clone)]
struct Pattern {
    parts: Vec<String>,
    exception: bool,
}

#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

impl DockerIgnore {
    pub fn parse(text: &str) -> DockerIgnore {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|line| {
                let (exception, raw) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                let cleaned = clean(raw);
                (!cleaned.is_empty()).then(|| Pattern {
                    parts: cleaned.split('/').map(str::to_string).collect(),
                    exception,
                })
            })
            .collect();
        DockerIgnore { patterns }
    }

    /// Whether `path` (relative, `/`-separated) is left out of the context.
    pub fn is_ignored(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut ignored = false;
        for pattern in &self.patterns {
            if ignored != pattern.exception {
                continue; // this pattern could not change the outcome
            }
            let matched = (1..=parts.len()).any(|n| match_parts(&pattern.parts, &parts[..n]));
            if matched {
                ignored = !pattern.exception;
            }
        }
        ignored
    }

    /// Whether an ignored directory can be skipped without walking it: true
    /// unless some `!` exception could re-include something inside it.
    pub fn can_skip_dir(&self, dir: &str) -> bool {
        let parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
        !self
            .patterns
            .iter()
            .filter(|p| p.exception)
            .any(|p| could_match_inside(&p.parts, &parts))
    }
}

/// `filepath.Clean` for patterns: no leading `/`, no `.` parts, `..` resolved.
fn clean(raw: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    out.join("/")
}

/// Matches pattern components against path components; `**` spans zero or more.
fn match_parts(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_parts(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((head, tail)) => {
                glob(first.as_bytes(), head.as_bytes()) && match_parts(rest, tail)
            }
            None => false,
        },
    }
}

/// Whether the exception pattern could match `dir` itself or something below it.
fn could_match_inside(pattern: &[String], dir: &[&str]) -> bool {
    match (pattern.split_first(), dir.split_first()) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some((first, _)), Some(_)) if first.contains("**") => true,
        (Some((first, rest)), Some((head, tail))) => {
            glob(first.as_bytes(), head.as_bytes()) && could_match_inside(rest, tail)
        }
    }
}

/// One path component against a glob: `*`, `?`, `[...]` classes, `\` escapes.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some(b'*') => {
            let rest = &pattern[1..];
            (0..=text.len()).any(|i| glob(rest, &text[i..]))
        }
        Some(b'?') => !text.is_empty() && glob(&pattern[1..], &text[1..]),
        Some(b'[') => match (class(&pattern[1..]), text.first()) {
            (Some((matches, len)), Some(&c)) => matches(c) && glob(&pattern[1 + len..], &text[1..]),
            (None, Some(&c)) => c == b'[' && glob(&pattern[1..], &text[1..]),
            (_, None) => false,
        },
        Some(b'\\') if pattern.len() > 1 => {
            text.first() == Some(&pattern[1]) && glob(&pattern[2..], &text[1..])
        }
        Some(&p) => text.first() == Some(&p) && glob(&pattern[1..], &text[1..]),
    }
}

type ClassMatch = Box<dyn Fn(u8) -> bool>;

/// Parses `[...]` after the `[`: a matcher and how many bytes the class used.
fn class(pattern: &[u8]) -> Option<(ClassMatch, usize)> {
    let end = pattern.iter().skip(1).position(|&b| b == b']')? + 1;
    let (negated, body) = match pattern[0] {
        b'^' | b'!' => (true, pattern[1..end].to_vec()),
        _ => (false, pattern[..end].to_vec()),
    };
    let matcher = move |c: u8| {
        let mut i = 0;
        let mut found = false;
        while i < body.len() {
            if i + 2 < body.len() && body[i + 1] == b'-' {
                found |= (body[i]..=body[i + 2]).contains(&c);
                i += 3;
            } else {
                found |= body[i] == c;
                i += 1;
            }
        }
        found != negated
    };
    Some((Box::new(matcher), end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text)
    }

    #[test]
    fn plain_patterns_and_parents() {
        let i = ignore("# comment\ntarget/\n/.git\n*.swp\n.env\n.env.*\n");
        assert!(i.is_ignored("target"));
        assert!(
            i.is_ignored("target/release/calculator"),
            "a parent matches"
        );
        assert!(
            !i.is_ignored("calculator/target"),
            "`target` only at the root"
        );
        assert!(i.is_ignored(".git/HEAD"));
        assert!(i.is_ignored("notes.swp"));
        assert!(!i.is_ignored("src/notes.swp"), "`*` does not cross `/`");
        assert!(i.is_ignored(".env") && i.is_ignored(".env.local"));
        assert!(!i.is_ignored("src/main.rs"));
    }

    #[test]
    fn double_star_spans_directories() {
        let i = ignore("**/target/\n**/*.key\ndocs/**/draft-?.md\n");
        assert!(i.is_ignored("target/x") && i.is_ignored("calculator/target/debug/x"));
        assert!(i.is_ignored("tls.key") && i.is_ignored("a/b/c/tls.key"));
        assert!(i.is_ignored("docs/draft-1.md") && i.is_ignored("docs/a/b/draft-2.md"));
        assert!(!i.is_ignored("docs/draft-10.md"));
    }

    #[test]
    fn exceptions_and_last_match_wins() {
        let i = ignore("*.md\n!README.md\nREADME.md\n!docs/README.md\n");
        assert!(i.is_ignored("CHANGES.md"));
        assert!(i.is_ignored("README.md"), "the later pattern wins");
        let j = ignore("docs\n!docs/keep.txt\n");
        assert!(j.is_ignored("docs/other.txt"));
        assert!(!j.is_ignored("docs/keep.txt"));
    }

    #[test]
    fn classes_and_escapes() {
        let i = ignore("log[0-9].txt\nx[!a].y\nstar\\*\n");
        assert!(i.is_ignored("log7.txt") && !i.is_ignored("logA.txt"));
        assert!(i.is_ignored("xb.y") && !i.is_ignored("xa.y"));
        assert!(i.is_ignored("star*") && !i.is_ignored("starry"));
    }

    #[test]
    fn skipping_directories_is_safe() {
        let i = ignore("target/\n");
        assert!(i.can_skip_dir("target"));
        let j = ignore("target/\n!target/keep/me\n");
        assert!(!j.can_skip_dir("target"), "an exception reaches inside");
        assert!(j.can_skip_dir("other"));
        let k = ignore("target/\n!**/*.rs\n");
        assert!(!k.can_skip_dir("target"));
    }
}
