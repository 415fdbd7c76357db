//! `shipit init` in throw-away repositories: one per kind it detects, a
//! workspace with two binaries, and directories with nothing it can build.
//! Each result validates and renders at once, passes the independent
//! validators, and a second `init` changes nothing.

use std::path::Path;
use std::process::Command;

use crate::harness::{Project, repo};

/// A git repository whose `origin` is on GitHub (so staging and production
/// get ghcr.io/acme/NAME), holding `files`.
fn repository(files: &[(&str, &str)]) -> Project {
    let project = Project::empty();
    for (path, text) in files {
        project.write(path, text);
    }
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(project.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    git(&["init", "-q"]);
    git(&[
        "remote",
        "add",
        "origin",
        "https://github.com/acme/service.git",
    ]);
    project
}

fn environment_files(project: &Project) -> Vec<(String, Vec<u8>)> {
    project.tree("environments")
}

/// `init`, then everything a user runs next that needs no engine; returns `init`'s stderr.
fn init_validates_renders_and_passes_the_validators(project: &Project, args: &[&str]) -> String {
    let mut full = vec!["init"];
    full.extend_from_slice(args);
    let run = project.shipit(&full).success();
    for file in ["base", "development", "staging", "production"] {
        assert!(
            project.exists(&format!("environments/{file}.toml")),
            "{file}.toml: {}",
            run.stderr
        );
    }
    project.shipit(&["validate"]).success();
    project.shipit(&["render", "--all", "-q"]).success();
    let validators = Command::new("bash")
        .arg(repo().join(".ci/validate-generated"))
        .arg(project.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&validators.stdout);
    assert!(validators.status.success(), "{text}");
    assert!(text.contains(", 0 failed"), "{text}");

    // A second init writes nothing, says which files are there, and fails.
    let before = environment_files(project);
    let again = project.shipit(&full).code(1);
    assert!(
        again.stderr.contains("environments/base.toml, environments/development.toml, environments/staging.toml, environments/production.toml already exist: nothing was written (--force replaces them)"),
        "{}",
        again.stderr
    );
    assert_eq!(environment_files(project), before);
    run.stderr
}

fn base_of(project: &Project) -> toml::Table {
    project.read("environments/base.toml").parse().unwrap()
}

#[test]
fn a_rust_binary_package() {
    let project = repository(&[
        (
            "Cargo.toml",
            "[package]\nname = \"ledger_api\"\nversion = \"0.7.1\"\nedition = \"2021\"\n",
        ),
        ("src/main.rs", "fn main() {}\n"),
    ]);
    let out = init_validates_renders_and_passes_the_validators(&project, &[]);
    assert!(
        out.contains("detected a Cargo binary package: ledger_api"),
        "{out}"
    );
    let base = base_of(&project);
    assert_eq!(base["app"]["name"].as_str(), Some("ledger-api"));
    assert_eq!(base["app"]["package"].as_str(), Some("ledger_api"));
    assert_eq!(base["build"]["kind"].as_str(), Some("rust"));
    // Nothing depends on a subcommand of the service.
    let dockerfile = project.read("generated/development/Dockerfile");
    assert!(!dockerfile.contains("HEALTHCHECK"), "{dockerfile}");
    assert!(!dockerfile.contains("CMD "), "{dockerfile}");
    let staging: toml::Table = project.read("environments/staging.toml").parse().unwrap();
    assert_eq!(
        staging["image"]["repository"].as_str(),
        Some("acme/service")
    );
}

#[test]
fn a_workspace_with_two_binaries_lists_them_and_takes_package() {
    let mut files = vec![(
        "Cargo.toml",
        "[workspace]\nmembers = [\"api\", \"worker\"]\nresolver = \"2\"\n[workspace.package]\nversion = \"3.0.0\"\n",
    )];
    let manifests = [
        (
            "api/Cargo.toml",
            "[package]\nname = \"api\"\nversion.workspace = true\nedition = \"2021\"\n",
        ),
        (
            "worker/Cargo.toml",
            "[package]\nname = \"worker\"\nversion.workspace = true\nedition = \"2021\"\n",
        ),
    ];
    files.extend(manifests);
    files.push(("api/src/main.rs", "fn main() {}\n"));
    files.push(("worker/src/main.rs", "fn main() {}\n"));
    let project = repository(&files);
    let run = project.shipit(&["init"]).code(2);
    assert!(
        run.stderr.contains("the workspace has 2 binary packages: api, worker; choose the service with --package NAME"),
        "{}",
        run.stderr
    );
    assert!(!project.exists("environments"));
    let run = project.shipit(&["init", "--package", "queue"]).code(2);
    assert!(
        run.stderr.contains(
            "--package queue: no such binary package here (binary packages: api, worker)"
        ),
        "{}",
        run.stderr
    );
    init_validates_renders_and_passes_the_validators(&project, &["--package", "worker"]);
    let base = base_of(&project);
    assert_eq!(base["app"]["package"].as_str(), Some("worker"));
    // The version is inherited from the workspace: read from the root manifest.
    assert_eq!(base["app"]["manifest"].as_str(), Some("Cargo.toml"));
    let run = project.shipit(&["validate", "staging"]).success();
    assert!(
        run.stderr.contains("image ghcr.io/acme/service:3.0.0"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_project_with_its_own_dockerfile() {
    let project = repository(&[
        ("Dockerfile", "FROM scratch\nCOPY app /app\n"),
        (
            "Cargo.toml",
            "[package]\nname = \"x\"\nversion = \"1.0.0\"\n",
        ),
        ("src/main.rs", "fn main() {}\n"),
    ]);
    let out = init_validates_renders_and_passes_the_validators(&project, &["--name", "edge"]);
    assert!(out.contains("a Dockerfile"), "{out}");
    let base = base_of(&project);
    assert_eq!(base["build"]["kind"].as_str(), Some("dockerfile"));
    assert!(!project.exists("generated/development/Dockerfile"));
    let compose = project.read("generated/development/docker-compose.yml");
    assert!(compose.contains("dockerfile: \"Dockerfile\""), "{compose}");
}

#[test]
fn a_python_service_with_requirements_and_one_with_pyproject() {
    let project = repository(&[("requirements.txt", "\n"), ("app.py", "print('hello')\n")]);
    init_validates_renders_and_passes_the_validators(&project, &["--port", "9000"]);
    let base = base_of(&project);
    assert_eq!(base["build"]["kind"].as_str(), Some("python"));
    assert_eq!(base["app"]["port"].as_integer(), Some(9000));
    let dockerfile = project.read("generated/production/Dockerfile");
    assert!(
        dockerfile.contains("\"-r\", \"requirements.txt\"]"),
        "{dockerfile}"
    );
    assert!(
        dockerfile.contains("CMD [\"python3\", \"app.py\"]"),
        "{dockerfile}"
    );
    assert!(
        project
            .read("generated/production/.dockerignore")
            .contains("__pycache__/")
    );

    let project = repository(&[
        (
            "pyproject.toml",
            "[project]\nname = \"billing-svc\"\nversion = \"2.3.4\"\n",
        ),
        ("billing_svc/__main__.py", "print('hello')\n"),
    ]);
    init_validates_renders_and_passes_the_validators(&project, &[]);
    let base = base_of(&project);
    assert_eq!(base["app"]["name"].as_str(), Some("billing-svc"));
    assert_eq!(base["app"]["version"].as_str(), Some("2.3.4"));
    let dockerfile = project.read("generated/production/Dockerfile");
    assert!(
        dockerfile.contains("\"--target\", \"/deps\", \".\"]"),
        "{dockerfile}"
    );
    assert!(
        dockerfile.contains("CMD [\"python3\", \"-m\", \"billing_svc\"]"),
        "{dockerfile}"
    );
}

#[test]
fn a_node_service() {
    let project = repository(&[
        (
            "package.json",
            "{\"name\": \"@acme/Web_App\", \"version\": \"1.4.0\", \"scripts\": {\"start\": \"node src/server.js\"}}",
        ),
        (
            "package-lock.json",
            "{\"lockfileVersion\": 3, \"packages\": {}}",
        ),
    ]);
    init_validates_renders_and_passes_the_validators(&project, &[]);
    let base = base_of(&project);
    assert_eq!(base["app"]["name"].as_str(), Some("acme-web-app"));
    assert_eq!(base["build"]["kind"].as_str(), Some("node"));
    let dockerfile = project.read("generated/production/Dockerfile");
    assert!(
        dockerfile.contains("RUN [\"npm\", \"ci\", \"--omit=dev\", \"--ignore-scripts\"]"),
        "{dockerfile}"
    );
    assert!(
        dockerfile.contains("CMD [\"node\", \"src/server.js\"]"),
        "{dockerfile}"
    );
}

#[test]
fn an_image_built_elsewhere() {
    let project = repository(&[]);
    let run = project.shipit(&["init", "--kind", "image"]).code(2);
    assert!(
        run.stderr.contains("--image REGISTRY/NAME:TAG"),
        "{}",
        run.stderr
    );
    init_validates_renders_and_passes_the_validators(
        &project,
        &[
            "--kind",
            "image",
            "--image",
            "ghcr.io/acme/search:5.1.0",
            "--name",
            "search",
        ],
    );
    let deployment = project.read("generated/production/k8s/deployment.yaml");
    assert!(
        deployment.contains("image: \"ghcr.io/acme/search:5.1.0\""),
        "{deployment}"
    );
    let build = project.shipit(&["build", "production"]).success();
    assert!(
        build.stderr.contains(
            "nothing to build: production deploys the prebuilt image ghcr.io/acme/search:5.1.0"
        ),
        "{}",
        build.stderr
    );
}

#[test]
fn nothing_to_build_or_a_go_module_without_a_main_package_gets_a_clear_message_and_no_files() {
    let project = repository(&[("README.md", "# notes\n")]);
    let run = project.shipit(&["init"]).code(2);
    assert!(
        run.stderr.contains("nothing to build in "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("no Cargo.toml with a binary package, Dockerfile, pyproject.toml, requirements.txt, package.json or go.mod"), "{}", run.stderr);
    assert!(!project.exists("environments"));
    let project = repository(&[
        ("go.mod", "module example.com/x\n"),
        ("lib.go", "package x\n"),
        ("main_test.go", "package main\n"),
    ]);
    let run = project.shipit(&["init"]).code(2);
    assert!(
        run.stderr.contains("the Go module has no main package"),
        "{}",
        run.stderr
    );
    assert!(!project.exists("environments"));
    let run = project.shipit(&["init", "--package", "cmd/x"]).code(2);
    assert!(
        run.stderr
            .contains("--package cmd/x: no main package there (main packages: none)"),
        "{}",
        run.stderr
    );
}

#[test]
fn dry_run_writes_nothing_and_force_replaces() {
    let project = repository(&[("requirements.txt", "\n"), ("main.py", "\n")]);
    let run = project
        .shipit(&["init", "--dry-run", "--output", "json"])
        .success();
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(plan["written"], false);
    assert_eq!(plan["plan"]["kind"], "python");
    assert_eq!(plan["plan"]["files"].as_array().unwrap().len(), 4);
    assert!(!project.exists("environments"));
    project.write("environments/base.toml", "# mine\n");
    let run = project.shipit(&["init"]).code(1);
    assert!(
        run.stderr.contains("environments/base.toml already exists"),
        "{}",
        run.stderr
    );
    assert_eq!(project.read("environments/base.toml"), "# mine\n");
    assert!(!project.exists("environments/staging.toml"));
    project
        .shipit(&["init", "--force", "--name", "renamed"])
        .success();
    assert!(
        project
            .read("environments/base.toml")
            .contains("name = \"renamed\"")
    );
    assert!(Path::new(&project.path().join("environments/staging.toml")).exists());
}

/// A service whose version is configuration is released like the calculator:
/// `app.version` in environments/base.toml is bumped (comments kept), the
/// generated files follow, and the tag names it.
#[test]
fn a_python_service_is_released_by_its_configured_version() {
    let project = repository(&[("requirements.txt", "\n"), ("app.py", "\n")]);
    project.shipit(&["init", "--name", "orders"]).success();
    project.shipit(&["render", "--all", "-q"]).success();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(project.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    git(&["config", "user.name", "Release Bot"]);
    git(&["config", "user.email", "bot@example.com"]);
    git(&["checkout", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "feat: orders service"]);
    let run = project
        .shipit(&["release", "minor", "--execute", "--output", "json"])
        .success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["plan"]["next"], "0.2.0", "{report}");
    let base = project.read("environments/base.toml");
    assert!(base.contains("version = \"0.2.0\""), "{base}");
    assert!(
        base.contains("# `shipit release` bumps this version"),
        "{base}"
    );
    assert_eq!(git(&["tag", "--list"]).trim(), "v0.2.0");
    project
        .shipit(&["render", "--all", "--check", "-q"])
        .success();
    let compose = project.read("generated/development/docker-compose.yml");
    assert!(compose.contains("/orders:0.2.0\""), "{compose}");
    assert_eq!(git(&["status", "--porcelain"]).trim(), "");
}

/// The commented examples of an accessory and a release command are valid
/// configuration once uncommented, as a user would.
#[test]
fn the_accessory_and_release_command_examples_validate_uncommented() {
    let project = repository(&[("Dockerfile", "FROM scratch\n")]);
    project.shipit(&["init", "--name", "shop"]).success();
    let base = project.read("environments/base.toml");
    let mut text = String::new();
    let mut example = false;
    for line in base.lines() {
        // An example runs from its table to the next blank line.
        example &= !line.is_empty();
        example |= line.starts_with("# [accessories.db]") || line.starts_with("# [roles.worker]");
        let wanted = example
            || line.starts_with("# release_command")
            || line.starts_with("# release_timeout");
        let code = line
            .strip_prefix("# ")
            .filter(|l| wanted && !l.is_empty() && !line.starts_with("# shipit"));
        text.push_str(code.unwrap_or(line));
        text.push('\n');
    }
    assert!(text.contains("\n[accessories.db.backup]"), "{text}");
    assert!(text.contains("\nrelease_command = ["), "{text}");
    assert!(text.contains("\n[roles.worker]\ncmd = ["), "{text}");
    project.write("environments/base.toml", &text);
    let run = project.shipit_env(&["validate", "production"], &[("DB_PASSWORD", "x")]);
    assert_eq!(run.code, 0, "{}\n{text}", run.stderr);
}
