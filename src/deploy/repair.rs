//! Before a deploy or rollback acts, the site is brought to one consistent
//! state: whatever a killed or interrupted run left behind is put right, and
//! what was done is recorded and said.

use crate::record::{Action, Conclusion};
use std::time::{Duration, Instant};

use super::history::{Entry, History, Store};
use super::releases::{Release, drain, release_of, replicas_of};
use super::{Settings, VERSION, gateway, replicas};
use crate::engine::{ContainerInfo, Engine};
use crate::error::Error;
use crate::output::Output;

/// Brings the site to one consistent state before a deploy or rollback:
/// the release the gateway serves (and the kept previous ones) stay; what
/// an interrupted run left behind goes. Returns what it repaired. `known`:
/// what the gateway serves, when the caller read it since taking the lock.
pub(super) async fn repair(
    engine: &Engine,
    settings: &Settings,
    store: &Store<'_>,
    history: &History,
    known: Option<Option<gateway::Serving>>,
    out: &Output,
) -> Result<(Option<Release>, Vec<String>), Error> {
    let mut repaired = Vec::new();
    if let Ok(left) = gateway::clear_candidates(engine, settings).await
        && !left.is_empty()
    {
        repaired.push(format!(
            "a candidate route left open by an interrupted run was closed ({})",
            left.join(", ")
        ));
    }
    let all = replicas_of(engine, settings).await?;
    // What the gateway serves, unless the caller just read it.
    let serving = match known {
        Some(serving) => serving,
        None => gateway::serving(engine, settings).await?,
    };
    let kept: Vec<u64> = history
        .iter()
        .filter(|e| e.served())
        .filter_map(|e| e.release)
        .collect();
    let mut current = None;
    if let Some(s) = &serving {
        // A gateway left between two releases by an interrupted rolling
        // deploy names replicas of both: put the whole serving release back.
        let mut mixed: Vec<u64> = s
            .upstreams
            .iter()
            .filter_map(|n| all.iter().find(|c| &c.name == n).map(release_of))
            .collect();
        mixed.sort_unstable();
        mixed.dedup();
        if mixed.len() > 1 {
            let back = history
                .iter()
                .rev()
                .find(|e| e.served())
                .and_then(|e| e.release)
                .unwrap_or(mixed[0]);
            let names: Vec<String> = all
                .iter()
                .filter(|c| release_of(c) == back)
                .map(|c| c.name.clone())
                .collect();
            revive(engine, settings, &names)
                .await
                .map_err(|why| Error::Deploy {
                    message: format!(
                        "repairing a half-switched gateway: release {back} did not come back: {why}"
                    ),
                })?;
            let servers = gateway::servers(engine, settings, &names)
                .await
                .map_err(|message| Error::Deploy { message })?;
            gateway::switch(engine, settings, &servers, back)
                .await
                .map_err(|message| Error::Deploy { message })?;
            repaired.push(format!(
                "the gateway was left between releases {mixed:?} by an interrupted rolling deploy: release {back} serves again"
            ));
        }
        let number = if mixed.len() > 1 {
            gateway::serving(engine, settings)
                .await?
                .map_or(s.release, |s| s.release)
        } else {
            s.release
        };
        let members: Vec<&ContainerInfo> = all.iter().filter(|c| release_of(c) == number).collect();
        if let Some(first) = members.first() {
            current = Some(Release {
                number,
                version: first.labels.get(VERSION).cloned().unwrap_or_default(),
                image_id: first.image.clone(),
                replicas: members.iter().map(|c| c.name.clone()).collect(),
                roles_digest: first.labels.get(super::ROLES).cloned().unwrap_or_default(),
            });
            // A switch that happened but was never recorded.
            let last = history
                .iter()
                .rev()
                .find(|e| e.served())
                .and_then(|e| e.release);
            if last != Some(number) {
                let mut entry =
                    Entry::new(Action::Repair, Conclusion::Repaired, crate::clock::now());
                entry.release = Some(number);
                entry.version = current.as_ref().map(|r| r.version.clone());
                entry.image_id = current.as_ref().map(|r| r.image_id.clone());
                entry.replicas = current
                    .as_ref()
                    .map(|r| r.replicas.clone())
                    .unwrap_or_default();
                entry.reason = Some(format!(
                    "release {number} was serving but not recorded (shipit was stopped after the switch); recorded it"
                ));
                store.append(&entry).await?;
                repaired.push(entry.reason.clone().unwrap_or_default());
            }
            // Every replica of the serving release runs (and is not on its way out).
            let names: Vec<String> = members.iter().map(|c| c.name.clone()).collect();
            let revived = revive(engine, settings, &names)
                .await
                .map_err(|why| Error::Deploy {
                    message: format!("release {number} serves, but not every replica runs: {why}"),
                })?;
            for name in revived {
                repaired.push(format!(
                    "{name} of the serving release was stopped or stopping: started it"
                ));
            }
        }
    }
    // Containers of releases that never served: left by an interrupted
    // deploy. While the history is damaged, a release it does not account
    // for may be one that served: it stays.
    if let Some(damage) = history.damage() {
        out.warn(&damage);
    }
    let serving_number = current.as_ref().map(|r| r.number);
    let mut orphans: Vec<&ContainerInfo> = all
        .iter()
        .filter(|c| Some(release_of(c)) != serving_number && !kept.contains(&release_of(c)))
        .filter(|c| history.accounts_for(release_of(c)))
        .collect();
    orphans.sort_by_key(|c| c.name.clone());
    if !orphans.is_empty() {
        let releases: Vec<u64> = {
            let mut r: Vec<u64> = orphans.iter().map(|c| release_of(c)).collect();
            r.dedup();
            r
        };
        // They may have taken traffic (a rolling deploy killed half-way):
        // drained like any old replica before they go.
        let running: Vec<String> = orphans
            .iter()
            .filter(|c| c.running)
            .map(|c| c.name.clone())
            .collect();
        drain(engine, settings, &running).await;
        for c in &orphans {
            engine.remove_container(&c.name).await?;
        }
        let names: Vec<String> = orphans.iter().map(|c| c.name.clone()).collect();
        let text = format!(
            "removed {} left by an interrupted deploy of release {}",
            names.join(", "),
            releases
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut entry = Entry::new(Action::Deploy, Conclusion::Interrupted, crate::clock::now());
        entry.release = releases.first().copied();
        entry.version = orphans[0].labels.get(VERSION).cloned();
        entry.reason = Some(format!("shipit stopped before the deploy finished; {text}"));
        store.append(&entry).await?;
        repaired.push(text);
    }
    // Kept releases that still run (a rollback or drain cut short) are stopped.
    for c in &all {
        let r = release_of(c);
        if Some(r) != serving_number && kept.contains(&r) && c.running {
            engine.stop(&c.name, settings.drain).await?;
            repaired.push(format!(
                "{} (release {r}, not serving) was still running: stopped it",
                c.name
            ));
        }
    }
    for line in &repaired {
        out.status("repaired", line);
    }
    Ok((current, repaired))
}

/// Makes sure every named replica runs and stays: one that is stopped is
/// started; one that is draining (its readiness answers 503 after a SIGTERM
/// from a run that was killed) is let finish, then started. Then all are
/// health-gated. Returns the ones it had to start.
async fn revive(
    engine: &Engine,
    settings: &Settings,
    names: &[String],
) -> Result<Vec<String>, String> {
    let mut started: Vec<String> = Vec::new();
    // A stop that a killed run asked for goes on in the engine after the run
    // is gone: a replica may still finish stopping after it looked running.
    let deadline = Instant::now() + settings.drain + Duration::from_secs(15);
    loop {
        for name in names {
            let Some(info) = engine.container(name).await.map_err(|e| e.to_string())? else {
                return Err(format!("{name} is gone"));
            };
            if info.running && draining(engine, settings, &info).await {
                while engine
                    .container(name)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|c| c.running)
                {
                    if Instant::now() > deadline {
                        return Err(format!("{name} is shutting down and does not stop"));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            } else if info.running {
                continue;
            }
            engine.start(name).await.map_err(|e| e.to_string())?;
            if !started.contains(name) {
                started.push(name.clone());
            }
        }
        match replicas::wait_healthy(engine, names, settings.health_timeout, &|| false).await {
            Ok(()) => return Ok(started),
            Err(u) if u.reason.starts_with("it exited") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(u) => return Err(format!("{}: {}", u.container, u.reason)),
        }
    }
}

/// Whether a running replica has been told to stop: healthy, yet its
/// readiness says 503 (one still starting is not healthy yet). Asked from
/// inside the gateway: replicas publish no port.
async fn draining(engine: &Engine, settings: &Settings, info: &ContainerInfo) -> bool {
    if info.health != "healthy" {
        return false;
    }
    gateway::probe(engine, settings, &info.name, &settings.paths.ready).await == Some(503)
}
