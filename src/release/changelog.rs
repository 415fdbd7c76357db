//! CHANGELOG.md in the Keep a Changelog layout: one entry per release,
//! newest first, below `## [Unreleased]`.

use semver::Version;

use super::commits::{Change, Group};

const HEADER: &str = "# Changelog

All notable changes to this project are documented in this file.

The format is based on [Keep a Changelog](https://keepachangelog.com/en/1.1.0/),
and this project adheres to [Semantic Versioning](https://semver.org/spec/v2.0.0.html).

## [Unreleased]
";

/// The entry for one release, grouped by type in a fixed order.
pub fn entry(version: &Version, date: &str, changes: &[Change]) -> String {
    let mut out = format!("## [{version}] - {date}\n");
    let mut any = false;
    for group in Group::ORDER {
        let items: Vec<&Change> = changes
            .iter()
            .filter(|c| !c.is_release() && c.group() == group)
            .collect();
        if items.is_empty() {
            continue;
        }
        any = true;
        out.push_str(&format!("\n### {}\n\n", group.heading()));
        for change in items {
            out.push_str(&line(change, group));
        }
    }
    if !any {
        out.push_str("\nNo changes recorded since the previous release.\n");
    }
    out
}

fn line(change: &Change, group: Group) -> String {
    let text = match (&change.breaking_note, group) {
        (Some(note), Group::Breaking) if !note.is_empty() => {
            format!("{} ({note})", change.description)
        }
        _ => change.description.clone(),
    };
    let scope = change
        .scope
        .as_ref()
        .map(|s| format!("**{s}:** "))
        .unwrap_or_default();
    let short = &change.sha[..change.sha.len().min(7)];
    format!("- {scope}{} ({short})\n", one_line(&text))
}

/// Markdown list items are one line; a heading marker or HTML stays text.
fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('<', "&lt;")
}

/// `existing` (or a fresh file) with `entry` inserted as the newest release.
pub fn insert(existing: Option<&str>, entry: &str) -> String {
    let text = match existing {
        Some(t) if !t.trim().is_empty() => t.to_string(),
        _ => HEADER.to_string(),
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let is_release =
        |l: &str| l.starts_with("## ") && !l.to_ascii_lowercase().contains("unreleased");
    let is_unreleased =
        |l: &str| l.starts_with("## ") && l.to_ascii_lowercase().contains("unreleased");
    // Before the first release heading; after the Unreleased section when
    // there is no release yet; else at the end.
    let at = lines
        .iter()
        .position(|l| is_release(l))
        .or_else(|| {
            lines
                .iter()
                .position(|l| is_unreleased(l))
                .map(|_| lines.len())
        })
        .unwrap_or(lines.len());
    let mut out: String = lines[..at].concat();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    if !out.ends_with("\n\n") {
        out.push('\n');
    }
    out.push_str(entry);
    if at < lines.len() {
        out.push('\n');
        out.push_str(&lines[at..].concat());
    }
    out
}
