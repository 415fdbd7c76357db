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

/// `[roles]` in the compose stack: a service per role from the release's
/// image, with its command, its check (or the image's turned off), its
/// replicas and stop grace; the gateway waits on the web service only. Read
/// back through `docker-compose config`, which also validates the file.
#[test]
fn roles_render_as_compose_services_of_the_release_image() {
    if !validators_available() {
        return;
    }
    let project = Project::from_repo();
    let staging = project.read("environments/staging.toml");
    project.write(
        "environments/staging.toml",
        &format!(
            "{staging}\n[roles.worker]\ncmd = [\"sh\", \"-c\", \"echo $HOME; exec worker\"]\nreplicas = 2\nstop_grace = \"45s\"\n\n[roles.clock]\ncmd = [\"clock\"]\nhealthcheck = [\"clock\", \"--ping\"]\n"
        ),
    );
    project.shipit(&["render", "staging"]).success();
    let output = Command::new("docker-compose")
        .args(["-f", "docker-compose.yml", "config", "--format", "json"])
        .current_dir(project.path().join("generated/staging"))
        .output()
        .expect("docker-compose");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stack: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let services = &stack["services"];
    let (web, worker, clock) = (
        &services["calculator"],
        &services["calculator-worker"],
        &services["calculator-clock"],
    );
    for role in [worker, clock] {
        for same in [
            "image",
            "user",
            "read_only",
            "environment",
            "cap_drop",
            "networks",
        ] {
            assert_eq!(role[same], web[same], "{same}: {role}");
        }
    }
    assert_eq!(web["entrypoint"], serde_json::Value::Null);
    // `$$` is compose's literal `$`: the worker's shell sees `$HOME`.
    assert_eq!(
        worker["entrypoint"],
        serde_json::json!(["sh", "-c", "echo $$HOME; exec worker"])
    );
    assert_eq!(worker["healthcheck"]["disable"], true);
    assert_eq!(worker["deploy"]["replicas"], 2);
    assert_eq!(worker["stop_grace_period"], "45s");
    assert_eq!(clock["entrypoint"], serde_json::json!(["clock"]));
    assert_eq!(
        clock["healthcheck"]["test"],
        serde_json::json!(["CMD", "clock", "--ping"])
    );
    assert_eq!(clock["deploy"]["replicas"], 1);
    // The drain timeout, without a stop_grace of its own.
    assert_eq!(clock["stop_grace_period"], "10s");
    let waits: Vec<&String> = services["gateway"]["depends_on"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(waits, ["calculator"]);

    // Kubernetes: a Deployment per role after the service's, which the
    // validator accepts, its pods out of the Service's selector.
    let file = project.path().join("generated/staging/k8s/deployment.yaml");
    let output = Command::new("kubernetes-validate")
        .args(["--strict", "-k", "1.30.0"])
        .arg(&file)
        .output()
        .expect("kubernetes-validate");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let docs: Vec<serde_json::Value> = text.split("\n---\n").map(yaml_doc).collect();
    let names: Vec<&str> = docs
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["calculator", "calculator-clock", "calculator-worker"]
    );
    let pod = |d: &serde_json::Value| d["spec"]["template"]["spec"]["containers"][0].clone();
    let (worker, clock) = (&docs[2], &docs[1]);
    assert_eq!(
        pod(worker)["command"],
        serde_json::json!(["sh", "-c", "echo $HOME; exec worker"])
    );
    assert_eq!(worker["spec"]["replicas"], 2);
    assert!(worker["spec"]["minReadySeconds"].as_u64().unwrap() > 0);
    assert!(pod(worker)["ports"].is_null() && pod(worker)["readinessProbe"].is_null());
    assert_eq!(
        worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        45
    );
    assert_eq!(
        pod(clock)["readinessProbe"]["exec"]["command"],
        serde_json::json!(["clock", "--ping"])
    );
    assert!(clock["spec"]["minReadySeconds"].is_null());
    assert_eq!(pod(clock)["image"], pod(&docs[0])["image"]);
    assert_eq!(
        worker["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"],
        "calculator-worker"
    );
    assert_eq!(
        worker["spec"]["template"]["metadata"]["labels"]["shipit.dev/role"],
        "worker"
    );
}

/// One YAML document, as a value.
fn yaml_doc(text: &str) -> serde_json::Value {
    yaml_serde::from_str(text).unwrap()
}
