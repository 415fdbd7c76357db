//! `shipit release`: plan a version bump (checking every precondition at
//! once), then carry it out - manifests, Cargo.lock, CHANGELOG.md, one commit
//! and an annotated tag - undoing everything if any step fails.

pub mod bump;
pub mod changelog;
pub mod commits;
pub mod manifest;
pub mod repo;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use bump::Level;
use commits::Change;
use manifest::{Edit, Workspace};
use repo::{Repo, Upstream};

/// `LEVEL` on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Level(Level),
    /// Decided by the Conventional Commits since the last release.
    Auto,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub request: Request,
    pub pre_id: Option<String>,
    pub push: bool,
    /// Branch globs a release may be made from (`*` and `?`).
    pub allow_branches: Vec<String>,
    /// The changelog date, YYYY-MM-DD (default: SOURCE_DATE_EPOCH, else today, UTC).
    pub date: Option<String>,
}

pub const DEFAULT_BRANCHES: [&str; 2] = ["main", "master"];

/// One precondition that does not hold.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub check: &'static str,
    pub message: String,
}

/// Everything a release will do, worked out before anything is touched.
#[derive(Debug, Serialize)]
pub struct Plan {
    pub current: String,
    /// Where the current version came from: `tag v1.2.3` or `Cargo.toml`.
    pub current_from: String,
    pub next: Option<String>,
    pub level: Option<String>,
    /// The commits that decided an `auto` level.
    pub decided_by: Vec<Change>,
    pub previous_tag: Option<String>,
    pub commits_since: usize,
    pub branch: Option<String>,
    pub files: Vec<String>,
    pub changelog_entry: String,
    pub commit_message: String,
    pub tag: String,
    pub push: Option<Upstream>,
    pub problems: Vec<Problem>,
    #[serde(skip)]
    edits: Vec<Edit>,
    #[serde(skip)]
    root: PathBuf,
    #[serde(skip)]
    prefix: PathBuf,
    #[serde(skip)]
    head: Option<git2::Oid>,
}

impl Plan {
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.next.is_some()
    }
}

/// What `execute` did.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub version: String,
    pub commit: String,
    pub tag: String,
    pub pushed: bool,
}

/// A release that failed part-way, and what was put back.
#[derive(Debug)]
pub struct Failure {
    pub step: &'static str,
    pub message: String,
    /// Empty when the repository is exactly as it was.
    pub restore_errors: Vec<String>,
}

/// Work out the release; every failed precondition is collected in `problems`.
/// `Err` only when there is nothing to plan from (no repository, no manifest).
pub fn plan(project: &Path, options: &Options) -> Result<Plan, String> {
    let repo = Repo::discover(project)?;
    let workdir = repo.workdir()?;
    let root = project
        .canonicalize()
        .map_err(|e| format!("cannot access {}: {e}", project.display()))?;
    let prefix = root
        .strip_prefix(workdir.canonicalize().unwrap_or(workdir.clone()))
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let workspace = Workspace::load(&root)?;
    let mut problems = Vec::new();
    let mut problem =
        |check: &'static str, message: String| problems.push(Problem { check, message });

    let head = repo.head()?;
    let tags = repo.version_tags()?;
    let reachable = tags.iter().find(|t| repo.reachable(head, t.commit));
    let (current, current_from) = match reachable {
        Some(tag) => {
            if tag.version != workspace.version {
                problem(
                    "version",
                    format!(
                        "the latest release tag {} says {} but {} {} is {}: set {} to {} and commit (or, if {} was tagged by mistake, delete it with `git tag -d {}`)",
                        tag.name,
                        tag.version,
                        workspace.version_file,
                        workspace.version_key,
                        workspace.version,
                        workspace.version_key,
                        tag.version,
                        tag.name,
                        tag.name
                    ),
                );
            }
            (tag.version.clone(), format!("tag {}", tag.name))
        }
        None => (
            workspace.version.clone(),
            workspace.version_file.to_string(),
        ),
    };

    let raw = repo.commits_since(head, reachable.map(|t| t.commit))?;
    let changes: Vec<Change> = raw
        .iter()
        .map(|(sha, message)| Change::parse(sha, message))
        .collect();

    let mut decided_by = Vec::new();
    let level = match options.request {
        Request::Level(level) => Some(level),
        Request::Auto => match commits::decide(&changes, current.major) {
            Some((level, deciders)) => {
                decided_by = deciders.into_iter().cloned().collect();
                // On a pre-release, `auto` finishes it at the level asked for.
                Some(level)
            }
            None => {
                problem(
                    "auto",
                    format!(
                        "none of the {} commit(s) since {} is a feat, fix, perf or breaking change, so `auto` finds nothing to release: choose a level (patch, minor, ...)",
                        changes.len(),
                        reachable.map_or("the first commit", |t| t.name.as_str())
                    ),
                );
                None
            }
        },
    };
    let next = match level {
        Some(level) => match bump::bump(&current, level, options.pre_id.as_deref()) {
            Ok(next) => Some(next),
            Err(e) => {
                problem("level", e.to_string());
                None
            }
        },
        None => None,
    };

    // Preconditions.
    let dirty = repo.dirty_files()?;
    if !dirty.is_empty() {
        problem(
            "clean",
            format!(
                "the working tree has uncommitted changes: {}; commit or stash them",
                dirty.join(", ")
            ),
        );
    }
    let branch = repo.branch();
    let allowed: Vec<String> = if options.allow_branches.is_empty() {
        DEFAULT_BRANCHES.iter().map(|s| s.to_string()).collect()
    } else {
        options.allow_branches.clone()
    };
    match &branch {
        None => problem(
            "branch",
            "HEAD is detached: check out a branch (allowed: {})".replace("{}", &allowed.join(", ")),
        ),
        Some(b) if !allowed.iter().any(|g| glob_match(g, b)) => problem(
            "branch",
            format!(
                "releases are made from {}, not `{b}`: switch branch or pass --allow-branch {b}",
                allowed.join(", ")
            ),
        ),
        Some(_) => {}
    }
    if let Some(tag) = tags.iter().find(|t| t.commit == head) {
        problem(
            "released",
            format!(
                "HEAD is already released as {}: commit something first",
                tag.name
            ),
        );
    }
    if let Some(next) = &next {
        let name = format!("v{next}");
        if repo.tag_exists(&name) {
            problem("tag", format!("the tag {name} already exists"));
        }
        if *next <= current {
            problem(
                "downgrade",
                format!("{next} is not above the current version {current}"),
            );
        }
    }
    if let Err(e) = repo.identity() {
        problem("identity", e);
    }
    let push = if options.push {
        match branch.as_deref().and_then(|b| repo.upstream(b)) {
            Some(u) => Some(u),
            None => {
                problem(
                    "push",
                    "--push needs a remote: the branch has no upstream and there is no `origin`"
                        .to_string(),
                );
                None
            }
        }
    } else {
        None
    };

    // What changes.
    let date = options.date.clone().unwrap_or_else(today);
    let (edits, entry, tag) = match &next {
        Some(next) => {
            let mut edits = workspace.edits(&root, next)?;
            match rendered(&root, next) {
                Ok(files) => edits.extend(files),
                Err(message) => problems.push(Problem {
                    check: "render",
                    message,
                }),
            }
            let entry = changelog::entry(next, &date, &changes);
            let path = PathBuf::from("CHANGELOG.md");
            let before = std::fs::read_to_string(root.join(&path)).ok();
            let after = changelog::insert(before.as_deref(), &entry);
            edits.push(Edit {
                path,
                before,
                after,
            });
            (edits, entry, format!("v{next}"))
        }
        None => (Vec::new(), String::new(), String::new()),
    };
    Ok(Plan {
        current: current.to_string(),
        current_from,
        level: level.map(|l| l.name().to_string()),
        commit_message: next
            .as_ref()
            .map(|n| format!("chore(release): v{n}"))
            .unwrap_or_default(),
        next: next.map(|n| n.to_string()),
        decided_by,
        previous_tag: reachable.map(|t| t.name.clone()),
        commits_since: changes.len(),
        branch,
        files: edits.iter().map(|e| e.path.display().to_string()).collect(),
        changelog_entry: entry,
        tag,
        push,
        problems,
        edits,
        root,
        prefix,
        head: Some(head),
    })
}

/// The committed `generated/ENV/` files, rendered again for `next`: they
/// carry the version (image tags, labels), so the release commit updates them
/// and `shipit render --check` stays green. Environments without a
/// `generated/ENV/` directory are not rendered.
fn rendered(root: &Path, next: &semver::Version) -> Result<Vec<Edit>, String> {
    use crate::config::{self, Overrides};
    use crate::render::{self, GENERATED_DIR};
    let mut edits = Vec::new();
    // The committed configuration only: no --set, no SHIPIT__ variables.
    let overrides = Overrides::default();
    for environment in config::environment_names(root) {
        let dir = Path::new(GENERATED_DIR).join(&environment);
        if !root.join(&dir).is_dir() {
            continue;
        }
        let mut loaded = config::load(root, Some(&environment), &overrides).map_err(|e| {
            format!(
                "generated/{environment} cannot be rendered for the new version: the configuration is invalid (run `shipit validate {environment}`):\n{}",
                e.render()
            )
        })?;
        // The manifest or base.toml on disk still holds the old version.
        loaded.version = next.to_string();
        let artifacts = render::environment(&loaded).map_err(|e| e.to_string())?;
        for artifact in artifacts {
            let path = dir.join(&artifact.path);
            let before = std::fs::read_to_string(root.join(&path)).ok();
            if before.as_deref() != Some(artifact.contents.as_str()) {
                edits.push(Edit {
                    path,
                    before,
                    after: artifact.contents,
                });
            }
        }
    }
    Ok(edits)
}

/// Carry out a plan whose preconditions hold. Any failure puts every file,
/// the branch, the index and the tags back as they were.
pub fn execute(plan: &Plan, project: &Path) -> Result<Outcome, Failure> {
    let fail = |step: &'static str, message: String| Failure {
        step,
        message,
        restore_errors: Vec::new(),
    };
    let repo = Repo::discover(project).map_err(|e| fail("open", e))?;
    let head = plan
        .head
        .ok_or_else(|| fail("open", "no HEAD".to_string()))?;
    let who = repo.identity().map_err(|e| fail("identity", e))?;
    let mut written: Vec<&Edit> = Vec::new();
    let result = (|| -> Result<Outcome, Failure> {
        for edit in &plan.edits {
            crate::render::write::write_atomic(&plan.root.join(&edit.path), edit.after.as_bytes())
                .map_err(|e| fail("write", e.to_string()))?;
            written.push(edit);
        }
        let paths: Vec<PathBuf> = plan
            .edits
            .iter()
            .map(|e| plan.prefix.join(&e.path))
            .collect();
        let commit = repo
            .commit(&paths, &plan.commit_message, &who)
            .map_err(|e| fail("commit", e))?;
        let message = format!("Release {}\n\n{}", plan.tag, plan.changelog_entry);
        repo.tag(&plan.tag, commit, &message, &who)
            .map_err(|e| fail("tag", e))?;
        if let (Some(upstream), Some(branch)) = (&plan.push, &plan.branch) {
            repo.push(upstream, branch, &plan.tag)
                .map_err(|e| fail("push", e))?;
        }
        Ok(Outcome {
            version: plan.next.clone().unwrap_or_default(),
            commit: commit.to_string(),
            tag: plan.tag.clone(),
            pushed: plan.push.is_some(),
        })
    })();
    result.map_err(|mut failure| {
        for edit in written.iter().rev() {
            let path = plan.root.join(&edit.path);
            let restored = match &edit.before {
                Some(before) => crate::render::write::write_atomic(&path, before.as_bytes())
                    .map_err(|e| e.to_string()),
                None => std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display())),
            };
            if let Err(e) = restored {
                failure.restore_errors.push(e);
            }
        }
        if let Err(e) = repo.delete_tag(&plan.tag) {
            failure
                .restore_errors
                .push(format!("tag {}: {e}", plan.tag));
        }
        if let Err(e) = repo.reset_to(head) {
            failure
                .restore_errors
                .push(format!("branch and index: {e}"));
        }
        failure
    })
}

/// `*` matches any run of characters, `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// SOURCE_DATE_EPOCH when set (reproducible), else today; UTC.
fn today() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    crate::clock::rfc3339(secs)[..10].to_string()
}

#[cfg(test)]
mod tests;
