//! `shipit render`: plan first, atomic writes, --check, --dry-run, determinism.

use crate::harness::{Project, repo};

#[test]
fn render_all_is_deterministic_across_runs_and_directories() {
    let a = Project::from_repo();
    let b = Project::from_repo();
    a.shipit(&["render", "--all"]).success();
    b.shipit(&["render", "--all"]).success();
    let tree_a = a.tree("generated");
    assert!(
        tree_a.len() > 40,
        "expected every environment's files, got {}",
        tree_a.len()
    );
    assert_eq!(tree_a, b.tree("generated"));
    assert_eq!(a.tree(".github"), b.tree(".github"));
    let again = a.shipit(&["render", "--all"]).success();
    assert!(
        again
            .stderr
            .contains("production: 0 created, 0 updated, 0 removed, 26 unchanged"),
        "{}",
        again.stderr
    );
    assert_eq!(tree_a, a.tree("generated"));
}

#[test]
fn the_committed_generated_files_are_current() {
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_shipit"))
        .args(["-C", repo().to_str().unwrap(), "render", "--all", "--check"])
        .env_remove("SHIPIT__IMAGE__TAG")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "generated/ or .github/workflows is stale: run `cargo run -- render --all`\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn check_prints_a_diff_exits_1_and_changes_nothing() {
    let project = Project::from_repo();
    project.shipit(&["render", "staging"]).success();
    project.shipit(&["render", "staging", "--check"]).success();

    let original = project.read("generated/staging/nginx.conf");
    project.write(
        "generated/staging/nginx.conf",
        &original.replace("burst=40", "burst=1"),
    );
    project.write("generated/staging/k8s/stray.yaml", "kind: Stray\n");
    let run = project.shipit(&["render", "staging", "--check"]).code(1);
    assert!(
        run.stdout
            .contains("--- a/generated/staging/nginx.conf\n+++ b/generated/staging/nginx.conf"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("-            limit_req zone=per_client burst=1 nodelay;"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("+            limit_req zone=per_client burst=40 nodelay;"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("--- a/generated/staging/k8s/stray.yaml\n+++ /dev/null"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("2 generated file(s) are stale: run `shipit render staging`"),
        "{}",
        run.stderr
    );
    assert!(
        project.exists("generated/staging/k8s/stray.yaml"),
        "--check must not change anything"
    );
    assert!(
        project
            .read("generated/staging/nginx.conf")
            .contains("burst=1 ")
    );

    project.shipit(&["render", "staging"]).success();
    assert!(
        !project.exists("generated/staging/k8s/stray.yaml"),
        "files shipit no longer renders are removed"
    );
    assert_eq!(project.read("generated/staging/nginx.conf"), original);
}

#[test]
fn dry_run_reports_the_plan_and_writes_nothing() {
    let project = Project::from_repo();
    let run = project
        .shipit(&["--output", "json", "render", "production", "--dry-run"])
        .success();
    assert!(!project.exists("generated"), "dry run wrote files");
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(plan["mode"], "dry-run");
    let files = plan["targets"][0]["files"].as_array().unwrap();
    assert!(files.iter().all(|f| f["status"] == "created"), "{plan}");
    let paths: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    for expected in [
        "generated/production/Dockerfile",
        "generated/production/.dockerignore",
        "generated/production/docker-compose.yml",
        "generated/production/nginx.conf",
        "generated/production/k8s/deployment.yaml",
        "generated/production/k8s/kustomization.yaml",
        "generated/production/prometheus/alerts.yml",
        "generated/production/grafana/dashboards/calculator.json",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {paths:?}"
        );
    }
}

#[test]
fn one_invalid_environment_means_nothing_is_written() {
    let project = Project::from_repo();
    let staging = project.read("environments/staging.toml");
    project.write(
        "environments/staging.toml",
        &staging.replace("min = 2\nmax = 4", "min = 9\nmax = 3"),
    );
    let run = project.shipit(&["render", "--all"]).code(2);
    assert!(
        run.stderr
            .contains("autoscaling.min (9) is greater than autoscaling.max (3)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("configuration problems in: staging; nothing was written"),
        "{}",
        run.stderr
    );
    assert!(
        !project.exists("generated") && !project.exists(".github"),
        "a failed render wrote files"
    );
}

#[test]
fn render_ci_touches_only_its_own_files() {
    let project = Project::from_repo();
    for dir in [
        ".git/objects/pack",
        ".git/refs/heads",
        "tests/empty",
        ".github/ISSUE_TEMPLATE",
    ] {
        std::fs::create_dir_all(project.path().join(dir)).unwrap();
    }
    project.write(".github/workflows/custom.yml", "name: mine\n");
    project.shipit(&["render", "ci"]).success();
    for dir in [
        ".git/objects/pack",
        ".git/refs/heads",
        "tests/empty",
        ".github/ISSUE_TEMPLATE",
    ] {
        assert!(project.path().join(dir).is_dir(), "render ci removed {dir}");
    }
    assert_eq!(project.read(".github/workflows/custom.yml"), "name: mine\n");
    for file in ["ci.yml", "release.yml", "deploy.yml"] {
        assert!(
            project.exists(&format!(".github/workflows/{file}")),
            "{file}"
        );
    }
}

#[test]
fn writes_leave_no_temporary_files_behind() {
    let project = Project::from_repo();
    project.shipit(&["render", "--all"]).success();
    let leftovers: Vec<String> = project
        .tree("")
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.contains(".shipit-") || p.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn every_file_says_it_is_generated_and_kustomization_lists_the_manifests() {
    let project = Project::from_repo();
    project.shipit(&["render", "--all"]).success();
    for (path, bytes) in project
        .tree("generated")
        .into_iter()
        .chain(project.tree(".github"))
    {
        let text = String::from_utf8(bytes).unwrap();
        if path.ends_with(".json") {
            assert!(
                text.contains("\"description\": \"generated by shipit - do not edit\""),
                "{path}"
            );
        } else {
            assert!(
                text.starts_with("# generated by shipit from environments/base.toml"),
                "{path}: {}",
                &text[..60]
            );
        }
    }
    for env in ["development", "staging", "production"] {
        let kustomization = project.read(&format!("generated/{env}/k8s/kustomization.yaml"));
        let mut listed: Vec<String> = kustomization
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- \""))
            .map(|l| l.trim_end_matches('"').to_string())
            .collect();
        let mut present: Vec<String> = project
            .tree(&format!("generated/{env}/k8s"))
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| p != "kustomization.yaml" && !p.starts_with("cluster/"))
            .collect();
        listed.sort();
        present.sort();
        assert_eq!(listed, present, "{env}");
    }
}

#[test]
fn secrets_are_references_and_their_values_never_reach_a_file() {
    let project = Project::from_repo();
    let env = [
        (
            "PRODUCTION_WEBHOOK_URL",
            "https://hooks.example.com/s3cr3t-value",
        ),
        ("PRODUCTION_API_TOKEN", "s3cr3t-token"),
    ];
    project
        .shipit_env(
            &[
                "render",
                "production",
                "--set",
                "secrets.DB_PASSWORD=file:/run/keys/db",
                "--set",
                "secrets.API_TOKEN=env:PRODUCTION_API_TOKEN",
            ],
            &env,
        )
        .success();
    for (path, bytes) in project.tree("generated") {
        assert!(
            !String::from_utf8_lossy(&bytes).contains("s3cr3t"),
            "{path} holds a secret value"
        );
    }
    let compose = project.read("generated/production/docker-compose.yml");
    assert!(compose.contains("API_TOKEN: \"${PRODUCTION_API_TOKEN:?PRODUCTION_API_TOKEN must be set (secret API_TOKEN)}\""), "{compose}");
    assert!(
        compose.contains("DB_PASSWORD_FILE: \"/run/secrets/db-password\""),
        "{compose}"
    );
    assert!(
        compose.contains("secrets:\n  \"db-password\":\n    file: \"/run/keys/db\""),
        "{compose}"
    );
    let deployment = project.read("generated/production/k8s/deployment.yaml");
    assert!(deployment.contains("secretKeyRef:\n                  name: \"calculator-secrets\"\n                  key: \"API_TOKEN\""), "{deployment}");
    let configmap = project.read("generated/production/k8s/configmap.yaml");
    assert!(
        !configmap.contains("API_TOKEN") && !configmap.contains("DB_PASSWORD"),
        "{configmap}"
    );
}

#[test]
fn render_needs_a_target() {
    let run = Project::from_repo().shipit(&["render"]).code(2);
    assert!(
        run.stderr.contains(
            "name what to render: an environment (development, production, staging), `ci`, or --all"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn kubernetes_version_chooses_the_api_versions_and_out_of_range_is_refused() {
    let p = Project::from_repo();
    let render = |version: &str| {
        p.shipit(&[
            "render",
            "production",
            "--set",
            &format!("kubernetes.version={version}"),
        ])
        .success();
    };
    let api = |version: &str, file: &str| {
        render(version);
        let text = p.read(&format!("generated/production/k8s/{file}"));
        text.lines()
            .find(|l| l.starts_with("apiVersion:"))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(api("1.20", "hpa.yaml"), "apiVersion: autoscaling/v2beta2");
    assert_eq!(api("1.22.4", "hpa.yaml"), "apiVersion: autoscaling/v2beta2");
    assert_eq!(api("1.23", "hpa.yaml"), "apiVersion: autoscaling/v2");
    assert_eq!(api("1.20", "pdb.yaml"), "apiVersion: policy/v1beta1");
    assert_eq!(api("1.21.0", "pdb.yaml"), "apiVersion: policy/v1");
    let evicts_unhealthy = |version: &str| {
        render(version);
        p.read("generated/production/k8s/pdb.yaml")
            .contains("\n  unhealthyPodEvictionPolicy: AlwaysAllow\n")
    };
    assert!(!evicts_unhealthy("1.26"));
    assert!(evicts_unhealthy("1.27"));
    let labels = |version: &str| {
        render(version);
        p.read("generated/production/k8s/cluster/namespace.yaml")
            .contains("pod-security.kubernetes.io/enforce: \"restricted\"")
    };
    assert!(!labels("1.22"));
    assert!(labels("1.23"));
    assert!(
        p.read("generated/production/k8s/kustomization.yaml")
            .contains("# rendered for Kubernetes 1.23\n")
    );
    for bad in ["1.18", "1.35.0", "2.0", "1.x", "1.20.0.1"] {
        let run = p
            .shipit(&[
                "validate",
                "production",
                "--set",
                &format!("kubernetes.version={bad}"),
            ])
            .code(2);
        assert!(
            run.stderr.contains("kubernetes.version"),
            "{bad}: {}",
            run.stderr
        );
    }
    let run = p
        .shipit(&["validate", "production", "--set", "kubernetes.version=1.18"])
        .code(2);
    assert!(
        run.stderr
            .contains("shipit cannot render for Kubernetes 1.18")
            && run.stderr.contains("a version from 1.19 to 1.34"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_kubernetes_environment_deploys_from_ci_with_a_kubeconfig_secret() {
    let p = Project::from_repo();
    p.shipit(&[
        "render",
        "ci",
        "--set",
        "deploy.target=kubernetes",
        "--set",
        "deploy.strategy=rolling",
    ])
    .success();
    let deploy = p.read(".github/workflows/deploy.yml");
    for expected in [
        "secrets.SHIPIT_KUBECONFIG",
        "mktemp -d /dev/shm/shipit-kube.XXXXXX",
        "umask 077",
        "run: shipit deploy staging --output json",
        "name: \"shipit deploy staging (gated and smoke-tested; undone on failure)\"",
        "rm -rf \"$(dirname \"$KUBECONFIG\")\"",
    ] {
        assert!(deploy.contains(expected), "{expected}:\n{deploy}");
    }
    // Nothing of the Docker hosts' access.
    for absent in [
        "DOCKER_HOST",
        "SHIPIT_SSH_PRIVATE_KEY",
        "SHIPIT_DOCKER_TLS",
        "shipit image gateway",
    ] {
        assert!(!deploy.contains(absent), "{absent}:\n{deploy}");
    }
    let lint = std::process::Command::new("actionlint")
        .arg(p.path().join(".github/workflows/deploy.yml"))
        .output()
        .expect("actionlint (.ci/install-tools installs it)");
    assert!(
        lint.status.success(),
        "{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
}
