//! The rollout gate: the Deployment's controller has seen the new spec,
//! every replica is updated and available, no old replica is left - within
//! `progressDeadlineSeconds` (`deploy.health_timeout`). While it waits, the
//! pods' failures are reported as they happen, with their events. Then
//! `wait_stopped`: the replaced pods' containers stopped, before any smoke
//! test.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::kubectl::{Kubectl, int, parse_time, text};

/// How long the gate waits for a change before it checks the time and signals.
const POLL: Duration = Duration::from_millis(200);
/// How often the pods and events are read for failures to report (and a
/// definite one ends the gate: within about two seconds of a crash).
const SCAN: Duration = Duration::from_millis(1000);
/// Waiting reasons of a container that will not become ready by itself.
const STUCK: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Verdict {
    /// Every replica updated and available, none old.
    Ready { revision: String, replicas: i64 },
    /// The rollout cannot finish: why.
    Failed { reason: String },
    /// SIGINT or SIGTERM.
    Interrupted,
}

pub struct Gate<'a> {
    pub kubectl: &'a Kubectl,
    pub app: &'a str,
    /// Seconds since the epoch: events before this are old news.
    pub since: i64,
    /// `progressDeadlineSeconds`; the gate gives up a little after it.
    pub deadline: Duration,
    pub cancelled: &'a dyn Fn() -> bool,
    /// Called with each new problem as it is seen.
    pub report: &'a dyn Fn(&str),
}

/// What the gate saw.
#[derive(Debug, Serialize)]
pub struct Watched {
    pub verdict: Verdict,
    /// Every distinct problem seen, in order.
    pub problems: Vec<String>,
    pub ms: u64,
}

impl Gate<'_> {
    pub fn wait(&self) -> Watched {
        let start = Instant::now();
        let mut seen = BTreeSet::new();
        let mut problems = Vec::new();
        let backstop = self.deadline + Duration::from_secs(30);
        let (kubectl, app) = (self.kubectl, self.app);
        // The Deployment is watched (its changes arrive as they happen); the
        // pods and events are read every SCAN for the failures to report.
        let (tx, mut rx) = std::sync::mpsc::channel();
        let mut watch = kubectl.watch(&format!("deployment/{app}"), tx);
        let mut latest: Option<Value> = None;
        let mut next_scan = Instant::now();
        let mut scan = |problems: &mut Vec<String>, latest: &mut Option<Value>| {
            let (found, read, definite) = self.scan();
            for p in found {
                if seen.insert(p.clone()) {
                    (self.report)(&p);
                    problems.push(p);
                }
            }
            // A watch that went quiet (a connection dropped without an
            // error) cannot stall the gate: the read wins when it is newer.
            if let Some(d) = read
                && latest
                    .as_ref()
                    .is_none_or(|l| version_of(&d) >= version_of(l))
            {
                *latest = Some(d);
            }
            definite
        };
        let verdict = loop {
            if (self.cancelled)() {
                break Verdict::Interrupted;
            }
            match rx.recv_timeout(POLL) {
                Ok(d) => {
                    latest = Some(d);
                    while let Ok(d) = rx.try_recv() {
                        latest = Some(d);
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                // The watch ended (a dropped connection): read it instead.
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    match kubectl.get(&format!("deployment/{app}")) {
                        Ok(Some(d)) => latest = Some(d),
                        Ok(None) => {
                            break Verdict::Failed {
                                reason: format!("deployment/{app} was deleted during the rollout"),
                            };
                        }
                        Err(_) => {}
                    }
                    std::thread::sleep(POLL);
                    let (tx, fresh) = std::sync::mpsc::channel();
                    watch = kubectl.watch(&format!("deployment/{app}"), tx);
                    rx = fresh;
                }
            }
            if let Some(v) = latest.as_ref().and_then(progress) {
                if matches!(v, Verdict::Failed { .. }) {
                    scan(&mut problems, &mut None);
                }
                break v;
            }
            if Instant::now() >= next_scan {
                // A new pod that crashed or cannot start will not become
                // ready by waiting out the progress deadline.
                if let Some(reason) = scan(&mut problems, &mut latest) {
                    break Verdict::Failed { reason };
                }
                next_scan = Instant::now() + SCAN;
            }
            if start.elapsed() > backstop {
                break Verdict::Failed {
                    reason: format!("the rollout did not finish within {} s", backstop.as_secs()),
                };
            }
        };
        drop(watch);
        Watched {
            verdict,
            problems,
            ms: start.elapsed().as_millis() as u64,
        }
    }

    /// The pods' and warning events' problems now, the Deployment as read,
    /// and the first definite failure of its current revision's pods.
    fn scan(&self) -> (Vec<String>, Option<Value>, Option<String>) {
        let (kubectl, app) = (self.kubectl, self.app);
        let (pods, events, deployment) = std::thread::scope(|s| {
            let deployment = s.spawn(|| kubectl.get(&format!("deployment/{app}")));
            let selector = format!("app.kubernetes.io/name={app}");
            // The ReplicaSets carry the pods' labels: one call reads both.
            let pods = s.spawn(move || {
                kubectl.json(
                    &["get", "pods,replicasets", "-l", &selector, "-o", "json"],
                    None,
                )
            });
            let events = s.spawn(|| {
                kubectl.json(
                    &[
                        "get",
                        "events",
                        "--field-selector",
                        "type=Warning",
                        "-o",
                        "json",
                    ],
                    None,
                )
            });
            (
                pods.join().expect("pods"),
                events.join().expect("events"),
                deployment.join().expect("deployment"),
            )
        });
        let deployment = deployment.ok().flatten();
        let mut found = Vec::new();
        let mut definite = None;
        if let Ok(pods) = &pods {
            found.extend(pod_problems(pods));
            definite = deployment
                .as_ref()
                .and_then(|d| definite_failure(d, pods, self.since));
        }
        if let Ok(events) = &events {
            let gone = terminating(pods.as_ref().ok());
            found.extend(
                event_problems(events, app, self.since)
                    .into_iter()
                    .filter(|p| !gone.iter().any(|g| p.contains(&format!("Pod/{g}:")))),
            );
        }
        (found, deployment, definite)
    }
}

/// An object's resourceVersion, as etcd numbers them (0 if not a number).
fn version_of(object: &Value) -> u64 {
    text(object, "/metadata/resourceVersion")
        .parse()
        .unwrap_or(0)
}

/// The Deployment's verdict, or `None` while it is still rolling out
/// (the checks `kubectl rollout status` makes).
pub fn progress(d: &Value) -> Option<Verdict> {
    let generation = int(d, "/metadata/generation");
    let observed = int(d, "/status/observedGeneration");
    if observed < generation {
        return None;
    }
    let conditions = d
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(c) = conditions
        .iter()
        .find(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded")
    {
        return Some(Verdict::Failed {
            reason: format!(
                "the rollout exceeded its progress deadline ({})",
                text(c, "/message")
            ),
        });
    }
    let want = d
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let updated = int(d, "/status/updatedReplicas");
    let replicas = int(d, "/status/replicas");
    let available = int(d, "/status/availableReplicas");
    (updated >= want && replicas == updated && available >= updated).then(|| Verdict::Ready {
        revision: text(
            d,
            "/metadata/annotations/deployment.kubernetes.io~1revision",
        )
        .to_string(),
        replicas: updated,
    })
}

/// Pods on their way out: a replaced revision's pod that stops answering
/// readiness while it drains is what should happen, not a problem.
fn terminating(pods: Option<&Value>) -> Vec<String> {
    deleted(pods)
        .map(|p| text(p, "/metadata/name").to_string())
        .collect()
}

fn deleted(pods: Option<&Value>) -> impl Iterator<Item = &Value> {
    live_or_not(pods).filter(|p| !p["metadata"]["deletionTimestamp"].is_null())
}

/// The pods of a listing (which may hold ReplicaSets too).
fn live_or_not(pods: Option<&Value>) -> impl Iterator<Item = &Value> {
    pods.and_then(|p| p["items"].as_array())
        .into_iter()
        .flatten()
        .filter(|p| p["kind"].as_str().is_none_or(|k| k == "Pod"))
}

/// The pods of the Deployment's current revision (its ReplicaSet's
/// `pod-template-hash`) that are not being deleted, from a listing of pods
/// and ReplicaSets. None until the controller has observed the Deployment's
/// spec and named that ReplicaSet.
pub fn current_pods<'a>(deployment: &Value, listed: &'a Value) -> Vec<&'a Value> {
    if int(deployment, "/status/observedGeneration") < int(deployment, "/metadata/generation") {
        return Vec::new();
    }
    let name = text(deployment, "/metadata/name");
    let revision = text(
        deployment,
        "/metadata/annotations/deployment.kubernetes.io~1revision",
    );
    let Some(hash) = listed["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["kind"] == "ReplicaSet")
        .filter(|r| r["metadata"]["ownerReferences"][0]["name"] == name)
        .find(|r| {
            text(
                r,
                "/metadata/annotations/deployment.kubernetes.io~1revision",
            ) == revision
        })
        .map(|r| text(r, "/metadata/labels/pod-template-hash"))
    else {
        return Vec::new();
    };
    live_or_not(Some(listed))
        .filter(|p| {
            p["metadata"]["deletionTimestamp"].is_null()
                && text(p, "/metadata/labels/pod-template-hash") == hash
        })
        .collect()
}

/// The first definite failure among the pods of the Deployment's current
/// revision: a container that exited since `since` (restarted or not), or
/// one waiting for good (its image cannot be pulled, CrashLoopBackOff).
/// `None` until the controller has observed the new spec and named its
/// ReplicaSet. Slow starters are left to the progress deadline.
pub fn definite_failure(deployment: &Value, listed: &Value, since: i64) -> Option<String> {
    let recent = |t: &Value| parse_time(text(t, "/finishedAt")).is_some_and(|at| at >= since);
    for pod in current_pods(deployment, listed) {
        let pod_name = text(pod, "/metadata/name");
        for s in pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let reason = text(s, "/state/waiting/reason");
            if STUCK.contains(&reason) {
                let message = text(s, "/state/waiting/message");
                return Some(format!(
                    "pod {pod_name} of the new revision cannot start: {reason}{}{message}",
                    if message.is_empty() { "" } else { ": " }
                ));
            }
            for exited in [&s["state"]["terminated"], &s["lastState"]["terminated"]] {
                if exited.is_object() && recent(exited) {
                    return Some(format!(
                        "pod {pod_name} of the new revision exited with code {} ({})",
                        int(exited, "/exitCode"),
                        text(exited, "/reason")
                    ));
                }
            }
        }
    }
    None
}

/// The pods being deleted whose containers still run (so still answer),
/// with the time (seconds since the epoch) by which the kubelet must have
/// stopped them.
pub fn stopping(pods: &Value) -> Vec<(String, i64)> {
    deleted(Some(pods))
        .filter(|p| {
            p["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| !c["state"]["running"].is_null())
        })
        .map(|p| {
            (
                text(p, "/metadata/name").to_string(),
                parse_time(text(p, "/metadata/deletionTimestamp")).unwrap_or(0),
            )
        })
        .collect()
}

/// Waits until no container of the app's deleted pods runs. A replaced revision's
/// pods keep answering while they stop (the shutdown delay is there because
/// a Service or an ingress drops them a moment late), so a smoke test sent
/// before they are gone may reach an old pod and pass for the new release.
/// Gives up 10 s after the last one's deletion deadline, or on a signal:
/// the pods still there.
pub fn wait_stopped(kubectl: &Kubectl, app: &str, cancelled: &dyn Fn() -> bool) -> Vec<String> {
    let selector = format!("app.kubernetes.io/name={app}");
    loop {
        let Ok(pods) = kubectl.json(&["get", "pods", "-l", &selector, "-o", "json"], None) else {
            return Vec::new();
        };
        let left = stopping(&pods);
        let limit = left.iter().map(|(_, by)| *by).max().unwrap_or(0) + 10;
        if left.is_empty() || cancelled() || crate::clock::now() > limit {
            return left.into_iter().map(|(name, _)| name).collect();
        }
        std::thread::sleep(POLL);
    }
}

/// Pods that cannot be scheduled, and containers stuck or restarting.
pub fn pod_problems(pods: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for pod in live_or_not(Some(pods)) {
        if !pod["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let name = text(pod, "/metadata/name");
        for c in pod["status"]["conditions"].as_array().into_iter().flatten() {
            if c["type"] == "PodScheduled" && c["status"] == "False" {
                out.push(format!(
                    "pod {name} cannot be scheduled: {}",
                    text(c, "/message")
                ));
            }
        }
        for s in pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let reason = text(s, "/state/waiting/reason");
            if STUCK.contains(&reason) {
                let message = text(s, "/state/waiting/message");
                out.push(if message.is_empty() {
                    format!("pod {name}: {reason}")
                } else {
                    format!("pod {name}: {reason}: {message}")
                });
            }
            let last = &s["lastState"]["terminated"];
            if last.is_object() {
                out.push(format!(
                    "pod {name}: the container exited with code {} ({}) and was restarted",
                    int(last, "/exitCode"),
                    text(last, "/reason")
                ));
            }
        }
    }
    out
}

/// Warning events about the app's objects since `since`.
pub fn event_problems(events: &Value, app: &str, since: i64) -> Vec<String> {
    let mut out = Vec::new();
    for e in events["items"].as_array().into_iter().flatten() {
        let name = text(e, "/involvedObject/name");
        if name != app && !name.starts_with(&format!("{app}-")) {
            continue;
        }
        // The rollout's own objects (a Service's endpoint races are not its problem).
        if !matches!(
            text(e, "/involvedObject/kind"),
            "Pod" | "ReplicaSet" | "Deployment"
        ) {
            continue;
        }
        let when = [
            "/lastTimestamp",
            "/eventTime",
            "/firstTimestamp",
            "/metadata/creationTimestamp",
        ]
        .iter()
        .find_map(|p| parse_time(text(e, p)))
        .unwrap_or(0);
        if when + 1 < since {
            continue;
        }
        out.push(format!(
            "event {} on {}/{name}: {}",
            text(e, "/reason"),
            text(e, "/involvedObject/kind"),
            text(e, "/message").trim()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(generation: i64, observed: i64, status: Value) -> Value {
        let mut d = json!({
            "metadata": {"generation": generation, "annotations": {"deployment.kubernetes.io/revision": "4"}},
            "spec": {"replicas": 2},
            "status": status,
        });
        d["status"]["observedGeneration"] = json!(observed);
        d
    }

    #[test]
    fn the_gate_waits_for_every_replica_updated_available_and_no_old_one() {
        let done = json!({"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2});
        assert_eq!(
            progress(&deployment(3, 2, done.clone())),
            None,
            "spec not observed yet"
        );
        assert_eq!(
            progress(&deployment(3, 3, done)),
            Some(Verdict::Ready {
                revision: "4".into(),
                replicas: 2
            })
        );
        let old_left = json!({"replicas": 3, "updatedReplicas": 2, "availableReplicas": 3});
        assert_eq!(progress(&deployment(3, 3, old_left)), None);
        let unavailable = json!({"replicas": 2, "updatedReplicas": 2, "availableReplicas": 1});
        assert_eq!(progress(&deployment(3, 3, unavailable)), None);
        let stuck = json!({"replicas": 3, "updatedReplicas": 1, "availableReplicas": 2, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": "ReplicaSet \"web-5d\" has timed out progressing."}]});
        assert!(
            matches!(progress(&deployment(3, 3, stuck)), Some(Verdict::Failed { reason }) if reason.contains("timed out progressing"))
        );
    }

    #[test]
    fn deleted_pods_that_still_run_are_named_with_their_deletion_deadline() {
        let running = json!({"containerStatuses": [{"state": {"running": {}}}]});
        let exited = json!({"containerStatuses": [{"state": {"terminated": {"exitCode": 0}}}]});
        let pods = json!({"items": [
            {"metadata": {"name": "web-new-a"}, "status": running},
            {"metadata": {"name": "web-old-b", "deletionTimestamp": "2026-11-22T09:00:25Z"}, "status": running},
            {"metadata": {"name": "web-old-c", "deletionTimestamp": "2026-11-22T09:00:20Z"}, "status": exited},
        ]});
        assert_eq!(
            stopping(&pods),
            [(
                "web-old-b".to_string(),
                parse_time("2026-11-22T09:00:25Z").unwrap()
            )]
        );
        assert_eq!(terminating(Some(&pods)), ["web-old-b", "web-old-c"]);
        assert!(stopping(&json!({"items": []})).is_empty());
    }

    #[test]
    fn a_new_pod_that_crashed_or_cannot_start_ends_the_gate_and_old_pods_do_not() {
        let d = json!({
            "metadata": {"name": "web", "generation": 5,
                         "annotations": {"deployment.kubernetes.io/revision": "7"}},
            "status": {"observedGeneration": 5}
        });
        let rs = |hash: &str, revision: &str| {
            json!({"kind": "ReplicaSet", "metadata": {
                "name": format!("web-{hash}"), "ownerReferences": [{"name": "web"}],
                "labels": {"pod-template-hash": hash},
                "annotations": {"deployment.kubernetes.io/revision": revision}}})
        };
        let pod = |name: &str, hash: &str, status: Value| {
            json!({"kind": "Pod", "metadata": {"name": name, "labels": {"pod-template-hash": hash}},
                   "status": {"containerStatuses": [status]}})
        };
        let since = parse_time("2026-12-04T10:00:00Z").unwrap();
        let crashed_then = |at: &str| {
            json!({"state": {"running": {}},
                   "lastState": {"terminated": {"exitCode": 3, "reason": "Error", "finishedAt": at}}})
        };
        // An old pod that crashed long ago, a new one running: no verdict.
        let calm = json!({"items": [
            rs("old", "6"), rs("new", "7"),
            pod("web-old-a", "old", crashed_then("2026-12-04T10:00:05Z")),
            pod("web-new-a", "new", crashed_then("2026-12-01T08:00:00Z")),
            pod("web-new-b", "new", json!({"state": {"waiting": {"reason": "ContainerCreating"}}})),
        ]});
        assert_eq!(definite_failure(&d, &calm, since), None);
        let crashed = json!({"items": [
            rs("old", "6"), rs("new", "7"),
            pod("web-new-a", "new", crashed_then("2026-12-04T10:00:03Z")),
        ]});
        assert_eq!(
            definite_failure(&d, &crashed, since).as_deref(),
            Some("pod web-new-a of the new revision exited with code 3 (Error)")
        );
        let unpulled = json!({"items": [
            rs("new", "7"),
            pod("web-new-a", "new", json!({"state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}})),
        ]});
        assert_eq!(
            definite_failure(&d, &unpulled, since).as_deref(),
            Some("pod web-new-a of the new revision cannot start: ErrImagePull: not found")
        );
        // Before the controller has seen the new spec, its pods are unknown.
        let mut unseen = d.clone();
        unseen["metadata"]["generation"] = json!(6);
        assert_eq!(definite_failure(&unseen, &unpulled, since), None);
    }

    #[test]
    fn stuck_pods_and_warning_events_are_named() {
        let pods = json!({"items": [{
            "metadata": {"name": "web-5d-x"},
            "status": {
                "conditions": [{"type": "PodScheduled", "status": "False", "message": "0/1 nodes are available: 1 Insufficient cpu."}],
                "containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"r/x@sha256:00\""}}}]
            }
        }]});
        assert_eq!(
            pod_problems(&pods),
            vec![
                "pod web-5d-x cannot be scheduled: 0/1 nodes are available: 1 Insufficient cpu.",
                "pod web-5d-x: ImagePullBackOff: Back-off pulling image \"r/x@sha256:00\""
            ]
        );
        let events = json!({"items": [
            {"involvedObject": {"kind": "Pod", "name": "web-5d-x"}, "reason": "Unhealthy", "message": "Readiness probe failed: HTTP probe failed with statuscode: 503", "lastTimestamp": "2026-11-22T10:00:05Z"},
            {"involvedObject": {"kind": "Pod", "name": "web-5d-x"}, "reason": "Failed", "message": "old", "lastTimestamp": "2026-11-22T09:00:00Z"},
            {"involvedObject": {"kind": "Pod", "name": "webhook-1"}, "reason": "Failed", "message": "another app", "lastTimestamp": "2026-11-22T10:00:05Z"}
        ]});
        let since = parse_time("2026-11-22T10:00:00Z").unwrap();
        assert_eq!(
            event_problems(&events, "web", since),
            vec![
                "event Unhealthy on Pod/web-5d-x: Readiness probe failed: HTTP probe failed with statuscode: 503"
            ]
        );
    }
}
