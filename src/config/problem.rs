//! A configuration problem, located in its source, and how it is shown.

use std::fmt::Write as _;

use serde::Serialize;

use super::source::{Origin, SourceKind, Sources};

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Dotted key path, e.g. `gateway.rate_limit`.
    pub key: String,
    pub origin: Option<Origin>,
    pub message: String,
    /// What would be valid, or what to do.
    pub help: Option<String>,
    /// The value may be a secret: show where it is, never the line that holds it.
    pub sensitive: bool,
}

impl Problem {
    pub fn new(key: impl Into<String>, origin: Option<Origin>, message: impl Into<String>) -> Self {
        Problem {
            key: key.into(),
            origin,
            message: message.into(),
            help: None,
            sensitive: false,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
}

/// A problem as machines read it (`--output json`).
#[derive(Debug, Serialize)]
pub struct ProblemReport {
    pub file: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub key: String,
    pub message: String,
    pub help: Option<String>,
}

/// Every problem found while loading one environment.
#[derive(Debug)]
pub struct ConfigErrors {
    pub sources: Sources,
    pub problems: Vec<Problem>,
}

impl ConfigErrors {
    pub fn reports(&self) -> Vec<ProblemReport> {
        self.problems
            .iter()
            .map(|p| {
                let loc = p.origin.as_ref().map(|o| self.sources.locate(o));
                ProblemReport {
                    file: loc.as_ref().map(|l| l.name.clone()),
                    line: loc.as_ref().map(|l| l.line),
                    column: loc.as_ref().map(|l| l.column),
                    key: p.key.clone(),
                    message: p.message.clone(),
                    help: p.help.clone(),
                }
            })
            .collect()
    }

    /// Renders every problem the way compilers do: location, the offending line, a caret, help.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for p in &self.problems {
            let key = if p.key.is_empty() {
                String::new()
            } else {
                format!(" (key `{}`)", p.key)
            };
            let _ = writeln!(out, "error: {}{key}", p.message);
            if let Some(origin) = &p.origin {
                let loc = self.sources.locate(origin);
                match loc.kind {
                    SourceKind::File if p.sensitive => {
                        let _ = writeln!(
                            out,
                            "  --> {}:{}:{} (line not shown: it may hold a secret)",
                            loc.name, loc.line, loc.column
                        );
                    }
                    SourceKind::File => {
                        let _ = writeln!(out, "  --> {}:{}:{}", loc.name, loc.line, loc.column);
                        let gutter = loc.line.to_string().len();
                        let _ = writeln!(out, "{:gutter$} |", "");
                        let _ = writeln!(out, "{} | {}", loc.line, loc.line_text);
                        let pad: String = loc
                            .line_text
                            .chars()
                            .take(loc.column - 1)
                            .map(|c| if c == '\t' { '\t' } else { ' ' })
                            .collect();
                        let _ = writeln!(out, "{:gutter$} | {pad}{}", "", "^".repeat(loc.width));
                    }
                    SourceKind::EnvVar | SourceKind::Flag | SourceKind::Default => {
                        let _ = writeln!(out, "  --> {}", loc.name);
                    }
                }
            }
            if let Some(help) = &p.help {
                let _ = writeln!(out, "  = help: {help}");
            }
            out.push('\n');
        }
        let n = self.problems.len();
        let _ = write!(
            out,
            "{n} configuration problem{} found",
            if n == 1 { "" } else { "s" }
        );
        out
    }
}

/// The closest candidate by edit distance, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(&input.to_lowercase(), &c.to_lowercase()), *c))
        .filter(|(d, c)| *d <= (c.len().max(input.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let keys = ["replicas", "resources", "registry"];
        assert_eq!(did_you_mean("replcas", &keys), Some("replicas"));
        assert_eq!(did_you_mean("REPLICAS", &keys), Some("replicas"));
        assert_eq!(did_you_mean("zzzz", &keys), None);
    }

    #[test]
    fn renders_location_line_and_caret() {
        let mut sources = Sources::default();
        let id = sources.add(
            "environments/staging.toml",
            SourceKind::File,
            "[app]\nprot = 80\n",
        );
        let errors = ConfigErrors {
            sources,
            problems: vec![
                Problem::new(
                    "app.prot",
                    Some(Origin {
                        source: id,
                        span: 6..10,
                    }),
                    "unknown key `prot`",
                )
                .help("did you mean `port`?"),
            ],
        };
        let text = errors.render();
        assert_eq!(
            text,
            "error: unknown key `prot` (key `app.prot`)\n  --> environments/staging.toml:2:1\n  |\n2 | prot = 80\n  | ^^^^\n  = help: did you mean `port`?\n\n1 configuration problem found"
        );
    }
}
