//! What a Kubernetes deploy will do, worked out by its preflight before
//! anything changes: `--dry-run` prints it under `plan`, a real run carries
//! it out and reports the same value under the same key. Nothing in it is a
//! time or an id that would differ between the two.

use serde::Serialize;

use super::deploy::Planned;
use super::preflight::Cluster;
use super::{Target, manifests, revisions};
use crate::config::model::KubeSmoke;
use crate::record::{Action, Subject};

/// The phases of a deploy that succeeds, in order (`old pods stopped` only
/// with `kubernetes.smoke = "url"`).
pub const STEPS: [&str; 6] = [
    "preflight",
    "lock and dry-run",
    "apply",
    "rollout",
    "old pods stopped",
    "smoke",
];

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Plan {
    #[serde(flatten)]
    pub subject: Subject,
    #[serde(flatten)]
    pub cluster: Cluster,
    pub serving_revision: Option<u64>,
    /// The objects applied, `Kind/name`.
    pub objects: Vec<String>,
    /// `deploy.release_command`, run as a Job from the new pod template
    /// after the other objects and before the Deployment are applied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub release_command: Vec<String>,
    /// The roles' Deployments (`APP-ROLE`), gated after the service's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    pub steps: Vec<String>,
}

/// The phases, with the release command's after the server's dry-run, the
/// roles' rollout after the service's, and the wait for the replaced pods
/// only when the smoke suite goes through `smoke.url`.
pub fn steps(release_command: bool, roles: bool, smoke: KubeSmoke) -> Vec<String> {
    let mut steps: Vec<String> = STEPS
        .iter()
        .filter(|s| smoke == KubeSmoke::Url || **s != "old pods stopped")
        .map(|s| s.to_string())
        .collect();
    if roles {
        let rollout = steps.iter().position(|s| s == "rollout").unwrap_or(0);
        steps.insert(rollout + 1, "roles".into());
    }
    if release_command {
        steps.insert(2, "release".into());
    }
    steps
}

impl Plan {
    pub fn of(target: &Target, planned: &Planned) -> Plan {
        let p = &planned.preflight;
        Plan {
            subject: Subject {
                action: Action::Deploy,
                environment: target.environment.clone(),
                version: target.version.clone(),
                image: planned.image.clone(),
            },
            cluster: p.cluster.clone(),
            serving_revision: p.deployment.as_ref().and_then(revisions::of),
            objects: manifests::names(&planned.objects),
            release_command: target.release_command.clone(),
            roles: super::roles::declared(&planned.objects),
            steps: steps(
                !target.release_command.is_empty(),
                !super::roles::declared(&planned.objects).is_empty(),
                target.smoke_route,
            ),
        }
    }
}
