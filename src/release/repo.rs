//! The git side of a release, through git2: tags, history, the working tree,
//! the release commit and tag, and undoing them. `push` runs the git command
//! (via `process`) so the user's credentials, hooks and remotes apply.

use std::path::{Path, PathBuf};

use crate::process::Program;
use git2::{ObjectType, Oid, Repository, Signature, Sort, StatusOptions};
use semver::Version;

pub struct Repo {
    repo: Repository,
}

/// A `v`-prefixed semver tag and the commit it points at.
#[derive(Debug, Clone)]
pub struct VersionTag {
    pub name: String,
    pub version: Version,
    pub commit: Oid,
}

/// Where the release is pushed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Upstream {
    pub remote: String,
    /// The remote branch the local branch tracks (or the same name).
    pub branch: String,
}

fn msg(e: git2::Error) -> String {
    e.message().to_string()
}

impl Repo {
    pub fn discover(project: &Path) -> Result<Repo, String> {
        Repository::discover(project)
            .map(|repo| Repo { repo })
            .map_err(|e| {
                format!(
                    "{} is not inside a git repository ({}): run `git init` and commit first",
                    project.display(),
                    msg(e)
                )
            })
    }

    /// The working tree's root.
    pub fn workdir(&self) -> Result<PathBuf, String> {
        self.repo
            .workdir()
            .map(Path::to_path_buf)
            .ok_or_else(|| "the repository is bare: a release needs a working tree".to_string())
    }

    pub fn head(&self) -> Result<Oid, String> {
        self.repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .map(|c| c.id())
            .map_err(|e| format!("the repository has no commit yet ({})", msg(e)))
    }

    /// The checked-out branch, `None` when HEAD is detached.
    pub fn branch(&self) -> Option<String> {
        let head = self.repo.head().ok()?;
        if !head.is_branch() {
            return None;
        }
        head.shorthand().ok().map(String::from)
    }

    /// Every `v`-prefixed semver tag, highest version first.
    pub fn version_tags(&self) -> Result<Vec<VersionTag>, String> {
        let mut tags = Vec::new();
        let names = self.repo.tag_names(Some("v*")).map_err(msg)?;
        for name in names.iter().flatten().flatten() {
            let Ok(version) = Version::parse(&name[1..]) else {
                continue;
            };
            let Ok(reference) = self.repo.find_reference(&format!("refs/tags/{name}")) else {
                continue;
            };
            let Ok(commit) = reference.peel_to_commit() else {
                continue;
            };
            tags.push(VersionTag {
                name: name.to_string(),
                version,
                commit: commit.id(),
            });
        }
        tags.sort_by(|a, b| b.version.cmp(&a.version).then(a.name.cmp(&b.name)));
        Ok(tags)
    }

    /// Whether `commit` is HEAD or one of its ancestors.
    pub fn reachable(&self, head: Oid, commit: Oid) -> bool {
        head == commit || self.repo.graph_descendant_of(head, commit).unwrap_or(false)
    }

    /// `(sha, message)` of every commit reachable from HEAD and not from `since`, newest first.
    pub fn commits_since(
        &self,
        head: Oid,
        since: Option<Oid>,
    ) -> Result<Vec<(String, String)>, String> {
        let mut walk = self.repo.revwalk().map_err(msg)?;
        walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)
            .map_err(msg)?;
        walk.push(head).map_err(msg)?;
        if let Some(since) = since {
            walk.hide(since).map_err(msg)?;
        }
        let mut out = Vec::new();
        for oid in walk {
            let oid = oid.map_err(msg)?;
            let commit = self.repo.find_commit(oid).map_err(msg)?;
            let message = String::from_utf8_lossy(commit.message_bytes()).into_owned();
            out.push((oid.to_string(), message));
        }
        Ok(out)
    }

    /// Modified, staged, deleted and untracked files (ignored ones excluded).
    pub fn dirty_files(&self) -> Result<Vec<String>, String> {
        let mut options = StatusOptions::new();
        options
            .include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false)
            .exclude_submodules(false);
        let statuses = self.repo.statuses(Some(&mut options)).map_err(msg)?;
        let mut files: Vec<String> = statuses
            .iter()
            .filter(|s| !s.status().is_ignored())
            .filter_map(|s| s.path().ok().map(String::from))
            .collect();
        files.sort();
        Ok(files)
    }

    /// The committer, from user.name and user.email.
    pub fn identity(&self) -> Result<Signature<'static>, String> {
        self.repo.signature().map_err(|e| {
            format!(
                "no git identity ({}): set it with `git config user.name \"Your Name\"` and `git config user.email you@example.com`",
                msg(e)
            )
        })
    }

    pub fn tag_exists(&self, name: &str) -> bool {
        self.repo
            .find_reference(&format!("refs/tags/{name}"))
            .is_ok()
    }

    /// The remote and branch `--push` sends to: the branch's upstream, else `origin`.
    pub fn upstream(&self, branch: &str) -> Option<Upstream> {
        let refname = format!("refs/heads/{branch}");
        if let Ok(remote) = self.repo.branch_upstream_remote(&refname)
            && let Ok(remote) = remote.as_str()
        {
            let merge = self
                .repo
                .branch_upstream_merge(&refname)
                .ok()
                .and_then(|m| m.as_str().ok().map(String::from))
                .and_then(|m| m.strip_prefix("refs/heads/").map(String::from))
                .unwrap_or_else(|| branch.to_string());
            return Some(Upstream {
                remote: remote.to_string(),
                branch: merge,
            });
        }
        self.repo.find_remote("origin").ok().map(|_| Upstream {
            remote: "origin".to_string(),
            branch: branch.to_string(),
        })
    }

    /// Stage `paths` (relative to the working tree) and commit them on HEAD.
    pub fn commit(&self, paths: &[PathBuf], message: &str, who: &Signature) -> Result<Oid, String> {
        let mut index = self.repo.index().map_err(msg)?;
        for path in paths {
            index
                .add_path(path)
                .map_err(|e| format!("cannot stage {}: {}", path.display(), msg(e)))?;
        }
        index.write().map_err(msg)?;
        let tree = self
            .repo
            .find_tree(index.write_tree().map_err(msg)?)
            .map_err(msg)?;
        let parent = self
            .repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .map_err(msg)?;
        self.repo
            .commit(Some("HEAD"), who, who, message, &tree, &[&parent])
            .map_err(|e| format!("cannot commit: {}", msg(e)))
    }

    /// An annotated tag on `commit`; refuses to overwrite.
    pub fn tag(
        &self,
        name: &str,
        commit: Oid,
        message: &str,
        who: &Signature,
    ) -> Result<Oid, String> {
        let object = self
            .repo
            .find_object(commit, Some(ObjectType::Commit))
            .map_err(msg)?;
        self.repo
            .tag(name, &object, who, message, false)
            .map_err(|e| format!("cannot create tag {name}: {}", msg(e)))
    }

    /// Put HEAD's branch back on `head` and the index back to its tree.
    pub fn reset_to(&self, head: Oid) -> Result<(), String> {
        let mut reference = self.repo.head().map_err(msg)?;
        if reference.target() != Some(head) {
            let resolved = reference.resolve().map_err(msg)?;
            reference = resolved;
            reference
                .set_target(head, "shipit release: undo a failed release")
                .map_err(msg)?;
        }
        let tree = self
            .repo
            .find_commit(head)
            .and_then(|c| c.tree())
            .map_err(msg)?;
        let mut index = self.repo.index().map_err(msg)?;
        index.read_tree(&tree).map_err(msg)?;
        index.write().map_err(msg)
    }

    pub fn delete_tag(&self, name: &str) -> Result<(), String> {
        if self.tag_exists(name) {
            self.repo.tag_delete(name).map_err(msg)?;
        }
        Ok(())
    }

    /// `git push --atomic REMOTE BRANCH:UPSTREAM TAG`: both land or neither.
    pub fn push(&self, upstream: &Upstream, branch: &str, tag: &str) -> Result<(), String> {
        let workdir = self.workdir()?;
        let output = Program::new(
            "git",
            [
                "-C".to_string(),
                workdir.display().to_string(),
                "push".into(),
                "--atomic".into(),
                "--porcelain".into(),
                upstream.remote.clone(),
                format!("refs/heads/{branch}:refs/heads/{}", upstream.branch),
                format!("refs/tags/{tag}:refs/tags/{tag}"),
            ],
        )
        .merge_stderr()
        .output()
        .map_err(|e| e.message)?;
        if output.success() {
            Ok(())
        } else {
            Err(format!(
                "git push to {} failed ({}):\n{}",
                upstream.remote,
                output.status,
                output.stdout.trim_end()
            ))
        }
    }
}
