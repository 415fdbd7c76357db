//! Releases on one engine: what serves, what is kept, the next number, and
//! the replicas of each (found by their labels).

use super::history::{Entry, History};
use super::{RELEASE, Settings};
use crate::engine::{ContainerInfo, Engine};
use crate::error::Error;

/// The release serving now, as the gateway and the containers say.
#[derive(Debug, Clone)]
pub(super) struct Release {
    pub(super) number: u64,
    pub(super) version: String,
    pub(super) image_id: String,
    pub(super) replicas: Vec<String>,
    /// The digest of the roles it was deployed with (empty: none).
    pub(super) roles_digest: String,
}

pub(super) async fn replicas_of(
    engine: &Engine,
    settings: &Settings,
) -> Result<Vec<ContainerInfo>, Error> {
    engine.containers(&settings.site.filter("replica")).await
}

pub(super) fn release_of(c: &ContainerInfo) -> u64 {
    c.labels
        .get(RELEASE)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The next release number: above every one recorded or present.
pub(super) fn next_number(history: &[Entry], all: &[ContainerInfo]) -> u64 {
    let recorded = history.iter().filter_map(|e| e.release).max().unwrap_or(0);
    let present = all.iter().map(release_of).max().unwrap_or(0);
    recorded.max(present) + 1
}

/// The `keep` releases that served most recently before `serving`: kept
/// for a rollback.
pub fn kept(history: &History, serving: Option<u64>, keep: usize) -> Vec<u64> {
    let mut previous: Vec<u64> = Vec::new();
    for e in history.iter().rev().filter(|e| e.served()) {
        if let Some(r) = e.release
            && Some(r) != serving
            && !previous.contains(&r)
        {
            previous.push(r);
        }
    }
    previous.truncate(keep);
    previous
}

/// Removes releases beyond the newest `keep` previous ones (never one a
/// damaged history does not account for).
pub(super) async fn prune(
    engine: &Engine,
    settings: &Settings,
    history: &History,
    serving: u64,
) -> Result<Vec<String>, Error> {
    let keep = kept(history, Some(serving), settings.keep_releases);
    let mut removed = Vec::new();
    for c in replicas_of(engine, settings).await? {
        let r = release_of(&c);
        if r != serving && !keep.contains(&r) && history.accounts_for(r) {
            engine.remove_container(&c.name).await?;
            removed.push(c.name);
        }
    }
    Ok(removed)
}

/// Stops replicas in parallel, letting each drain its in-flight requests
/// (a role's replica: SIGTERM, then its stop grace to finish its work).
pub(super) async fn drain(engine: &Engine, settings: &Settings, names: &[String]) {
    let stops = names.iter().map(|n| engine.stop(n, settings.stop_grace(n)));
    let _ = futures_util::future::join_all(stops).await;
}
