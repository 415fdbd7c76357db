//! The steps of a deploy or rollback on one host, which the run over the
//! environment's hosts (`fleet`) puts together: take the lock, open the site,
//! prepare the gateway, start (or start kept) replicas gated on health,
//! smoke-test them through the candidate route, switch, drain, and route
//! back on a failure. Also the run's options and what it reports.

use std::time::{Duration, Instant};

use serde::Serialize;

pub(super) use super::failure::Failure;
use super::history::{Entry, History, Store};
use super::releases::{Release, drain};
use super::{Settings, gateway, lock, replicas};
use crate::cancel::Cancel;
use crate::config::model::Strategy;
use crate::engine::Engine;
use crate::error::Error;
use crate::output::Output;
pub use crate::record::Timeline;
use crate::smoke;

#[derive(Debug, Clone)]
pub struct Options {
    pub image: Option<String>,
    pub strategy: Option<Strategy>,
    pub lock_wait: Duration,
    /// The release to return to (`rollback --to VERSION`).
    pub to_version: Option<String>,
}

impl Options {
    /// The image to deploy: `--image`, else the environment's.
    pub fn image_ref(&self, settings: &Settings) -> String {
        self.image
            .clone()
            .unwrap_or_else(|| settings.image_ref.clone())
    }
}

/// What a deploy or rollback did: the record every target shares, with
/// what Docker hosts add to it.
pub type Outcome = crate::record::Outcome<Detail, super::plan::Plan>;

/// What Docker hosts add to the record of a run.
#[derive(Debug, Serialize)]
pub struct Detail {
    /// The history entry the run appended (on the first host).
    pub entry: Entry,
    pub gateway_url: String,
    /// Each host's part, when the environment deploys to several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostReport>,
}

/// What one host did in a run across hosts.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub host: String,
    pub gateway_url: String,
    /// `succeeded`, `rolled-back`, `no-op`, `unreachable`, ...
    pub result: String,
    /// The step that failed here, and why.
    pub step: Option<String>,
    pub reason: Option<String>,
    /// What serves on this host now.
    pub serving_release: Option<u64>,
    pub serving_version: Option<String>,
}

/// What every step of one deploy or rollback works with.
pub(super) struct Job<'a> {
    pub(super) engine: &'a Engine,
    pub(super) settings: &'a Settings,
    pub(super) out: &'a Output,
    pub(super) cancel: &'a Cancel,
    /// The image new replicas run (none for a rollback, which starts kept ones).
    pub(super) image_ref: Option<&'a str>,
    pub(super) secrets: &'a [(String, String)],
    /// The gateway's certificate and key, checked (TLS environments).
    pub(super) tls: Option<&'a super::tls::Material>,
}

/// Takes the environment's lock, saying so while it waits for another holder.
pub(super) async fn take_lock(
    engine: &Engine,
    settings: &Settings,
    out: &Output,
    cancel: &Cancel,
    command: &str,
    wait: Duration,
) -> Result<lock::Guard, Error> {
    lock::acquire(
        engine,
        settings,
        command,
        wait,
        &|| cancel.is_set(),
        |seen| match seen {
            lock::Seen::Waiting(info) => {
                out.status("waiting", &format!("for the lock: {}", info.describe()));
            }
            lock::Seen::TakingOver(info) => {
                out.warn(&format!(
                    "taking over a lock whose lease ran out: {}",
                    info.describe()
                ));
            }
        },
    )
    .await
}

/// Brings the gateway in line with the configuration before anything else
/// changes (created, recreated, reloaded, certificate rotated), and says so.
/// The site on one engine, as every deploy starts it: its network ensured,
/// its history store opened and read, and whether its gateway already runs.
pub(super) async fn open_site<'e>(
    engine: &'e Engine,
    settings: &Settings,
) -> Result<(Store<'e>, History, bool), Error> {
    let site = &settings.site;
    engine
        .ensure_network(&site.network(), &site.labels("network"))
        .await?;
    let store = Store::open(engine, settings).await?;
    let history = store.read().await?;
    let gateway_was_there = engine.container(&site.gateway()).await?.is_some();
    Ok((store, history, gateway_was_there))
}

pub(super) async fn prepare_gateway(job: &Job<'_>) -> Result<gateway::Ensured, Error> {
    let ensured = gateway::ensure(job.engine, job.settings, job.tls)
        .await
        .map_err(|why| Error::Deploy {
            message: format!(
                "the gateway could not be prepared, so nothing else was changed: {why}"
            ),
        })?;
    if ensured.created {
        job.out.status(
            "gateway",
            &format!("started {}", job.settings.site.gateway()),
        );
    } else if ensured.recreated {
        job.out.warn(&format!(
            "the gateway's image or ports changed: {} was recreated (its open connections were closed)",
            job.settings.site.gateway()
        ));
    }
    if ensured.reloaded || ensured.rotated {
        job.out.status("gateway", &gateway_changes(&ensured));
    }
    Ok(ensured)
}

pub(super) fn gateway_changes(ensured: &gateway::Ensured) -> String {
    match (ensured.reloaded, ensured.rotated) {
        (true, true) => {
            "the gateway's configuration was reloaded gracefully and its certificate rotated live"
                .into()
        }
        (true, false) => "the gateway's configuration was reloaded gracefully".into(),
        (false, true) => "the gateway's certificate was rotated live".into(),
        _ => "the gateway is unchanged".into(),
    }
}

/// Opens the candidate route to `names` (the gateway's own health check
/// must pass for each) and runs the smoke suite through it: the same
/// gateway, port and TLS that will serve them. The route is closed again
/// whatever happens; `then` runs while it is open.
pub(super) async fn on_trial<T>(
    job: &Job<'_>,
    names: &[String],
    timeline: &mut Timeline,
    then: impl AsyncFnOnce(&[gateway::Server]) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let (engine, settings, cancel) = (job.engine, job.settings, job.cancel);
    let servers = gateway::servers(engine, settings, names)
        .await
        .map_err(|e| Failure::new("health", e))?;
    let candidate =
        match gateway::open_candidate(engine, settings, &servers, settings.health_timeout).await {
            Ok(c) => c,
            Err(why) => {
                // The replica the gateway named (one that exited), else the first.
                let container = names
                    .iter()
                    .find(|n| why.starts_with(&format!("{n} ")))
                    .unwrap_or(&names[0])
                    .clone();
                return Err(Failure {
                    phase: "health",
                    reason: why,
                    detail: String::new(),
                    logs: engine.logs(&container, 20).await,
                    container: Some(container),
                });
            }
        };
    let result = async {
        let (base, route) = gateway::check_route(engine, settings, vec![candidate.header()])
            .map_err(|e| Failure::new("smoke", e))?;
        let paths = settings.paths.clone();
        let deadline = settings.smoke_timeout;
        let flag = cancel.clone();
        let spinner = job.out.spinner(&format!(
            "smoke tests through the gateway's candidate route ({})",
            names.join(", ")
        ));
        let report = tokio::task::spawn_blocking(move || {
            smoke::run(&base, &route, &paths, deadline, &|| flag.is_set())
        })
        .await
        .map_err(|e| Failure::new("smoke", e.to_string()));
        if let Some(bar) = spinner {
            bar.finish_and_clear();
        }
        let report = report?;
        if !report.passed {
            return Err(Failure {
                phase: "smoke",
                reason: report.brief(),
                container: Some(names[0].clone()),
                detail: report.failed_checks(),
                logs: engine.logs(&names[0], 20).await,
            });
        }
        timeline.mark("smoke");
        job.out.status(
            "smoke",
            &format!(
                "passed through the gateway's candidate route ({})",
                names.join(", ")
            ),
        );
        if cancel.is_set() {
            return Err(Failure::new("smoke", "interrupted"));
        }
        // Their check passed in the candidate route: not awaited again.
        let checked: Vec<gateway::Server> = servers
            .iter()
            .map(|s| gateway::Server {
                gateway_checked: true,
                ..s.clone()
            })
            .collect();
        then(&checked).await
    }
    .await;
    gateway::close_candidate(engine, settings, &candidate).await;
    result
}

/// Starts web replicas `indexes` (and, `with_roles`, every role's replicas)
/// and gates them on health; on failure removes them all.
pub(super) async fn start_healthy(
    job: &Job<'_>,
    number: u64,
    indexes: std::ops::Range<usize>,
    with_roles: bool,
    timeline: &mut Timeline,
) -> Result<Vec<String>, Failure> {
    let (engine, settings, cancel) = (job.engine, job.settings, job.cancel);
    let secrets = job.secrets;
    let Some(image_ref) = job.image_ref else {
        return Err(Failure::new(
            "start",
            "no image to start new replicas from (a rollback starts kept ones)",
        ));
    };
    let mut which: Vec<(Option<&super::Role>, usize)> = indexes.map(|i| (None, i)).collect();
    if with_roles {
        for role in &settings.roles {
            which.extend((0..role.replicas).map(|i| (Some(role), i)));
        }
    }
    let mut names = Vec::new();
    for (role, i) in which {
        let started = replicas::start(
            engine,
            settings,
            number,
            role,
            i,
            image_ref,
            &settings.version,
            secrets,
        )
        .await;
        match started {
            Ok(name) => names.push(name),
            Err(e) => {
                for n in &names {
                    let _ = engine.remove_container(n).await;
                }
                let name = match role {
                    None => settings.site.replica(number, i),
                    Some(r) => settings.site.role_replica(number, &r.name, i),
                };
                let _ = engine.remove_container(&name).await;
                return Err(Failure::new("start", e.to_string()));
            }
        }
    }
    timeline.mark("start");
    let spinner = job.out.spinner(&format!(
        "waiting for {} to report healthy",
        names.join(", ")
    ));
    let gated = replicas::wait_ready(engine, settings, &names, &|| cancel.is_set()).await;
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    if let Err(u) = gated {
        for n in &names {
            let _ = engine.remove_container(n).await;
        }
        return Err(u.into());
    }
    timeline.mark("health");
    Ok(names)
}

/// Starts kept replicas again (a rollback) and gates them on health; on
/// failure they are stopped again.
pub(super) async fn start_kept(
    job: &Job<'_>,
    names: &[String],
    timeline: &mut Timeline,
) -> Result<(), Failure> {
    let engine = job.engine;
    let stop_all = async || {
        for n in names {
            let _ = engine.stop(n, Duration::from_secs(1)).await;
        }
    };
    for n in names {
        let secrets = replicas::give_secrets(engine, job.settings, n, job.secrets).await;
        if let Err(e) = secrets {
            stop_all().await;
            return Err(Failure::new(
                "start",
                format!("cannot give {n} its secrets: {e}"),
            ));
        }
        if let Err(e) = engine.start(n).await {
            stop_all().await;
            return Err(Failure::new("start", format!("cannot start {n}: {e}")));
        }
    }
    timeline.mark("start");
    let cancel = job.cancel;
    let gated = replicas::wait_ready(engine, job.settings, names, &|| cancel.is_set()).await;
    if let Err(u) = gated {
        stop_all().await;
        return Err(u.into());
    }
    timeline.mark("health");
    Ok(())
}

/// Smoke-tests `names` through the candidate route, switches the gateway to
/// them, and drains `current`. On failure the gateway routes to `current`
/// again and the new replicas are removed (`created`) or stopped again.
pub(super) async fn promote(
    job: &Job<'_>,
    current: Option<&Release>,
    number: u64,
    names: &[String],
    created: bool,
    timeline: &mut Timeline,
) -> Result<(), Failure> {
    let (engine, settings, out, cancel) = (job.engine, job.settings, job.out, job.cancel);
    let undo = async |names: &[String]| {
        // The roles' replicas may have begun work: they finish it first.
        let roles: Vec<String> = names
            .iter()
            .filter(|n| settings.site.role_of(n).is_some())
            .cloned()
            .collect();
        drain(engine, settings, &roles).await;
        for n in names {
            if created {
                let _ = engine.remove_container(n).await;
            } else {
                let _ = engine.stop(n, Duration::from_secs(1)).await;
            }
        }
    };
    if cancel.is_set() {
        undo(names).await;
        return Err(Failure::new("health", "interrupted"));
    }
    let mut switched_at = None;
    let check = on_trial(job, names, timeline, async |servers| {
        switched_at = Some(Instant::now());
        gateway::switch(engine, settings, servers, number)
            .await
            .map_err(|why| Failure::new("switch", why))
    })
    .await;
    if let Err(failure) = check {
        if failure.phase == "switch"
            && let Some(cur) = current
        {
            restore(job, cur).await;
        }
        undo(names).await;
        return Err(failure);
    }
    if let Some(at) = switched_at {
        timeline.push("switch", at.elapsed().as_millis() as u64);
    }
    out.status(
        "switched",
        &format!(
            "the gateway serves release {number} at {}",
            gateway::url(engine, settings)
        ),
    );
    if let Some(cur) = current {
        drain(engine, settings, &cur.replicas).await;
        out.status(
            "drained",
            &format!("release {} stopped (kept for rollback)", cur.number),
        );
    }
    timeline.mark("drain");
    Ok(())
}

/// Routes the gateway back to `release` after a failed switch.
pub(super) async fn restore(job: &Job<'_>, release: &Release) {
    let back = async {
        let servers = gateway::servers(job.engine, job.settings, &release.replicas).await?;
        gateway::switch(job.engine, job.settings, &servers, release.number).await
    }
    .await;
    if let Err(why) = back {
        job.out.warn(&format!(
            "routing the gateway back to release {} failed: {why}",
            release.number
        ));
    }
}

pub(super) async fn rolling(
    job: &Job<'_>,
    current: &Release,
    number: u64,
    timeline: &mut Timeline,
) -> Result<Vec<String>, Failure> {
    let (engine, settings, out, cancel) = (job.engine, job.settings, job.out, job.cancel);
    // The web role rolls replica by replica; the roles' replicas are started
    // whole beforehand and take over when the last web replica has.
    let (old, old_roles): (Vec<String>, Vec<String>) = current
        .replicas
        .iter()
        .cloned()
        .partition(|n| settings.site.role_of(n).is_none());
    let new_roles = if settings.roles.is_empty() {
        Vec::new()
    } else {
        let names = start_healthy(job, number, 0..0, true, timeline).await?;
        out.status("healthy", &names.join(", "));
        names
    };
    let mut new: Vec<String> = Vec::new();
    let mut stopped: Vec<String> = Vec::new();
    let mut failure = None;
    for i in 0..settings.replicas {
        let step = async {
            let mut started = start_healthy(job, number, i..i + 1, false, timeline).await?;
            let name = started.remove(0);
            if i == 0 {
                // The first new replica is smoke-tested before it takes traffic.
                let one = [name.clone()];
                if let Err(f) = on_trial(job, &one, timeline, async |_| Ok(())).await {
                    let _ = engine.remove_container(&name).await;
                    return Err(f);
                }
            }
            Ok(name)
        }
        .await;
        let name = match step {
            Ok(name) => name,
            Err(f) => {
                failure = Some(f);
                break;
            }
        };
        new.push(name.clone());
        let last = i + 1 == settings.replicas;
        let mut upstreams = new.clone();
        upstreams.extend(old.iter().skip(i + 1).cloned());
        if last {
            upstreams.truncate(new.len().max(settings.replicas));
        }
        // The header names the old release until the last step.
        let announce = if last { number } else { current.number };
        let switched = async {
            let servers = gateway::servers(engine, settings, &upstreams).await?;
            gateway::switch(engine, settings, &servers, announce).await
        }
        .await;
        if let Err(why) = switched {
            failure = Some(Failure::new("switch", why));
            break;
        }
        out.status(
            "rolled",
            &format!("{name} takes traffic ({}/{})", i + 1, settings.replicas),
        );
        let retire: Vec<String> = if last {
            old.iter().skip(i).cloned().collect()
        } else {
            old.get(i).cloned().into_iter().collect()
        };
        drain(engine, settings, &retire).await;
        stopped.extend(retire);
        if cancel.is_set() && !last {
            failure = Some(Failure::new("switch", "interrupted"));
            break;
        }
    }
    timeline.mark("switch");
    let Some(failure) = failure else {
        drain(engine, settings, &old_roles).await;
        timeline.mark("drain");
        new.extend(new_roles);
        return Ok(new);
    };
    // Put the old release back whole, then let go of the new replicas.
    for n in &stopped {
        let _ = replicas::give_secrets(engine, settings, n, job.secrets).await;
        let _ = engine.start(n).await;
    }
    let _ = replicas::wait_healthy(engine, &stopped, settings.health_timeout, &|| false).await;
    if !new.is_empty() {
        restore(job, current).await;
    }
    // The new replicas took traffic (or work): drained like old ones before they go.
    new.extend(new_roles);
    drain(engine, settings, &new).await;
    for n in &new {
        let _ = engine.remove_container(n).await;
    }
    Err(failure)
}
