//! `[roles.NAME]` on Kubernetes: a Deployment `APP-ROLE` per role, rendered
//! from the same pod template as the service's (its own command, no port,
//! exec probes from its healthcheck, `minReadySeconds` without one), its
//! pods named `APP-ROLE` so that the Service never selects them. A deploy
//! applies them with the service's Deployment and gates every one; a
//! failure returns each to the revision it had before (or deletes the ones
//! it created); a rollback moves each to the revision made by the same
//! deploy (the same `shipit.dev/deployed-at`). A role no longer declared
//! is deleted once a deploy has succeeded.

use serde_json::Value;

use super::kubectl::{Kubectl, int};
use super::manifests::ROLE_LABEL;
use super::revisions;

/// A role's Deployment as it was before a run changed anything.
#[derive(Debug, Clone)]
pub struct Before {
    /// `APP-ROLE`.
    pub name: String,
    pub revision: Option<u64>,
    pub generation: i64,
}

/// The names of the role Deployments among the rendered objects.
pub fn declared(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o["kind"] == "Deployment" && o["metadata"]["labels"][ROLE_LABEL].is_string())
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// The role Deployments of `app` the cluster has, by name.
pub fn existing(kubectl: &Kubectl, app: &str) -> Result<Vec<Before>, super::kubectl::Failed> {
    let selector = format!("app.kubernetes.io/part-of={app},{ROLE_LABEL}");
    let list = kubectl.json(&["get", "deployments", "-l", &selector, "-o", "json"], None)?;
    let mut found: Vec<Before> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| Before {
            name: d["metadata"]["name"].as_str().unwrap_or("").to_string(),
            revision: revisions::of(d),
            generation: int(d, "/metadata/generation"),
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// The revision of role Deployment `name` that the deploy stamped
/// `deployed_at` made, if it is kept.
pub fn matching(kubectl: &Kubectl, name: &str, deployed_at: &str) -> Option<u64> {
    revisions::list(kubectl, name)
        .ok()?
        .into_iter()
        .find(|r| !deployed_at.is_empty() && r.deployed_at == deployed_at)
        .map(|r| r.revision)
}

/// Puts the role Deployments back as `before` had them after a run that
/// failed: undone to their revision, or deleted when the run created them.
/// What was done, and what could not be.
pub fn put_back(kubectl: &Kubectl, app: &str, before: &[Before]) -> (Vec<String>, Vec<String>) {
    let (mut done, mut failed) = (Vec::new(), Vec::new());
    let now = match existing(kubectl, app) {
        Ok(now) => now,
        Err(e) => {
            failed.push(format!("the roles' Deployments: cannot read them: {e}"));
            return (done, failed);
        }
    };
    for role in &now {
        let was = before.iter().find(|b| b.name == role.name);
        match was {
            Some(b) if b.generation == role.generation => {}
            Some(Before {
                revision: Some(revision),
                ..
            }) => match revisions::undo(kubectl, &role.name, *revision) {
                Ok(()) => done.push(format!(
                    "Deployment/{} back to revision {revision}",
                    role.name
                )),
                Err(e) => failed.push(format!("Deployment/{}: {e}", role.name)),
            },
            Some(_) => failed.push(format!(
                "Deployment/{}: it had no revision to go back to",
                role.name
            )),
            None => match delete(kubectl, &role.name) {
                Ok(()) => done.push(format!(
                    "Deployment/{} deleted (this deploy created it)",
                    role.name
                )),
                Err(e) => failed.push(format!("Deployment/{}: {e}", role.name)),
            },
        }
    }
    (done, failed)
}

/// Deletes role Deployment `name` (its pods get their grace period).
pub fn delete(kubectl: &Kubectl, name: &str) -> Result<(), super::kubectl::Failed> {
    kubectl
        .run(
            &[
                "delete",
                "deployment",
                name,
                "--ignore-not-found",
                "--wait=false",
            ],
            None,
        )
        .map(|_| ())
}

/// The role Deployments the cluster has that the configuration no longer
/// declares.
pub fn undeclared(existing: &[Before], declared: &[String]) -> Vec<String> {
    existing
        .iter()
        .filter(|b| !declared.contains(&b.name))
        .map(|b| b.name.clone())
        .collect()
}

/// The role's Deployment name for `--role ROLE` (`web` is the service's).
pub fn deployment_name(app: &str, role: Option<&str>) -> String {
    match role {
        Some(r) if r != "web" => format!("{app}-{r}"),
        _ => app.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn role_deployments_are_the_labelled_ones_and_undeclared_ones_are_found() {
        let objects = vec![
            json!({"kind": "Deployment", "metadata": {"name": "shop", "labels": {}}}),
            json!({"kind": "Deployment", "metadata": {"name": "shop-worker", "labels": {ROLE_LABEL: "worker"}}}),
            json!({"kind": "Service", "metadata": {"name": "shop-mailer", "labels": {ROLE_LABEL: "mailer"}}}),
        ];
        assert_eq!(declared(&objects), ["shop-worker"]);
        let existing = [
            Before {
                name: "shop-mailer".into(),
                revision: Some(3),
                generation: 3,
            },
            Before {
                name: "shop-worker".into(),
                revision: Some(2),
                generation: 2,
            },
        ];
        assert_eq!(undeclared(&existing, &declared(&objects)), ["shop-mailer"]);
        assert_eq!(deployment_name("shop", Some("worker")), "shop-worker");
        assert_eq!(deployment_name("shop", Some("web")), "shop");
        assert_eq!(deployment_name("shop", None), "shop");
    }
}
