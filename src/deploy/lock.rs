//! One deploy at a time per environment: the lock is a container on the
//! engine (never started) whose name only one creator can take, so deploys
//! from different machines exclude each other too.
//!
//! It is a lease. Its holder writes a heartbeat into it every third of
//! `deploy.lock_lease`, stamped with the engine's clock; once the heartbeat
//! is older than the lease by that same clock (no two machines' clocks are
//! compared), another run takes the lock over and names its old holder.
//! Only its owner lets it go (the lock carries the owner's token); a person
//! can with `shipit lock release --force`, or without it once its holder is
//! gone (a stale or expired lock).

use crate::record::{Action, Conclusion};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Settings, Site};
use crate::engine::{ContainerSpec, Engine};
use crate::error::Error;

const HOLDER: &str = "dev.shipit.lock.holder";
const HOST: &str = "dev.shipit.lock.host";
const PID: &str = "dev.shipit.lock.pid";
const PIDNS: &str = "dev.shipit.lock.pidns";
const SINCE: &str = "dev.shipit.lock.since";
const COMMAND: &str = "dev.shipit.lock.command";
const TOKEN: &str = "dev.shipit.lock.token";
const LEASE: &str = "dev.shipit.lock.lease";
/// The heartbeat, in the site's state volume (the lock's own container is
/// read-only): its holder's token and the engine's time (epoch seconds)
/// when it last wrote it.
const BEAT_DIR: &str = "/state";
const BEAT: &str = "lock-heartbeat";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LockInfo {
    pub holder: String,
    pub host: String,
    pub pid: u32,
    /// Seconds since the epoch.
    pub since: i64,
    pub command: String,
    /// `Some(true)`: its process is gone (same host and pid namespace, pid
    /// not running). `None`: held from elsewhere, so it cannot be checked here.
    pub stale: Option<bool>,
    /// Seconds since its holder's last heartbeat, by the engine's clock
    /// (`None`: none yet, or a lock from a shipit without heartbeats).
    pub heartbeat_age: Option<i64>,
    /// `deploy.lock_lease` of its holder, in seconds.
    pub lease_seconds: u64,
    /// No heartbeat for longer than the lease: another run may take it over.
    pub expired: bool,
    #[serde(skip)]
    token: String,
}

impl LockInfo {
    pub fn describe(&self) -> String {
        let age = (crate::clock::now() - self.since).max(0);
        let state = if self.expired {
            format!(
                " - EXPIRED: no heartbeat for {} s (its lease is {} s)",
                self.heartbeat_age.unwrap_or_default(),
                self.lease_seconds
            )
        } else {
            match self.stale {
                Some(true) => {
                    " - STALE: that process is no longer running (a killed deploy)".to_string()
                }
                Some(false) => String::new(),
                None => " (on another host: shipit cannot tell from here whether it is still running; its heartbeat says so within the lease)".to_string(),
            }
        };
        format!(
            "held by {} (pid {}, `{}`) since {} ({age} s ago){state}",
            self.holder,
            self.pid,
            self.command,
            crate::clock::rfc3339(self.since)
        )
    }

    /// Its holder is gone: a person may release it without `--force`.
    pub fn abandoned(&self) -> bool {
        self.expired || self.stale == Some(true)
    }
}

/// Held until `release`; its heartbeat runs meanwhile.
pub struct Guard {
    name: String,
    token: String,
    beat: tokio::task::JoinHandle<()>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.beat.abort();
    }
}

impl Guard {
    /// Lets go of the lock, if it is still this run's: one taken over
    /// meanwhile (this run's heartbeat had stopped) is another run's now.
    pub async fn release(self, engine: &Engine) {
        self.beat.abort();
        if let Ok(Some(c)) = engine.container(&self.name).await
            && c.labels.get(TOKEN) == Some(&self.token)
        {
            let _ = engine.remove_container(&self.name).await;
        }
    }
}

/// Writes the heartbeat: this holder's token and the engine's time.
async fn beat(engine: &Engine, site: &Site, token: &str) -> Result<(), Error> {
    let now = engine.system_time().await?;
    engine
        .upload(
            &site.state(),
            BEAT_DIR,
            &[(BEAT, format!("{token} {now}").as_bytes())],
        )
        .await
}

/// The engine's time of the last heartbeat of the holder of `token`.
async fn last_beat(engine: &Engine, site: &Site, token: &str) -> Option<i64> {
    let bytes = engine
        .download(&site.state(), &format!("{BEAT_DIR}/{BEAT}"))
        .await
        .ok()??;
    let text = String::from_utf8_lossy(&bytes);
    let (owner, at) = text.trim().split_once(' ')?;
    (owner == token && !token.is_empty())
        .then(|| at.parse().ok())
        .flatten()
}

pub async fn inspect(engine: &Engine, site: &Site) -> Result<Option<LockInfo>, Error> {
    let name = site.lock();
    let Some(c) = engine.container(&name).await? else {
        return Ok(None);
    };
    let label = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
    let host = label(HOST);
    let pid = label(PID).parse::<u32>().unwrap_or(0);
    let (_, here) = crate::identity::who();
    let same_pids = label(PIDNS).is_empty() || label(PIDNS) == crate::identity::pid_namespace();
    let stale = (host == here && same_pids)
        .then(|| !std::path::Path::new(&format!("/proc/{pid}")).exists());
    let lease_seconds = label(LEASE).parse::<u64>().unwrap_or(0);
    let heartbeat_age = match last_beat(engine, site, &label(TOKEN)).await {
        Some(at) => Some((engine.system_time().await? - at).max(0)),
        None => None,
    };
    Ok(Some(LockInfo {
        holder: label(HOLDER),
        host,
        pid,
        since: label(SINCE).parse().unwrap_or(0),
        command: label(COMMAND),
        stale,
        heartbeat_age,
        lease_seconds,
        expired: lease_seconds > 0 && heartbeat_age.is_some_and(|a| a > lease_seconds as i64),
        token: label(TOKEN),
    }))
}

/// What `acquire` meets on its way to the lock.
pub enum Seen<'a> {
    /// Another run holds it: waiting (said once).
    Waiting(&'a LockInfo),
    /// Its holder's lease ran out: taking it over.
    TakingOver(&'a LockInfo),
}

/// Takes the lock, waiting up to `wait` for another holder to finish, and
/// taking over one whose lease ran out.
pub async fn acquire(
    engine: &Engine,
    settings: &Settings,
    command: &str,
    wait: Duration,
    cancelled: &(dyn Fn() -> bool + Sync),
    mut seen: impl FnMut(Seen<'_>),
) -> Result<Guard, Error> {
    let site = &settings.site;
    let (holder, host) = crate::identity::who();
    let token = crate::identity::token().map_err(|message| Error::Deploy { message })?;
    let lease = settings.lock_lease;
    let mut labels = site.labels("lock");
    labels.extend([
        (HOLDER.to_string(), holder),
        (HOST.to_string(), host),
        (PID.to_string(), std::process::id().to_string()),
        (PIDNS.to_string(), crate::identity::pid_namespace()),
        (SINCE.to_string(), crate::clock::now().to_string()),
        (COMMAND.to_string(), command.to_string()),
        (TOKEN.to_string(), token.clone()),
        (LEASE.to_string(), lease.as_secs().to_string()),
    ]);
    let spec = ContainerSpec {
        name: site.lock(),
        image: settings.gateway_image.clone(),
        labels,
        ..Default::default()
    };
    // Where the heartbeat goes.
    super::history::Store::open(engine, settings).await?;
    let start = Instant::now();
    let mut told = false;
    loop {
        if engine.create_container(&spec).await?.is_some() {
            let name = site.lock();
            if let Err(e) = beat(engine, site, &token).await {
                let _ = engine.remove_container(&name).await;
                return Err(e);
            }
            let every = (lease / 3).max(Duration::from_secs(1));
            let (engine, site, mine) = (engine.clone(), site.clone(), token.clone());
            let beat = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let _ = beat(&engine, &site, &mine).await;
                }
            });
            return Ok(Guard { name, token, beat });
        }
        let Some(info) = inspect(engine, site).await? else {
            continue; // released in between: try again
        };
        if info.expired {
            seen(Seen::TakingOver(&info));
            take_over(engine, site, &info).await?;
            continue;
        }
        if start.elapsed() >= wait || cancelled() {
            let hint = match info.stale {
                Some(true) => format!(
                    "nothing is running it any more: release it with `shipit lock release {}`, then deploy again (the next deploy repairs what the killed one left); or wait {} s, after which its lease runs out and the next deploy takes it over",
                    site.environment, info.lease_seconds
                ),
                _ => format!(
                    "wait for it (--lock-wait 10m); if that deploy is dead, its lease runs out {} s after its last heartbeat and the next deploy takes the lock over (or `shipit lock release {} --force` now)",
                    info.lease_seconds, site.environment
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
            seen(Seen::Waiting(&info));
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Removes the lock `info` describes, if it is still that one (another run
/// may have taken it over meanwhile).
async fn take_over(engine: &Engine, site: &Site, info: &LockInfo) -> Result<(), Error> {
    if let Some(c) = engine.container(&site.lock()).await?
        && c.labels.get(TOKEN).cloned().unwrap_or_default() == info.token
    {
        engine.remove_container(&site.lock()).await?;
    }
    Ok(())
}

/// Removes the lock of a holder that is gone (stale or expired), whoever
/// it was; returns who held it. A live lock is left alone.
pub async fn release_abandoned(engine: &Engine, site: &Site) -> Result<Option<LockInfo>, Error> {
    let info = inspect(engine, site).await?;
    if let Some(info) = info.as_ref().filter(|i| i.abandoned()) {
        take_over(engine, site, info).await?;
    }
    Ok(info)
}

/// Removes the lock by hand (`shipit lock release`) and records who held it
/// in the environment's history, when there is one. A lock whose holder
/// still beats is released only with `force`.
pub async fn release_recorded(
    engine: &Engine,
    site: &Site,
    force: bool,
) -> Result<Option<LockInfo>, Error> {
    let Some(info) = inspect(engine, site).await? else {
        return Ok(None);
    };
    if !force && !info.abandoned() {
        return Err(Error::Deploy {
            message: format!(
                "{} is locked by a deploy that is still running: {}\nreleasing it would let another deploy run beside it; wait for it, or, if you know it is dead, `shipit lock release {} --force`",
                site.environment,
                info.describe(),
                site.environment
            ),
        });
    }
    take_over(engine, site, &info).await?;
    if let Ok(Some(store)) = super::history::Store::existing(engine, site).await {
        let mut entry = super::history::Entry::new(
            Action::LockRelease,
            Conclusion::Succeeded,
            crate::clock::now(),
        );
        entry.reason = Some(format!(
            "released a lock {}{}",
            info.describe(),
            if force && !info.abandoned() {
                " (forced)"
            } else {
                ""
            }
        ));
        store.append(&entry).await?;
    }
    Ok(Some(info))
}
