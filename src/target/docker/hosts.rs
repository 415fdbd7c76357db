//! Choosing among `deploy.hosts` (`--host`), and the commands that act on
//! each chosen host in turn: `lock show | release` and `smoke`.

use crate::deploy::host::{self, Host};
use crate::deploy::{Settings, lock};
use crate::error::Error;
use crate::output::Output;

/// Hosts from `--host` (one engine, as configured) or all of them.
pub(super) fn chosen<'h>(hosts: &'h [Host], only: Option<&str>) -> Result<Vec<&'h Host>, Error> {
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

/// `lock show` / `lock release` on each chosen host.
pub(super) async fn locks(
    out: &Output,
    settings: &Settings,
    only: Option<&str>,
    release: Option<bool>,
) -> Result<(), Error> {
    let (release, force) = (release.is_some(), release.unwrap_or(false));
    let (hosts, unreachable) = host::connect_all(settings).await?;
    let mut rows = Vec::new();
    for h in chosen(&hosts, only)? {
        let held = if release {
            lock::release_recorded(&h.engine, &settings.site, force).await?
        } else {
            lock::inspect(&h.engine, &settings.site).await?
        };
        match (&held, release) {
            (Some(info), true) => {
                out.status("released", &format!("{}: {}", h.name, info.describe()))
            }
            (Some(info), false) => {
                out.status("locked", &format!("{}: {}", h.name, info.describe()))
            }
            (None, _) => out.status("unlocked", &format!("{}: not locked", h.name)),
        }
        rows.push(serde_json::json!({ "host": h.name, "lock": held, "released": release && held.is_some() }));
    }
    for u in &unreachable {
        out.warn(&format!("{}: unreachable: {}", u.name, u.why));
        rows.push(serde_json::json!({ "host": u.name, "error": u.why }));
    }
    if out.is_json() {
        out.json(&serde_json::json!({
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
