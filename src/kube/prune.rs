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
use super::release_task::{RELEASE_LABEL, failed};
use crate::error::Error;
use crate::output::Output;
use crate::target::PruneRequest;

pub fn prune(out: &Output, target: &Target, request: &PruneRequest) -> Result<(), Error> {
    let pod_done = |p: &Value| matches!(text(p, "/status/phase"), "Succeeded" | "Failed");
    let job_done = |j: &Value| int(j, "/status/succeeded") > 0 || failed(j).is_some();
    let finished = remove(out, target, request, ("pod", RUN_LABEL), &pod_done)?;
    let finished_jobs = remove(out, target, request, ("job", RELEASE_LABEL), &job_done)?;
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

/// Deletes (or, in a dry run, names) the objects of `kind` labelled
/// `label=APP` that are `done`; their names.
fn remove(
    out: &Output,
    target: &Target,
    request: &PruneRequest,
    (kind, label): (&str, &str),
    done: &dyn Fn(&Value) -> bool,
) -> Result<Vec<String>, Error> {
    let kubectl = &target.kubectl;
    let failed = |e: super::kubectl::Failed| Error::Deploy {
        message: e.to_string(),
    };
    let selector = format!("{label}={}", target.app);
    let list = kubectl
        .json(&["get", kind, "-l", &selector, "-o", "json"], None)
        .map_err(failed)?;
    let names: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| done(o))
        .map(|o| text(o, "/metadata/name").to_string())
        .collect();
    for name in &names {
        if !request.dry_run {
            kubectl
                .run(&["delete", kind, name, "--ignore-not-found"], None)
                .map_err(failed)?;
        }
        let verb = if request.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        out.status(verb, &format!("{kind} {name}"));
    }
    Ok(names)
}
