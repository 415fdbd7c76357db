//! The version as Cargo knows it: read from the workspace manifest, and
//! rewritten in every manifest that carries it and in Cargo.lock, with
//! formatting and comments kept (toml_edit).

use std::path::{Path, PathBuf};

use semver::Version;
use toml_edit::{DocumentMut, Item, Value};

/// A file the release rewrites: its path relative to the project, before and after.
#[derive(Debug, Clone)]
pub struct Edit {
    pub path: PathBuf,
    pub before: Option<String>,
    pub after: String,
}

impl Edit {
    /// The edit of a file from `before` to `after`, if that changes it.
    fn changed(path: PathBuf, before: String, after: String) -> Option<Edit> {
        (after != before).then_some(Edit {
            path,
            before: Some(before),
            after,
        })
    }
}

/// The workspace: its version and its members' manifests. For a service
/// whose version is configuration (`app.version_source = "config"`, any
/// language), the one "manifest" is `environments/base.toml`.
#[derive(Debug)]
pub struct Workspace {
    pub version: Version,
    /// `workspace.package.version` or `package.version` (or `app.version`).
    pub version_key: &'static str,
    /// The file that holds it: `Cargo.toml` or `environments/base.toml`.
    pub version_file: &'static str,
    /// Relative manifest paths, the root first.
    manifests: Vec<PathBuf>,
    /// Package names of the members (for Cargo.lock).
    names: Vec<String>,
}

fn read(root: &Path, rel: &Path) -> Result<(String, DocumentMut), String> {
    let path = root.join(rel);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", rel.display()))?;
    let doc = text
        .parse::<DocumentMut>()
        .map_err(|e| format!("{} is not valid TOML: {e}", rel.display()))?;
    Ok((text, doc))
}

/// `environments/base.toml`'s `[app]` when its version is configuration.
const BASE: &str = "environments/base.toml";

impl Workspace {
    /// The version a release bumps: `app.version` in `environments/base.toml`
    /// when `app.version_source = "config"` there, else Cargo's.
    pub fn load(root: &Path) -> Result<Workspace, String> {
        if let Ok((_, doc)) = read(root, Path::new(BASE))
            && let Some(app) = doc.get("app")
            && app.get("version_source").and_then(Item::as_str) == Some("config")
        {
            let raw = app
                .get("version")
                .and_then(Item::as_str)
                .ok_or_else(|| format!("{BASE} sets app.version_source = \"config\" but no app.version: add one (e.g. version = \"0.1.0\")"))?;
            let version = Version::parse(raw).map_err(|e| {
                format!("{BASE} app.version = \"{raw}\" is not a semver version: {e}")
            })?;
            return Ok(Workspace {
                version,
                version_key: "app.version",
                version_file: BASE,
                manifests: vec![PathBuf::from(BASE)],
                names: Vec::new(),
            });
        }
        Workspace::cargo(root)
    }

    fn cargo(root: &Path) -> Result<Workspace, String> {
        let rel = PathBuf::from("Cargo.toml");
        let (_, doc) = read(root, &rel)?;
        let (raw, version_key) = if let Some(v) = doc
            .get("workspace")
            .and_then(|w| w.get("package"))
            .and_then(|p| p.get("version"))
            .and_then(Item::as_str)
        {
            (v.to_string(), "workspace.package.version")
        } else if let Some(v) = doc
            .get("package")
            .and_then(|p| p.get("version"))
            .and_then(Item::as_str)
        {
            (v.to_string(), "package.version")
        } else {
            return Err(
                "Cargo.toml has no [workspace.package] version or [package] version: add one (e.g. version = \"0.1.0\")"
                    .to_string(),
            );
        };
        let version = Version::parse(&raw).map_err(|e| {
            format!("Cargo.toml {version_key} = \"{raw}\" is not a semver version: {e}")
        })?;
        let mut manifests = vec![rel];
        let mut names = Vec::new();
        if let Some(name) = doc
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(Item::as_str)
        {
            names.push(name.to_string());
        }
        let members = doc
            .get("workspace")
            .and_then(|w| w.get("members"))
            .and_then(Item::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for member in members {
            for dir in expand(root, &member) {
                if dir.as_os_str() == "." || dir.as_os_str().is_empty() {
                    continue;
                }
                let rel = dir.join("Cargo.toml");
                if !root.join(&rel).is_file() {
                    continue;
                }
                let (_, doc) = read(root, &rel)?;
                if let Some(name) = doc
                    .get("package")
                    .and_then(|p| p.get("name"))
                    .and_then(Item::as_str)
                {
                    names.push(name.to_string());
                }
                manifests.push(rel);
            }
        }
        Ok(Workspace {
            version,
            version_key,
            version_file: "Cargo.toml",
            manifests,
            names,
        })
    }

    /// Every manifest and Cargo.lock rewritten for `next`; unchanged files are left out.
    pub fn edits(&self, root: &Path, next: &Version) -> Result<Vec<Edit>, String> {
        let old = self.version.to_string();
        let new = next.to_string();
        let mut edits = Vec::new();
        if self.version_file == BASE {
            let rel = PathBuf::from(BASE);
            let (text, mut doc) = read(root, &rel)?;
            if let Some(app) = doc.get_mut("app") {
                set_if(app, "version", &old, &new);
            }
            edits.extend(Edit::changed(rel, text, doc.to_string()));
            return Ok(edits);
        }
        for rel in &self.manifests {
            let (text, mut doc) = read(root, rel)?;
            if let Some(ws) = doc.get_mut("workspace").and_then(|w| w.get_mut("package")) {
                set_if(ws, "version", &old, &new);
            }
            if let Some(pkg) = doc.get_mut("package") {
                set_if(pkg, "version", &old, &new);
            }
            for table in ["dependencies", "dev-dependencies", "build-dependencies"] {
                if let Some(deps) = doc.get_mut(table).and_then(Item::as_table_like_mut) {
                    for (name, dep) in deps.iter_mut() {
                        if self.names.iter().any(|n| n == name.get()) && dep.get("path").is_some() {
                            set_if(dep, "version", &old, &new);
                            set_if(dep, "version", &format!("={old}"), &format!("={new}"));
                        }
                    }
                }
            }
            edits.extend(Edit::changed(rel.clone(), text, doc.to_string()));
        }
        let lock = PathBuf::from("Cargo.lock");
        if root.join(&lock).is_file() {
            let (text, mut doc) = read(root, &lock)?;
            if let Some(packages) = doc
                .get_mut("package")
                .and_then(Item::as_array_of_tables_mut)
            {
                for package in packages.iter_mut() {
                    let ours = package
                        .get("name")
                        .and_then(Item::as_str)
                        .is_some_and(|n| self.names.iter().any(|m| m == n));
                    if ours
                        && package.get("source").is_none()
                        && let Some(item) = package.get_mut("version")
                    {
                        set_item(item, &old, &new);
                    }
                }
            }
            edits.extend(Edit::changed(lock, text, doc.to_string()));
        }
        Ok(edits)
    }
}

fn set_if(table: &mut Item, key: &str, old: &str, new: &str) {
    if let Some(item) = table.get_mut(key) {
        set_item(item, old, new);
    }
}

/// Replace a string value equal to `old`, keeping its surrounding whitespace and comments.
fn set_item(item: &mut Item, old: &str, new: &str) {
    if let Some(value) = item.as_value_mut()
        && value.as_str() == Some(old)
    {
        let decor = value.decor().clone();
        let mut replacement = Value::from(new);
        *replacement.decor_mut() = decor;
        *value = replacement;
    }
}

/// A `members` entry: a path, or a path ending in `/*`.
fn expand(root: &Path, member: &str) -> Vec<PathBuf> {
    match member.strip_suffix("/*") {
        Some(parent) => {
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join(parent))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| Path::new(parent).join(e.file_name()))
                .collect();
            dirs.sort();
            dirs
        }
        None => vec![PathBuf::from(member)],
    }
}
