//! `shipit build`: the plan (tags, labels, Dockerfile, context) computed
//! before anything runs, then carried out against the engine.

pub mod context;
pub mod credentials;
pub mod git;
pub mod ignore;
pub mod source;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::model::BuildKind;
use crate::config::{Loaded, rules};
use crate::error::Error;
use crate::render::{self, GENERATED_DIR};

use ignore::DockerIgnore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The multi-stage Dockerfile compiles the service in its builder stage.
    Source,
    /// shipit compiles a static binary on the host; the image only packages it.
    Prebuilt,
}

/// Where the rendered Dockerfile goes inside the context.
pub const CONTEXT_DOCKERFILE: &str = ".shipit/Dockerfile";

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub environment: String,
    pub mode: Mode,
    /// `registry/repository`.
    pub repository: String,
    /// Every tag, first the version; all point at the one image.
    pub tags: Vec<String>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub build_args: std::collections::BTreeMap<String, String>,
    pub version: String,
    pub revision: String,
    pub created: String,
    /// `build.kind`: shipit's rendered Dockerfile (`rust`) or the project's own.
    pub kind: BuildKind,
    /// The build context, relative to the project (`.` for the project itself).
    pub context_dir: String,
    /// The stage to build (`build.target`).
    pub target: Option<String>,
    /// The Cargo package built, and the Rust target for prebuilt mode.
    pub package: String,
    pub rust_target: String,
    #[serde(skip)]
    pub dockerfile: String,
    #[serde(skip)]
    pub ignore: DockerIgnore,
    /// `generated/ENV/` differs from what shipit renders now.
    pub generated_stale: bool,
    pub git_dirty: Option<bool>,
}

impl Plan {
    /// The reference everything else is reported under: `REPO:VERSION`.
    pub fn image(&self) -> String {
        format!("{}:{}", self.repository, self.tags[0])
    }

    /// The registry host pushed to (Docker Hub's when the repository names none).
    pub fn registry(&self) -> &str {
        credentials::registry_of(&self.repository)
    }
}

/// Options from the command line.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub mode: Option<Mode>,
    pub extra_tags: Vec<String>,
    pub build_args: Vec<String>,
}

pub fn plan(project: &Path, loaded: &Loaded, request: &Request) -> Result<Plan, Error> {
    let environment = loaded.environment.clone().unwrap_or_default();
    let config = &loaded.config;
    let kind = config.build.kind;
    match (kind, request.mode) {
        (BuildKind::Image, _) => {
            return Err(Error::Usage(format!(
                "{environment} deploys the prebuilt image {} (build.kind = \"image\"): there is nothing to build",
                config.build.image
            )));
        }
        (kind, Some(Mode::Prebuilt)) if kind != BuildKind::Rust => {
            return Err(Error::Usage(format!(
                "--mode prebuilt compiles a Rust package on this machine; build.kind is \"{}\"",
                kind.name()
            )));
        }
        _ => {}
    }
    let mode = request.mode.unwrap_or(Mode::Source);
    let repository = format!("{}/{}", config.image.registry, config.image.repository);
    let git = git::inspect(project);

    let mut tags = vec![loaded.image_tag()];
    if let Some(git) = &git {
        tags.push(git.tag());
    }
    tags.push(environment.clone());
    for tag in &request.extra_tags {
        if !rules::is_tag(tag) {
            return Err(Error::Usage(format!(
                "--tag {tag}: not a valid tag (letters, digits, `_`, `.`, `-`; at most 128; not starting with `.` or `-`)"
            )));
        }
        tags.push(tag.clone());
    }
    let mut seen = Vec::new();
    tags.retain(|t| {
        let fresh = !seen.contains(t);
        seen.push(t.clone());
        fresh
    });

    let mut build_args: std::collections::BTreeMap<String, String> =
        config.image.build_args.clone().into_iter().collect();
    for arg in &request.build_args {
        let (name, value) = arg
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("--build-arg {arg}: expected NAME=VALUE")))?;
        if !rules::is_env_name(name) {
            return Err(Error::Usage(format!(
                "--build-arg {name}: not a valid argument name"
            )));
        }
        if rules::looks_secret(name) {
            return Err(Error::Usage(format!(
                "--build-arg {name}: looks like a secret; build arguments stay in the image history, pass secrets at run time"
            )));
        }
        build_args.insert(name.to_string(), value.to_string());
    }

    let commit_time = git.as_ref().map_or(0, |g| g.commit_time);
    let created = crate::clock::rfc3339(commit_time);
    let revision = git
        .as_ref()
        .map_or_else(|| "unknown".to_string(), git::GitInfo::revision);
    let mut labels = std::collections::BTreeMap::new();
    labels.insert(
        "org.opencontainers.image.title".to_string(),
        config.app.name.clone(),
    );
    labels.insert(
        "org.opencontainers.image.version".to_string(),
        loaded.version.clone(),
    );
    labels.insert(
        "org.opencontainers.image.revision".to_string(),
        revision.clone(),
    );
    labels.insert(
        "org.opencontainers.image.created".to_string(),
        created.clone(),
    );
    if !config.app.source_url.is_empty() {
        labels.insert(
            "org.opencontainers.image.source".to_string(),
            config.app.source_url.clone(),
        );
    }
    if mode == Mode::Source && kind == BuildKind::Rust {
        build_args.insert("SOURCE_REVISION".to_string(), revision.clone());
    }

    let artifacts = render::environment(loaded)?;
    let file = |name: &str| {
        artifacts
            .iter()
            .find(|a| a.path == name)
            .map(|a| a.contents.clone())
            .unwrap_or_default()
    };
    let stale = |name: &str| {
        let on_disk =
            std::fs::read_to_string(project.join(GENERATED_DIR).join(&environment).join(name)).ok();
        on_disk.as_deref() != Some(file(name).as_str())
    };
    let (dockerfile, ignore_text, context_dir, generated_stale) = if kind == BuildKind::Dockerfile {
        let b = &config.build;
        let dockerfile = std::fs::read_to_string(project.join(&b.dockerfile)).map_err(|e| {
            Error::Usage(format!(
                "build.dockerfile = \"{}\": {e} (relative to the project)",
                b.dockerfile
            ))
        })?;
        let context = b.context.trim_end_matches('/').to_string();
        if !project.join(&context).is_dir() {
            return Err(Error::Usage(format!(
                "build.context = \"{}\" is not a directory of the project",
                b.context
            )));
        }
        // The project's own rules first, shipit's after: a later rule wins,
        // so nothing the project re-includes brings secrets or .git back.
        let own = std::fs::read_to_string(project.join(&context).join(".dockerignore"))
            .unwrap_or_default();
        let rules = format!("{own}\n{}", file(".dockerignore"));
        (dockerfile, rules, context, stale(".dockerignore"))
    } else {
        let name = match mode {
            Mode::Source => "Dockerfile",
            Mode::Prebuilt => "Dockerfile.prebuilt",
        };
        let stale = stale(name) || stale(".dockerignore");
        (file(name), file(".dockerignore"), ".".to_string(), stale)
    };

    Ok(Plan {
        environment,
        mode,
        repository,
        tags,
        labels,
        build_args,
        version: loaded.version.clone(),
        revision,
        created,
        kind,
        context_dir,
        target: (kind == BuildKind::Dockerfile && !config.build.target.is_empty())
            .then(|| config.build.target.clone()),
        package: config.app.package.clone(),
        rust_target: render::Ctx::new(loaded).rust_target,
        dockerfile,
        ignore: DockerIgnore::parse(&ignore_text),
        generated_stale,
        git_dirty: git.map(|g| g.dirty),
    })
}

/// The context entries for a plan: the project (source) or just the binary (prebuilt).
pub fn context_entries(
    project: &Path,
    plan: &Plan,
    binary: Option<&Path>,
) -> Result<Vec<context::Entry>, Error> {
    let mut entries = match (plan.mode, binary) {
        (Mode::Source, _) if plan.kind != BuildKind::Rust => {
            let root = project.join(&plan.context_dir);
            context::collect(&root, &plan.ignore).map_err(|e| Error::io(&root, e))?
        }
        (Mode::Source, _) => {
            let prepared = source::prepare(project, &plan.package)?;
            source::entries(project, &prepared, &plan.ignore)?
        }
        (Mode::Prebuilt, Some(binary)) => {
            let meta = std::fs::metadata(binary).map_err(|e| Error::io(binary, e))?;
            vec![context::Entry {
                path: plan.package.clone(),
                kind: context::Kind::File {
                    source: binary.to_path_buf(),
                    size: meta.len(),
                    executable: true,
                },
            }]
        }
        (Mode::Prebuilt, None) => {
            return Err(Error::Usage(
                "prebuilt mode needs the compiled binary".into(),
            ));
        }
    };
    entries.retain(|e| e.path != ".shipit" && e.path != CONTEXT_DOCKERFILE);
    entries.push(context::Entry {
        path: ".shipit".into(),
        kind: context::Kind::Dir,
    });
    entries.push(context::Entry {
        path: CONTEXT_DOCKERFILE.into(),
        kind: context::Kind::Generated {
            bytes: plan.dockerfile.clone().into_bytes(),
            executable: false,
        },
    });
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

/// Compiles the service on the host as a static binary (prebuilt mode).
pub fn compile_static(project: &Path, plan: &Plan) -> Result<PathBuf, Error> {
    let rustflags = "-C target-feature=+crt-static";
    crate::process::Program::new(
        "cargo",
        [
            "build",
            "--release",
            "--locked",
            "--package",
            &plan.package,
            "--target",
            &plan.rust_target,
        ],
    )
    .dir(project)
    .env("RUSTFLAGS", rustflags)
    .env("SOURCE_REVISION", &plan.revision)
    .run_to_stderr()
    .map_err(|e| Error::Build {
        step: format!(
            "cargo build --release --package {} --target {}",
            plan.package, plan.rust_target
        ),
        output: String::new(),
        message: e.message,
        help: "fix the compile error above; prebuilt mode compiles on this machine".into(),
    })?;
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| project.join("target"), PathBuf::from);
    Ok(target_dir
        .join(&plan.rust_target)
        .join("release")
        .join(&plan.package))
}

pub fn hashmap(map: &std::collections::BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
