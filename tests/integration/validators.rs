//! The independent validators (kubernetes-validate, hadolint, docker-compose,
//! nginx -t, haproxy -c, promtool, amtool, actionlint, zizmor, yamllint, trivy) on freshly rendered files,
//! and proof that they reject broken ones. `.ci/install-tools` installs
//! them; without them these tests fail unless SHIPIT_SKIP_VALIDATORS=1.

use std::process::Command;

use crate::harness::{Project, repo};

const TOOLS: &[&str] = &[
    "kubernetes-validate",
    "hadolint",
    "docker-compose",
    "nginx",
    "haproxy",
    "promtool",
    "amtool",
    "actionlint",
    "zizmor",
    "yamllint",
    "check-jsonschema",
    "trivy",
    "openssl",
    "unshare",
];

fn validators_available() -> bool {
    if std::env::var_os("SHIPIT_SKIP_VALIDATORS").is_some_and(|v| v == "1") {
        eprintln!("SHIPIT_SKIP_VALIDATORS=1: skipping the independent validators");
        return false;
    }
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|tool| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "validators missing: {}; run .ci/install-tools (or set SHIPIT_SKIP_VALIDATORS=1 to skip)",
        missing.join(", ")
    );
    true
}

fn validate(project: &Project) -> (bool, String) {
    let output = Command::new("bash")
        .arg(repo().join(".ci/validate-generated"))
        .arg(project.path())
        .output()
        .expect("run .ci/validate-generated");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn rendered_project() -> Project {
    let project = Project::from_repo();
    project.shipit(&["render", "--all"]).success();
    project
}

#[test]
fn generated_files_pass_every_validator() {
    if !validators_available() {
        return;
    }
    let (ok, text) = validate(&rendered_project());
    assert!(ok, "{text}");
    assert!(text.contains(" 0 failed"), "{text}");
}

#[test]
fn validators_reject_broken_files() {
    if !validators_available() {
        return;
    }
    let project = rendered_project();
    let edit = |path: &str, from: &str, to: &str| {
        let text = project.read(path);
        assert!(text.contains(from), "{path} has no {from:?}");
        project.write(path, &text.replacen(from, to, 1));
    };
    edit(
        "generated/production/Dockerfile",
        "USER 10001:10001",
        "USER app",
    );
    edit(
        "generated/production/docker-compose.yml",
        "read_only: true",
        "read_only: maybe",
    );
    edit(
        "generated/production/nginx.conf",
        "limit_req_status 429;",
        "limit_req_status 429 oops;",
    );
    edit(
        "generated/production/haproxy.cfg",
        "balance roundrobin",
        "balance roundrobin\n    no_such_keyword on",
    );
    edit(
        "generated/production/prometheus/prometheus.yml",
        "scrape_interval: 15s",
        "scrape_interval: fifteen",
    );
    edit(
        "generated/production/prometheus/alerts.yml",
        "expr: up{job",
        "expr: up{{job",
    );
    edit(
        "generated/production/alertmanager/alertmanager.yml",
        "api_url_file:",
        "api_url_fil:",
    );
    edit(
        "generated/production/k8s/service.yaml",
        "kind: Service\n",
        "kind: Servise\n",
    );
    edit(
        "generated/production/k8s/deployment.yaml",
        "      enableServiceLinks: false\n",
        "      enableServiceLinks: false\n      unknownField: 1\n",
    );
    edit(
        ".github/workflows/ci.yml",
        "timeout-minutes: 30",
        "timeout-minutes: thirty",
    );
    // The deploy workflow triggered by another workflow's run (with its
    // artifacts and the repository's secrets): what zizmor calls dangerous.
    edit(
        ".github/workflows/deploy.yml",
        "on:\n  workflow_call:\n",
        "on:\n  workflow_run:\n    workflows: [release]\n    types: [completed]\n  workflow_call:\n",
    );
    edit(
        "generated/staging/k8s/deployment.yaml",
        "privileged: false",
        "privileged: true",
    );
    let (ok, text) = validate(&project);
    assert!(!ok, "{text}");
    for check in [
        "FAIL  hadolint Dockerfile",
        "FAIL  docker-compose config docker-compose.yml",
        "FAIL  nginx -t nginx.conf",
        "FAIL  haproxy -c haproxy.cfg",
        "FAIL  promtool check config prometheus/prometheus.yml",
        "FAIL  promtool check rules prometheus/alerts.yml",
        "FAIL  amtool check-config alertmanager/alertmanager.yml",
        "FAIL  kubernetes-validate --strict -k 1.30.0 k8s/service.yaml",
        "FAIL  kubernetes-validate --strict -k 1.30.0 k8s/deployment.yaml",
        "FAIL  actionlint ci.yml",
        "FAIL  zizmor .github/workflows",
        "FAIL  trivy config (HIGH, CRITICAL) generated/",
    ] {
        assert!(text.contains(check), "expected `{check}` in:\n{text}");
    }
}
