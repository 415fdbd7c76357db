//! What a security and SRE review of `generated/` found, each kept from coming
//! back: assertions on freshly rendered files, and real runs of the parts
//! where behaviour matters (nginx, promtool; the engine in `review_engine`).

use std::collections::BTreeMap;
use std::process::Command;

use yaml_serde::Value;

use crate::harness::Project;

const ENVS: [&str; 3] = ["development", "staging", "production"];
const DIGEST: &str = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";

fn rendered() -> Project {
    let project = Project::from_repo();
    project.shipit(&["render", "--all", "-q"]).success();
    project
}

fn yaml(project: &Project, path: &str) -> Value {
    yaml_serde::from_str(&project.read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn seconds(text: &str) -> u64 {
    text.trim_end_matches('s')
        .parse()
        .unwrap_or_else(|_| panic!("{text}"))
}

/// KEY: VALUE of a compose `environment:` or a ConfigMap's `data:`.
fn map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let v = v
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| format!("{}", v.as_u64().unwrap()));
            (k.as_str().unwrap().to_string(), v)
        })
        .collect()
}

// 1. Images by mutable tag with a loopback registry.
#[test]
fn images_are_pinned_by_digest_and_the_pull_policy_follows() {
    let project = rendered();
    for env in ["staging", "production"] {
        let deployment = yaml(&project, &format!("generated/{env}/k8s/deployment.yaml"));
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let image = container["image"].as_str().unwrap();
        assert!(
            !image.starts_with("127.") && !image.starts_with("localhost"),
            "{env}: {image} is a loopback registry"
        );
        // By tag only, every start pulls: no node keeps an old build under the tag.
        assert_eq!(container["imagePullPolicy"], "Always", "{env}");
    }
    project
        .shipit(&[
            "render",
            "production",
            "--set",
            &format!("image.digest={DIGEST}"),
        ])
        .success();
    let deployment = yaml(&project, "generated/production/k8s/deployment.yaml");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"].as_str().unwrap(),
        format!("ghcr.io/shipit-dev/calculator:0.1.0@{DIGEST}")
    );
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    let run = project
        .shipit(&["render", "production", "--set", "image.digest=sha256:abc"])
        .code(2);
    assert!(
        run.stderr
            .contains("\"sha256:abc\" is not an image digest (key `image.digest`)"),
        "{}",
        run.stderr
    );
}

// 2. Requests dropped on every Kubernetes or compose rollout.
#[test]
fn stopping_replicas_keep_serving_for_the_delay_and_the_grace_period_covers_it() {
    let project = rendered();
    for env in ENVS {
        let compose = yaml(&project, &format!("generated/{env}/docker-compose.yml"));
        let service = &compose["services"]["calculator"];
        let environment = map(&service["environment"]);
        let delay: u64 = environment["SHUTDOWN_DELAY_SECONDS"].parse().unwrap();
        let grace: u64 = environment["SHUTDOWN_GRACE_SECONDS"].parse().unwrap();
        assert!(delay >= 5, "{env}: the delay is {delay}s");
        assert!(grace > delay, "{env}: grace {grace}s leaves no drain");
        let stop = seconds(service["stop_grace_period"].as_str().unwrap());
        assert!(
            stop > grace,
            "{env}: compose kills at {stop}s, the service needs {grace}s"
        );

        let config = yaml(&project, &format!("generated/{env}/k8s/configmap.yaml"));
        let data = map(&config["data"]);
        assert_eq!(data["SHUTDOWN_DELAY_SECONDS"], delay.to_string(), "{env}");
        assert_eq!(data["SHUTDOWN_GRACE_SECONDS"], grace.to_string(), "{env}");
        let deployment = yaml(&project, &format!("generated/{env}/k8s/deployment.yaml"));
        let pod = &deployment["spec"]["template"]["spec"];
        let termination = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
        assert!(
            termination > grace,
            "{env}: the kubelet kills at {termination}s, the service needs {grace}s"
        );
        // HOST and PORT live beside the container port, in the Deployment.
        let env_vars = &pod["containers"][0]["env"];
        let names: Vec<&str> = env_vars
            .as_sequence()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"PORT") && names.contains(&"HOST"), "{env}");
        assert!(!data.contains_key("PORT"), "{env}");
    }
    // The delay is configuration, validated.
    let run = project
        .shipit(&["validate", "staging", "--set", "deploy.shutdown_delay=2m"])
        .code(2);
    assert!(
        run.stderr.contains("key `deploy.shutdown_delay`"),
        "{}",
        run.stderr
    );
}

// 3. The compose build context ignores .dockerignore (the build itself is in review_engine).
#[test]
fn the_ignore_rules_sit_where_every_build_path_reads_them() {
    let project = rendered();
    let root = project.read(".dockerignore");
    for env in ENVS {
        let compose = yaml(&project, &format!("generated/{env}/docker-compose.yml"));
        assert_eq!(
            compose["services"]["calculator"]["build"]["context"],
            "../.."
        );
        let rules = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .map(String::from)
                .collect()
        };
        assert_eq!(
            rules(&root),
            rules(&project.read(&format!("generated/{env}/.dockerignore"))),
            "{env}: the compose context's rules differ from shipit build's"
        );
    }
    for rule in [".git/", "target/", ".env", ".env.*", "*.pem", "*.key"] {
        assert!(root.lines().any(|l| l == rule), "{rule}");
    } // The header stands on its own lines, never merged with the rules' first comment.
    for text in std::iter::once(root.clone()).chain(
        ENVS.iter()
            .map(|e| project.read(&format!("generated/{e}/.dockerignore"))),
    ) {
        assert!(
            text.lines()
                .any(|l| l
                    == "# Keeps the build context small and free of secrets: only sources go in."),
            "{text}"
        );
        assert!(
            text.lines()
                .next()
                .is_some_and(|l| l.contains("do not edit") && !l.contains("Keeps")),
            "{text}"
        );
    }
}

// 4. /metrics is public through the Ingress.
#[test]
fn the_ingress_serves_metrics_only_to_the_allowed_networks() {
    let project = rendered();
    for env in ENVS {
        let service = yaml(&project, &format!("generated/{env}/k8s/ingress.yaml"));
        let metrics = yaml(
            &project,
            &format!("generated/{env}/k8s/ingress-metrics.yaml"),
        );
        let path = &metrics["spec"]["rules"][0]["http"]["paths"][0];
        assert_eq!(path["path"], "/metrics", "{env}");
        assert_eq!(path["pathType"], "Exact", "{env}");
        let annotations = &metrics["metadata"]["annotations"];
        let allowed = "127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16";
        for key in ["allowlist-source-range", "whitelist-source-range"] {
            assert_eq!(
                annotations[format!("nginx.ingress.kubernetes.io/{key}").as_str()],
                allowed,
                "{env}"
            );
        }
        // Same host: ingress-nginx picks the Exact path over the service's Prefix /.
        assert_eq!(
            metrics["spec"]["rules"][0]["host"],
            service["spec"]["rules"][0]["host"]
        );
        assert!(
            service["metadata"]["annotations"]
                .get("nginx.ingress.kubernetes.io/allowlist-source-range")
                .is_none()
        );
    }
    project
        .shipit(&[
            "render",
            "staging",
            "--set",
            "gateway.metrics_allow=[\"10.1.0.0/16\"]",
        ])
        .success();
    let metrics = yaml(&project, "generated/staging/k8s/ingress-metrics.yaml");
    assert_eq!(
        metrics["metadata"]["annotations"]["nginx.ingress.kubernetes.io/allowlist-source-range"],
        "10.1.0.0/16"
    );
    assert!(
        project
            .read("generated/staging/nginx.conf")
            .contains("allow 10.1.0.0/16;\n            deny all;")
    );
    // The HAProxy gateway allows the same networks, and only them.
    let haproxy = project.read("generated/staging/haproxy.cfg");
    assert!(
        haproxy.contains("acl private src 10.1.0.0/16\n"),
        "{haproxy}"
    );
    assert!(!haproxy.contains("192.168.0.0/16"), "{haproxy}");
    project
        .shipit(&["render", "staging", "--set", "gateway.metrics_allow=[]"])
        .success();
    let haproxy = project.read("generated/staging/haproxy.cfg");
    assert!(haproxy.contains("acl private always_false\n"), "{haproxy}");
    let run = project
        .shipit(&[
            "validate",
            "staging",
            "--set",
            "gateway.metrics_allow=[\"10.1.0.1/16\"]",
        ])
        .code(2);
    assert!(
        run.stderr.contains("\"10.1.0.1/16\" is not a network"),
        "{}",
        run.stderr
    );
}

// 5. Alerts go nowhere, and some can never fire.
#[test]
fn alerts_are_sent_somewhere_and_prometheus_is_rendered_only_where_it_runs() {
    let project = rendered();
    let prometheus = yaml(&project, "generated/production/prometheus/prometheus.yml");
    assert_eq!(
        prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"],
        yaml_serde::from_str::<yaml_serde::Value>("[\"alertmanager:9093\"]").unwrap()
    );
    let jobs: Vec<&str> = prometheus["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|j| j["job_name"].as_str().unwrap())
        .collect();
    assert!(jobs.contains(&"calculator-gateway"), "{jobs:?}");
    // The stack's Alertmanager reaches its receiver (egress), Prometheus
    // reaches it (backend), and Prometheus itself stays internal.
    let compose = yaml(&project, "generated/production/docker-compose.yml");
    let services = &compose["services"];
    let networks = |s: &str| format!("{:?}", services[s]["networks"]);
    assert!(
        networks("alertmanager").contains("backend") && networks("alertmanager").contains("egress"),
        "{}",
        networks("alertmanager")
    );
    assert!(
        !networks("prometheus").contains("egress"),
        "{}",
        networks("prometheus")
    );
    assert_eq!(compose["networks"]["backend"]["internal"], true);
    assert!(compose["networks"]["egress"]["internal"].is_null());
    assert_eq!(services["alertmanager"]["user"], "65534:65534");
    assert_eq!(services["alertmanager"]["read_only"], true);
    assert_eq!(
        compose["secrets"]["alertmanager-credential"]["file"],
        "/etc/calculator/slack-webhook-url"
    );
    let alertmanager = project.read("generated/production/alertmanager/alertmanager.yml");
    assert!(
        alertmanager.contains("api_url_file: /run/secrets/alertmanager-credential"),
        "{alertmanager}"
    );
    for env in ["development", "staging"] {
        assert!(
            !project.exists(&format!("generated/{env}/prometheus")),
            "{env}"
        );
        let compose = project.read(&format!("generated/{env}/docker-compose.yml"));
        assert!(!compose.contains("prometheus"), "{env}");
        assert!(!compose.contains("alertmanager"), "{env}");
    }
    let run = project
        .shipit(&[
            "validate",
            "production",
            "--set",
            "monitoring.alertmanager.slack_url=",
            "--set",
            "monitoring.alertmanager.slack_channel=",
        ])
        .code(2);
    assert!(
        run.stderr
            .contains("Prometheus is on but its alerts go nowhere (key `monitoring.alertmanager`)"),
        "{}",
        run.stderr
    );
    // Every mistake at once: two receivers, a token in the URL, a literal
    // token; the values never shown.
    let run = project
        .shipit(&[
            "validate",
            "production",
            "--set",
            "monitoring.alertmanager.webhook_url=https://hooks.example.com/a?token=s3cr3t",
            "--set",
            "monitoring.alertmanager.webhook_token=s3cr3t",
        ])
        .code(2);
    for expected in [
        "both slack_url and webhook_url are set",
        "the webhook URL carries credentials or a query",
        "the webhook token is not given as a file reference",
    ] {
        assert!(run.stderr.contains(expected), "{expected}: {}", run.stderr);
    }
    assert!(!run.stderr.contains("s3cr3t"), "{}", run.stderr);
    // Outside Alertmanagers only: Prometheus joins the egress network.
    project
        .shipit(&[
            "render",
            "production",
            "--set",
            "monitoring.alertmanager.slack_url=",
            "--set",
            "monitoring.alertmanager.slack_channel=",
            "--set",
            "monitoring.alertmanagers=[\"alertmanager.example.com:9093\"]",
        ])
        .success();
    let compose = yaml(&project, "generated/production/docker-compose.yml");
    assert!(format!("{:?}", compose["services"]["prometheus"]["networks"]).contains("egress"));
    assert!(compose["services"]["alertmanager"].is_null());
    assert!(!project.exists("generated/production/alertmanager"));
}

/// promtool's rule unit tests against the rendered alerts: the rules that
/// could never fire now do, and the quiet case stays quiet.
#[test]
fn the_alert_rules_fire_when_replicas_vanish_or_the_gateway_fails() {
    let project = rendered();
    let dir = project.path().join("generated/production/prometheus");
    let tests = r#"rule_files: [alerts.yml]
evaluation_interval: 15s
tests:
  # Every replica's DNS name gone: no `up` series at all.
  - interval: 15s
    input_series:
      - series: 'up{job="prometheus", instance="localhost:9090"}'
        values: '1x20'
    alert_rule_test:
      - eval_time: 3m
        alertname: NoReplicaUp
        exp_alerts:
          - exp_labels: {severity: critical, environment: production}
            exp_annotations:
              summary: "no calculator replica is up"
              description: "No replica has answered a scrape for 1m: the service is down or gone."
      - eval_time: 3m
        alertname: InstanceDown
        exp_alerts: []
  # The replicas answer Prometheus, but the gateway answers clients 502.
  - interval: 15s
    input_series:
      - series: 'up{job="calculator", instance="10.0.0.5:8080"}'
        values: '1x20'
      - series: 'up{job="calculator-gateway", instance="gateway:8080"}'
        values: '0x20'
    alert_rule_test:
      - eval_time: 3m
        alertname: GatewayFailing
        exp_alerts:
          - exp_labels: {severity: critical, environment: production, job: calculator-gateway, instance: "gateway:8080"}
            exp_annotations:
              summary: "the calculator gateway answers with errors"
              description: "The gateway has failed the metrics path for 1m (502 or 504: no replica reachable, or the gateway is down)."
      - eval_time: 3m
        alertname: NoReplicaUp
        exp_alerts: []
"#;
    std::fs::write(dir.join("alerts_test.yml"), tests).unwrap();
    let out = Command::new("promtool")
        .args(["test", "rules", "alerts_test.yml"])
        .current_dir(&dir)
        .output()
        .expect("promtool (just install-tools)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// 7. The Ingress is weaker than the gateway.
#[test]
fn the_ingress_adds_the_gateway_headers_answers_429_and_keeps_per_minute_rates() {
    let project = rendered();
    let nginx = project.read("generated/production/nginx.conf");
    let haproxy = project.read("generated/production/haproxy.cfg");
    let headers = yaml(&project, "generated/production/k8s/response-headers.yaml");
    let headers = map(&headers["data"]);
    assert_eq!(headers.len(), 5);
    for (name, value) in &headers {
        assert!(
            nginx.contains(&format!("add_header {name} \"{value}\" always;")),
            "{name}"
        );
        assert!(
            haproxy.contains(&format!("set-header {name} \"{value}\"")),
            "{name}"
        );
    }
    let ingress = yaml(&project, "generated/production/k8s/ingress.yaml");
    let annotations = &ingress["metadata"]["annotations"];
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/custom-headers"],
        "calculator-production/calculator-response-headers"
    );
    assert_eq!(annotations["nginx.ingress.kubernetes.io/limit-rps"], "20");
    assert_eq!(
        annotations["nginx.ingress.kubernetes.io/limit-burst-multiplier"],
        "2"
    );
    let controller = yaml(
        &project,
        "generated/production/k8s/cluster/ingress-nginx-controller.yaml",
    );
    assert_eq!(controller["data"]["limit-req-status-code"], "429");
    let allowed = controller["data"]["global-allowed-response-headers"]
        .as_str()
        .unwrap();
    for name in headers.keys() {
        assert!(allowed.split(',').any(|h| h == name), "{name}");
    }

    // 600 requests a minute is 600 a minute, not 600 a second.
    project
        .shipit(&["render", "staging", "--set", "gateway.rate_limit=600r/m"])
        .success();
    let ingress = yaml(&project, "generated/staging/k8s/ingress.yaml");
    let annotations = &ingress["metadata"]["annotations"];
    assert_eq!(annotations["nginx.ingress.kubernetes.io/limit-rpm"], "600");
    assert!(
        annotations
            .get("nginx.ingress.kubernetes.io/limit-rps")
            .is_none()
    );

    // `kubectl delete -k` removes the app's objects, never the namespace.
    for env in ENVS {
        let kustomization = project.read(&format!("generated/{env}/k8s/kustomization.yaml"));
        assert!(!kustomization.contains("namespace.yaml"), "{env}");
        assert!(!kustomization.contains("cluster/"), "{env}");
        let namespace = yaml(
            &project,
            &format!("generated/{env}/k8s/cluster/namespace.yaml"),
        );
        assert_eq!(namespace["kind"], "Namespace");
    }
}

// 8. Workflows.
#[test]
fn workflows_build_releases_from_clean_state_with_least_privilege() {
    let project = rendered();
    let sha_pinned = |line: &str| {
        let action = line
            .trim()
            .trim_start_matches("- ")
            .trim_start_matches("uses: ");
        let (_, rest) = action.split_once('@').unwrap();
        rest.len() >= 40 && rest[..40].bytes().all(|b| b.is_ascii_hexdigit())
    };
    for name in ["ci", "release", "deploy"] {
        let path = format!(".github/workflows/{name}.yml");
        let text = project.read(&path);
        let workflow = yaml(&project, &path);
        for line in text
            .lines()
            .filter(|l| l.contains("uses: ") && l.contains('@'))
        {
            assert!(sha_pinned(line), "{name}: {line}");
        }
        assert!(!text.contains("dtolnay/rust-toolchain"), "{name}");
        // pip installs only what its hash names.
        for line in text.lines().filter(|l| l.contains("pip install")) {
            assert!(line.contains("--require-hashes"), "{name}: {line}");
        }
        assert!(workflow["env"].get("DOCKER_HOST").is_none(), "{name}");
        for (job_name, job) in workflow["jobs"].as_mapping().unwrap() {
            let job_name = job_name.as_str().unwrap();
            assert!(
                job["env"].get("DOCKER_HOST").is_none(),
                "{name}.{job_name}: DOCKER_HOST is set for every step"
            );
            let writes_packages = job["permissions"]["packages"] == "write";
            assert_eq!(
                writes_packages,
                name == "release" && job_name == "image",
                "{name}.{job_name}: packages: write"
            );
            if name != "ci" {
                assert!(
                    !job.get("steps").is_some_and(|s| {
                        s.as_sequence().unwrap().iter().any(|step| {
                            step["uses"]
                                .as_str()
                                .is_some_and(|u| u.contains("rust-cache"))
                        })
                    }),
                    "{name}.{job_name} restores a cache other workflows write"
                );
            }
        }
    }
    let ci = project.read(".github/workflows/ci.yml");
    assert!(ci.contains(
        "save-if: ${{ github.event_name == 'push' && github.ref == 'refs/heads/main' }}"
    ));
    let dependabot = yaml(&project, ".github/dependabot.yml");
    let ecosystems: Vec<&str> = dependabot["updates"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|u| u["package-ecosystem"].as_str().unwrap())
        .collect();
    assert_eq!(
        ecosystems,
        ["github-actions", "cargo", "docker", "docker-compose"]
    );
    // Every update waits a week after a release (a compromised one is usually
    // yanked by then), and the image updates look where the images are pinned.
    for update in dependabot["updates"].as_sequence().unwrap() {
        assert_eq!(update["cooldown"]["default-days"], 7, "{update:?}");
    }
    let dirs = &dependabot["updates"][2]["directories"];
    for env in ENVS {
        let dir = format!("/generated/{env}");
        assert!(
            dirs.as_sequence()
                .unwrap()
                .iter()
                .any(|d| d.as_str() == Some(&dir)),
            "{dir}"
        );
    }
}

/// nginx run for real on the rendered production configuration: ciphers,
/// request ids, the redirect, and hosts it does not serve.
#[test]
fn nginx_serves_only_its_names_with_forward_secret_tls() {
    let project = rendered();
    let nginx =
        crate::review_engine::Nginx::start(&project.read("generated/production/nginx.conf"));
    // Plain HTTP: a redirect to the configured name and HTTPS port, with a request id.
    let head = nginx.http("calculator.example.com", "/sum?a=1");
    assert!(head.starts_with("HTTP/1.1 301"), "{head}");
    assert!(
        head.contains("\r\nLocation: https://calculator.example.com:8443/sum?a=1\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nX-Request-Id: "), "{head}");
    // Another Host: the default server closes without an answer, and never
    // redirects to what the client named.
    let other = nginx.http("evil.example", "/");
    assert!(other.is_empty(), "{other}");
    // TLS: forward-secret suites only, and no handshake for unknown names.
    assert!(nginx.tls("calculator.example.com", "ECDHE-RSA-AES128-GCM-SHA256"));
    assert!(!nginx.tls("calculator.example.com", "AES128-GCM-SHA256"));
    assert!(!nginx.tls("calculator.example.com", "AES256-SHA"));
    assert!(!nginx.tls("evil.example", "ECDHE-RSA-AES128-GCM-SHA256"));
}

// Every container the compose stack runs is checked and bounded: Prometheus
// and Grafana too, not only the service and its gateway.
#[test]
fn every_compose_service_has_a_health_check_and_cpu_memory_and_pid_limits() {
    let project = Project::from_repo();
    project.shipit(&["render", "production"]).success();
    let compose = yaml(&project, "generated/production/docker-compose.yml");
    let services = compose["services"].as_mapping().expect("services");
    let names: Vec<&str> = services.keys().filter_map(Value::as_str).collect();
    for wanted in ["gateway", "prometheus", "grafana"] {
        assert!(names.contains(&wanted), "no {wanted} in {names:?}");
    }
    for (name, service) in services {
        let name = name.as_str().unwrap_or_default();
        let test = &service["healthcheck"]["test"];
        // The service's own check may come from its image (`image_healthcheck`).
        if name != "calculator" {
            assert!(test.is_sequence(), "{name} has no health check");
        }
        let limits = &service["deploy"]["resources"]["limits"];
        for key in ["cpus", "memory", "pids"] {
            assert!(!limits[key].is_null(), "{name} has no {key} limit");
        }
    }
}

// The ConfigMap names the Secret only when the Deployment uses one.
#[test]
fn the_config_map_names_the_secret_only_where_one_is_used() {
    let project = Project::from_repo();
    project.shipit(&["render", "staging"]).success();
    let config = project.read("generated/staging/k8s/configmap.yaml");
    let deployment = project.read("generated/staging/k8s/deployment.yaml");
    assert!(!config.contains("-secrets"), "{config}");
    assert!(!deployment.contains("-secrets"), "{deployment}");
    project
        .shipit(&[
            "render",
            "staging",
            "--set",
            "secrets.API_TOKEN=env:API_TOKEN",
        ])
        .success();
    let config = project.read("generated/staging/k8s/configmap.yaml");
    let deployment = project.read("generated/staging/k8s/deployment.yaml");
    assert!(
        config.contains("the Secret \"calculator-secrets\""),
        "{config}"
    );
    assert!(deployment.contains("calculator-secrets"), "{deployment}");
}
