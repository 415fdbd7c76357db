//! What a repository holds that shipit can build: read only, nothing run
//! but `cargo metadata` (for a Cargo workspace's binary packages).

use std::path::Path;

use serde::Serialize;

/// A Cargo binary package: its name and its manifest, relative to the project.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Binary {
    pub package: String,
    pub manifest: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Found {
    /// `Cargo.toml` at the root: its binary packages (a workspace may have several).
    pub cargo: Option<Vec<Binary>>,
    pub dockerfile: bool,
    pub python: Option<Python>,
    pub node: Option<Node>,
    pub go: Option<Go>,
    /// The name and version the project gives itself, if any.
    pub name: Option<String>,
    pub version: Option<String>,
    /// `owner/repo` of a GitHub `origin` remote (lowercase): releases go to
    /// ghcr.io/owner/repo, where the rendered CI workflows push them.
    pub github: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Python {
    pub pyproject: bool,
    pub requirements: bool,
    /// How to start it: `python3 app.py`, `python3 -m pkg`.
    pub args: Vec<String>,
}

/// A Go module (`go.mod`): its path, its main packages, and whether it is vendored.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Go {
    pub module: String,
    /// `.` (a main package at the root) and each `./cmd/NAME` with one.
    pub mains: Vec<String>,
    /// `vendor/modules.txt` is there (`go mod vendor`).
    pub vendored: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Node {
    pub lockfile: bool,
    pub args: Vec<String>,
}

impl Found {
    /// What was found, for people.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(bins) = &self.cargo {
            let names: Vec<&str> = bins.iter().map(|b| b.package.as_str()).collect();
            out.push(match names.len() {
                0 => "Cargo.toml with no binary package".to_string(),
                1 => format!("a Cargo binary package: {}", names[0]),
                _ => format!(
                    "a Cargo workspace with binary packages: {}",
                    names.join(", ")
                ),
            });
        }
        if self.dockerfile {
            out.push("a Dockerfile".into());
        }
        if let Some(p) = &self.python {
            let files: Vec<&str> = [
                (p.pyproject, "pyproject.toml"),
                (p.requirements, "requirements.txt"),
            ]
            .iter()
            .filter(|(present, _)| *present)
            .map(|(_, f)| *f)
            .collect();
            out.push(format!("a Python project ({})", files.join(", ")));
        }
        if self.node.is_some() {
            out.push("a Node.js project (package.json)".into());
        }
        if let Some(go) = &self.go {
            out.push(format!("a Go module ({})", go.module));
        }
        out
    }
}

fn read(project: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(project.join(file)).ok()
}

pub fn detect(project: &Path) -> Found {
    let mut found = Found {
        dockerfile: project.join("Dockerfile").is_file(),
        go: go_module(project),
        github: read(project, ".git/config").and_then(|c| github_origin(&c)),
        ..Found::default()
    };
    if project.join("Cargo.toml").is_file() {
        found.cargo = Some(cargo_binaries(project));
        if let Some(text) = read(project, "Cargo.toml")
            && let Ok(doc) = text.parse::<toml::Table>()
        {
            let package = doc.get("package").and_then(|p| p.as_table());
            let workspace = doc
                .get("workspace")
                .and_then(|w| w.get("package"))
                .and_then(|p| p.as_table());
            found.version = package
                .or(workspace)
                .and_then(|p| p.get("version"))
                .and_then(|v| v.as_str())
                .map(String::from);
        }
    }
    let pyproject = read(project, "pyproject.toml");
    let requirements = project.join("requirements.txt").is_file();
    if pyproject.is_some() || requirements {
        let doc = pyproject
            .as_deref()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .unwrap_or_default();
        let meta = doc.get("project").and_then(|p| p.as_table());
        let name = meta
            .and_then(|p| p.get("name"))
            .and_then(|v| v.as_str())
            .map(String::from);
        if found.name.is_none() {
            found.name = name.clone();
        }
        if found.version.is_none() {
            found.version = meta
                .and_then(|p| p.get("version"))
                .and_then(|v| v.as_str())
                .map(String::from);
        }
        let module = name.map(|n| n.replace('-', "_"));
        let args = if let Some(file) = ["app.py", "main.py", "server.py"]
            .iter()
            .find(|f| project.join(f).is_file())
        {
            vec!["python3".into(), file.to_string()]
        } else if let Some(m) = module.filter(|m| project.join(m).join("__main__.py").is_file()) {
            vec!["python3".into(), "-m".into(), m]
        } else {
            vec!["python3".into(), "app.py".into()]
        };
        found.python = Some(Python {
            pyproject: pyproject.is_some(),
            requirements,
            args,
        });
    }
    if let Some(text) = read(project, "package.json") {
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if found.name.is_none() {
            found.name = json["name"].as_str().map(String::from);
        }
        if found.version.is_none() {
            found.version = json["version"].as_str().map(String::from);
        }
        let start = json["scripts"]["start"].as_str().unwrap_or_default();
        let args: Vec<String> = if let Some(rest) = start.strip_prefix("node ") {
            std::iter::once("node".to_string())
                .chain(rest.split_whitespace().map(String::from))
                .collect()
        } else {
            vec![
                "node".into(),
                json["main"].as_str().unwrap_or("index.js").to_string(),
            ]
        };
        found.node = Some(Node {
            lockfile: project.join("package-lock.json").is_file(),
            args,
        });
    }
    found
}

/// Whether a directory holds a main package: a non-test `.go` file that
/// says `package main`.
fn has_main(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        name.ends_with(".go")
            && !name.ends_with("_test.go")
            && std::fs::read_to_string(e.path()).is_ok_and(|text| {
                text.lines()
                    .map(str::trim)
                    .find(|l| l.starts_with("package "))
                    .is_some_and(|l| l.split_whitespace().nth(1) == Some("main"))
            })
    })
}

/// `go.mod`'s module path, and the main packages: the root's, and those of
/// `cmd/*`, sorted.
fn go_module(project: &Path) -> Option<Go> {
    let text = read(project, "go.mod")?;
    let module = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("module "))
        .map(|m| m.trim().trim_matches('"').to_string())
        .unwrap_or_default();
    let mut mains = Vec::new();
    if has_main(project) {
        mains.push(".".to_string());
    }
    if let Ok(entries) = std::fs::read_dir(project.join("cmd")) {
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().is_dir() && has_main(&e.path()))
            .map(|e| format!("./cmd/{}", e.file_name().to_string_lossy()))
            .collect();
        names.sort();
        mains.extend(names);
    }
    Some(Go {
        module,
        mains,
        vendored: project.join("vendor/modules.txt").is_file(),
    })
}

/// The workspace's packages that have a binary target, from `cargo metadata`
/// (members, globs and `[[bin]]` resolved as cargo does); empty when cargo
/// cannot read the workspace.
fn cargo_binaries(project: &Path) -> Vec<Binary> {
    let Ok(text) = crate::process::Program::new(
        "cargo",
        [
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ],
    )
    .dir(project)
    .read() else {
        return Vec::new();
    };
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let root = std::fs::canonicalize(project).unwrap_or_else(|_| project.to_path_buf());
    let mut out: Vec<Binary> = json["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            p["targets"].as_array().is_some_and(|t| {
                t.iter().any(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "bin"))
                        && t["name"] == p["name"]
                })
            })
        })
        .map(|p| {
            let manifest = Path::new(p["manifest_path"].as_str().unwrap_or_default());
            Binary {
                package: p["name"].as_str().unwrap_or_default().to_string(),
                manifest: manifest
                    .strip_prefix(&root)
                    .unwrap_or(manifest)
                    .display()
                    .to_string(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.package.cmp(&b.package));
    out
}

/// `owner/repo` from the `origin` remote of a git config, when it is GitHub.
fn github_origin(config: &str) -> Option<String> {
    let mut in_origin = false;
    for line in config.lines().map(str::trim) {
        if line.starts_with('[') {
            in_origin = line == "[remote \"origin\"]";
        } else if in_origin && let Some(url) = line.strip_prefix("url") {
            let url = url.trim_start().strip_prefix('=')?.trim();
            let path = url
                .strip_prefix("https://github.com/")
                .or_else(|| url.strip_prefix("git@github.com:"))
                .or_else(|| url.strip_prefix("ssh://git@github.com/"))?;
            let path = path.trim_end_matches('/').trim_end_matches(".git");
            let (owner, repo) = path.split_once('/')?;
            let ok = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            };
            return (ok(owner) && ok(repo) && !repo.contains('/'))
                .then(|| format!("{owner}/{repo}").to_ascii_lowercase());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::github_origin;

    #[test]
    fn github_remotes() {
        let cfg =
            |url: &str| format!("[core]\n\tbare = false\n[remote \"origin\"]\n\turl = {url}\n");
        assert_eq!(
            github_origin(&cfg("https://github.com/Acme/Web.git")).as_deref(),
            Some("acme/web")
        );
        assert_eq!(
            github_origin(&cfg("git@github.com:acme/api")).as_deref(),
            Some("acme/api")
        );
        assert_eq!(github_origin(&cfg("https://gitlab.com/acme/api.git")), None);
        assert_eq!(
            github_origin("[remote \"upstream\"]\n\turl = https://github.com/a/b\n"),
            None
        );
    }
}
