//! `shipit status ENV` on Kubernetes: the rollout state, the pods, recent
//! events, the revisions and the lock (read-only).

use serde::Serialize;
use serde_json::Value;

use super::kubectl::{int, parse_time, text};
use super::manifests::ROLE_LABEL;
use super::revisions::{self, Revision};
use super::{Target, lease};
use crate::error::Error;

#[derive(Debug, Serialize)]
pub struct Pod {
    pub name: String,
    /// `web`, or the `[roles.NAME]` it runs.
    pub role: String,
    pub phase: String,
    pub ready: bool,
    pub restarts: i64,
    pub version: String,
    /// Being deleted (a replaced revision's pod finishing its requests).
    pub terminating: bool,
    /// Why it is not ready, if it says.
    pub waiting: String,
}

#[derive(Debug, Serialize)]
pub struct Event {
    pub at: String,
    pub kind: String,
    pub reason: String,
    pub object: String,
    pub message: String,
    pub count: i64,
}

/// A role's Deployment: its rollout, as the service's is shown.
#[derive(Debug, Serialize)]
pub struct Role {
    pub role: String,
    pub deployment: String,
    pub revision: Option<u64>,
    pub version: String,
    pub rollout: String,
    pub replicas: i64,
    pub updated: i64,
    pub available: i64,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub environment: String,
    pub namespace: String,
    pub deployed: bool,
    pub revision: Option<u64>,
    pub version: Option<String>,
    /// `complete`, `progressing`, `failed` (deadline exceeded) or `absent`.
    pub rollout: String,
    pub replicas: i64,
    pub updated: i64,
    pub available: i64,
    pub conditions: Vec<String>,
    pub pods: Vec<Pod>,
    /// Each role's Deployment (`[roles.NAME]`).
    pub roles: Vec<Role>,
    pub events: Vec<Event>,
    pub revisions: Vec<Revision>,
    pub lock: Option<lease::Holder>,
}

pub fn status(target: &Target, last: usize) -> Result<Status, Error> {
    let k = &target.kubectl;
    let app = &target.app;
    let failed = |e: super::kubectl::Failed| Error::Deploy {
        message: format!("cannot read {}'s state: {e}", target.environment),
    };
    let selector = format!("app.kubernetes.io/name={app}");
    let of_roles = format!("app.kubernetes.io/part-of={app},{ROLE_LABEL}");
    let (deployment, pods, roles, events, revisions, lock) = std::thread::scope(|s| {
        let d = s.spawn(|| k.get(&format!("deployment/{app}")));
        let p = s.spawn(|| {
            let web = k.json(&["get", "pods", "-l", &selector, "-o", "json"], None)?;
            let roles = k.json(&["get", "pods", "-l", &of_roles, "-o", "json"], None)?;
            Ok::<_, super::kubectl::Failed>([web, roles])
        });
        let r = s.spawn(|| k.json(&["get", "deployments", "-l", &of_roles, "-o", "json"], None));
        let e = s.spawn(|| k.json(&["get", "events", "-o", "json"], None));
        let v = s.spawn(|| revisions::list(k, app));
        let l = s.spawn(|| lease::read(k, app));
        (
            d.join().expect("deployment"),
            p.join().expect("pods"),
            r.join().expect("roles"),
            e.join().expect("events"),
            v.join().expect("revisions"),
            l.join().expect("lock"),
        )
    });
    let deployment = deployment.map_err(failed)?;
    let pods = pods.map_err(failed)?;
    let roles = roles.map_err(failed)?;
    let events = events.map_err(failed)?;
    let revisions = revisions?;
    let lock = lock?;
    let Some(d) = deployment else {
        return Ok(Status {
            environment: target.environment.clone(),
            namespace: k.namespace.clone(),
            deployed: false,
            revision: None,
            version: None,
            rollout: "absent".into(),
            replicas: 0,
            updated: 0,
            available: 0,
            conditions: Vec::new(),
            pods: Vec::new(),
            roles: Vec::new(),
            events: Vec::new(),
            revisions,
            lock,
        });
    };
    let rollout = rollout_of(&d);
    let conditions = d["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}={} ({}): {}",
                text(c, "/type"),
                text(c, "/status"),
                text(c, "/reason"),
                text(c, "/message")
            )
        })
        .collect();
    let pods: Vec<Pod> = pods
        .iter()
        .flat_map(|list| list["items"].as_array().into_iter().flatten())
        .map(|p| {
            let statuses = p["status"]["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            Pod {
                name: text(p, "/metadata/name").into(),
                role: p["metadata"]["labels"][ROLE_LABEL]
                    .as_str()
                    .unwrap_or("web")
                    .into(),
                phase: text(p, "/status/phase").into(),
                ready: !statuses.is_empty() && statuses.iter().all(|s| s["ready"] == true),
                restarts: statuses.iter().map(|s| int(s, "/restartCount")).sum(),
                terminating: !p["metadata"]["deletionTimestamp"].is_null(),
                version: p["metadata"]["annotations"][super::manifests::VERSION]
                    .as_str()
                    .unwrap_or("")
                    .into(),
                waiting: statuses
                    .iter()
                    .map(|s| text(s, "/state/waiting/reason"))
                    .find(|r| !r.is_empty())
                    .unwrap_or("")
                    .into(),
            }
        })
        .collect();
    let mut roles: Vec<Role> = roles["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| Role {
            role: d["metadata"]["labels"][ROLE_LABEL]
                .as_str()
                .unwrap_or("")
                .into(),
            deployment: text(d, "/metadata/name").into(),
            revision: revisions::of(d),
            version: d["spec"]["template"]["metadata"]["annotations"][super::manifests::VERSION]
                .as_str()
                .unwrap_or("")
                .into(),
            rollout: rollout_of(d).into(),
            replicas: d
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1),
            updated: int(d, "/status/updatedReplicas"),
            available: int(d, "/status/availableReplicas"),
        })
        .collect();
    roles.sort_by(|a, b| a.role.cmp(&b.role));
    let mut events: Vec<(i64, Event)> = events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            let name = text(e, "/involvedObject/name");
            name == app.as_str() || name.starts_with(&format!("{app}-"))
        })
        .map(|e| {
            let when = [
                "/lastTimestamp",
                "/eventTime",
                "/metadata/creationTimestamp",
            ]
            .iter()
            .find_map(|p| parse_time(text(e, p)))
            .unwrap_or(0);
            (
                when,
                Event {
                    at: crate::clock::rfc3339(when),
                    kind: text(e, "/type").into(),
                    reason: text(e, "/reason").into(),
                    object: format!(
                        "{}/{}",
                        text(e, "/involvedObject/kind"),
                        text(e, "/involvedObject/name")
                    ),
                    message: text(e, "/message").trim().into(),
                    count: int(e, "/count").max(1),
                },
            )
        })
        .collect();
    events.sort_by_key(|(when, _)| *when);
    let skip = events.len().saturating_sub(last.max(1));
    let events = events.into_iter().skip(skip).map(|(_, e)| e).collect();
    let current = revisions.iter().find(|r| r.current);
    Ok(Status {
        environment: target.environment.clone(),
        namespace: k.namespace.clone(),
        deployed: true,
        revision: revisions::of(&d),
        version: current.map(|r| r.version.clone()),
        rollout: rollout.into(),
        replicas: d
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1),
        updated: int(&d, "/status/updatedReplicas"),
        available: int(&d, "/status/availableReplicas"),
        conditions,
        pods,
        roles,
        events,
        revisions,
        lock,
    })
}

/// `complete`, `failed` (deadline exceeded) or `progressing`.
fn rollout_of(deployment: &Value) -> &'static str {
    match super::gate::progress(deployment) {
        Some(super::gate::Verdict::Ready { .. }) => "complete",
        Some(_) => "failed",
        None => "progressing",
    }
}
