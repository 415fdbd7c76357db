//! `shipit init`: detect what the repository builds, and plan the four
//! environment files for it. Planned in memory; the command writes them.

pub mod detect;

use std::path::Path;

use askama::Template;
use serde::Serialize;

use crate::config::model::BuildKind;
use crate::config::rules;
use crate::error::Error;

pub use detect::{Found, detect};

/// What the command line asks for; everything else is detected.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub name: Option<String>,
    pub kind: Option<BuildKind>,
    pub port: Option<u16>,
    pub package: Option<String>,
    pub image: Option<String>,
}

/// The files `init` writes and why.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub name: String,
    pub kind: BuildKind,
    pub found: Vec<String>,
    /// `(path relative to the project, contents)`, in writing order.
    pub files: Vec<(String, String)>,
    /// What to do next, in order.
    pub next: Vec<String>,
}

/// The view the `templates/init/` files read.
pub struct InitCtx {
    pub name: String,
    pub kind: &'static str,
    pub found: String,
    pub port: u16,
    pub package: String,
    pub manifest: String,
    pub version: String,
    pub args: String,
    pub dockerfile: String,
    pub requirements: String,
    pub image: String,
    /// `owner/repo` on GitHub: staging and production use ghcr.io/owner/repo.
    pub github: String,
    /// Go: `vendor/modules.txt` is there.
    pub vendor: bool,
}

#[derive(Template)]
#[template(path = "init/environments/base.toml", escape = "none")]
struct Base<'a> {
    c: &'a InitCtx,
}

#[derive(Template)]
#[template(path = "init/environments/development.toml", escape = "none")]
struct Development<'a> {
    c: &'a InitCtx,
}

#[derive(Template)]
#[template(path = "init/environments/staging.toml", escape = "none")]
struct Staging<'a> {
    c: &'a InitCtx,
}

#[derive(Template)]
#[template(path = "init/environments/production.toml", escape = "none")]
struct Production<'a> {
    c: &'a InitCtx,
}

/// The files, relative to the project.
pub const FILES: [&str; 4] = [
    "environments/base.toml",
    "environments/development.toml",
    "environments/staging.toml",
    "environments/production.toml",
];

/// A name Kubernetes and Docker accept, from whatever the project calls itself.
pub fn dns_name(text: &str) -> String {
    let mut out = String::new();
    for c in text.to_ascii_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out: String = out.trim_matches('-').chars().take(40).collect();
    out.trim_end_matches('-').to_string()
}

fn toml_array(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| toml_string(i)).collect();
    format!("[{}]", quoted.join(", "))
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// The manifest that holds the package's version: its own, or the root's
/// when it inherits it (`version.workspace = true`).
fn version_manifest(project: &Path, manifest: &str) -> String {
    let own = std::fs::read_to_string(project.join(manifest))
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|d| {
            d.get("package")
                .and_then(|p| p.get("version"))
                .map(|v| v.is_str())
        })
        .unwrap_or(false);
    if own {
        manifest.to_string()
    } else {
        "Cargo.toml".to_string()
    }
}

pub fn plan(project: &Path, request: &Request, found: &Found) -> Result<Plan, Error> {
    let described = found.describe();
    let kind = match request.kind {
        Some(kind) => kind,
        None if found.dockerfile => BuildKind::Dockerfile,
        None if found.cargo.as_ref().is_some_and(|b| !b.is_empty()) => BuildKind::Rust,
        None if found.python.is_some() => BuildKind::Python,
        None if found.node.is_some() => BuildKind::Node,
        None if found.go.is_some() => BuildKind::Go,
        None => {
            return Err(Error::Usage(format!(
                "nothing to build in {}: no Cargo.toml with a binary package, Dockerfile, pyproject.toml, requirements.txt, package.json or go.mod{}; name what to build with --kind (rust, dockerfile, python, node, go), or deploy an image built elsewhere: shipit init --kind image --image REGISTRY/NAME:TAG",
                project
                    .canonicalize()
                    .unwrap_or_else(|_| project.to_path_buf())
                    .display(),
                if described.is_empty() {
                    String::new()
                } else {
                    format!(" (found {})", described.join(", "))
                }
            )));
        }
    };

    let mut binary = None;
    if kind == BuildKind::Rust {
        let bins = found.cargo.clone().unwrap_or_default();
        binary = Some(match (&request.package, bins.len()) {
            (Some(p), _) => bins
                .iter()
                .find(|b| &b.package == p)
                .cloned()
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "--package {p}: no such binary package here{}",
                        if bins.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " (binary packages: {})",
                                bins.iter()
                                    .map(|b| b.package.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    ))
                })?,
            (None, 1) => bins[0].clone(),
            (None, 0) => {
                return Err(Error::Usage(
                    "build.kind = \"rust\" needs a Cargo binary package, and cargo found none here (Cargo.toml at the root, `cargo metadata` working)".into(),
                ));
            }
            (None, _) => {
                return Err(Error::Usage(format!(
                    "the workspace has {} binary packages: {}; choose the service with --package NAME",
                    bins.len(),
                    bins.iter()
                        .map(|b| b.package.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        });
    }
    let mut go_package = String::new();
    if kind == BuildKind::Go {
        let go = found.go.clone().ok_or_else(|| {
            Error::Usage(
                "build.kind = \"go\" needs a Go module here: go.mod at the root (go mod init)"
                    .into(),
            )
        })?;
        go_package = match (&request.package, go.mains.len()) {
            (Some(p), _) => {
                let wanted = if p == "." || p.starts_with("./") {
                    p.clone()
                } else {
                    format!("./cmd/{p}")
                };
                if !go.mains.contains(&wanted) {
                    return Err(Error::Usage(format!(
                        "--package {p}: no main package there (main packages: {})",
                        if go.mains.is_empty() {
                            "none".to_string()
                        } else {
                            go.mains.join(", ")
                        }
                    )));
                }
                wanted
            }
            (None, 1) => go.mains[0].clone(),
            (None, 0) => {
                return Err(Error::Usage(
                    "the Go module has no main package: none at the root, none in cmd/NAME (a .go file saying `package main`)".into(),
                ));
            }
            (None, _) => {
                return Err(Error::Usage(format!(
                    "the Go module has {} main packages: {}; choose the service with --package (e.g. --package {})",
                    go.mains.len(),
                    go.mains.join(", "),
                    go.mains[go.mains.len() - 1]
                )));
            }
        };
    }
    if kind == BuildKind::Image && request.image.is_none() {
        return Err(Error::Usage(
            "--kind image deploys an image built elsewhere: give it with --image REGISTRY/NAME:TAG (or @sha256:DIGEST)".into(),
        ));
    }

    let dir_name = project
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let name = match &request.name {
        Some(name) => {
            if !rules::is_dns_label(name) {
                return Err(Error::Usage(format!(
                    "--name {name}: not a valid name (lowercase letters, digits and `-`, at most 63 characters)"
                )));
            }
            name.clone()
        }
        None => {
            let from = binary
                .as_ref()
                .map(|b| b.package.clone())
                .or_else(|| {
                    go_package
                        .strip_prefix("./cmd/")
                        .map(String::from)
                        .or_else(|| {
                            let module = found.go.as_ref()?.module.rsplit('/').next()?;
                            (!module.is_empty()).then(|| module.to_string())
                        })
                })
                .or_else(|| found.name.clone())
                .unwrap_or(dir_name);
            let name = dns_name(&from);
            if name.is_empty() {
                return Err(Error::Usage(
                    "cannot make a service name from this directory's name: give one with --name"
                        .into(),
                ));
            }
            name
        }
    };
    let version = found
        .version
        .clone()
        .filter(|v| semver::Version::parse(v).is_ok())
        .unwrap_or_else(|| "0.1.0".into());
    let args: Vec<String> = match kind {
        BuildKind::Python => found
            .python
            .as_ref()
            .map(|p| p.args.clone())
            .unwrap_or_default(),
        BuildKind::Node => found
            .node
            .as_ref()
            .map(|n| n.args.clone())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let requirements = match &found.python {
        Some(p) if p.requirements => "requirements.txt".to_string(),
        Some(p) if p.pyproject => String::new(),
        _ => "requirements.txt".to_string(),
    };
    let c = InitCtx {
        name: name.clone(),
        kind: kind.name(),
        found: if described.is_empty() {
            "nothing detected".into()
        } else {
            described.join("; ")
        },
        port: request.port.unwrap_or(8080),
        package: binary
            .as_ref()
            .map(|b| b.package.clone())
            .unwrap_or(go_package),
        vendor: found.go.as_ref().is_some_and(|g| g.vendored),
        manifest: binary
            .as_ref()
            .map(|b| version_manifest(project, &b.manifest))
            .unwrap_or_default(),
        version,
        args: toml_array(&args),
        dockerfile: "Dockerfile".into(),
        requirements: toml_string(&requirements),
        image: request.image.clone().unwrap_or_default(),
        github: found.github.clone().unwrap_or_default(),
    };
    let render = |path: &str, text: askama::Result<String>| {
        text.map(|t| (path.to_string(), t))
            .map_err(|e| Error::Template {
                template: path.into(),
                message: e.to_string(),
            })
    };
    let files = vec![
        render(FILES[0], Base { c: &c }.render())?,
        render(FILES[1], Development { c: &c }.render())?,
        render(FILES[2], Staging { c: &c }.render())?,
        render(FILES[3], Production { c: &c }.render())?,
    ];
    let mut next = vec!["shipit validate".to_string(), "shipit render --all".into()];
    match kind {
        BuildKind::Image => {}
        BuildKind::Python | BuildKind::Node | BuildKind::Go => {
            next.push(format!(
                "offline? make the base image: shipit image {} (then set {} to it)",
                kind.name(),
                if kind == BuildKind::Go {
                    "image.builder"
                } else {
                    "image.builder and image.runtime"
                }
            ));
            next.push("shipit build development".into());
        }
        _ => next.push("shipit build development".into()),
    }
    if kind == BuildKind::Node && found.node.as_ref().is_some_and(|n| !n.lockfile) {
        next.insert(
            0,
            "npm install (the build runs `npm ci`, which needs package-lock.json)".into(),
        );
    }
    next.push(format!(
        "make the service answer GET /health with 200 on port {} (or set app.health_path, app.port)",
        c.port
    ));
    next.push("shipit deploy development".into());
    Ok(Plan {
        name,
        kind,
        found: described,
        files,
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::dns_name;

    #[test]
    fn names_become_dns_labels() {
        assert_eq!(dns_name("My_Service.v2"), "my-service-v2");
        assert_eq!(dns_name("--api--"), "api");
        assert_eq!(dns_name("@scope/web-app"), "scope-web-app");
        assert_eq!(dns_name("___"), "");
    }
}
