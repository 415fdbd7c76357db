//! Deploying to a Docker host: releases as labelled containers on a private
//! network behind an HAProxy gateway, switched live only once healthy and
//! smoke tested through the gateway, rolled back on any failure; the audit
//! log and the lock live on the engine beside them.

pub mod deliver;
mod failure;
pub mod fleet;
pub mod gateway;
pub mod history;
pub mod host;
pub mod lock;
pub mod notify;
pub mod plan;
pub mod release_task;
pub mod releases;
pub mod repair;
pub mod replicas;
pub mod status;
pub mod steps;
pub mod tls;

use std::time::Duration;

use crate::config::Loaded;
use crate::config::model::{Strategy, Target};
use crate::error::Error;
use crate::render::Ctx;
use crate::smoke::Paths;

/// Label keys on everything shipit creates.
pub const APP: &str = "dev.shipit.app";
pub const ENVIRONMENT: &str = "dev.shipit.environment";
pub const ROLE: &str = "dev.shipit.role";
pub const RELEASE: &str = "dev.shipit.release";
pub const VERSION: &str = "dev.shipit.version";
pub const REPLICA: &str = "dev.shipit.replica";
pub const ACCESSORY: &str = "dev.shipit.accessory";
/// Which process of the release a replica runs: `web` (the one the gateway
/// serves) or a role's name.
pub const PROCESS: &str = "dev.shipit.process";
/// A digest of the release's roles: a deploy of the same image with other
/// roles is not a no-op.
pub const ROLES: &str = "dev.shipit.roles";

/// The process a replica runs, by its `PROCESS` label: a replica made
/// before roles existed runs the web role.
pub fn process_of(c: &crate::engine::ContainerInfo) -> &str {
    c.labels.get(PROCESS).map_or("web", String::as_str)
}
/// A digest of what an accessory was booted with: `status` says when the
/// configuration has changed since (`reboot` applies it).
pub const ACCESSORY_CONFIG: &str = "dev.shipit.accessory.config";

/// One application in one environment on one engine, and the names of its parts.
#[derive(Debug, Clone)]
pub struct Site {
    pub app: String,
    pub environment: String,
}

impl Site {
    pub fn network(&self) -> String {
        format!("shipit-{}-{}", self.app, self.environment)
    }
    pub fn gateway(&self) -> String {
        format!("{}-{}-gateway", self.app, self.environment)
    }
    pub fn gateway_volume(&self) -> String {
        format!("shipit-{}-{}-gateway", self.app, self.environment)
    }
    pub fn state(&self) -> String {
        format!("shipit-{}-{}-state", self.app, self.environment)
    }
    pub fn lock(&self) -> String {
        format!("shipit-{}-{}-lock", self.app, self.environment)
    }
    /// An accessory's container.
    pub fn accessory(&self, name: &str) -> String {
        format!("{}-{}-{name}", self.app, self.environment)
    }
    /// An accessory's named volume.
    pub fn accessory_volume(&self, name: &str, volume: &str) -> String {
        format!("{}-{}-{name}-{volume}", self.app, self.environment)
    }
    pub fn replica(&self, release: u64, index: usize) -> String {
        format!("{}-{}-r{release}-{}", self.app, self.environment, index + 1)
    }
    /// Replica `index` of a role.
    pub fn role_replica(&self, release: u64, role: &str, index: usize) -> String {
        format!(
            "{}-{}-r{release}-{role}-{}",
            self.app,
            self.environment,
            index + 1
        )
    }
    /// The role a replica's name says it runs; `None`: the web role.
    pub fn role_of<'n>(&self, name: &'n str) -> Option<&'n str> {
        let rest = name
            .strip_prefix(&format!("{}-{}-r", self.app, self.environment))?
            .split_once('-')?
            .1;
        let (role, index) = rest.rsplit_once('-')?;
        index.bytes().all(|b| b.is_ascii_digit()).then_some(role)
    }

    /// The labels every object of this site carries, plus its role.
    pub fn labels(&self, role: &str) -> Vec<(String, String)> {
        vec![
            (APP.into(), self.app.clone()),
            (ENVIRONMENT.into(), self.environment.clone()),
            (ROLE.into(), role.into()),
        ]
    }

    pub fn filter<'a>(&'a self, role: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            (APP, self.app.as_str()),
            (ENVIRONMENT, self.environment.as_str()),
            (ROLE, role),
        ]
    }
}

/// What a deploy needs from the configuration, worked out once.
#[derive(Debug, Clone)]
pub struct Settings {
    pub site: Site,
    pub replicas: usize,
    pub strategy: Strategy,
    pub port: u16,
    pub gateway_port: u16,
    pub gateway_image: String,
    /// `deploy.gateway_packages`: what the gateway image must hold.
    pub gateway_packages: crate::config::model::GatewayPackages,
    pub health_timeout: Duration,
    pub health_interval: Duration,
    pub smoke_timeout: Duration,
    pub drain: Duration,
    pub keep_releases: usize,
    /// `deploy.lock_lease`: a lock without a heartbeat for this long may be taken over.
    pub lock_lease: Duration,
    /// The containers' environment, without secrets.
    pub env: Vec<(String, String)>,
    /// `(NAME, reference)`: resolved only when containers are created.
    pub secrets: Vec<(String, String)>,
    pub user: String,
    pub memory_bytes: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub paths: Paths,
    pub webhook: Option<String>,
    pub version: String,
    pub image_ref: String,
    /// TLS at the gateway, when `gateway.tls.enabled`.
    pub tls: Option<TlsSettings>,
    /// `smoke.ca`: a secret reference to extra CA certificates, or empty.
    pub smoke_ca: String,
    /// The view model the gateway's haproxy.cfg is rendered from.
    pub ctx: Ctx,
    /// `deploy.hosts`; empty: the engine of `DOCKER_HOST` (or the local socket).
    pub hosts: Vec<crate::config::model::Host>,
    pub transfer: crate::config::model::Transfer,
    /// `image.registry`, for credentials when hosts pull.
    pub registry: String,
    /// `[accessories]`, by name.
    pub accessories: std::collections::BTreeMap<String, crate::config::model::Accessory>,
    /// `deploy.release_command` (empty: none) and its time limit.
    pub release_command: Vec<String>,
    pub release_timeout: Duration,
    /// `[roles]`: the processes beside the web role, in name order.
    pub roles: Vec<Role>,
}

/// A process of the release's image that serves no HTTP (`[roles.NAME]`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Role {
    pub name: String,
    pub cmd: Vec<String>,
    pub replicas: usize,
    pub healthcheck: Vec<String>,
    #[serde(skip)]
    pub stop_grace: Duration,
}

/// Where the gateway's certificate and key come from, and what they serve.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub port: u16,
    pub server_names: Vec<String>,
    pub certificate_from: String,
    pub key_from: String,
}

impl Settings {
    pub fn new(loaded: &Loaded) -> Result<Settings, Error> {
        let c = &loaded.config;
        let t = &loaded.typed;
        let environment = loaded
            .environment
            .clone()
            .ok_or_else(|| Error::Usage("name an environment to deploy".into()))?;
        if c.deploy.target != Target::Docker {
            return Err(Error::Usage(format!(
                "{environment} deploys to Kubernetes (deploy.target = \"kubernetes\"): apply generated/{environment}/k8s with kubectl; `shipit deploy` drives Docker hosts"
            )));
        }
        let ctx = Ctx::new(loaded);
        let mut env = ctx.env.clone();
        // Keep serving for a moment after SIGTERM so the gateway's old workers
        // finish what they sent; readiness answers 503 meanwhile.
        if !env.iter().any(|(k, _)| k == "SHUTDOWN_DELAY_SECONDS") {
            env.push(("SHUTDOWN_DELAY_SECONDS".into(), "1".into()));
        }
        env.push(("ENVIRONMENT".into(), environment.clone()));
        env.dedup_by(|a, b| a.0 == b.0);
        Ok(Settings {
            site: Site {
                app: c.app.name.clone(),
                environment,
            },
            replicas: c.replicas.max(1) as usize,
            strategy: c.deploy.strategy,
            port: t.app_port,
            gateway_port: t.gateway_port,
            gateway_image: c.deploy.gateway_image.clone(),
            gateway_packages: c.deploy.gateway_packages.clone(),
            health_timeout: t.health_timeout,
            health_interval: t.health_interval,
            smoke_timeout: t.smoke_timeout,
            drain: t.drain_timeout,
            lock_lease: t.lock_lease,
            keep_releases: c.deploy.keep_releases.max(1) as usize,
            env,
            secrets: c
                .secrets
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            user: format!("{0}:{0}", c.image.user),
            memory_bytes: t.memory_bytes(),
            nano_cpus: t.nano_cpus(),
            paths: Paths::of(loaded),
            webhook: (!c.deploy.webhook.is_empty()).then(|| c.deploy.webhook.clone()),
            version: loaded.version.clone(),
            image_ref: loaded.image_ref(),
            // `tls_port` is there exactly when TLS is enabled.
            tls: t.tls_port.map(|port| TlsSettings {
                port,
                server_names: c.gateway.server_names.clone(),
                certificate_from: c.gateway.tls.certificate_from.clone(),
                key_from: c.gateway.tls.key_from.clone(),
            }),
            smoke_ca: c.smoke.ca.clone(),
            ctx,
            hosts: c.deploy.hosts.clone(),
            transfer: c.deploy.transfer,
            registry: c.image.registry.clone(),
            accessories: c.accessories.clone(),
            release_command: c.deploy.release_command.clone(),
            release_timeout: t.release_timeout,
            roles: c
                .roles
                .iter()
                .map(|(name, r)| Role {
                    name: name.clone(),
                    cmd: r.cmd.clone(),
                    replicas: r.replicas.max(1) as usize,
                    healthcheck: r.healthcheck.clone(),
                    stop_grace: t
                        .role_stop_grace
                        .get(name)
                        .copied()
                        .unwrap_or(t.drain_timeout),
                })
                .collect(),
        })
    }

    /// The gateway's certificate and key, read and checked (every problem at
    /// once, before anything changes); warnings beside them.
    pub fn load_tls(&self) -> Result<Option<(tls::Material, Vec<String>)>, Error> {
        let Some(t) = &self.tls else {
            return Ok(None);
        };
        let request = tls::Request {
            certificate_from: &t.certificate_from,
            key_from: &t.key_from,
            server_names: &t.server_names,
            extra_ca: (!self.smoke_ca.is_empty()).then_some(self.smoke_ca.as_str()),
            now: crate::clock::now(),
        };
        tls::load(&request).map(Some).map_err(|problems| {
            Error::Usage(format!(
                "the gateway's TLS certificate cannot be used; nothing was changed:\n{}",
                problems
                    .iter()
                    .map(|p| format!("  - {p}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ))
        })
    }

    /// How long replica `name` may finish its work after SIGTERM: its
    /// role's `stop_grace`, or `deploy.drain_timeout`.
    pub fn stop_grace(&self, name: &str) -> Duration {
        self.site
            .role_of(name)
            .and_then(|role| self.roles.iter().find(|r| r.name == role))
            .map_or(self.drain, |r| r.stop_grace)
    }

    /// Every replica of release `number` on one host: the web role's, then each role's.
    pub fn release_replicas(&self, number: u64) -> Vec<String> {
        let mut names: Vec<String> = (0..self.replicas)
            .map(|i| self.site.replica(number, i))
            .collect();
        for role in &self.roles {
            names.extend((0..role.replicas).map(|i| self.site.role_replica(number, &role.name, i)));
        }
        names
    }

    /// A short digest of the roles (what they run, how many, their checks):
    /// empty without roles, as on releases made before roles existed.
    pub fn roles_digest(&self) -> String {
        if self.roles.is_empty() {
            return String::new();
        }
        let text = serde_json::to_string(&self.roles).unwrap_or_default();
        let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
        digest.as_ref()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The secrets' values, read from the deploying environment or files.
    /// Errors name the secret and the reference, never a value.
    pub fn resolve_secrets(&self) -> Result<Vec<(String, String)>, Error> {
        resolve_secrets(&self.secrets, "the release")
    }
}

/// The values of `(NAME, reference)` secrets, read from the deploying
/// environment or files; every missing one at once, named with its
/// reference, never a value. `who` needs them ("the release").
pub fn resolve_secrets(
    secrets: &[(String, String)],
    who: &str,
) -> Result<Vec<(String, String)>, Error> {
    let mut values = Vec::new();
    let mut missing = Vec::new();
    for (name, reference) in secrets {
        match crate::secrets::resolve(reference) {
            Ok(value) => values.push((name.clone(), value)),
            Err(why) => missing.push(format!("  - secret {name} ({reference}): {why}")),
        }
    }
    if missing.is_empty() {
        Ok(values)
    } else {
        Err(Error::Usage(format!(
            "secrets {who} needs are missing; nothing was changed:\n{}",
            missing.join("\n")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let site = Site {
            app: "calculator".into(),
            environment: "staging".into(),
        };
        assert_eq!(site.replica(3, 0), "calculator-staging-r3-1");
        assert_eq!(
            site.role_replica(3, "mail-worker", 1),
            "calculator-staging-r3-mail-worker-2"
        );
        assert_eq!(
            site.role_of("calculator-staging-r3-mail-worker-2"),
            Some("mail-worker")
        );
        assert_eq!(site.role_of("calculator-staging-r3-2"), None);
        assert_eq!(site.role_of("calculator-staging-gateway"), None);
        assert_eq!(site.role_of("other-staging-r3-worker-1"), None);
        assert_eq!(site.gateway(), "calculator-staging-gateway");
        assert_eq!(site.lock(), "shipit-calculator-staging-lock");
    }
}
