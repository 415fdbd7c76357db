//! Configuration: layers merged in a fixed order, then validated once.
//!
//! Order, lowest first: built-in defaults (`Config::default`), the shared
//! `environments/base.toml`, `environments/ENV.toml`, `SHIPIT__*`
//! environment variables, then `--set key.path=value` flags.

mod de;
pub mod model;
mod problem;
pub mod rules;
mod source;
mod tree;
pub mod typed;
mod validate;

use std::path::{Path, PathBuf};

pub use model::Config;
pub use problem::{ConfigErrors, Problem, ProblemReport};
pub use source::{Origin, SourceKind, Sources};
pub use tree::Node;
pub use typed::Typed;

/// Prefix of environment variables that override configuration keys:
/// `SHIPIT__IMAGE__TAG=1.2.3` sets `image.tag`.
pub const ENV_PREFIX: &str = "SHIPIT__";

/// The directory holding the TOML files, relative to the project.
pub const ENVIRONMENTS_DIR: &str = "environments";

/// The shared layer every environment starts from.
pub const BASE_FILE: &str = "base.toml";

/// Tables whose keys are free-form names (kept as written in environment overrides).
const FREE_FORM_TABLES: [&str; 3] = ["env", "secrets", "image.build_args"];

/// Overrides that come from outside the files.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `key.path=value` strings from `--set`.
    pub set: Vec<String>,
    /// `(name, value)` pairs of the process environment (only `SHIPIT__*` ones are used).
    pub env: Vec<(String, String)>,
}

impl Overrides {
    /// Takes the `SHIPIT__*` variables of this process.
    pub fn from_process(set: Vec<String>) -> Self {
        let env = std::env::vars()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .collect();
        Overrides { set, env }
    }
}

/// One environment's validated configuration and what it was made from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The environment name, or `None` for the shared base alone.
    pub environment: Option<String>,
    pub config: Config,
    /// Its durations, ports and quantities, parsed once.
    pub typed: Typed,
    /// The application version, resolved from `app.version_source`.
    pub version: String,
    /// Files read, relative to the project: base first.
    pub files: Vec<String>,
}

impl Loaded {
    /// The image tag: `image.tag` when set, else the version (with `+` made tag-safe).
    pub fn image_tag(&self) -> String {
        if self.config.image.tag.is_empty() {
            self.version.replace('+', "_")
        } else {
            self.config.image.tag.clone()
        }
    }

    /// The full image reference the environment runs: the built
    /// `registry/repository:tag`, or `build.image` for `build.kind = "image"`.
    pub fn image_ref(&self) -> String {
        if self.config.build.kind == model::BuildKind::Image {
            return self.config.build.image.clone();
        }
        format!(
            "{}/{}:{}",
            self.config.image.registry,
            self.config.image.repository,
            self.image_tag()
        )
    }
}

/// The environment files present in the project, sorted (without `base`).
pub fn environment_names(project: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(project.join(ENVIRONMENTS_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".toml")?;
            (stem != "base").then(|| stem.to_string())
        })
        .collect();
    names.sort();
    names
}

/// Loads, merges and validates the configuration of `environment` (or of the base alone).
pub fn load(
    project: &Path,
    environment: Option<&str>,
    overrides: &Overrides,
) -> Result<Loaded, ConfigErrors> {
    let mut sources = Sources::default();
    let mut problems = Vec::new();
    let mut files = Vec::new();

    let root_origin = Origin {
        source: sources.add("built-in defaults", SourceKind::Default, ""),
        span: 0..0,
    };
    let mut root = Node::empty_table(root_origin);

    let mut layer_files = vec![BASE_FILE.to_string()];
    if let Some(env) = environment {
        if env == "base" || !rules::is_dns_label(env) {
            problems.push(Problem::new("", None, format!("\"{env}\" is not an environment name")).help(
                "a lowercase name such as \"staging\", with a file environments/NAME.toml beside environments/base.toml",
            ));
            return Err(ConfigErrors { sources, problems });
        }
        layer_files.push(format!("{env}.toml"));
    }
    for file in &layer_files {
        let relative = format!("{ENVIRONMENTS_DIR}/{file}");
        let path: PathBuf = project.join(&relative);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) => {
                let known = environment_names(project);
                let help = if file == BASE_FILE {
                    "create environments/base.toml with the settings every environment shares"
                        .to_string()
                } else if known.is_empty() {
                    "no environments/*.toml found: run shipit from the project directory or pass --project-dir".to_string()
                } else {
                    format!("known environments: {}", known.join(", "))
                };
                problems.push(
                    Problem::new("", None, format!("cannot read {}: {error}", path.display()))
                        .help(help),
                );
                continue;
            }
        };
        files.push(relative.clone());
        let id = sources.add(relative, SourceKind::File, text);
        match Node::parse_toml(&sources.get(id).text, id) {
            Ok(layer) => root.merge(layer),
            Err((message, span)) => problems.push(
                Problem::new(
                    "",
                    Some(Origin { source: id, span }),
                    format!("invalid TOML: {message}"),
                )
                .help("fix the syntax; https://toml.io/en/v1.0.0 describes it"),
            ),
        }
    }
    if !problems.is_empty() {
        return Err(ConfigErrors { sources, problems });
    }

    apply_env_overrides(&mut root, &mut sources, &mut problems, &overrides.env);
    apply_set_overrides(&mut root, &mut sources, &mut problems, &overrides.set);

    let sink = de::Sink::default();
    let mut config: Config = de::from_node(&root, &sink);
    config.fill_from_name();
    problems.extend(sink.into_problems());

    let mut reported: Vec<String> = problems.iter().map(|p| p.key.clone()).collect();
    if config.app.name.is_empty() {
        // Left empty, these default to app.name: its own problem says it all.
        reported.extend(
            [
                "app.package",
                "image.repository",
                "kubernetes.namespace",
                "kubernetes.ingress.host",
            ]
            .map(String::from),
        );
    }
    problems.extend(validate::validate(&config, &root).into_iter().filter(|p| {
        !reported
            .iter()
            .any(|k| !k.is_empty() && (p.key == *k || p.key.starts_with(&format!("{k}."))))
    }));

    let version = if problems.is_empty() {
        match resolve_version(project, &config) {
            Ok(v) => v,
            Err(message) => {
                let key = match config.app.version_source {
                    model::VersionSource::Cargo => "app.manifest",
                    model::VersionSource::Config => "app.version",
                };
                problems.push(Problem::new(key, Some(root.origin_of(key)), message).help(
                    "set [package] version (or [workspace.package] version) in the manifest, or use version_source = \"config\" with app.version",
                ));
                String::new()
            }
        }
    } else {
        String::new()
    };

    if problems.is_empty() {
        match Typed::new(&config, &root) {
            Ok(typed) => Ok(Loaded {
                environment: environment.map(str::to_string),
                config,
                typed,
                version,
                files,
            }),
            Err(problems) => Err(ConfigErrors { sources, problems }),
        }
    } else {
        Err(ConfigErrors { sources, problems })
    }
}

fn apply_env_overrides(
    root: &mut Node,
    sources: &mut Sources,
    problems: &mut Vec<Problem>,
    env: &[(String, String)],
) {
    let mut vars: Vec<&(String, String)> = env
        .iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (name, value) in vars {
        let id = sources.add(
            format!("environment variable {name}"),
            SourceKind::EnvVar,
            value.clone(),
        );
        let origin = Origin {
            source: id,
            span: 0..value.len(),
        };
        let raw: Vec<&str> = name[ENV_PREFIX.len()..].split("__").collect();
        if raw.iter().any(|s| s.is_empty()) {
            problems.push(Problem::new("", Some(origin), format!("environment variable {name} does not name a key")).help(
                "SHIPIT__ followed by the key path with `__` between parts, e.g. SHIPIT__IMAGE__TAG",
            ));
            continue;
        }
        let mut path: Vec<String> = Vec::new();
        for segment in raw {
            let parent = path.join(".");
            let keep_case = FREE_FORM_TABLES.contains(&parent.as_str());
            path.push(if keep_case {
                segment.to_string()
            } else {
                segment.to_ascii_lowercase()
            });
        }
        if let Err(why) = root.set_path(&path, value.clone(), &origin) {
            problems.push(Problem::new(
                path.join("."),
                Some(origin),
                format!("cannot override: {why}"),
            ));
        }
    }
}

fn apply_set_overrides(
    root: &mut Node,
    sources: &mut Sources,
    problems: &mut Vec<Problem>,
    set: &[String],
) {
    for arg in set {
        // Named by key only: a value given on the command line may be a secret.
        let name = arg.split_once('=').map_or(arg.as_str(), |(key, _)| key);
        let id = sources.add(format!("--set {name}"), SourceKind::Flag, arg.clone());
        let Some((key, value)) = arg.split_once('=') else {
            let origin = Origin {
                source: id,
                span: 0..arg.len(),
            };
            problems.push(
                Problem::new("", Some(origin), format!("--set {arg} has no `=`"))
                    .help("--set key.path=value, e.g. --set image.tag=1.2.3"),
            );
            continue;
        };
        let origin = Origin {
            source: id,
            span: key.len() + 1..arg.len(),
        };
        let path: Vec<String> = key.trim().split('.').map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            problems.push(
                Problem::new(
                    key,
                    Some(origin),
                    format!("--set {arg}: `{key}` is not a key path"),
                )
                .help("dot-separated keys, e.g. gateway.tls.enabled"),
            );
            continue;
        }
        if let Err(why) = root.set_path(&path, value.to_string(), &origin) {
            problems.push(Problem::new(
                key,
                Some(origin),
                format!("cannot override: {why}"),
            ));
        }
    }
}

/// The version the environment ships.
fn resolve_version(project: &Path, config: &Config) -> Result<String, String> {
    match config.app.version_source {
        model::VersionSource::Config => Ok(config.app.version.clone()),
        model::VersionSource::Cargo => {
            let path = project.join(&config.app.manifest);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                format!("{} is not valid TOML: {}", path.display(), e.message())
            })?;
            let package = doc
                .get("package")
                .and_then(|p| p.get("version"))
                .and_then(toml::Value::as_str);
            let workspace = doc
                .get("workspace")
                .and_then(|w| w.get("package"))
                .and_then(|p| p.get("version"))
                .and_then(toml::Value::as_str);
            let version = package.or(workspace).ok_or_else(|| {
                format!(
                    "{} has no [package] or [workspace.package] version",
                    path.display()
                )
            })?;
            if validate::is_semver(version) {
                Ok(version.to_string())
            } else {
                Err(format!(
                    "{} has version \"{version}\", which is not a semantic version",
                    path.display()
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests;
