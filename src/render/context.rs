//! The view of one environment that templates read: every value already in
//! the form its target syntax needs (durations in seconds, quantities for
//! compose, labels, image references), so templates hold no logic beyond
//! loops and conditions.
//!
//! Over 500 lines on purpose: `Ctx` is one flat struct that ~30 templates
//! read by field name, and its constructor fills each field from the typed
//! configuration in one place; splitting it would scatter the one mapping
//! from configuration to rendered values (the pure formatting helpers
//! already live in `format.rs`).

use crate::config::Loaded;
use crate::config::model::{BuildKind, Strategy, Target};

use super::escape;
use super::format::{
    compose_cpus, compose_memory, default_healthcheck, ingress_rate, json_array, per_second,
    rate_window, redirect_authority, rust_target, seconds, short_duration,
};

/// A secret reference as the templates need it.
#[derive(Debug, Clone)]
pub struct SecretView {
    /// Environment variable name inside the container.
    pub name: String,
    /// `Some(VAR)` for `env:VAR`: compose interpolates `${VAR}`.
    pub from_env: Option<String>,
    /// `Some(path)` for `file:PATH`: mounted at `/run/secrets/<file_name>`.
    pub from_file: Option<String>,
    /// Name of the mounted file (lowercase) for file secrets.
    pub file_name: String,
}

/// One process of the release in the compose stack: the web role (the
/// service, behind the gateway) or a `[roles.NAME]` role.
#[derive(Debug, Clone)]
pub struct ProcessView {
    pub web: bool,
    /// The role's name (`web` for the service).
    pub role: String,
    /// The compose service: `APP`, or `APP-ROLE`.
    pub service: String,
    /// The role's command as the entrypoint (empty: the image's).
    pub entrypoint_json: String,
    /// `["CMD", ...]` (empty: none; a role's is then disabled).
    pub healthcheck_json: String,
    pub replicas: i64,
    pub grace_seconds: u64,
    /// Kubernetes: the role's command (`command`, JSON; empty for web).
    pub command_json: String,
    /// Kubernetes: the role's healthcheck as an exec probe (empty: none).
    pub probe_json: String,
    /// Kubernetes: how often the role's probe runs (`deploy.health_interval`).
    pub probe_period_seconds: u64,
    /// Kubernetes: a role without a healthcheck counts as ready once it has
    /// run this long (3 x `deploy.health_interval`); 0 with one.
    pub min_ready_seconds: u64,
}

#[derive(Debug, Clone)]
pub struct Ctx {
    /// "environments/base.toml + environments/staging.toml"
    pub sources: String,
    pub environment: String,
    pub app_name: String,
    pub description: String,
    pub version: String,
    pub source_url: String,
    pub package: String,
    /// The image's CMD as a JSON array (`["serve"]`); empty: none.
    pub args_json: String,
    /// The engine's health check command as a JSON array; empty: none.
    pub healthcheck_json: String,
    /// The compose stack's processes: the web role first, then each role.
    pub processes: Vec<ProcessView>,
    pub port: i64,
    pub health_path: String,
    pub readiness_path: String,
    pub metrics_path: String,

    pub image_ref: String,
    /// `build.kind`: `rust`, `dockerfile`, `image`, `python`, `node`, `go`.
    pub kind: &'static str,
    /// shipit renders the Dockerfile (`rust`, `python`, `node`), and a
    /// prebuilt one (`rust`).
    pub renders_dockerfile: bool,
    pub renders_prebuilt: bool,
    /// `build.requirements` (python).
    pub python_requirements: String,
    /// `build.vendor` (go): the build uses `vendor/` and downloads nothing.
    pub go_vendor: bool,
    /// The image has a HEALTHCHECK: `app.healthcheck`, or the one shipit
    /// renders for an interpreter it ships (python, node).
    pub image_healthcheck: bool,
    /// compose builds the image (`rust`, `dockerfile`); `image`: it only runs it.
    pub compose_builds: bool,
    /// compose's build context and Dockerfile (relative to the context), from generated/ENV.
    pub compose_context: String,
    pub compose_dockerfile: String,
    pub build_target: String,
    /// `image_ref@sha256:...` when `image.digest` is set, else `image_ref`.
    pub image_pinned: String,
    /// `IfNotPresent` for an image pinned by digest (immutable), else `Always`.
    pub pull_policy: &'static str,
    pub builder: String,
    pub runtime: String,
    pub runtime_is_scratch: bool,
    pub rust_target: String,
    pub platform: String,
    pub user: i64,
    pub build_args: Vec<(String, String)>,

    pub env: Vec<(String, String)>,
    /// The environment compose and Kubernetes give the service: `env` with
    /// the shutdown delay, and a grace period that covers delay plus drain.
    pub service_env: Vec<(String, String)>,
    /// `service_env` without what the Deployment sets beside its port (HOST, PORT).
    pub config_env: Vec<(String, String)>,
    pub secrets: Vec<SecretView>,
    pub has_secrets: bool,
    pub has_file_secrets: bool,

    pub replicas: i64,
    pub cpu_request: String,
    pub cpu_limit: String,
    pub memory_request: String,
    pub memory_limit: String,
    pub compose_cpu_limit: String,
    pub compose_cpu_request: String,
    pub compose_memory_limit: String,
    pub compose_memory_request: String,
    pub autoscaling: bool,
    pub autoscaling_min: i64,
    pub autoscaling_max: i64,
    pub cpu_target: i64,

    pub target: String,
    pub strategy: String,
    pub drain_seconds: u64,
    /// The platform's stop grace period: delay plus drain plus 10 s.
    pub grace_seconds: u64,
    pub keep_releases: i64,

    pub gateway_image: String,
    /// `host:port` of each nginx upstream server (the compose service).
    pub upstream_servers: Vec<String>,
    /// `(name, host:port)` of each deploy gateway (HAProxy) server: the
    /// service when rendering files, the release's replicas when deploying.
    pub gateway_servers: Vec<(String, String)>,
    /// `host[:port]` that plain HTTP redirects to: the first configured
    /// name (never the client's Host header) and the HTTPS port.
    pub redirect_authority: String,
    pub body_size_bytes: u64,
    /// Networks allowed to read the metrics path through a gateway or the Ingress.
    pub metrics_allow: Vec<String>,
    /// The health and metrics paths: what probes that come by address may read.
    pub probe_paths: Vec<String>,
    /// The security headers every gateway adds to its answers (name, value).
    pub response_headers: Vec<(String, String)>,
    /// Their names, comma-separated (ingress-nginx's allow list).
    pub response_header_names: String,
    /// The ingress-nginx annotation for the rate (`limit-rps` or `limit-rpm`) and its value.
    pub ingress_rate_key: &'static str,
    pub ingress_rate: u64,
    /// ingress-nginx allows `rate * multiplier` as the burst.
    pub ingress_burst_multiplier: u64,
    /// The deploy gateway's rate limit, as nginx's `rate` with `burst`: a
    /// sliding window and the requests it allows (rate times window, plus
    /// the burst), and within any second at most the burst plus one
    /// second's rate (`burst_allowance`), as nginx's bucket admits.
    pub rate_window: String,
    pub rate_allowance: u64,
    pub burst_allowance: u64,
    /// A request body without a length (chunked) is read into the gateway
    /// up to `gateway.body_size` and held to it (a limit above 1 MiB: such
    /// bodies are refused with 411), in buffers of `gateway_bufsize` bytes.
    pub chunked_body_check: bool,
    pub gateway_bufsize: u64,
    pub server_names: String,
    pub gateway_port: i64,
    pub rate_limit: String,
    pub burst: i64,
    /// `gateway.log_sample`: 1 logs every request.
    pub log_sample: i64,
    pub body_size: String,
    pub connect_timeout: String,
    pub read_timeout: String,
    pub send_timeout: String,
    pub tls: bool,
    pub tls_redirect: bool,
    pub tls_port: i64,
    pub tls_certificate: String,
    pub tls_certificate_key: String,
    pub tls_dir: String,
    pub hsts_seconds: u64,
    /// TLS 1.2 suites of Mozilla's "intermediate" profile: forward secret, AEAD.
    pub tls_ciphers: &'static str,

    pub namespace: String,
    pub instance: String,
    pub service_port: i64,
    /// `kubernetes.version`, and the API versions it chooses.
    pub k8s_version: String,
    pub hpa_api: &'static str,
    pub pdb_api: &'static str,
    /// Pod Security admission labels (Kubernetes 1.23 and later).
    pub pod_security: bool,
    /// `unhealthyPodEvictionPolicy` (beta and on by default from 1.27).
    pub pdb_evicts_unhealthy: bool,
    /// `kubernetes.cluster_ip`, or empty.
    pub cluster_ip: String,
    /// `progressDeadlineSeconds`: `deploy.health_timeout`, the rollout gate.
    pub progress_deadline_seconds: u64,
    pub ingress: bool,
    pub ingress_host: String,
    pub ingress_class: String,
    pub ingress_tls_secret: String,
    pub pdb: bool,
    pub pdb_min_available: i64,
    pub network_policy: bool,
    pub ingress_namespace: String,
    pub monitoring_namespace: String,

    pub prometheus: bool,
    pub grafana: bool,
    pub prometheus_image: String,
    pub grafana_image: String,
    pub scrape_interval: String,
    /// Where Prometheus sends alerts: the stack's Alertmanager, then `monitoring.alertmanagers`.
    pub alert_targets: Vec<String>,
    /// Prometheus joins the egress network: it sends to Alertmanagers outside the stack.
    pub prometheus_egress: bool,
    /// The stack runs an Alertmanager.
    pub alertmanager: bool,
    pub alertmanager_image: String,
    /// Its receiver: Slack (the URL from the credential file) or a webhook.
    pub alertmanager_slack: bool,
    pub alertmanager_slack_channel: String,
    pub alertmanager_webhook_url: String,
    /// The host file its credential is read from (a compose secret); `None`
    /// for a webhook without a token.
    pub alertmanager_credential: Option<String>,
    pub alertmanager_group_wait: String,
    pub alertmanager_repeat_interval: String,
    /// The compose file has a top-level `secrets:` block.
    pub compose_secrets: bool,
    pub alert_error_rate: String,
    pub alert_p95_seconds: String,
    pub alert_for: String,
    pub alert_down_for: String,
}

/// The port the stack's Alertmanager listens on.
pub const ALERTMANAGER_PORT: u16 = 9093;

/// The largest `gateway.body_size` the deploy gateway reads a chunked body
/// into memory to check; above it, a body must say its length.
const CHUNKED_BODY_MAX: u64 = 1 << 20;

/// The security headers every gateway (nginx, HAProxy, the Ingress) adds.
pub const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("Cross-Origin-Resource-Policy", "same-origin"),
];

/// Mozilla "intermediate" TLS 1.2 suites (ECDHE and DHE, AEAD only): every
/// gateway uses this one list.
pub const TLS12_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

impl Ctx {
    pub fn new(loaded: &Loaded) -> Ctx {
        let k8s_minor = loaded.typed.kubernetes_minor;
        let c = &loaded.config;
        let t = &loaded.typed;
        let environment = loaded.environment.clone().unwrap_or_else(|| "ci".into());
        let mut env: Vec<(String, String)> = vec![
            ("HOST".into(), "0.0.0.0".into()),
            ("PORT".into(), c.app.port.to_string()),
            // The service finishes in-flight requests within the drain timeout;
            // the platform's stop grace period (drain + 10 s) is longer.
            (
                "SHUTDOWN_GRACE_SECONDS".into(),
                seconds(t.drain_timeout).to_string(),
            ),
        ];
        env.retain(|(k, _)| !c.env.contains_key(k));
        env.extend(c.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env.sort();
        let drain = seconds(t.drain_timeout);
        let delay = t.shutdown_delay.as_secs();
        let mut service_env: Vec<(String, String)> = vec![
            ("SHUTDOWN_DELAY_SECONDS".into(), delay.to_string()),
            // Counted from SIGTERM: the delay, then the drain.
            ("SHUTDOWN_GRACE_SECONDS".into(), (delay + drain).to_string()),
        ];
        service_env.retain(|(k, _)| !c.env.contains_key(k));
        service_env.extend(
            env.iter()
                .filter(|(k, _)| !service_env.iter().any(|(s, _)| s == k))
                .cloned()
                .collect::<Vec<_>>(),
        );
        service_env.sort();
        let config_env = service_env
            .iter()
            .filter(|(k, _)| k != "HOST" && k != "PORT")
            .cloned()
            .collect();
        let (ingress_rate_key, ingress_rate, ingress_burst_multiplier) =
            ingress_rate(t.rate_limit, c.gateway.burst);
        let secrets: Vec<SecretView> = c
            .secrets
            .iter()
            .map(|(name, reference)| {
                let (kind, target) = reference.split_once(':').unwrap_or(("env", reference));
                SecretView {
                    name: name.clone(),
                    from_env: (kind == "env").then(|| target.to_string()),
                    from_file: (kind == "file").then(|| target.to_string()),
                    file_name: crate::secrets::file_name(name),
                }
            })
            .collect();
        let has_file_secrets = secrets.iter().any(|s| s.from_file.is_some());
        let am = &c.monitoring.alertmanager;
        let credential = if am.slack_url.is_empty() {
            &am.webhook_token
        } else {
            &am.slack_url
        };
        let alertmanager_credential = credential
            .strip_prefix("file:")
            .map(|path| path.to_string());
        let tls_dir = std::path::Path::new(&c.gateway.tls.certificate)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        Ctx {
            sources: loaded.files.join(" + "),
            instance: format!("{}-{environment}", c.app.name),
            environment: environment.clone(),
            app_name: c.app.name.clone(),
            description: c.app.description.clone(),
            version: loaded.version.clone(),
            source_url: c.app.source_url.clone(),
            package: c.app.package.clone(),
            args_json: json_array(&c.app.args),
            healthcheck_json: json_array(&if c.app.healthcheck.is_empty() {
                default_healthcheck(c.build.kind, &c.app.health_path)
            } else {
                c.app.healthcheck.clone()
            }),
            processes: processes(loaded, delay + drain + 10),
            port: c.app.port,
            health_path: c.app.health_path.clone(),
            readiness_path: c.app.readiness_path.clone(),
            metrics_path: c.app.metrics_path.clone(),
            image_ref: loaded.image_ref(),
            kind: c.build.kind.name(),
            renders_dockerfile: c.build.kind.bases().is_some(),
            renders_prebuilt: c.build.kind == BuildKind::Rust,
            python_requirements: c.build.requirements.clone(),
            go_vendor: c.build.vendor,
            image_healthcheck: !c.app.healthcheck.is_empty()
                || matches!(c.build.kind, BuildKind::Python | BuildKind::Node),
            compose_builds: c.build.kind != BuildKind::Image,
            compose_context: match c.build.kind {
                BuildKind::Dockerfile if c.build.context.trim_end_matches('/') != "." => {
                    format!("../../{}", c.build.context.trim_end_matches('/'))
                }
                _ => "../..".into(),
            },
            compose_dockerfile: match c.build.kind {
                BuildKind::Dockerfile => {
                    let context = c.build.context.trim_end_matches('/');
                    if context == "." {
                        c.build.dockerfile.clone()
                    } else {
                        c.build
                            .dockerfile
                            .strip_prefix(&format!("{context}/"))
                            .unwrap_or(&c.build.dockerfile)
                            .to_string()
                    }
                }
                _ => format!("generated/{environment}/Dockerfile"),
            },
            build_target: match c.build.kind {
                BuildKind::Dockerfile => c.build.target.clone(),
                _ => String::new(),
            },
            image_pinned: if c.image.digest.is_empty() || loaded.image_ref().contains('@') {
                loaded.image_ref()
            } else {
                format!("{}@{}", loaded.image_ref(), c.image.digest)
            },
            pull_policy: if c.image.digest.is_empty() && !loaded.image_ref().contains('@') {
                "Always"
            } else {
                "IfNotPresent"
            },
            builder: c.image.builder.clone(),
            runtime: c.image.runtime.clone(),
            runtime_is_scratch: c.image.runtime == "scratch",
            rust_target: rust_target(&c.image.platform).into(),
            platform: c.image.platform.clone(),
            user: c.image.user,
            build_args: c
                .image
                .build_args
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            env,
            service_env,
            config_env,
            has_secrets: !secrets.is_empty(),
            has_file_secrets,
            secrets,
            replicas: c.replicas,
            cpu_request: c.resources.requests.cpu.clone(),
            cpu_limit: c.resources.limits.cpu.clone(),
            memory_request: c.resources.requests.memory.clone(),
            memory_limit: c.resources.limits.memory.clone(),
            compose_cpu_limit: compose_cpus(t.cpu_limit_millis),
            compose_cpu_request: compose_cpus(t.cpu_request_millis),
            compose_memory_limit: compose_memory(t.memory_limit),
            compose_memory_request: compose_memory(t.memory_request),
            autoscaling: c.autoscaling.enabled,
            autoscaling_min: c.autoscaling.min,
            autoscaling_max: c.autoscaling.max,
            cpu_target: c.autoscaling.cpu_target,
            target: match c.deploy.target {
                Target::Docker => "docker".into(),
                Target::Kubernetes => "kubernetes".into(),
            },
            strategy: match c.deploy.strategy {
                Strategy::Rolling => "rolling".into(),
                Strategy::BlueGreen => "blue-green".into(),
                Strategy::Canary => "canary".into(),
            },
            drain_seconds: drain,
            grace_seconds: delay + drain + 10,
            keep_releases: c.deploy.keep_releases,
            gateway_image: c.gateway.image.clone(),
            upstream_servers: vec![format!("{}:{}", c.app.name, c.app.port)],
            gateway_servers: vec![(c.app.name.clone(), format!("{}:{}", c.app.name, c.app.port))],
            redirect_authority: redirect_authority(&c.gateway.server_names, c.gateway.tls.port),
            metrics_allow: c.gateway.metrics_allow.clone(),
            response_headers: SECURITY_HEADERS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            response_header_names: SECURITY_HEADERS
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .join(","),
            probe_paths: vec![c.app.health_path.clone(), c.app.metrics_path.clone()],
            ingress_rate_key,
            ingress_rate,
            ingress_burst_multiplier,
            body_size_bytes: t.body_size_bytes,
            rate_window: rate_window(t.rate_limit).0.into(),
            rate_allowance: rate_window(t.rate_limit).1 + c.gateway.burst.max(0) as u64,
            burst_allowance: per_second(t.rate_limit) + c.gateway.burst.max(0) as u64,
            chunked_body_check: t.body_size_bytes <= CHUNKED_BODY_MAX,
            gateway_bufsize: if t.body_size_bytes <= CHUNKED_BODY_MAX {
                (t.body_size_bytes + 16_384).max(16_384).div_ceil(1024) * 1024
            } else {
                16_384
            },
            server_names: c.gateway.server_names.join(" "),
            gateway_port: c.gateway.port,
            rate_limit: c.gateway.rate_limit.clone(),
            burst: c.gateway.burst,
            log_sample: c.gateway.log_sample,
            body_size: c.gateway.body_size.clone(),
            connect_timeout: short_duration(t.gateway_connect_timeout),
            read_timeout: short_duration(t.gateway_read_timeout),
            send_timeout: short_duration(t.gateway_send_timeout),
            tls: c.gateway.tls.enabled,
            tls_redirect: c.gateway.tls.enabled && c.gateway.tls.redirect_http,
            tls_port: c.gateway.tls.port,
            tls_certificate: c.gateway.tls.certificate.clone(),
            tls_certificate_key: c.gateway.tls.certificate_key.clone(),
            tls_dir,
            hsts_seconds: t.hsts_max_age.map_or(0, |d| d.as_secs()),
            tls_ciphers: TLS12_CIPHERS,
            namespace: c.kubernetes.namespace.clone(),
            service_port: c.kubernetes.service_port,
            k8s_version: c.kubernetes.version.clone(),
            hpa_api: if k8s_minor >= 23 {
                "autoscaling/v2"
            } else {
                "autoscaling/v2beta2"
            },
            pdb_api: if k8s_minor >= 21 {
                "policy/v1"
            } else {
                "policy/v1beta1"
            },
            pod_security: k8s_minor >= 23,
            pdb_evicts_unhealthy: k8s_minor >= 27,
            cluster_ip: c.kubernetes.cluster_ip.clone(),
            progress_deadline_seconds: seconds(t.health_timeout),
            ingress: c.kubernetes.ingress.enabled,
            ingress_host: c.kubernetes.ingress.host.clone(),
            ingress_class: c.kubernetes.ingress.class.clone(),
            ingress_tls_secret: c.kubernetes.ingress.tls_secret.clone(),
            pdb: c.kubernetes.pdb.enabled,
            pdb_min_available: c.kubernetes.pdb.min_available,
            network_policy: c.kubernetes.network_policy.enabled,
            ingress_namespace: c.kubernetes.network_policy.ingress_namespace.clone(),
            monitoring_namespace: c.kubernetes.network_policy.monitoring_namespace.clone(),
            prometheus: c.monitoring.prometheus,
            grafana: c.monitoring.grafana,
            prometheus_image: c.monitoring.prometheus_image.clone(),
            grafana_image: c.monitoring.grafana_image.clone(),
            scrape_interval: short_duration(t.scrape_interval),
            alert_targets: am
                .runs()
                .then(|| format!("alertmanager:{}", ALERTMANAGER_PORT))
                .into_iter()
                .chain(c.monitoring.alertmanagers.iter().cloned())
                .collect(),
            prometheus_egress: !c.monitoring.alertmanagers.is_empty(),
            alertmanager: c.monitoring.prometheus && am.runs(),
            alertmanager_image: am.image.clone(),
            alertmanager_slack: !am.slack_url.is_empty(),
            alertmanager_slack_channel: am.slack_channel.clone(),
            alertmanager_webhook_url: am.webhook_url.clone(),
            alertmanager_credential: alertmanager_credential.clone(),
            alertmanager_group_wait: short_duration(t.alertmanager_group_wait),
            alertmanager_repeat_interval: short_duration(t.alertmanager_repeat_interval),
            compose_secrets: has_file_secrets || alertmanager_credential.is_some(),
            alert_error_rate: format!("{}", c.monitoring.alerts.error_rate),
            alert_p95_seconds: format!("{}", t.alert_p95_latency.as_secs_f64()),
            alert_for: short_duration(t.alert_for),
            alert_down_for: short_duration(t.alert_instance_down_for),
        }
    }

    /// Fills `$APP`, `$ENV`, `$JOB` (a PromQL job matcher), `$ERROR_PERCENT` and `$P95` into a text.
    pub fn fill(&self, template: &str) -> String {
        let percent = self
            .alert_error_rate
            .parse::<f64>()
            .map_or(0.0, |r| r * 100.0);
        template
            .replace("$APP", &self.app_name)
            .replace("$ENV", &self.environment)
            .replace("$NS", &self.namespace)
            .replace("$JOB", &format!("job=\"{}\"", self.app_name))
            .replace(
                "$ERROR_PERCENT",
                &format!("{}", (percent * 1000.0).round() / 1000.0),
            )
            .replace("$P95", &self.alert_p95_seconds)
    }

    /// Fills `$NAME` (the variable) and `$FILE` (the mounted file name) of a secret into a text.
    pub fn secret(&self, secret: &SecretView, template: &str) -> String {
        template
            .replace("$NAME", &secret.name)
            .replace("$FILE", &secret.file_name)
    }

    /// A YAML scalar (see [`escape::yaml`]).
    pub fn y(&self, s: impl AsRef<str>) -> String {
        escape::yaml(s.as_ref())
    }

    /// A docker-compose YAML scalar (see [`escape::compose`]).
    pub fn cy(&self, s: impl AsRef<str>) -> String {
        escape::compose(s.as_ref())
    }

    /// A JSON string.
    pub fn j(&self, s: impl AsRef<str>) -> String {
        escape::json(s.as_ref())
    }

    /// The `app.kubernetes.io/*` labels, indented for a metadata block.
    pub fn labels(&self, indent: usize) -> String {
        self.label_lines(&self.app_name, "api", None, indent)
    }

    fn label_lines(
        &self,
        name: &str,
        component: &str,
        role: Option<&str>,
        indent: usize,
    ) -> String {
        let pad = " ".repeat(indent);
        [
            ("app.kubernetes.io/name", name),
            ("app.kubernetes.io/instance", self.instance.as_str()),
            ("app.kubernetes.io/version", self.version.as_str()),
            ("app.kubernetes.io/component", component),
            ("app.kubernetes.io/part-of", self.app_name.as_str()),
            ("app.kubernetes.io/managed-by", "shipit"),
        ]
        .into_iter()
        .chain(role.map(|r| (crate::kube::manifests::ROLE_LABEL, r)))
        .map(|(k, v)| format!("{pad}{k}: {}", escape::yaml(v)))
        .collect::<Vec<_>>()
        .join("\n")
    }

    /// The stable selector labels (never the version: selectors are immutable).
    /// A Deployment's labels: the service's for web; a role's pods are
    /// named `APP-ROLE` (so the Service never selects them) and carry
    /// `shipit.dev/role`.
    pub fn process_labels(&self, p: &ProcessView, indent: usize) -> String {
        if p.web {
            return self.labels(indent);
        }
        self.label_lines(&p.service, &p.role, Some(&p.role), indent)
    }

    /// A Deployment's selector: the service's for web, `APP-ROLE` for a role.
    pub fn process_selector(&self, p: &ProcessView, indent: usize) -> String {
        let pad = " ".repeat(indent);
        format!(
            "{pad}app.kubernetes.io/name: {}\n{pad}app.kubernetes.io/instance: {}",
            escape::yaml(&p.service),
            escape::yaml(&self.instance)
        )
    }

    pub fn selector(&self, indent: usize) -> String {
        let pad = " ".repeat(indent);
        format!(
            "{pad}app.kubernetes.io/name: {}\n{pad}app.kubernetes.io/instance: {}",
            escape::yaml(&self.app_name),
            escape::yaml(&self.instance)
        )
    }
}

/// The web role (the service) and each `[roles.NAME]`, as compose runs them.
/// `$` is doubled: compose would otherwise interpolate it.
fn processes(loaded: &Loaded, web_grace: u64) -> Vec<ProcessView> {
    let c = &loaded.config;
    let compose =
        |items: &[String]| -> Vec<String> { items.iter().map(|i| i.replace('$', "$$")).collect() };
    let check = |items: &[String]| {
        if items.is_empty() {
            String::new()
        } else {
            json_array(&compose(
                &[vec!["CMD".to_string()], items.to_vec()].concat(),
            ))
        }
    };
    let mut all = vec![ProcessView {
        web: true,
        role: "web".into(),
        service: c.app.name.clone(),
        entrypoint_json: String::new(),
        healthcheck_json: check(&c.app.healthcheck),
        replicas: c.replicas,
        grace_seconds: web_grace,
        command_json: String::new(),
        probe_json: String::new(),
        probe_period_seconds: 0,
        min_ready_seconds: 0,
    }];
    let interval = seconds(loaded.typed.health_interval).max(1);
    all.extend(c.roles.iter().map(|(name, role)| {
        ProcessView {
            web: false,
            role: name.clone(),
            service: format!("{}-{name}", c.app.name),
            entrypoint_json: json_array(&compose(&role.cmd)),
            healthcheck_json: check(&role.healthcheck),
            replicas: role.replicas,
            grace_seconds: loaded
                .typed
                .role_stop_grace
                .get(name)
                .map_or(web_grace, |d| seconds(*d)),
            command_json: json_array(&role.cmd),
            probe_json: if role.healthcheck.is_empty() {
                String::new()
            } else {
                json_array(&role.healthcheck)
            },
            probe_period_seconds: interval,
            min_ready_seconds: if role.healthcheck.is_empty() {
                3 * interval
            } else {
                0
            },
        }
    }));
    all
}
