//! `shipit logs` on Kubernetes: the running pods of the app's Deployment,
//! each read with `kubectl logs --timestamps` and merged in time order, or
//! followed, picking up the pods a rollout starts meanwhile. The node is
//! the host; stdout and stderr come together (`output`).

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use super::Target;
use super::kubectl::{Kubectl, text};
use crate::cancel::Cancel;
use crate::error::Error;
use crate::output::Output;
use crate::target::logs::{self, Line, LogsRequest};

/// The running pods of the app: `(node, pod)`, by name.
pub fn running_pods(kubectl: &Kubectl, app: &str) -> Result<Vec<(String, String)>, Error> {
    let selector = format!("app.kubernetes.io/name={app}");
    let pods = kubectl
        .json(&["get", "pods", "-l", &selector, "-o", "json"], None)
        .map_err(|e| Error::Deploy {
            message: e.to_string(),
        })?;
    let mut running: Vec<(String, String)> = pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| text(p, "/status/phase") == "Running")
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p: &Value| {
            (
                text(p, "/spec/nodeName").to_string(),
                text(p, "/metadata/name").to_string(),
            )
        })
        .collect();
    running.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(running)
}

/// The `kubectl logs` arguments for one pod.
fn args(pod: &str, request: &LogsRequest, follow: bool, fresh: bool) -> Vec<String> {
    let mut args = vec![
        "logs".to_string(),
        pod.to_string(),
        "--timestamps".into(),
        "--all-containers".into(),
    ];
    if follow {
        args.push("--follow".into());
    }
    if !fresh {
        if let Some(since) = request.since {
            args.push(format!("--since={}s", (crate::clock::now() - since).max(1)));
        }
        if let Some(lines) = request.lines {
            args.push(format!("--tail={lines}"));
        }
    }
    args
}

pub fn logs(out: &Output, target: &Target, request: &LogsRequest) -> Result<(), Error> {
    let name = super::roles::deployment_name(&target.app, request.role.as_deref());
    let pods = running_pods(&target.kubectl, &name)?;
    if request.follow {
        return crate::target::runtime()?.block_on(follow(out, target, request, pods));
    }
    let mut lines: Vec<Line> = Vec::new();
    for (node, pod) in &pods {
        let owned = args(pod, request, false, false);
        let argv: Vec<&str> = owned.iter().map(String::as_str).collect();
        match target.kubectl.run(&argv, None) {
            Ok(text) => lines.extend(
                text.lines()
                    .filter_map(|raw| logs::line(request, raw, node, pod, "output")),
            ),
            Err(e) => out.warn(&format!("{pod}: its lines are missing: {e}")),
        }
    }
    for line in logs::merge(lines) {
        logs::print(out, &line);
    }
    Ok(())
}

/// `--follow`: a `kubectl logs --follow` per running pod, the pods looked
/// for again every two seconds, until SIGINT or SIGTERM.
async fn follow(
    out: &Output,
    target: &Target,
    request: &LogsRequest,
    first: Vec<(String, String)>,
) -> Result<(), Error> {
    let cancel = Cancel::install();
    let (tx, mut rx) = mpsc::unbounded_channel::<Line>();
    let mut watched: HashSet<String> = HashSet::new();
    let mut found = first;
    let mut fresh = false;
    while !cancel.is_set() {
        for (node, pod) in found {
            if !watched.insert(pod.clone()) {
                continue;
            }
            let owned = args(&pod, request, true, fresh);
            let argv: Vec<&str> = owned.iter().map(String::as_str).collect();
            let mut child = match target
                .kubectl
                .attached(&argv)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(child) => child,
                Err(e) => {
                    out.warn(&format!("{pod}: cannot follow: {e}"));
                    continue;
                }
            };
            let Some(stdout) = child.stdout.take() else {
                continue;
            };
            let (tx, request) = (tx.clone(), request.clone());
            tokio::spawn(async move {
                let _child = child;
                let mut reader = tokio::io::BufReader::new(stdout).lines();
                while let Ok(Some(raw)) = reader.next_line().await {
                    if let Some(line) = logs::line(&request, &raw, &node, &pod, "output")
                        && tx.send(line).is_err()
                    {
                        break;
                    }
                }
            });
        }
        fresh = true;
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            tokio::select! {
                line = rx.recv() => if let Some(line) = line { logs::print(out, &line) },
                _ = tokio::time::sleep_until(until) => break,
            }
            if cancel.is_set() {
                break;
            }
        }
        found = match running_pods(
            &target.kubectl,
            &super::roles::deployment_name(&target.app, request.role.as_deref()),
        ) {
            Ok(pods) => pods,
            Err(e) => {
                out.warn(&format!("the cluster did not answer: {e}"));
                Vec::new()
            }
        };
    }
    Ok(())
}
