//! The serving release's replicas on a host, and how the day-2 commands
//! (`logs`, `exec`, `run`) name hosts.

use crate::deploy::host::Host;
use crate::deploy::{RELEASE, REPLICA, Settings, gateway, process_of};
use crate::engine::{ContainerInfo, Engine};
use crate::error::Error;

/// The running replicas of the release the host's gateway serves, by
/// number; every running replica when no gateway says what it serves. The
/// gateway is asked only when two releases run (a deploy under way).
pub(super) async fn serving_replicas(
    engine: &Engine,
    settings: &Settings,
) -> Result<Vec<ContainerInfo>, Error> {
    let running: Vec<ContainerInfo> = engine
        .containers(&settings.site.filter("replica"))
        .await?
        .into_iter()
        .filter(|c| c.running)
        .collect();
    let releases: std::collections::BTreeSet<Option<&String>> =
        running.iter().map(|c| c.labels.get(RELEASE)).collect();
    let serving = if releases.len() > 1 {
        gateway::serving(engine, settings)
            .await?
            .map(|s| s.release.to_string())
    } else {
        None
    };
    let mut replicas: Vec<ContainerInfo> = running
        .into_iter()
        .filter(|c| serving.is_none() || c.labels.get(RELEASE) == serving.as_ref())
        .collect();
    // The web role's first (`--replica 2` is its second), then the roles'.
    replicas.sort_by_key(|c| {
        let role = Some(process_of(c))
            .filter(|p| *p != "web")
            .map(String::from);
        (role, number(c).unwrap_or(u64::MAX))
    });
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
