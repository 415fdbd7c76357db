//! The commands over an environment with `deploy.hosts`: `status` (one row
//! per host, drift flagged), `deploy --dry-run` (every host's preflight),
//! `lock show|release`, and the per-host part of `smoke`.

use serde::Serialize;

use super::Context;
use crate::deploy::host::{self, Host};
use crate::deploy::run::Options;
use crate::deploy::{Settings, gateway, lock, status};
use crate::error::Error;

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

/// Hosts from `--host` (one engine, as configured) or all of them.
fn chosen<'h>(hosts: &'h [Host], only: Option<&str>) -> Result<Vec<&'h Host>, Error> {
    match only {
        None => Ok(hosts.iter().collect()),
        Some(name) => {
            let found: Vec<&Host> = hosts
                .iter()
                .filter(|h| h.name == name || h.engine.published_host == name)
                .collect();
            if found.is_empty() {
                Err(Error::Usage(format!(
                    "--host {name}: not one of deploy.hosts ({})",
                    hosts
                        .iter()
                        .map(|h| h.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            } else {
                Ok(found)
            }
        }
    }
}

pub async fn fleet_status(
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

pub fn print_status(ctx: &Context, report: &FleetStatus) {
    let out = &ctx.out;
    for row in &report.hosts {
        let Some(s) = &row.status else {
            out.warn(&format!(
                "{}: UNREACHABLE: {}",
                row.host,
                row.error.clone().unwrap_or_default()
            ));
            continue;
        };
        let healthy = s.replicas.iter().filter(|r| r.health == "healthy").count();
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
        out.status(
            "host",
            &format!(
                "{}: {serving}, {healthy}/{} replica(s) healthy, {gateway}, {lock}{tls}",
                row.host,
                s.replicas.len()
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

#[derive(Serialize)]
struct HostPlan {
    host: String,
    gateway_url: String,
    serving_release: Option<u64>,
    serving_version: Option<String>,
    lock: Option<lock::LockInfo>,
}

/// `shipit deploy ENV --dry-run` across hosts: what serves where, and every
/// problem the preflight would stop at (exit 1 when there is one).
pub async fn plan(ctx: &Context, settings: &Settings, options: &Options) -> Result<(), Error> {
    let image = options.image_ref(settings);
    let (problems, hosts) = crate::deploy::fleet::check(settings, options).await?;
    let mut rows = Vec::new();
    for h in &hosts {
        let s = status::status(&h.engine, settings, 0).await?;
        rows.push(HostPlan {
            host: h.name.clone(),
            gateway_url: gateway::url(&h.engine, settings),
            serving_release: s.release,
            serving_version: s.version,
            lock: s.lock,
        });
    }
    if ctx.out.is_json() {
        ctx.out.json(&serde_json::json!({
            "environment": settings.site.environment,
            "version": settings.version,
            "image": image,
            "transfer": settings.transfer,
            "replicas_per_host": settings.replicas,
            "hosts": rows,
            "problems": problems,
        }));
    } else {
        ctx.out.status(
            "plan",
            &format!(
                "deploy {} {} ({image}) to {} host(s), {} replica(s) each, images by {:?}",
                settings.site.environment,
                settings.version,
                settings.hosts.len(),
                settings.replicas,
                settings.transfer
            ),
        );
        for r in &rows {
            ctx.out.status(
                "host",
                &format!(
                    "{}: serving {} at {}",
                    r.host,
                    match (&r.serving_release, &r.serving_version) {
                        (Some(n), Some(v)) => format!("release {n} ({v})"),
                        _ => "nothing yet".into(),
                    },
                    r.gateway_url
                ),
            );
        }
        for p in &problems {
            ctx.out.warn(p);
        }
        ctx.out.status("dry run", "nothing was changed");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Reported {
            code: 1,
            message: format!(
                "the deploy would stop at preflight: {} problem(s)",
                problems.len()
            ),
        })
    }
}

/// `lock show` / `lock release` on each chosen host.
pub async fn locks(
    ctx: &Context,
    settings: &Settings,
    only: Option<&str>,
    release: bool,
) -> Result<(), Error> {
    let (hosts, unreachable) = host::connect_all(settings).await?;
    let mut rows = Vec::new();
    for h in chosen(&hosts, only)? {
        let held = if release {
            lock::release_recorded(&h.engine, &settings.site).await?
        } else {
            lock::inspect(&h.engine, &settings.site).await?
        };
        match (&held, release) {
            (Some(info), true) => ctx
                .out
                .status("released", &format!("{}: {}", h.name, info.describe())),
            (Some(info), false) => ctx
                .out
                .status("locked", &format!("{}: {}", h.name, info.describe())),
            (None, _) => ctx
                .out
                .status("unlocked", &format!("{}: not locked", h.name)),
        }
        rows.push(serde_json::json!({ "host": h.name, "lock": held, "released": release && held.is_some() }));
    }
    for u in &unreachable {
        ctx.out.warn(&format!("{}: unreachable: {}", u.name, u.why));
        rows.push(serde_json::json!({ "host": u.name, "error": u.why }));
    }
    if ctx.out.is_json() {
        ctx.out.json(&serde_json::json!({
            "environment": settings.site.environment,
            "hosts": rows,
        }));
    }
    if unreachable.is_empty() || only.is_some() {
        Ok(())
    } else {
        Err(Error::Reported {
            code: 1,
            message: format!("{} host(s) could not be reached", unreachable.len()),
        })
    }
}

/// Where the smoke suite reaches each chosen host's gateway: the URL stays
/// the environment's (Host, SNI), the connection goes to that host.
pub async fn smoke_targets(
    settings: &Settings,
    only: Option<&str>,
) -> Result<Vec<(String, String)>, Error> {
    let (hosts, unreachable) = host::connect_all(settings).await?;
    if let Some(u) = unreachable.first()
        && only.is_none_or(|o| u.name == o)
    {
        return Err(Error::Deploy {
            message: format!("{}: unreachable: {}", u.name, u.why),
        });
    }
    let port = settings
        .tls
        .as_ref()
        .map(|t| t.port)
        .unwrap_or(settings.gateway_port);
    Ok(chosen(&hosts, only)?
        .into_iter()
        .map(|h| {
            (
                h.name.clone(),
                format!("{}:{port}", h.engine.published_host),
            )
        })
        .collect())
}
