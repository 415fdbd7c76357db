//! `shipit status ENV`: what serves, how healthy it is, and what happened
//! lately - read-only; anything inconsistent is reported, and the next
//! deploy or rollback repairs it.

use serde::Serialize;

use super::history::{Entry, Store};
use super::{RELEASE, Settings, VERSION, gateway, lock};
use crate::engine::Engine;
use crate::error::Error;

#[derive(Debug, Serialize)]
pub struct Replica {
    pub name: String,
    /// `web` (the gateway serves it) or the name of its role.
    pub role: String,
    pub release: u64,
    pub version: String,
    pub state: String,
    pub health: String,
    pub started_at: String,
    pub uptime_seconds: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub environment: String,
    pub deployed: bool,
    pub release: Option<u64>,
    pub version: Option<String>,
    pub gateway: Option<GatewayStatus>,
    pub replicas: Vec<Replica>,
    /// Stopped releases kept for rollback: `(release, version)`.
    pub kept: Vec<(u64, String)>,
    pub lock: Option<lock::LockInfo>,
    /// What does not add up (the next deploy repairs it).
    pub problems: Vec<String>,
    pub history: Vec<Entry>,
}

#[derive(Debug, Serialize)]
pub struct GatewayStatus {
    pub container: String,
    pub state: String,
    pub url: String,
    pub upstreams: Vec<String>,
    /// Days the gateway's TLS certificate has left (TLS environments).
    pub certificate_days_left: Option<i64>,
    /// `shipit maintenance ENV on`: what the gateway answers meanwhile.
    pub maintenance: Option<gateway::maintenance::Maintenance>,
}

/// Seconds since an RFC 3339 timestamp from the engine.
fn uptime(started: &str) -> Option<i64> {
    Some((crate::clock::now() - crate::clock::parse_rfc3339(started)?).max(0))
}

pub async fn status(engine: &Engine, settings: &Settings, last: usize) -> Result<Status, Error> {
    let site = &settings.site;
    let store = Store::existing(engine, site).await?;
    let history = match &store {
        Some(store) => store.read().await?,
        None => Default::default(),
    };
    // The gateway's files, read once: what it serves, its maintenance and certificate.
    let gateway_container = engine.container(&site.gateway()).await?;
    let files = match &gateway_container {
        Some(_) => Some(gateway::Files::read(engine, settings).await?),
        None => None,
    };
    let serving = files.as_ref().and_then(|f| f.serving());
    let all = engine.containers(&site.filter("replica")).await?;
    let release_of = |c: &crate::engine::ContainerInfo| -> u64 {
        c.labels
            .get(RELEASE)
            .and_then(|r| r.parse().ok())
            .unwrap_or(0)
    };
    let mut problems: Vec<String> = history.damage().into_iter().collect();
    let number = serving.as_ref().map(|s| s.release);
    let gateway_status = match gateway_container {
        Some(g) => {
            if !g.running {
                problems.push(format!(
                    "the gateway {} is {} (not serving)",
                    g.name, g.state
                ));
            }
            Some(GatewayStatus {
                container: g.name,
                state: g.state,
                url: gateway::url(engine, settings),
                upstreams: serving
                    .as_ref()
                    .map(|s| s.upstreams.clone())
                    .unwrap_or_default(),
                certificate_days_left: match settings.tls {
                    Some(_) => files.as_ref().and_then(|f| f.certificate_days_left()),
                    None => None,
                },
                maintenance: files.as_ref().and_then(|f| f.maintenance()),
            })
        }
        None => None,
    };
    let served: Vec<u64> = history
        .iter()
        .filter(|e| e.served())
        .filter_map(|e| e.release)
        .collect();
    let mut replicas = Vec::new();
    let mut kept: Vec<(u64, String)> = Vec::new();
    for c in &all {
        let r = release_of(c);
        let version = c.labels.get(VERSION).cloned().unwrap_or_default();
        let role = super::process_of(c).to_string();
        if Some(r) == number {
            // A role's replica without a check is well while it runs.
            let unchecked = role != "web" && c.health == "none";
            if !c.running {
                problems.push(format!("{} of the serving release is {}", c.name, c.state));
            } else if c.health != "healthy" && !unchecked {
                problems.push(format!("{} of the serving release is {}", c.name, c.health));
            }
            let started_at = engine
                .container(&c.name)
                .await?
                .map(|i| i.started_at)
                .unwrap_or_default();
            replicas.push(Replica {
                name: c.name.clone(),
                role,
                release: r,
                version,
                state: c.state.clone(),
                health: c.health.clone(),
                uptime_seconds: c.running.then(|| uptime(&started_at)).flatten(),
                started_at,
            });
        } else if served.contains(&r) {
            if c.running {
                problems.push(format!(
                    "{} (release {r}, not serving) is still running",
                    c.name
                ));
            }
            if !kept.iter().any(|(k, _)| *k == r) {
                kept.push((r, version));
            }
        } else {
            problems.push(format!(
                "{} (release {r}, {}) was left by an interrupted deploy",
                c.name, c.state
            ));
        }
    }
    kept.sort_by_key(|k| std::cmp::Reverse(k.0));
    if let Some(s) = &serving {
        let releases: std::collections::BTreeSet<u64> = s
            .upstreams
            .iter()
            .filter_map(|n| all.iter().find(|c| &c.name == n).map(release_of))
            .collect();
        if releases.len() > 1 {
            problems.push(format!(
                "the gateway is between releases {releases:?} (an interrupted rolling deploy)"
            ));
        }
        let last_served = history
            .iter()
            .rev()
            .find(|e| e.served())
            .and_then(|e| e.release);
        if last_served != Some(s.release) {
            problems.push(format!(
                "release {} serves but the history does not record it (shipit was stopped after the switch)",
                s.release
            ));
        }
    }
    let lock = lock::inspect(engine, site).await?;
    if let Some(l) = &lock {
        if l.expired {
            problems.push(format!(
                "a lock whose lease ran out is left by a killed deploy ({}): the next deploy takes it over, or `shipit lock release {}`",
                l.holder, site.environment
            ));
        } else if l.stale == Some(true) {
            problems.push(format!(
                "a stale lock is left by a killed deploy ({}): `shipit lock release {}`",
                l.holder, site.environment
            ));
        }
    }
    let version = number.and_then(|n| {
        all.iter()
            .find(|c| release_of(c) == n)
            .and_then(|c| c.labels.get(VERSION).cloned())
    });
    let start = history.len().saturating_sub(last);
    Ok(Status {
        environment: site.environment.clone(),
        deployed: serving.is_some(),
        release: number,
        version,
        gateway: gateway_status,
        replicas,
        kept,
        lock,
        problems,
        history: history[start..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn uptime_parses_engine_timestamps() {
        let now = crate::clock::now();
        let stamp = crate::clock::rfc3339(now - 42);
        let got = super::uptime(&stamp.replace('Z', ".123456789Z")).unwrap();
        assert!((42..=43).contains(&got), "{got}");
        assert_eq!(
            super::uptime("0001-01-01T00:00:00Z").map(|u| u > 0),
            Some(true)
        );
        assert_eq!(super::uptime("garbage"), None);
    }
}
