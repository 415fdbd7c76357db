//! The view the CI workflow templates read.

use crate::config::Loaded;
use crate::config::model::{CiBuildMode, Transfer};

use super::escape;

/// Third-party actions, pinned by full commit SHA (the tag they were taken from in the comment).
pub const CHECKOUT: &str = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2";
pub const SETUP_PYTHON: &str =
    "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0";
pub const RUST_TOOLCHAIN: &str =
    "dtolnay/rust-toolchain@3c5f7ea28cd621ae0bf5283f0e981fb97b8a7af9 # master, 2026-05";
pub const RUST_CACHE: &str =
    "Swatinem/rust-cache@98c8021b550208e191a6a3145459bfc9fb29c4c0 # v2.8.0";

pub struct CiCtx {
    pub sources: String,
    pub runner: String,
    pub rust_toolchain: String,
    pub main_branch: String,
    pub kubernetes_version: String,
    pub timeout_minutes: i64,
    /// Every environment, for `render --check`.
    pub environments: Vec<String>,
    /// What each deploy job needs, in `ci.deploy_environments`' order.
    pub deploy_jobs: Vec<DeployJob>,
    /// `image.registry` is this machine's loopback, which a runner cannot
    /// share with the hosts: CI pushes to ghcr.io/OWNER/REPO with GITHUB_TOKEN.
    pub ghcr: bool,
    /// The registry credentials CI passes (expressions).
    pub registry_username: String,
    pub registry_password: String,
    /// ` --mode prebuilt` when `ci.build_mode` says so; empty for the default.
    pub build_mode_flag: &'static str,
    pub checkout: &'static str,
    pub setup_python: &'static str,
    pub rust_toolchain_action: &'static str,
    pub rust_cache: &'static str,
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
    pub gateway_image: String,
    /// Variables named by `env:` secret references that deploy and rollback read.
    pub deploy_secrets: Vec<String>,
    /// The same for the smoke suite (`smoke.ca`).
    pub smoke_secrets: Vec<String>,
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
        let scheme = |s: &str| hosts.is_empty() || hosts.iter().any(|h| h.engine.starts_with(s));
        DeployJob {
            environment: loaded.environment.clone().unwrap_or_default(),
            needs,
            hosts: !hosts.is_empty(),
            ssh: scheme("ssh://"),
            tls: scheme("tcp://"),
            stream: c.deploy.transfer == Transfer::Stream,
            gateway_image: c.deploy.gateway_image.clone(),
            deploy_secrets,
            smoke_secrets: named(&c.smoke.ca).into_iter().collect(),
        }
    }
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
        let deploy_jobs = deploys
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let needs = i
                    .checked_sub(1)
                    .and_then(|p| deploys[p].environment.clone());
                DeployJob::new(d, needs)
            })
            .collect();
        let ghcr = is_loopback(&loaded.config.image.registry);
        let (registry_username, registry_password) = if ghcr {
            ("${{ github.actor }}", "${{ secrets.GITHUB_TOKEN }}")
        } else {
            (
                "${{ secrets.SHIPIT_REGISTRY_USERNAME }}",
                "${{ secrets.SHIPIT_REGISTRY_PASSWORD }}",
            )
        };
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
            deploy_jobs,
            ghcr,
            registry_username: registry_username.into(),
            registry_password: registry_password.into(),
            build_mode_flag: match ci.build_mode {
                CiBuildMode::Source => "",
                CiBuildMode::Prebuilt => " --mode prebuilt",
            },
            runner: ci.runner.clone(),
            rust_toolchain: ci.rust_toolchain.clone(),
            main_branch: ci.main_branch.clone(),
            kubernetes_version: ci.kubernetes_version.clone(),
            timeout_minutes: ci.timeout_minutes,
            environments,
            checkout: CHECKOUT,
            setup_python: SETUP_PYTHON,
            rust_toolchain_action: RUST_TOOLCHAIN,
            rust_cache: RUST_CACHE,
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
