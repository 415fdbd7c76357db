//! `shipit prune` on Kubernetes: the finished pods `shipit run` left (a
//! run that was killed outright). Old ReplicaSets are the Deployment's
//! `revisionHistoryLimit` (`deploy.keep_releases`) to remove, and each
//! deploy removes the ConfigMaps no kept ReplicaSet uses; images are the
//! nodes' kubelets' to collect.

use serde_json::Value;

use super::Target;
use super::command::RUN_LABEL;
use super::kubectl::text;
use crate::error::Error;
use crate::output::Output;
use crate::target::PruneRequest;

pub fn prune(out: &Output, target: &Target, request: &PruneRequest) -> Result<(), Error> {
    let kubectl = &target.kubectl;
    let selector = format!("{RUN_LABEL}={}", target.app);
    let pods = kubectl
        .json(&["get", "pods", "-l", &selector, "-o", "json"], None)
        .map_err(|e| Error::Deploy {
            message: e.to_string(),
        })?;
    let finished: Vec<String> = pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p: &&Value| matches!(text(p, "/status/phase"), "Succeeded" | "Failed"))
        .map(|p| text(p, "/metadata/name").to_string())
        .collect();
    let verb = if request.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for pod in &finished {
        if !request.dry_run {
            kubectl
                .run(&["delete", "pod", pod, "--ignore-not-found"], None)
                .map_err(|e| Error::Deploy {
                    message: e.to_string(),
                })?;
        }
        out.status(verb, &format!("pod {pod}"));
    }
    out.status(
        if request.dry_run { "planned" } else { "pruned" },
        &format!(
            "{} finished run pod(s); old ReplicaSets go by the Deployment's revisionHistoryLimit, unused images by the kubelets",
            finished.len()
        ),
    );
    if out.is_json() {
        out.json(&serde_json::json!({
            "environment": target.environment,
            "dry_run": request.dry_run,
            "pods": finished,
        }));
    }
    Ok(())
}
