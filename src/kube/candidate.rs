//! The smoke suite's way to the revision just rolled out, and to nothing
//! else (`kubernetes.smoke = "new-pods"`, the default): a ready pod of the
//! Deployment's current ReplicaSet (its `pod-template-hash`), reached by
//! `kubectl port-forward` on loopback. A replaced pod that still answers
//! through the Service in its shutdown delay cannot answer for the new
//! release, so the deploy need not wait for it to stop.

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::gate::current_pods;
use super::kubectl::{Kubectl, text};
use crate::process::{Program, Reader};

/// How long kubectl may take to open its local port.
const OPEN_LIMIT: Duration = Duration::from_secs(20);

/// A ready pod of `deployment`'s current revision (the first by name).
pub fn ready_pod(k: &Kubectl, app: &str) -> Result<String, String> {
    let deployment = k
        .get(&format!("deployment/{app}"))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("deployment/{app} does not exist"))?;
    let selector = format!("app.kubernetes.io/name={app}");
    let listed = k
        .json(
            &["get", "pods,replicasets", "-l", &selector, "-o", "json"],
            None,
        )
        .map_err(|e| e.to_string())?;
    first_ready(&deployment, &listed).ok_or_else(|| {
        format!("no pod of deployment/{app}'s current revision is ready to be smoke-tested")
    })
}

/// The first ready pod, by name, of the Deployment's current revision.
pub fn first_ready(deployment: &Value, listed: &Value) -> Option<String> {
    let mut ready: Vec<String> = current_pods(deployment, listed)
        .into_iter()
        .filter(|p| {
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .map(|p| text(p, "/metadata/name").to_string())
        .collect();
    ready.sort();
    ready.into_iter().next()
}

/// A running `kubectl port-forward` to one pod: stopped when dropped.
pub struct Forward {
    _reader: Arc<Reader>,
    pub pod: String,
    /// `http://127.0.0.1:PORT`, the local end.
    pub url: String,
}

/// Forwards a free loopback port to `port` of `pod`.
pub fn open(k: &Kubectl, pod: &str, port: u16) -> Result<Forward, String> {
    let argv = k.argv(
        &[
            "port-forward",
            "--address",
            "127.0.0.1",
            &format!("pod/{pod}"),
            &format!(":{port}"),
        ],
        true,
    );
    let program = Program::new(&k.program, &argv).merge_stderr();
    let command = program.command();
    let reader = Arc::new(program.reader().map_err(|e| e.to_string())?);
    let (tx, rx) = std::sync::mpsc::channel();
    let source = reader.clone();
    // Reads to the end: kubectl writes a line per connection, and a full
    // pipe would stall it.
    std::thread::spawn(move || {
        let mut said = Vec::new();
        let mut sent = false;
        for line in BufReader::new(&*source).lines() {
            let Ok(line) = line else { break };
            if !sent && let Some(port) = local_port(&line) {
                sent = tx.send(Ok(port)).is_ok();
            } else if !sent {
                said.push(line);
            }
        }
        if !sent {
            let _ = tx.send(Err(said.join("\n")));
        }
    });
    match rx.recv_timeout(OPEN_LIMIT) {
        Ok(Ok(local)) => Ok(Forward {
            _reader: reader,
            pod: pod.to_string(),
            url: format!("http://127.0.0.1:{local}"),
        }),
        Ok(Err(said)) => Err(format!(
            "`{command}` stopped before it forwarded a port: {}",
            if said.trim().is_empty() {
                "it said nothing"
            } else {
                said.trim()
            }
        )),
        Err(_) => Err(format!(
            "`{command}` forwarded no port within {} s",
            OPEN_LIMIT.as_secs()
        )),
    }
}

/// The local port of kubectl's `Forwarding from 127.0.0.1:PORT -> N`.
fn local_port(line: &str) -> Option<u16> {
    let rest = line.strip_prefix("Forwarding from 127.0.0.1:")?;
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_local_port_is_read_from_kubectls_line() {
        assert_eq!(
            local_port("Forwarding from 127.0.0.1:41234 -> 8080"),
            Some(41234)
        );
        assert_eq!(local_port("Forwarding from [::1]:41234 -> 8080"), None);
        assert_eq!(local_port("Handling connection for 41234"), None);
        assert_eq!(
            local_port("error: unable to forward port because pod is not running"),
            None
        );
    }

    #[test]
    fn only_a_ready_pod_of_the_current_revision_is_chosen() {
        let deployment = json!({
            "metadata": {"name": "web", "generation": 3,
                         "annotations": {"deployment.kubernetes.io/revision": "3"}},
            "status": {"observedGeneration": 3}
        });
        let rs = |hash: &str, revision: &str| {
            json!({"kind": "ReplicaSet", "metadata": {
                "labels": {"pod-template-hash": hash},
                "annotations": {"deployment.kubernetes.io/revision": revision},
                "ownerReferences": [{"name": "web"}]}})
        };
        let pod = |name: &str, hash: &str, ready: &str, deleted: bool| {
            let mut p = json!({"kind": "Pod", "metadata": {
                "name": name, "labels": {"pod-template-hash": hash}},
                "status": {"conditions": [{"type": "Ready", "status": ready}]}});
            if deleted {
                p["metadata"]["deletionTimestamp"] = json!("2026-12-05T12:00:00Z");
            }
            p
        };
        let listed = json!({"items": [
            rs("old", "2"), rs("new", "3"),
            pod("web-old-a", "old", "True", false),
            pod("web-new-c", "new", "True", true),
            pod("web-new-b", "new", "False", false),
            pod("web-new-z", "new", "True", false),
            pod("web-new-d", "new", "True", false),
        ]});
        assert_eq!(
            first_ready(&deployment, &listed).as_deref(),
            Some("web-new-d")
        );
        // Not yet observed: no current revision to choose from.
        let mut behind = deployment.clone();
        behind["metadata"]["generation"] = json!(4);
        assert_eq!(first_ready(&behind, &listed), None);
    }
}
