//! The serving release's replicas on a host, and how the day-2 commands
//! (`logs`, `exec`, `run`) name hosts and choose one.

use crate::deploy::host::{self, Host};
use crate::deploy::{RELEASE, REPLICA, Settings, gateway};
use crate::engine::{ContainerInfo, Engine};
use crate::error::Error;

/// The running replicas of the release the host's gateway serves, by
/// number; every running replica when no gateway says what it serves.
pub(super) async fn serving_replicas(
    engine: &Engine,
    settings: &Settings,
) -> Result<Vec<ContainerInfo>, Error> {
    let serving = gateway::serving(engine, settings)
        .await?
        .map(|s| s.release.to_string());
    let mut replicas: Vec<ContainerInfo> = engine
        .containers(&settings.site.filter("replica"))
        .await?
        .into_iter()
        .filter(|c| c.running)
        .filter(|c| serving.is_none() || c.labels.get(RELEASE) == serving.as_ref())
        .collect();
    replicas.sort_by_key(|c| number(c).unwrap_or(u64::MAX));
    Ok(replicas)
}

/// A replica's number in its release (1, 2, ...).
pub(super) fn number(c: &ContainerInfo) -> Option<u64> {
    c.labels.get(REPLICA).and_then(|n| n.parse().ok())
}

/// How a host is named in lines and messages: its engine's address among
/// `deploy.hosts`, or the host its ports answer at for the one engine of
/// `DOCKER_HOST`.
pub(super) fn who(h: &Host, settings: &Settings) -> String {
    if settings.hosts.is_empty() {
        h.engine.published_host.clone()
    } else {
        h.name.clone()
    }
}

/// The one host a command runs on: `--host`, else the first of
/// `deploy.hosts` (in their fixed order) that answers.
pub(super) async fn one_host(settings: &Settings, only: Option<&str>) -> Result<Host, Error> {
    let (hosts, unreachable) = host::connect_all(settings).await?;
    if let Some(name) = only {
        let chosen = super::hosts::chosen(&hosts, Some(name));
        if chosen.is_err()
            && let Some(u) = unreachable
                .iter()
                .find(|u| u.name == name || u.name.ends_with(&format!("//{name}")))
        {
            return Err(Error::Deploy {
                message: format!("{}: unreachable: {}", u.name, u.why),
            });
        }
        let chosen = chosen?[0].name.clone();
        return Ok(hosts
            .into_iter()
            .find(|h| h.name == chosen)
            .expect("chosen"));
    }
    match hosts.into_iter().next() {
        Some(h) => Ok(h),
        None => Err(Error::Deploy {
            message: format!(
                "no host answered: {}",
                unreachable
                    .iter()
                    .map(|u| format!("{}: {}", u.name, u.why))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }),
    }
}
