//! Conventional Commits: what each commit since the last release says, and
//! the bump level they decide together.

use serde::Serialize;

use super::bump::Level;

/// The changelog group a commit belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Breaking,
    Features,
    Fixes,
    Performance,
    Other,
}

impl Group {
    pub const ORDER: [Group; 5] = [
        Group::Breaking,
        Group::Features,
        Group::Fixes,
        Group::Performance,
        Group::Other,
    ];

    pub fn heading(self) -> &'static str {
        match self {
            Group::Breaking => "Breaking changes",
            Group::Features => "Features",
            Group::Fixes => "Fixes",
            Group::Performance => "Performance",
            Group::Other => "Other",
        }
    }
}

/// One commit, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub sha: String,
    /// `feat`, `fix`, ... or empty for a message that does not follow the convention.
    pub kind: String,
    pub scope: Option<String>,
    pub breaking: bool,
    /// The subject without its `type(scope)!:` prefix.
    pub description: String,
    /// The text of a `BREAKING CHANGE:` footer, when there is one.
    pub breaking_note: Option<String>,
}

impl Change {
    pub fn parse(sha: &str, message: &str) -> Change {
        let mut lines = message.lines();
        let subject = lines.next().unwrap_or("").trim();
        let breaking_note = breaking_footer(message);
        let (kind, scope, bang, description) = match header(subject) {
            Some(h) => h,
            None => (String::new(), None, false, subject.to_string()),
        };
        Change {
            sha: sha.to_string(),
            breaking: bang || breaking_note.is_some(),
            kind,
            scope,
            description,
            breaking_note,
        }
    }

    pub fn group(&self) -> Group {
        if self.breaking {
            return Group::Breaking;
        }
        match self.kind.as_str() {
            "feat" => Group::Features,
            "fix" => Group::Fixes,
            "perf" => Group::Performance,
            _ => Group::Other,
        }
    }

    /// The level this commit alone asks for, if any.
    pub fn level(&self, current_major: u64) -> Option<Level> {
        if self.breaking {
            // Before 1.0.0 anything may change: a breaking change bumps minor.
            return Some(if current_major == 0 {
                Level::Minor
            } else {
                Level::Major
            });
        }
        match self.kind.as_str() {
            "feat" => Some(Level::Minor),
            "fix" | "perf" => Some(Level::Patch),
            _ => None,
        }
    }

    /// A release commit made by shipit (or any `chore(release)`): not a change.
    pub fn is_release(&self) -> bool {
        self.kind == "chore" && self.scope.as_deref() == Some("release")
    }
}

/// `type(scope)!: description`, per the Conventional Commits 1.0 grammar.
fn header(subject: &str) -> Option<(String, Option<String>, bool, String)> {
    let colon = subject.find(':')?;
    let (head, rest) = subject.split_at(colon);
    let description = rest[1..].trim();
    if !rest[1..].starts_with(' ') || description.is_empty() {
        return None;
    }
    let (head, bang) = match head.strip_suffix('!') {
        Some(h) => (h, true),
        None => (head, false),
    };
    let (kind, scope) = match head.split_once('(') {
        Some((kind, scope)) => {
            let scope = scope.strip_suffix(')')?;
            if scope.is_empty() || scope.contains(['(', ')']) {
                return None;
            }
            (kind, Some(scope.to_string()))
        }
        None => (head, None),
    };
    if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    Some((
        kind.to_ascii_lowercase(),
        scope,
        bang,
        description.to_string(),
    ))
}

/// The `BREAKING CHANGE: ...` (or `BREAKING-CHANGE:`) footer, with its continuation lines.
fn breaking_footer(message: &str) -> Option<String> {
    let mut note: Option<String> = None;
    for line in message.lines().skip(1) {
        if let Some(n) = note.as_mut() {
            if line.trim().is_empty() || is_footer_token(line) {
                break;
            }
            n.push(' ');
            n.push_str(line.trim());
            continue;
        }
        for token in ["BREAKING CHANGE:", "BREAKING-CHANGE:"] {
            if let Some(text) = line.strip_prefix(token) {
                note = Some(text.trim().to_string());
            }
        }
    }
    note
}

fn is_footer_token(line: &str) -> bool {
    line.split_once(": ").is_some_and(|(token, _)| {
        !token.is_empty()
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    }) || line.starts_with("BREAKING")
}

/// The level a set of changes decides, and the commits that decided it.
pub fn decide(changes: &[Change], current_major: u64) -> Option<(Level, Vec<&Change>)> {
    let rank = |l: Level| match l {
        Level::Major => 3,
        Level::Minor => 2,
        _ => 1,
    };
    let level = changes
        .iter()
        .filter_map(|c| c.level(current_major))
        .max_by_key(|l| rank(*l))?;
    let deciders = changes
        .iter()
        .filter(|c| c.level(current_major) == Some(level))
        .collect();
    Some((level, deciders))
}
