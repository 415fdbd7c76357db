//! The resolved, fully typed configuration of one environment.
//!
//! `Default` is the first configuration layer: what applies when neither the
//! shared base file nor the environment file says otherwise. Field names are
//! the TOML keys; every struct is `#[serde(default)]` so a missing key means
//! "inherit", never an error. Values whose syntax matters (durations, sizes,
//! image references) stay strings here, as written (generated files and
//! messages quote them), are checked in `validate` and parsed once into
//! `typed`.
//!
//! Over 500 lines on purpose: this file is the configuration's schema, one
//! struct per TOML table with its defaults beside it, read as a whole (the
//! README's reference follows it table by table).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Config {
    pub app: App,
    pub build: Build,
    pub image: Image,
    /// Runtime environment variables (plain values, never secrets).
    pub env: BTreeMap<String, String>,
    /// Secrets as references only: `env:NAME` or `file:/abs/path`.
    pub secrets: BTreeMap<String, String>,
    pub replicas: i64,
    pub resources: Resources,
    pub autoscaling: Autoscaling,
    pub deploy: Deploy,
    pub gateway: Gateway,
    pub kubernetes: Kubernetes,
    pub monitoring: Monitoring,
    pub smoke: Smoke,
    pub ci: Ci,
    /// Services the application uses beside it (a database, a cache), by
    /// name: booted once, kept across deploys, never restarted by one.
    pub accessories: BTreeMap<String, Accessory>,
    /// Processes of the release's image that serve no HTTP (queue workers),
    /// by name: started, gated and switched with the web replicas.
    pub roles: BTreeMap<String, Role>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct App {
    pub name: String,
    pub description: String,
    /// The port the service listens on inside its container.
    pub port: i64,
    pub health_path: String,
    pub readiness_path: String,
    pub metrics_path: String,
    /// Where the version comes from: the `version` of a Cargo manifest, or `app.version`.
    pub version_source: VersionSource,
    pub manifest: String,
    pub version: String,
    /// The Cargo package (and binary) to build and ship; for `build.kind =
    /// "go"`, the main package (`.` or `./cmd/NAME`; empty: `.`).
    pub package: String,
    /// Source repository URL, for the `org.opencontainers.image.source` label.
    pub source_url: String,
    /// Arguments given to the service's entrypoint (the image's CMD); empty: none.
    pub args: Vec<String>,
    /// A command the engine runs inside the container as its health check
    /// (exec form, no shell), when the image has one; empty: health comes
    /// from `health_path` over HTTP only (through the gateway, or probes).
    pub healthcheck: Vec<String>,
}

impl Default for App {
    fn default() -> Self {
        App {
            name: String::new(),
            description: String::new(),
            port: 8080,
            health_path: "/health".into(),
            readiness_path: "/ready".into(),
            metrics_path: "/metrics".into(),
            version_source: VersionSource::Cargo,
            manifest: "Cargo.toml".into(),
            version: String::new(),
            package: String::new(),
            source_url: String::new(),
            args: Vec::new(),
            healthcheck: Vec::new(),
        }
    }
}

/// What gets built, and from what.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Build {
    pub kind: BuildKind,
    /// `dockerfile`: the Dockerfile, relative to the project.
    pub dockerfile: String,
    /// `dockerfile`: the build context, relative to the project.
    pub context: String,
    /// `dockerfile`: the stage to build; empty: the last one.
    pub target: String,
    /// `image`: the reference to deploy, by tag and/or digest (nothing is built).
    pub image: String,
    /// `python`: the requirements file pip installs; empty: the project itself (`pip install .`).
    pub requirements: String,
    /// `go`: the module is vendored (`go mod vendor`): the build uses
    /// `vendor/` and downloads nothing.
    pub vendor: bool,
}

impl Default for Build {
    fn default() -> Self {
        Build {
            kind: BuildKind::Rust,
            dockerfile: "Dockerfile".into(),
            context: ".".into(),
            target: String::new(),
            image: String::new(),
            requirements: "requirements.txt".into(),
            vendor: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum BuildKind {
    /// A Cargo binary package: shipit renders the Dockerfile.
    Rust,
    /// The project's own Dockerfile: shipit renders none.
    Dockerfile,
    /// A prebuilt image: nothing is built.
    Image,
    /// A Python service: shipit renders the Dockerfile (pip, then the sources).
    Python,
    /// A Node.js service: shipit renders the Dockerfile (`npm ci`, then the sources).
    Node,
    /// A Go module: shipit renders the Dockerfile (a static binary on scratch).
    Go,
}

impl BuildKind {
    pub fn name(self) -> &'static str {
        match self {
            BuildKind::Rust => "rust",
            BuildKind::Dockerfile => "dockerfile",
            BuildKind::Image => "image",
            BuildKind::Python => "python",
            BuildKind::Node => "node",
            BuildKind::Go => "go",
        }
    }

    /// The pinned builder and runtime bases shipit's Dockerfile starts from.
    pub fn bases(self) -> Option<(&'static str, &'static str)> {
        match self {
            BuildKind::Rust => Some(("rust:1.95.0-slim-bookworm", "scratch")),
            BuildKind::Python => Some(("python:3.11-slim-bookworm", "python:3.11-slim-bookworm")),
            BuildKind::Node => Some(("node:20-bookworm-slim", "node:20-bookworm-slim")),
            BuildKind::Go => Some(("golang:1.23.4-bookworm", "scratch")),
            BuildKind::Dockerfile | BuildKind::Image => None,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum VersionSource {
    Cargo,
    Config,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Image {
    /// Registry host, with an optional port: `ghcr.io`, `127.0.0.1:5000`.
    pub registry: String,
    pub repository: String,
    /// Overrides the tag (the version by default); CI sets it with `--set image.tag=...`.
    pub tag: String,
    /// Builder base image, pinned by tag and optionally by digest.
    pub builder: String,
    /// Runtime base image: `scratch` or a pinned reference.
    pub runtime: String,
    pub platform: String,
    /// Numeric, non-root user the service runs as.
    pub user: i64,
    pub build_args: BTreeMap<String, String>,
    /// The digest `shipit build --push` reported (`sha256:...`): the
    /// Kubernetes manifests then pin the image by it. Empty: by tag only
    /// (pulled on every start, `imagePullPolicy: Always`).
    pub digest: String,
    /// The ECDSA P-256 PKCS#8 PEM key `shipit build --push --sign` signs
    /// with: a secret reference (`env:NAME`, `file:/path`), never the key.
    pub signing_key: String,
    /// The public key (PEM, or a reference to it) `shipit verify` checks
    /// signatures with.
    pub verify_key: String,
}

impl Default for Image {
    fn default() -> Self {
        Image {
            registry: "127.0.0.1:5000".into(),
            repository: String::new(),
            tag: String::new(),
            builder: String::new(),
            runtime: String::new(),
            platform: "linux/amd64".into(),
            user: 10001,
            build_args: BTreeMap::new(),
            digest: String::new(),
            signing_key: String::new(),
            verify_key: String::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Resources {
    pub requests: Quantities,
    pub limits: Quantities,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Quantities {
    /// Kubernetes CPU quantity: `250m`, `1`, `0.5`.
    pub cpu: String,
    /// Kubernetes memory quantity: `64Mi`, `1Gi`.
    pub memory: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Autoscaling {
    pub enabled: bool,
    pub min: i64,
    pub max: i64,
    /// Average CPU utilisation target, percent of requests.
    pub cpu_target: i64,
}

impl Default for Autoscaling {
    fn default() -> Self {
        Autoscaling {
            enabled: false,
            min: 1,
            max: 1,
            cpu_target: 70,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Deploy {
    pub target: Target,
    pub strategy: Strategy,
    /// How long a new release may take to report healthy.
    pub health_timeout: String,
    /// How long smoke tests may retry before the release is rolled back.
    pub smoke_timeout: String,
    /// How long the old release drains in-flight requests before it stops.
    pub drain_timeout: String,
    /// How long a stopping replica keeps accepting requests after SIGTERM
    /// while endpoints and gateways stop sending it traffic (compose and
    /// Kubernetes; `shipit deploy` switches its gateway first).
    pub shutdown_delay: String,
    /// How many previous releases are kept (stopped) for rollback.
    pub keep_releases: i64,
    /// How long a Docker host's lock outlives its holder's last heartbeat
    /// (the engine's clock): then another run may take it over.
    pub lock_lease: String,
    /// How often the engine runs a new container's health check while shipit waits.
    pub health_interval: String,
    /// Where deploy, rollback and failure notices are POSTed: a secret
    /// reference (`env:NAME` or `file:/path`) to the URL; empty for none.
    pub webhook: String,
    /// The HAProxy image of the deploy gateway (`shipit image gateway` makes it offline).
    pub gateway_image: String,
    /// The Debian package versions the gateway image is made from: `shipit
    /// image gateway` refuses others, labels the image with them, and a
    /// deploy refuses a gateway image that holds others.
    pub gateway_packages: GatewayPackages,
    /// The Docker hosts to deploy to; empty: the engine of `DOCKER_HOST`
    /// (or the local socket). All of them switch together or none does.
    pub hosts: Vec<Host>,
    /// How images reach the hosts: pulled from `image.registry`, or streamed
    /// from the engine they were built on.
    pub transfer: Transfer,
    /// A command (exec form) run once per deploy from the new image, with the
    /// service's environment and secrets, before any new replica takes
    /// traffic (migrations); empty: none. A rollback does not run it.
    pub release_command: Vec<String>,
    /// How long the release command may run before the deploy stops.
    pub release_timeout: String,
}

/// `[accessories.NAME]`: a service beside the application (a database, a
/// cache), reachable on the environment's network by `NAME`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Accessory {
    /// The image, pinned (`NAME:TAG[@sha256:DIGEST]`).
    pub image: String,
    /// Which of `deploy.hosts` run it (their `engine` or `address`); empty:
    /// the first of them (or the one engine without them).
    pub hosts: Vec<String>,
    /// The port it listens on, on the environment's network (0: none said).
    pub port: i64,
    /// `"IP:PORT"` on the host where `port` is published; empty: not published.
    pub publish: String,
    /// The container's user (`uid[:gid]` or a name in the image); empty: the image's.
    pub user: String,
    pub env: BTreeMap<String, String>,
    /// References, delivered as files in `/run/secrets` with `NAME_FILE` set.
    pub secrets: BTreeMap<String, String>,
    /// `"VOLUME:/path"`: named volumes that outlive the container.
    pub volumes: Vec<String>,
    /// `"LOCAL:/path"`: small files of the project uploaded before it starts.
    pub files: Vec<String>,
    /// Its command (exec form); empty: the image's.
    pub cmd: Vec<String>,
    /// A health check (exec form) the engine runs; empty: the image's, if any.
    pub healthcheck: Vec<String>,
    pub backup: Backup,
}

/// `[roles.NAME]`: a process of the release's image that serves no HTTP
/// (a queue worker). The web role, the one the gateway serves, is the
/// service itself (`app.args`, `replicas`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Role {
    /// What it runs (exec form), instead of the image's command.
    pub cmd: Vec<String>,
    /// How many run on each host (or pods, on Kubernetes).
    pub replicas: i64,
    /// A health check (exec form) the engine runs; empty: healthy once it
    /// has kept running for three `deploy.health_interval`s.
    pub healthcheck: Vec<String>,
    /// How long it may finish its work after SIGTERM before it is killed;
    /// empty: `deploy.drain_timeout`.
    pub stop_grace: String,
}

impl Default for Role {
    fn default() -> Self {
        Role {
            cmd: Vec::new(),
            replicas: 1,
            healthcheck: Vec::new(),
            stop_grace: String::new(),
        }
    }
}

/// `[accessories.NAME.backup]`: commands run inside the accessory.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Backup {
    /// Writes a dump to its standard output (`["pg_dump", "-Fc", ...]`).
    pub command: Vec<String>,
    /// Reads a dump from its standard input (`["pg_restore", ...]`).
    pub restore: Vec<String>,
}

/// One Docker host: its engine, and where its gateway answers.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Host {
    /// `ssh://[user@]host[:port]`, `tcp://host:port` or `unix:///path`.
    pub engine: String,
    /// Where the gateway's published ports answer, when not at the engine's
    /// host name (an SSH alias, a private network); empty: the engine's host.
    pub address: String,
    /// The client certificates of a `tcp://` engine with TLS (`ca.pem`,
    /// `cert.pem`, `key.pem`), when not in `DOCKER_CERT_PATH`.
    pub cert_path: String,
    /// A `tcp://` engine without TLS is refused (secrets and TLS keys would
    /// cross the network in the clear) unless this says so; warned each run.
    pub insecure: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Transfer {
    /// Each host pulls from the image's registry (credentials passed per pull).
    Pull,
    /// The image is streamed from the building engine to each host: no registry.
    Stream,
}

impl Default for Deploy {
    fn default() -> Self {
        Deploy {
            target: Target::Docker,
            strategy: Strategy::Rolling,
            health_timeout: "60s".into(),
            smoke_timeout: "60s".into(),
            drain_timeout: "10s".into(),
            shutdown_delay: "5s".into(),
            keep_releases: 3,
            lock_lease: "30s".into(),
            health_interval: "1s".into(),
            webhook: String::new(),
            gateway_image: DEPLOY_GATEWAY_IMAGE.into(),
            gateway_packages: GatewayPackages::default(),
            hosts: Vec::new(),
            transfer: Transfer::Pull,
            release_command: Vec::new(),
            release_timeout: "10m".into(),
        }
    }
}

/// The deploy gateway image `shipit image gateway` makes from Debian's HAProxy.
pub const DEPLOY_GATEWAY_IMAGE: &str = "shipit-offline/haproxy:2.6.12-bookworm";

/// The exact Debian package versions (`dpkg-query -W`) of the gateway's
/// HAProxy and socat.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct GatewayPackages {
    pub haproxy: String,
    pub socat: String,
}

impl Default for GatewayPackages {
    fn default() -> Self {
        GatewayPackages {
            haproxy: "2.6.12-1+deb12u4".into(),
            socat: "1.7.4.4-2".into(),
        }
    }
}

impl GatewayPackages {
    /// `(package, version)`, in the order they are installed and labelled.
    pub fn pins(&self) -> [(&'static str, &str); 2] {
        [("haproxy", &self.haproxy), ("socat", &self.socat)]
    }

    /// The upstream version of the pinned HAProxy: `2.6.12` of `2.6.12-1+deb12u4`.
    pub fn haproxy_upstream(&self) -> &str {
        upstream_version(&self.haproxy)
    }
}

/// The HAProxy version an image tag names (`2.6.12` of `2.6.12-bookworm`,
/// `2.6` of `2.6-alpine`): a leading dotted version of two or more numbers;
/// `None` for tags like `1`, `v3` or `stable`.
pub fn tag_version(tag: &str) -> Option<&str> {
    let named = tag.split('-').next().unwrap_or(tag);
    let parts: Vec<&str> = named.split('.').collect();
    (parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
    .then_some(named)
}

/// Whether a tag's version (`2.6`) names the version `2.6.12`.
pub fn tag_names(named: &str, version: &str) -> bool {
    version == named || version.starts_with(&format!("{named}."))
}

/// A Debian version's upstream part: without the epoch and the revision.
pub fn upstream_version(version: &str) -> &str {
    let v = version.split_once(':').map_or(version, |(_, v)| v);
    v.rsplit_once('-').map_or(v, |(u, _)| u)
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    Docker,
    Kubernetes,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    Rolling,
    BlueGreen,
    Canary,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Gateway {
    /// Pinned nginx image for the gateway container (runs as non-root, listens on 8080/8443).
    pub image: String,
    pub server_names: Vec<String>,
    /// Host port the gateway publishes for HTTP.
    pub port: i64,
    /// Requests per client address: `10r/s` or `600r/m`.
    pub rate_limit: String,
    pub burst: i64,
    /// The HAProxy gateway's access log: every request when 1; else 1 in
    /// N of the service's answers below 400, and every other request (an
    /// error answer, one the gateway answered itself, one that failed).
    pub log_sample: i64,
    /// Largest accepted request body: `16k`, `1m`.
    pub body_size: String,
    pub connect_timeout: String,
    pub read_timeout: String,
    pub send_timeout: String,
    /// Client networks (CIDR) that may read the metrics path through the
    /// gateway and the Ingress; everyone else gets 403.
    pub metrics_allow: Vec<String>,
    pub tls: Tls,
}

impl Default for Gateway {
    fn default() -> Self {
        Gateway {
            image: "nginxinc/nginx-unprivileged:1.27.3-alpine".into(),
            server_names: vec!["localhost".into()],
            port: 8080,
            rate_limit: "20r/s".into(),
            burst: 40,
            log_sample: 1,
            body_size: "16k".into(),
            connect_timeout: "5s".into(),
            read_timeout: "30s".into(),
            send_timeout: "30s".into(),
            metrics_allow: [
                "127.0.0.0/8",
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
            ]
            .map(String::from)
            .to_vec(),
            tls: Tls::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Tls {
    pub enabled: bool,
    /// Certificate and key paths as the compose (nginx) gateway sees them.
    pub certificate: String,
    pub certificate_key: String,
    /// Where `shipit deploy` reads the certificate chain and the key: secret
    /// references (`file:/abs/path` or `env:NAME`).
    pub certificate_from: String,
    pub key_from: String,
    /// Answer plain HTTP with a redirect to HTTPS.
    pub redirect_http: bool,
    /// Host port the gateway publishes for HTTPS.
    pub port: i64,
    /// HSTS max-age, sent only when TLS is on.
    pub hsts_max_age: String,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            enabled: false,
            certificate: "/etc/nginx/tls/tls.crt".into(),
            certificate_key: "/etc/nginx/tls/tls.key".into(),
            certificate_from: String::new(),
            key_from: String::new(),
            redirect_http: true,
            port: 8443,
            hsts_max_age: "365d".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Kubernetes {
    pub namespace: String,
    /// The Kubernetes version the manifests are rendered for (it chooses
    /// the API versions) and checked against: `MAJOR.MINOR` or `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// The kubeconfig context `shipit deploy` uses; empty: the current one.
    pub context: String,
    /// The kubectl program `shipit deploy` runs (contexts, auth plugins and
    /// kubeconfig behave as they do for the user).
    pub kubectl: String,
    /// A fixed `spec.clusterIP` for the Service (a stable in-cluster URL); empty: assigned.
    pub cluster_ip: String,
    /// Port of the ClusterIP Service.
    pub service_port: i64,
    /// Where a deploy's smoke suite goes: a ready pod of the new revision
    /// only (`new-pods`, through `kubectl port-forward`), or `smoke.url`
    /// once the replaced pods have stopped (`url`).
    pub smoke: KubeSmoke,
    pub ingress: Ingress,
    pub pdb: Pdb,
    pub network_policy: NetworkPolicy,
}

impl Default for Kubernetes {
    fn default() -> Self {
        Kubernetes {
            namespace: String::new(),
            version: "1.30.0".into(),
            context: String::new(),
            kubectl: "kubectl".into(),
            cluster_ip: String::new(),
            service_port: 80,
            smoke: KubeSmoke::NewPods,
            ingress: Ingress::default(),
            pdb: Pdb::default(),
            network_policy: NetworkPolicy::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum KubeSmoke {
    /// A ready pod of the new revision, through `kubectl port-forward`,
    /// as soon as the rollout gate passes.
    NewPods,
    /// `smoke.url` (the Ingress or Service users reach), once the replaced
    /// pods have stopped.
    Url,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Ingress {
    pub enabled: bool,
    pub host: String,
    pub class: String,
    /// Name of the Secret holding the TLS certificate; empty for no TLS.
    pub tls_secret: String,
}

impl Default for Ingress {
    fn default() -> Self {
        Ingress {
            enabled: true,
            host: String::new(),
            class: "nginx".into(),
            tls_secret: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Pdb {
    pub enabled: bool,
    pub min_available: i64,
}

impl Default for Pdb {
    fn default() -> Self {
        Pdb {
            enabled: false,
            min_available: 1,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct NetworkPolicy {
    pub enabled: bool,
    /// Namespace of the ingress controller allowed to reach the pods.
    pub ingress_namespace: String,
    /// Namespace of the Prometheus allowed to scrape the pods.
    pub monitoring_namespace: String,
}

impl Default for NetworkPolicy {
    fn default() -> Self {
        NetworkPolicy {
            enabled: true,
            ingress_namespace: "ingress-nginx".into(),
            monitoring_namespace: "monitoring".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Monitoring {
    /// Run Prometheus (with the alert rules) in the compose stack.
    pub prometheus: bool,
    /// Run Grafana with a provisioned datasource and dashboard (needs `prometheus`).
    pub grafana: bool,
    pub prometheus_image: String,
    pub grafana_image: String,
    pub scrape_interval: String,
    /// Alertmanagers outside the stack (`host:port`) that Prometheus also
    /// sends its alerts to; Prometheus then joins the stack's egress network.
    pub alertmanagers: Vec<String>,
    /// The Alertmanager the compose stack runs, and its receiver.
    pub alertmanager: Alertmanager,
    pub alerts: Alerts,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring {
            prometheus: false,
            grafana: false,
            prometheus_image: "prom/prometheus:v2.55.1".into(),
            grafana_image: "grafana/grafana:11.3.1".into(),
            scrape_interval: "15s".into(),
            alertmanagers: Vec::new(),
            alertmanager: Alertmanager::default(),
            alerts: Alerts::default(),
        }
    }
}

/// An Alertmanager in the compose stack: it runs when a receiver is set
/// (`slack_url` or `webhook_url`), as nobody, with the receiver's credential
/// given as a file (`/run/secrets/alertmanager-credential`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Alertmanager {
    pub image: String,
    /// Slack's incoming-webhook URL, which is itself the credential: a file
    /// reference (`file:/path` on the Docker host).
    pub slack_url: String,
    /// The Slack channel, or empty for the webhook's own.
    pub slack_channel: String,
    /// Where Alertmanager's webhook JSON is POSTed: a URL without credentials
    /// (they go in `webhook_token`).
    pub webhook_url: String,
    /// The webhook's bearer token: a file reference, or empty for none.
    pub webhook_token: String,
    /// How long the first alert of a group waits for others before it is sent.
    pub group_wait: String,
    /// How often a firing alert is sent again.
    pub repeat_interval: String,
}

impl Default for Alertmanager {
    fn default() -> Self {
        Alertmanager {
            image: "prom/alertmanager:v0.27.0".into(),
            slack_url: String::new(),
            slack_channel: String::new(),
            webhook_url: String::new(),
            webhook_token: String::new(),
            group_wait: "30s".into(),
            repeat_interval: "4h".into(),
        }
    }
}

impl Alertmanager {
    /// Whether the stack runs it: a receiver is set.
    pub fn runs(&self) -> bool {
        !self.slack_url.is_empty() || !self.webhook_url.is_empty()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Alerts {
    /// Fraction of requests answered 5xx that fires `HighErrorRate` (0.05 = 5 %).
    pub error_rate: f64,
    /// p95 request latency that fires `HighLatencyP95`.
    pub p95_latency: String,
    /// How long a condition must hold before an alert fires.
    pub for_duration: String,
    /// How long an instance may be unreachable before `InstanceDown` fires.
    pub instance_down_for: String,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            error_rate: 0.05,
            p95_latency: "500ms".into(),
            for_duration: "5m".into(),
            instance_down_for: "1m".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Smoke {
    /// Base URL the smoke suite tests.
    pub url: String,
    pub timeout: String,
    /// Extra CA certificates the smoke suite trusts: a secret reference, or empty.
    pub ca: String,
    /// The service's own checks, run after the health and readiness paths answer 200.
    pub checks: Vec<SmokeCheck>,
}

impl Default for Smoke {
    fn default() -> Self {
        Smoke {
            url: "http://localhost:8080".into(),
            timeout: "60s".into(),
            ca: String::new(),
            checks: Vec::new(),
        }
    }
}

/// One request of the smoke suite and what its answer must be.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct SmokeCheck {
    /// How reports name it (unique).
    pub name: String,
    pub method: String,
    /// Path and query, from the service's root: `/calculate`, `/items?limit=1`.
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// The expected status code.
    pub status: i64,
    /// Texts the body must contain.
    pub contains: Vec<String>,
    /// JSON pointer (`/result`, `/items/0/id`) -> the value it must hold.
    pub json: BTreeMap<String, serde_json::Value>,
    /// A regular expression the body must match (`(?m)^name ` for a line start).
    pub regex: String,
    /// The longest the answer may take; empty: no limit.
    pub max_latency: String,
}

impl Default for SmokeCheck {
    fn default() -> Self {
        SmokeCheck {
            name: String::new(),
            method: "GET".into(),
            path: String::new(),
            headers: BTreeMap::new(),
            body: String::new(),
            status: 200,
            contains: Vec::new(),
            json: BTreeMap::new(),
            regex: String::new(),
            max_latency: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Ci {
    pub runner: String,
    pub rust_toolchain: String,
    pub main_branch: String,
    /// Minutes a job may run before it is cancelled.
    pub timeout_minutes: i64,
    /// Environments the deploy workflow rolls out, in order (each waits for the one before).
    pub deploy_environments: Vec<String>,
    /// How the release workflow builds the image (`shipit build --mode`).
    pub build_mode: CiBuildMode,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CiBuildMode {
    /// The Dockerfile's builder stage compiles the service.
    #[default]
    Source,
    /// A static binary compiled on the runner, packaged FROM scratch.
    Prebuilt,
}

impl Default for Ci {
    fn default() -> Self {
        Ci {
            runner: "ubuntu-24.04".into(),
            rust_toolchain: "1.95.0".into(),
            main_branch: "main".into(),
            timeout_minutes: 30,
            deploy_environments: vec!["staging".into(), "production".into()],
            build_mode: CiBuildMode::Source,
        }
    }
}

impl Config {
    /// Fills what defaults to the kind of build (the base images) and to the
    /// application's name (left empty by every layer): the Cargo package, the
    /// image repository, the Kubernetes namespace and the Ingress host
    /// (`NAME.localhost`).
    pub fn fill_from_name(&mut self) {
        if let Some((builder, runtime)) = self.build.kind.bases() {
            if self.image.builder.is_empty() {
                self.image.builder = builder.into();
            }
            if self.image.runtime.is_empty() {
                self.image.runtime = runtime.into();
            }
        }
        if self.build.kind == BuildKind::Go && self.app.package.is_empty() {
            self.app.package = ".".into();
        }
        let name = self.app.name.clone();
        if name.is_empty() {
            return;
        }
        for (value, default) in [
            (&mut self.app.package, name.clone()),
            (&mut self.image.repository, name.clone()),
            (&mut self.kubernetes.namespace, name.clone()),
            (
                &mut self.kubernetes.ingress.host,
                format!("{name}.localhost"),
            ),
        ] {
            if value.is_empty() {
                *value = default;
            }
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            app: App::default(),
            build: Build::default(),
            image: Image::default(),
            env: BTreeMap::new(),
            secrets: BTreeMap::new(),
            replicas: 1,
            resources: Resources {
                requests: Quantities {
                    cpu: "50m".into(),
                    memory: "32Mi".into(),
                },
                limits: Quantities {
                    cpu: "500m".into(),
                    memory: "128Mi".into(),
                },
            },
            autoscaling: Autoscaling::default(),
            deploy: Deploy::default(),
            gateway: Gateway::default(),
            kubernetes: Kubernetes::default(),
            monitoring: Monitoring::default(),
            smoke: Smoke::default(),
            ci: Ci::default(),
            accessories: BTreeMap::new(),
            roles: BTreeMap::new(),
        }
    }
}
