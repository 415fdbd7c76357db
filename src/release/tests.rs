use semver::Version;

use super::bump::{BumpError, Level, bump};
use super::changelog;
use super::commits::{Change, Group, decide};
use super::glob_match;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

/// (current, level, pre-id, expected). Expected values follow the semver 2.0
/// specification and, for pre-releases, node-semver's `inc` (many rows are
/// node-semver's own fixtures).
const BUMPS: &[(&str, &str, Option<&str>, &str)] = &[
    ("1.2.3", "major", None, "2.0.0"),
    ("1.2.3", "minor", None, "1.3.0"),
    ("1.2.3", "patch", None, "1.2.4"),
    ("0.0.0", "patch", None, "0.0.1"),
    ("0.1.0", "major", None, "1.0.0"),
    ("0.9.9", "minor", None, "0.10.0"),
    ("1.2.3+build.5", "patch", None, "1.2.4"),
    ("1.2.3-rc.1+build.5", "patch", None, "1.2.3"),
    ("1.2.3-4", "major", None, "2.0.0"),
    ("1.2.3-4", "minor", None, "1.3.0"),
    ("1.2.3-4", "patch", None, "1.2.3"),
    ("1.2.3-rc.1", "patch", None, "1.2.3"),
    ("1.2.0-0", "minor", None, "1.2.0"),
    ("1.2.0-1", "minor", None, "1.2.0"),
    ("1.0.0-0", "major", None, "1.0.0"),
    ("1.0.0-rc.1", "major", None, "1.0.0"),
    ("1.1.0-rc.1", "major", None, "2.0.0"),
    ("1.2.3", "premajor", None, "2.0.0-0"),
    ("1.2.3", "premajor", Some("rc"), "2.0.0-rc.0"),
    ("2.0.0-rc.0", "premajor", Some("rc"), "3.0.0-rc.0"),
    ("1.2.3-1", "premajor", None, "2.0.0-0"),
    ("1.2.0", "preminor", None, "1.3.0-0"),
    ("1.2.3", "preminor", Some("rc"), "1.3.0-rc.0"),
    ("1.2.3-1", "preminor", None, "1.3.0-0"),
    ("1.2.0", "prepatch", None, "1.2.1-0"),
    ("1.2.0-1", "prepatch", None, "1.2.1-0"),
    ("1.2.3", "prepatch", Some("rc"), "1.2.4-rc.0"),
    ("1.2.3-rc.1", "prepatch", Some("rc"), "1.2.4-rc.0"),
    ("1.2.0", "prepatch", Some("dev"), "1.2.1-dev.0"),
    ("1.2.3", "prerelease", None, "1.2.4-0"),
    ("1.2.3", "prerelease", Some("rc"), "1.2.4-rc.0"),
    ("1.2.3", "prerelease", Some("dev"), "1.2.4-dev.0"),
    ("1.2.3-0", "prerelease", None, "1.2.3-1"),
    ("1.2.4-rc.0", "prerelease", None, "1.2.4-rc.1"),
    ("1.2.4-rc.0", "prerelease", Some("rc"), "1.2.4-rc.1"),
    ("1.2.4-rc.1", "prerelease", Some("beta"), "1.2.4-beta.0"),
    ("1.2.3-0", "prerelease", Some("dev"), "1.2.3-dev.0"),
    ("1.2.3-alpha.0", "prerelease", Some("dev"), "1.2.3-dev.0"),
    ("1.2.0-dev.1", "prerelease", Some("dev"), "1.2.0-dev.2"),
    (
        "1.2.3-alpha.0.beta",
        "prerelease",
        Some("dev"),
        "1.2.3-dev.0",
    ),
    ("1.2.3-dev.bar", "prerelease", Some("dev"), "1.2.3-dev.0"),
    ("1.2.3-alpha", "prerelease", None, "1.2.3-alpha.0"),
    ("1.2.3-rc", "prerelease", Some("rc"), "1.2.3-rc.0"),
    (
        "1.2.3-alpha.1.beta",
        "prerelease",
        None,
        "1.2.3-alpha.2.beta",
    ),
    (
        "1.2.3-alpha.10.beta.0",
        "prerelease",
        None,
        "1.2.3-alpha.10.beta.1",
    ),
    (
        "1.2.3-alpha.9.beta",
        "prerelease",
        None,
        "1.2.3-alpha.10.beta",
    ),
    ("1.2.3-rc.1", "release", None, "1.2.3"),
    ("2.0.0-0", "release", None, "2.0.0"),
];

#[test]
fn bump_table() {
    assert!(BUMPS.len() >= 30);
    let mut failures = Vec::new();
    for (current, level, pre, expected) in BUMPS {
        let level = Level::parse(level).unwrap();
        match bump(&v(current), level, *pre) {
            Ok(next) if next.to_string() == *expected => {}
            other => failures.push(format!(
                "{current} {level} {pre:?}: expected {expected}, got {other:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn bump_refusals() {
    assert_eq!(
        bump(&v("1.2.3"), Level::Release, None),
        Err(BumpError::NotPrerelease(v("1.2.3")))
    );
    for bad in ["r_c", "01", "", "rc..1", "é"] {
        assert!(
            matches!(
                bump(&v("1.2.3"), Level::Prerelease, Some(bad)),
                Err(BumpError::BadPreId(_))
            ),
            "{bad:?} should be refused"
        );
    }
    let max = Version::new(1, 2, u64::MAX);
    assert_eq!(bump(&max, Level::Patch, None), Err(BumpError::Overflow));
}

#[test]
fn conventional_headers() {
    let c = Change::parse("a1b2c3d4", "feat(api): add modulo\n\nbody");
    assert_eq!(
        (c.kind.as_str(), c.scope.as_deref(), c.breaking),
        ("feat", Some("api"), false)
    );
    assert_eq!(c.description, "add modulo");
    assert_eq!(c.group(), Group::Features);

    let c = Change::parse("a1b2c3d4", "fix!: drop /v1");
    assert!(c.breaking);
    assert_eq!(c.group(), Group::Breaking);

    let c = Change::parse(
        "a1b2c3d4",
        "refactor: rename settings\n\nBREAKING CHANGE: PORT is now\nSHIPIT_PORT\n\nReviewed-by: x",
    );
    assert!(c.breaking);
    assert_eq!(c.breaking_note.as_deref(), Some("PORT is now SHIPIT_PORT"));

    for plain in [
        "Update README",
        "feat:missing space",
        "feat(): empty scope",
        "fe at: x",
        "feat: ",
    ] {
        let c = Change::parse("a1b2c3d4", plain);
        assert_eq!(c.kind, "", "{plain:?} is not conventional");
        assert_eq!(c.group(), Group::Other);
    }
    assert!(Change::parse("x", "chore(release): v1.2.3").is_release());
    assert_eq!(
        Change::parse("x", "PERF: faster").group(),
        Group::Performance
    );
}

#[test]
fn auto_levels() {
    let changes = |msgs: &[&str]| -> Vec<Change> {
        msgs.iter()
            .enumerate()
            .map(|(i, m)| Change::parse(&format!("{i:07}"), m))
            .collect()
    };
    let level = |msgs: &[&str], major| decide(&changes(msgs), major).map(|(l, _)| l);
    assert_eq!(level(&["fix: a", "docs: b"], 1), Some(Level::Patch));
    assert_eq!(level(&["perf: a"], 1), Some(Level::Patch));
    assert_eq!(level(&["fix: a", "feat: b"], 1), Some(Level::Minor));
    assert_eq!(level(&["feat: b", "feat!: c"], 1), Some(Level::Major));
    assert_eq!(level(&["feat: b", "feat!: c"], 0), Some(Level::Minor));
    assert_eq!(level(&["chore: x", "docs: y", "Merge branch"], 1), None);
    assert_eq!(level(&[], 1), None);
    let all = changes(&["fix: a", "feat: b", "feat: c"]);
    let (_, deciders) = decide(&all, 1).unwrap();
    assert_eq!(
        deciders
            .iter()
            .map(|c| c.description.as_str())
            .collect::<Vec<_>>(),
        ["b", "c"]
    );
}

#[test]
fn changelog_entry_groups_in_order() {
    let changes: Vec<Change> = [
        ("1111111aaaa", "chore: tidy"),
        ("2222222bbbb", "fix(api): reject NaN"),
        ("3333333cccc", "feat: modulo"),
        (
            "4444444dddd",
            "feat!: remove /v1\n\nBREAKING CHANGE: clients must use /calculate",
        ),
        ("5555555eeee", "perf: faster parse"),
        ("6666666ffff", "chore(release): v1.0.0"),
    ]
    .iter()
    .map(|(sha, m)| Change::parse(sha, m))
    .collect();
    let entry = changelog::entry(&v("2.0.0"), "2026-11-22", &changes);
    assert_eq!(
        entry,
        "## [2.0.0] - 2026-11-22\n\n### Breaking changes\n\n- remove /v1 (clients must use /calculate) (4444444)\n\n### Features\n\n- modulo (3333333)\n\n### Fixes\n\n- **api:** reject NaN (2222222)\n\n### Performance\n\n- faster parse (5555555)\n\n### Other\n\n- tidy (1111111)\n"
    );
    let empty = changelog::entry(&v("2.0.1"), "2026-11-22", &[]);
    assert!(empty.contains("No changes recorded"));
}

#[test]
fn changelog_insert_keeps_history_newest_first() {
    let fresh = changelog::insert(None, "## [0.1.0] - 2026-01-01\n\n- a\n");
    assert!(fresh.starts_with("# Changelog\n"));
    assert!(fresh.contains("## [Unreleased]\n\n## [0.1.0] - 2026-01-01\n"));
    let second = changelog::insert(Some(&fresh), "## [0.2.0] - 2026-02-01\n\n- b\n");
    let unreleased = second.find("## [Unreleased]").unwrap();
    let new = second.find("## [0.2.0]").unwrap();
    let old = second.find("## [0.1.0]").unwrap();
    assert!(unreleased < new && new < old, "{second}");
    assert!(second.ends_with("- a\n"));
    // A hand-written file without an Unreleased section keeps its preamble.
    let custom = changelog::insert(
        Some("# History\n\nNotes.\n\n## 0.1.0\n- a\n"),
        "## [0.2.0] - d\n",
    );
    assert_eq!(
        custom,
        "# History\n\nNotes.\n\n## [0.2.0] - d\n\n## 0.1.0\n- a\n"
    );
}

#[test]
fn branch_globs() {
    assert!(glob_match("main", "main"));
    assert!(!glob_match("main", "mainline"));
    assert!(glob_match("release/*", "release/1.x"));
    assert!(!glob_match("release/*", "feature/x"));
    assert!(glob_match("v?.x", "v1.x"));
    assert!(glob_match("*", "anything"));
}
