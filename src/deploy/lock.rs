//! One deploy at a time per environment: the lock is a container on the
//! engine (never started) whose name only one creator can take, so deploys
//! from different machines exclude each other too.

use crate::record::{Action, Conclusion};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Settings, Site};
use crate::engine::{ContainerSpec, Engine};
use crate::error::Error;

const HOLDER: &str = "dev.shipit.lock.holder";
const HOST: &str = "dev.shipit.lock.host";
const PID: &str = "dev.shipit.lock.pid";
const SINCE: &str = "dev.shipit.lock.since";
const COMMAND: &str = "dev.shipit.lock.command";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LockInfo {
    pub holder: String,
    pub host: String,
    pub pid: u32,
    /// Seconds since the epoch.
    pub since: i64,
    pub command: String,
    /// `Some(true)`: its process is gone (same host, pid not running).
    /// `None`: held from another host, so liveness cannot be checked here.
    pub stale: Option<bool>,
}

impl LockInfo {
    pub fn describe(&self) -> String {
        let age = (crate::clock::now() - self.since).max(0);
        let state = match self.stale {
            Some(true) => " - STALE: that process is no longer running (a killed deploy)",
            Some(false) => "",
            None => " (on another host: shipit cannot tell from here whether it is still running)",
        };
        format!(
            "held by {} (pid {}, `{}`) since {} ({age} s ago){state}",
            self.holder,
            self.pid,
            self.command,
            crate::clock::rfc3339(self.since)
        )
    }
}

/// Held until `release`.
pub struct Guard {
    name: String,
}

impl Guard {
    pub async fn release(self, engine: &Engine) {
        let _ = engine.remove_container(&self.name).await;
    }
}

pub async fn inspect(engine: &Engine, site: &Site) -> Result<Option<LockInfo>, Error> {
    let Some(c) = engine.container(&site.lock()).await? else {
        return Ok(None);
    };
    let label = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
    let host = label(HOST);
    let pid = label(PID).parse::<u32>().unwrap_or(0);
    let (_, here) = crate::identity::who();
    let stale = (host == here).then(|| !std::path::Path::new(&format!("/proc/{pid}")).exists());
    Ok(Some(LockInfo {
        holder: label(HOLDER),
        host,
        pid,
        since: label(SINCE).parse().unwrap_or(0),
        command: label(COMMAND),
        stale,
    }))
}

/// Takes the lock, waiting up to `wait` for another holder to finish.
pub async fn acquire(
    engine: &Engine,
    settings: &Settings,
    command: &str,
    wait: Duration,
    cancelled: &(dyn Fn() -> bool + Sync),
    mut on_wait: impl FnMut(&LockInfo),
) -> Result<Guard, Error> {
    let site = &settings.site;
    let (holder, host) = crate::identity::who();
    let mut labels = site.labels("lock");
    labels.extend([
        (HOLDER.to_string(), holder),
        (HOST.to_string(), host),
        (PID.to_string(), std::process::id().to_string()),
        (SINCE.to_string(), crate::clock::now().to_string()),
        (COMMAND.to_string(), command.to_string()),
    ]);
    let spec = ContainerSpec {
        name: site.lock(),
        image: settings.gateway_image.clone(),
        labels,
        ..Default::default()
    };
    let start = Instant::now();
    let mut told = false;
    loop {
        if engine.create_container(&spec).await?.is_some() {
            return Ok(Guard { name: site.lock() });
        }
        let Some(info) = inspect(engine, site).await? else {
            continue; // released in between: try again
        };
        if start.elapsed() >= wait || cancelled() {
            let hint = match info.stale {
                Some(true) => format!(
                    "nothing is running it any more: release it with `shipit lock release {}`, then deploy again (the next deploy repairs what the killed one left)",
                    site.environment
                ),
                _ => format!(
                    "wait for it (--lock-wait 10m), or, if that deploy is dead, `shipit lock release {}`",
                    site.environment
                ),
            };
            return Err(Error::Deploy {
                message: format!(
                    "{} is locked by another deploy: {}\n{hint}",
                    site.environment,
                    info.describe()
                ),
            });
        }
        if !told {
            on_wait(&info);
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Removes the lock whoever holds it; returns who did.
pub async fn release(engine: &Engine, site: &Site) -> Result<Option<LockInfo>, Error> {
    let info = inspect(engine, site).await?;
    if info.is_some() {
        engine.remove_container(&site.lock()).await?;
    }
    Ok(info)
}

/// Removes the lock by hand (`shipit lock release`) and records who held it
/// in the environment's history, when there is one.
pub async fn release_recorded(engine: &Engine, site: &Site) -> Result<Option<LockInfo>, Error> {
    let held = release(engine, site).await?;
    if let Some(info) = &held
        && let Ok(Some(store)) = super::history::Store::existing(engine, site).await
    {
        let mut entry = super::history::Entry::new(
            Action::LockRelease,
            Conclusion::Succeeded,
            crate::clock::now(),
        );
        entry.reason = Some(format!("released a lock {}", info.describe()));
        store.append(&entry).await?;
    }
    Ok(held)
}
