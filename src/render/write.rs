//! The filesystem side of rendering: compare, diff and atomically write.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Artifact;
use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Updated,
    Unchanged,
    /// On disk under the output root but no longer generated.
    Removed,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    /// Path relative to the project.
    pub path: String,
    pub status: Status,
    pub bytes: usize,
    /// Unified diff from what is on disk to what shipit renders (empty when unchanged).
    #[serde(skip)]
    pub diff: String,
}

/// Compares rendered artifacts with the files under `root`. `owned` says
/// whether shipit owns the whole directory (stale files there get removed).
pub fn plan(
    project: &Path,
    root: &str,
    artifacts: &[Artifact],
    owned: bool,
) -> Result<Vec<FileChange>, Error> {
    let owned = owned && !root.is_empty();
    let mut changes = Vec::new();
    for artifact in artifacts {
        let relative = join(root, &artifact.path);
        let path = project.join(&relative);
        let old = match fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&path, e)),
        };
        let status = match &old {
            None => Status::Created,
            Some(text) if *text == artifact.contents => Status::Unchanged,
            Some(_) => Status::Updated,
        };
        let diff = if status == Status::Unchanged {
            String::new()
        } else {
            unified_diff(
                old.as_deref().unwrap_or(""),
                &artifact.contents,
                &relative,
                old.is_none(),
            )
        };
        changes.push(FileChange {
            path: relative,
            status,
            bytes: artifact.contents.len(),
            diff,
        });
    }
    if owned {
        let mut existing = Vec::new();
        list_files(&project.join(root), &mut existing)
            .map_err(|e| Error::io(&project.join(root), e))?;
        existing.sort();
        for path in existing {
            let relative = path
                .strip_prefix(project)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            if !changes.iter().any(|c| c.path == relative) {
                let old = fs::read_to_string(&path).unwrap_or_default();
                let diff = unified_diff(&old, "", &relative, false);
                changes.push(FileChange {
                    path: relative,
                    status: Status::Removed,
                    bytes: 0,
                    diff,
                });
            }
        }
    }
    Ok(changes)
}

/// Carries out a plan: every changed file is written to a temporary file in
/// its directory and renamed over the old one, so no reader ever sees half a file.
/// Only a directory shipit owns (`owned`, never the project root) has its
/// emptied subdirectories pruned.
pub fn apply(
    project: &Path,
    root: &str,
    artifacts: &[Artifact],
    changes: &[FileChange],
    owned: bool,
) -> Result<(), Error> {
    for change in changes {
        let path = project.join(&change.path);
        match change.status {
            Status::Unchanged => {}
            Status::Removed => fs::remove_file(&path).map_err(|e| Error::io(&path, e))?,
            Status::Created | Status::Updated => {
                let artifact = artifacts
                    .iter()
                    .find(|a| join(root, &a.path) == change.path)
                    .ok_or_else(|| {
                        Error::io(
                            &path,
                            std::io::Error::other("no rendered contents for this path"),
                        )
                    })?;
                write_atomic(&path, artifact.contents.as_bytes())?;
            }
        }
    }
    if owned && !root.is_empty() && changes.iter().any(|c| c.status == Status::Removed) {
        remove_empty_dirs(&project.join(root));
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.shipit-{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

fn join(root: &str, path: &str) -> String {
    if root.is_empty() {
        path.to_string()
    } else {
        format!("{root}/{path}")
    }
}

fn list_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            list_files(&entry.path(), out)?;
        } else {
            out.push(entry.path());
        }
    }
    Ok(())
}

fn remove_empty_dirs(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&entry.path());
                let _ = fs::remove_dir(entry.path());
            }
        }
    }
}

fn unified_diff(old: &str, new: &str, path: &str, created: bool) -> String {
    let from = if created {
        "/dev/null".to_string()
    } else {
        format!("a/{path}")
    };
    let to = if new.is_empty() {
        "/dev/null".to_string()
    } else {
        format!("b/{path}")
    };
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&from, &to)
        .to_string()
}
