//! What the build needs from git: the commit, whether the tree is dirty, and
//! the commit time (image `created` comes from it, never from the clock).

use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitInfo {
    pub sha: String,
    pub short: String,
    pub dirty: bool,
    /// Seconds since the epoch, UTC.
    pub commit_time: i64,
}

impl GitInfo {
    /// `sha-1a2b3c4` or `sha-1a2b3c4-dirty`.
    pub fn tag(&self) -> String {
        format!(
            "sha-{}{}",
            self.short,
            if self.dirty { "-dirty" } else { "" }
        )
    }

    /// The revision label: the full sha, marked when the tree was dirty.
    pub fn revision(&self) -> String {
        format!("{}{}", self.sha, if self.dirty { "-dirty" } else { "" })
    }
}

/// `None` outside a repository or before the first commit.
pub fn inspect(project: &Path) -> Option<GitInfo> {
    let repo = git2::Repository::discover(project).ok()?;
    let head = repo.head().ok()?.peel_to_commit().ok()?;
    let sha = head.id().to_string();
    let mut options = git2::StatusOptions::new();
    options
        .include_untracked(false)
        .include_ignored(false)
        .exclude_submodules(true);
    let dirty = repo
        .statuses(Some(&mut options))
        .map(|s| !s.is_empty())
        .unwrap_or(false);
    Some(GitInfo {
        short: sha[..7].to_string(),
        sha,
        dirty,
        commit_time: head.time().seconds(),
    })
}
