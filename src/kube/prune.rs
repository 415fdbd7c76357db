//! `shipit prune` on Kubernetes: the finished pods `shipit run` left, and
//! the finished Jobs of release commands (a shipit killed outright leaves
//! them; one still running belongs to a deploy and is left alone). Old ReplicaSets are the Deployment's
//! `revisionHistoryLimit` (`deploy.keep_releases`) to remove, and each
//! deploy removes the ConfigMaps no kept ReplicaSet uses; images are the
//! nodes' kubelets' to collect.

use serde_json::Value;

use super::Target;
use super::command::RUN_LABEL;
use super::kubectl::{int, text};
use super::release_task::RELEASE_LABEL;
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
    let selector = format!("{RELEASE_LABEL}={}", target.app);
    let jobs = kubectl
        .json(&["get", "jobs", "-l", &selector, "-o", "json"], None)
        .map_err(|e| Error::Deploy {
            message: e.to_string(),
        })?;
    let finished_jobs: Vec<String> = jobs["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|j: &&Value| {
            int(j, "/status/succeeded") > 0
                || j["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Failed" && c["status"] == "True")
        })
        .map(|j| text(j, "/metadata/name").to_string())
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
    for job in &finished_jobs {
        if !request.dry_run {
            kubectl
                .run(&["delete", "job", job, "--ignore-not-found"], None)
                .map_err(|e| Error::Deploy {
                    message: e.to_string(),
                })?;
        }
        out.status(verb, &format!("job {job}"));
    }
    out.status(
        if request.dry_run { "planned" } else { "pruned" },
        &format!(
            "{} finished run pod(s), {} finished release command job(s); old ReplicaSets go by the Deployment's revisionHistoryLimit, unused images by the kubelets",
            finished.len(),
            finished_jobs.len()
        ),
    );
    if out.is_json() {
        out.json(&serde_json::json!({
            "environment": target.environment,
            "dry_run": request.dry_run,
            "pods": finished,
            "jobs": finished_jobs,
        }));
    }
    Ok(())
}
