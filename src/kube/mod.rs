//! `deploy.target = "kubernetes"`: deploys, rollbacks and status through the
//! user's kubectl. Preflight, in-memory render pinned by digest, server-side
//! dry-run then apply (field manager `shipit`), the rollout gate, smoke tests,
//! and an undo to the revision that served before on any failure or signal.
//! The lock is a Lease; the history is the Deployment's revisions.

pub mod apply;
pub mod candidate;
pub mod command;
pub mod deploy;
pub mod gate;
pub mod kubectl;
pub mod lease;
pub mod logs;
pub mod manifests;
pub mod notify;
pub mod outcome;
pub mod plan;
pub mod preflight;
pub mod prune;
pub mod release_task;
pub mod restore;
pub mod revisions;
pub mod roles;
pub mod status;
mod undo;

use std::time::Duration;

use crate::config::Loaded;
use crate::error::Error;
use crate::smoke;

/// What a Kubernetes deploy needs of the configuration.
#[derive(Debug, Clone)]
pub struct Target {
    pub environment: String,
    pub app: String,
    pub version: String,
    pub kubectl: kubectl::Kubectl,
    pub configured_context: bool,
    /// `kubernetes.version`, and its minor version.
    pub k8s_version: String,
    pub k8s_minor: u32,
    /// `deploy.health_timeout`: the manifests' `progressDeadlineSeconds`.
    pub progress_deadline: Duration,
    /// `kubernetes.smoke`: the new revision's pods, or `smoke.url`.
    pub smoke_route: crate::config::model::KubeSmoke,
    /// `app.port`: where a pod of the new revision is smoke-tested.
    pub port: u16,
    pub smoke_url: String,
    pub smoke_timeout: Duration,
    pub smoke_ca: String,
    pub paths: smoke::Paths,
    /// The Secret the manifests reference for `[secrets]`, if any.
    pub secret: Option<String>,
    /// `deploy.webhook`: a secret reference to the notification URL.
    pub webhook: Option<String>,
    /// `deploy.release_command` (empty: none), run as a Job, and its limit.
    pub release_command: Vec<String>,
    pub release_timeout: Duration,
}

impl Target {
    pub fn new(loaded: &Loaded) -> Result<Target, Error> {
        let c = &loaded.config;
        let environment = loaded
            .environment
            .clone()
            .ok_or_else(|| Error::Usage("name an environment to deploy".into()))?;
        let k = &c.kubernetes;
        Ok(Target {
            app: c.app.name.clone(),
            version: loaded.version.clone(),
            kubectl: kubectl::Kubectl {
                program: k.kubectl.clone(),
                context: (!k.context.is_empty()).then(|| k.context.clone()),
                namespace: k.namespace.clone(),
            },
            configured_context: !k.context.is_empty(),
            k8s_version: k.version.clone(),
            k8s_minor: loaded.typed.kubernetes_minor,
            progress_deadline: loaded.typed.health_timeout,
            smoke_route: k.smoke,
            port: loaded.typed.app_port,
            smoke_url: c.smoke.url.clone(),
            smoke_timeout: loaded.typed.smoke_check_timeout,
            smoke_ca: c.smoke.ca.clone(),
            paths: smoke::Paths::of(loaded),
            secret: (!c.secrets.is_empty()).then(|| format!("{}-secrets", c.app.name)),
            webhook: (!c.deploy.webhook.is_empty()).then(|| c.deploy.webhook.clone()),
            release_command: c.deploy.release_command.clone(),
            release_timeout: loaded.typed.release_timeout,
            environment,
        })
    }
}
