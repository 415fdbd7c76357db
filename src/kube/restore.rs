//! What a failed deploy puts back besides the Deployment (which `rollout
//! undo` returns to the revision that served): every other object it
//! applied - Service, Ingress, NetworkPolicy, PodDisruptionBudget, HPA,
//! ServiceAccount, the headers' ConfigMap - as it was before the deploy
//! (that state applied again by shipit's field manager), or deleted when
//! the deploy created it. A ConfigMap named by its content belongs to one
//! revision and is left to pruning.

use serde_json::{Value, json};

use super::apply::FIELD_MANAGER;
use super::kubectl::{Failed, Kubectl};
use super::manifests::CONFIG_LABEL;

/// The objects a deploy is about to apply, as the server had them.
pub struct Snapshot {
    /// `Kind/name`, and the object before (`None`: it did not exist).
    objects: Vec<(String, Option<Value>)>,
}

/// What putting the objects back did.
#[derive(Debug, Default)]
pub struct Restored {
    /// `Kind/name restored` or `Kind/name deleted (this deploy created it)`.
    pub done: Vec<String>,
    /// `Kind/name: why`, for what could not be put back.
    pub failed: Vec<String>,
}

/// The objects this module looks after: all but the Deployment and the
/// ConfigMaps named by their content.
fn looked_after(object: &Value) -> Option<String> {
    let kind = object["kind"].as_str()?;
    let pinned = kind == "ConfigMap" && object["metadata"]["labels"][CONFIG_LABEL].is_string();
    (kind != "Deployment" && !pinned).then(|| {
        format!(
            "{kind}/{}",
            object["metadata"]["name"].as_str().unwrap_or("")
        )
    })
}

/// Every `what` the server has, by `Kind/name`, in one call.
fn current(kubectl: &Kubectl, what: &[String]) -> Result<Vec<(String, Value)>, Failed> {
    if what.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec!["get"];
    args.extend(what.iter().map(String::as_str));
    args.extend(["-o", "json", "--ignore-not-found"]);
    let text = kubectl.run(&args, None)?;
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let found: Value = serde_json::from_str(&text).map_err(|e| Failed {
        command: "kubectl get".into(),
        message: format!("answered something that is not JSON: {e}"),
    })?;
    let items = match found["kind"].as_str() {
        Some("List") => found["items"].as_array().cloned().unwrap_or_default(),
        _ => vec![found],
    };
    Ok(items
        .into_iter()
        .map(|o| {
            let name = format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or("")
            );
            (name, o)
        })
        .collect())
}

/// An object as applied: what the server keeps for itself (status, ids,
/// versions, managers, timestamps, kubectl's notes) taken out.
fn as_applied(object: &Value) -> Value {
    let mut o = object.clone();
    if let Some(map) = o.as_object_mut() {
        map.remove("status");
    }
    let metadata = &object["metadata"];
    let mut annotations = metadata["annotations"].clone();
    if let Some(a) = annotations.as_object_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
        a.remove("deployment.kubernetes.io/revision");
    }
    let mut kept = json!({
        "name": metadata["name"],
        "namespace": metadata["namespace"],
    });
    if metadata["labels"].is_object() {
        kept["labels"] = metadata["labels"].clone();
    }
    if annotations.as_object().is_some_and(|a| !a.is_empty()) {
        kept["annotations"] = annotations;
    }
    o["metadata"] = kept;
    o
}

/// Reads the objects of `objects` that a failure would put back.
pub fn take(kubectl: &Kubectl, objects: &[Value]) -> Result<Snapshot, Failed> {
    let names: Vec<String> = objects.iter().filter_map(looked_after).collect();
    let found = current(kubectl, &names)?;
    Ok(Snapshot {
        objects: names
            .into_iter()
            .map(|n| {
                let before = found
                    .iter()
                    .find(|(f, _)| *f == n)
                    .map(|(_, o)| as_applied(o));
                (n, before)
            })
            .collect(),
    })
}

/// Puts back every object the deploy changed: the previous state applied
/// again, or the object deleted when the deploy created it.
pub fn restore(kubectl: &Kubectl, snapshot: &Snapshot) -> Restored {
    let mut restored = Restored::default();
    let names: Vec<String> = snapshot.objects.iter().map(|(n, _)| n.clone()).collect();
    let now = match current(kubectl, &names) {
        Ok(now) => now,
        Err(e) => {
            restored.failed = names
                .into_iter()
                .map(|n| format!("{n}: cannot read it: {}", e.message))
                .collect();
            return restored;
        }
    };
    for (name, before) in &snapshot.objects {
        let after = now
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, o)| as_applied(o));
        let result = match (before, &after) {
            (Some(b), Some(a)) if a == b => continue,
            (None, None) => continue,
            (None, Some(_)) => kubectl
                .run(&["delete", name, "--wait=false"], None)
                .map(|_| format!("{name} deleted (this deploy created it)")),
            (Some(b), _) => {
                let body = b.to_string();
                kubectl
                    .run(
                        &[
                            "apply",
                            "--server-side",
                            FIELD_MANAGER,
                            "--force-conflicts",
                            "-f",
                            "-",
                            "-o",
                            "name",
                        ],
                        Some(body.as_bytes()),
                    )
                    .map(|_| format!("{name} restored"))
            }
        };
        match result {
            Ok(done) => restored.done.push(done),
            Err(e) => restored.failed.push(format!("{name}: {}", e.message)),
        }
    }
    restored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_was_applied_is_compared() {
        let server = json!({
            "apiVersion": "policy/v1beta1",
            "kind": "PodDisruptionBudget",
            "metadata": {
                "name": "web", "namespace": "ns", "uid": "u", "resourceVersion": "7",
                "generation": 2, "creationTimestamp": "t", "managedFields": [],
                "labels": {"app": "web"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
            },
            "spec": {"minAvailable": 1},
            "status": {"currentHealthy": 2}
        });
        assert_eq!(
            as_applied(&server),
            json!({
                "apiVersion": "policy/v1beta1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "web", "namespace": "ns", "labels": {"app": "web"}},
                "spec": {"minAvailable": 1}
            })
        );
        let pinned = json!({"kind": "ConfigMap", "metadata": {"name": "web-config-1", "labels": {CONFIG_LABEL: "web-config"}}});
        assert_eq!(looked_after(&pinned), None);
        assert_eq!(
            looked_after(&json!({"kind": "Deployment", "metadata": {"name": "web"}})),
            None
        );
        assert_eq!(
            looked_after(&server).as_deref(),
            Some("PodDisruptionBudget/web")
        );
    }
}
