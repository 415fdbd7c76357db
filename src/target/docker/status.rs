//! `shipit status ENV` on Docker hosts: one engine's serving release,
//! replicas, gateway, kept releases, lock and history, or a row per host
//! with drift flagged.

use serde::Serialize;

use super::hosts::chosen;
use crate::deploy::{Settings, host, status};
use crate::error::Error;
use crate::output::Output;

/// One engine's status, for people.
pub(super) fn print(out: &Output, environment: &str, report: &status::Status) {
    match (&report.release, &report.version) {
        (Some(r), Some(v)) => out.status(
            "serving",
            &format!("{environment}: release {r}, version {v}"),
        ),
        _ => out.status(
            "serving",
            &format!("{environment}: nothing is deployed on this engine"),
        ),
    }
    if let Some(g) = &report.gateway {
        out.status(
            "gateway",
            &format!(
                "{} {} at {} -> {}",
                g.container,
                g.state,
                g.url,
                g.upstreams.join(", ")
            ),
        );
    }
    if let Some(days) = report
        .gateway
        .as_ref()
        .and_then(|g| g.certificate_days_left)
    {
        let text = format!("{days} day(s) left on the gateway's certificate");
        if days < 30 {
            out.warn(&format!("{text}: renew it, then deploy to rotate it live"));
        } else {
            out.status("tls", &text);
        }
    }
    if let Some(m) = report.gateway.as_ref().and_then(|g| g.maintenance.as_ref()) {
        out.warn(&format!(
            "in maintenance: every request but health is answered 503 ({:?}, Retry-After {} s); `shipit maintenance {environment} off` ends it",
            m.message, m.retry_after
        ));
    }
    for r in &report.replicas {
        let uptime = r
            .uptime_seconds
            .map(|s| format!(", up {s} s"))
            .unwrap_or_default();
        let role = if r.role == "web" {
            String::new()
        } else {
            format!(" (role {})", r.role)
        };
        out.status(
            "replica",
            &format!("{} {} {}{uptime}{role}", r.name, r.state, r.health),
        );
    }
    for (r, v) in &report.kept {
        out.status(
            "kept",
            &format!("release {r} ({v}), stopped: `shipit rollback {environment} --to {v}`"),
        );
    }
    match &report.lock {
        Some(l) => out.warn(&format!("locked: {}", l.describe())),
        None => out.status("lock", "free"),
    }
    for p in &report.problems {
        out.warn(&format!("{p} (the next deploy or rollback repairs it)"));
    }
    for e in &report.history {
        let phases = e
            .phases
            .iter()
            .map(|p| format!("{} {}ms", p.name, p.ms))
            .collect::<Vec<_>>()
            .join(" ");
        out.status(
            "history",
            &format!(
                "{} {} {} {} release {} by {} in {} ms{}{}",
                e.started,
                e.action,
                e.version.as_deref().unwrap_or("-"),
                e.result,
                e.release
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "-".into()),
                e.who,
                e.duration_ms,
                if phases.is_empty() {
                    String::new()
                } else {
                    format!(" ({phases})")
                },
                e.reason
                    .as_ref()
                    .map(|r| format!(": {}", r.lines().next().unwrap_or("")))
                    .unwrap_or_default()
            ),
        );
    }
}

/// One host in `status`.
#[derive(Debug, Serialize)]
pub struct HostStatus {
    pub host: String,
    pub reachable: bool,
    /// Why not, when unreachable.
    pub error: Option<String>,
    pub status: Option<status::Status>,
}

#[derive(Debug, Serialize)]
pub struct FleetStatus {
    pub environment: String,
    pub hosts: Vec<HostStatus>,
    /// Hosts on different releases, or unreachable: what is wrong and the fix.
    pub drift: Vec<String>,
}

pub(super) async fn fleet(
    settings: &Settings,
    last: usize,
    only: Option<&str>,
) -> Result<FleetStatus, Error> {
    let (hosts, unreachable) = host::connect_all(settings).await?;
    let chosen = chosen(&hosts, only)?;
    let mut rows = Vec::new();
    for h in chosen {
        let row = match status::status(&h.engine, settings, last).await {
            Ok(s) => HostStatus {
                host: h.name.clone(),
                reachable: true,
                error: None,
                status: Some(s),
            },
            Err(e) => HostStatus {
                host: h.name.clone(),
                reachable: false,
                error: Some(e.to_string()),
                status: None,
            },
        };
        rows.push(row);
    }
    if only.is_none() {
        for u in unreachable {
            rows.push(HostStatus {
                host: u.name,
                reachable: false,
                error: Some(u.why),
                status: None,
            });
        }
    }
    rows.sort_by(|a, b| a.host.cmp(&b.host));
    let environment = settings.site.environment.clone();
    let mut drift = Vec::new();
    let releases: Vec<(String, Option<u64>)> = rows
        .iter()
        .filter_map(|r| r.status.as_ref().map(|s| (r.host.clone(), s.release)))
        .collect();
    if releases.windows(2).any(|w| w[0].1 != w[1].1) {
        drift.push(format!(
            "the hosts serve different releases ({}): `shipit deploy {environment}` brings them together",
            releases
                .iter()
                .map(|(h, r)| format!(
                    "{h}: {}",
                    r.map(|r| format!("release {r}"))
                        .unwrap_or_else(|| "nothing".into())
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for r in rows.iter().filter(|r| !r.reachable) {
        drift.push(format!(
            "{} is unreachable: a deploy refuses to start until it answers (or remove it from deploy.hosts)",
            r.host
        ));
    }
    Ok(FleetStatus {
        environment,
        hosts: rows,
        drift,
    })
}

pub(super) fn print_fleet(out: &Output, report: &FleetStatus) {
    for row in &report.hosts {
        let Some(s) = &row.status else {
            out.warn(&format!(
                "{}: UNREACHABLE: {}",
                row.host,
                row.error.clone().unwrap_or_default()
            ));
            continue;
        };
        let web: Vec<_> = s.replicas.iter().filter(|r| r.role == "web").collect();
        let healthy = web.iter().filter(|r| r.health == "healthy").count();
        // Each role: how many of its replicas run well (healthy, or running without a check).
        let mut roles: Vec<(String, usize, usize)> = Vec::new();
        for r in s.replicas.iter().filter(|r| r.role != "web") {
            let well = r.state == "running" && matches!(r.health.as_str(), "healthy" | "none");
            match roles.iter_mut().find(|(n, ..)| *n == r.role) {
                Some((_, ok, all)) => {
                    *ok += usize::from(well);
                    *all += 1;
                }
                None => roles.push((r.role.clone(), usize::from(well), 1)),
            }
        }
        let roles: String = roles
            .iter()
            .map(|(n, ok, all)| format!(", role {n} {ok}/{all} running"))
            .collect();
        let serving = match (&s.release, &s.version) {
            (Some(r), Some(v)) => format!("release {r} ({v})"),
            _ => "nothing deployed".into(),
        };
        let gateway = s
            .gateway
            .as_ref()
            .map(|g| format!("gateway {} at {}", g.state, g.url))
            .unwrap_or_else(|| "no gateway".into());
        let lock = s
            .lock
            .as_ref()
            .map(|l| format!("LOCKED {}", l.describe()))
            .unwrap_or_else(|| "lock free".into());
        let tls = s
            .gateway
            .as_ref()
            .and_then(|g| g.certificate_days_left)
            .map(|d| format!(", certificate {d} day(s) left"))
            .unwrap_or_default();
        let maintenance = if s.gateway.as_ref().is_some_and(|g| g.maintenance.is_some()) {
            ", IN MAINTENANCE"
        } else {
            ""
        };
        out.status(
            "host",
            &format!(
                "{}: {serving}, {healthy}/{} replica(s) healthy{roles}, {gateway}{maintenance}, {lock}{tls}",
                row.host,
                web.len()
            ),
        );
        for p in &s.problems {
            out.warn(&format!(
                "{}: {p} (the next deploy or rollback repairs it)",
                row.host
            ));
        }
    }
    for d in &report.drift {
        out.warn(&format!("drift: {d}"));
    }
}
