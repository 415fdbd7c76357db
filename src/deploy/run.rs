//! The deploy and rollback procedures: plan, lock, repair, start, health,
//! smoke, switch, record, drain - and on any failure (or SIGINT/SIGTERM)
//! the previous release keeps serving and the new one is removed.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::history::{Entry, Phase, Store};
use super::{RELEASE, Settings, VERSION, gateway, lock, notify, replicas};
use crate::config::model::Strategy;
use crate::engine::{ContainerInfo, Engine};
use crate::error::Error;
use crate::output::Output;
use crate::smoke;

/// Set by SIGINT / SIGTERM: the signal number, 0 while running.
#[derive(Clone, Default)]
pub struct Cancel(Arc<AtomicI32>);

impl Cancel {
    /// Installs the signal handlers for the rest of the process.
    pub fn install() -> Cancel {
        let cancel = Cancel::default();
        for (kind, number) in [
            (tokio::signal::unix::SignalKind::interrupt(), 2),
            (tokio::signal::unix::SignalKind::terminate(), 15),
        ] {
            if let Ok(mut signal) = tokio::signal::unix::signal(kind) {
                let flag = cancel.0.clone();
                tokio::spawn(async move {
                    while signal.recv().await.is_some() {
                        flag.store(number, Ordering::SeqCst);
                    }
                });
            }
        }
        cancel
    }

    pub fn signal(&self) -> i32 {
        self.0.load(Ordering::SeqCst)
    }

    pub fn is_set(&self) -> bool {
        self.signal() != 0
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub image: Option<String>,
    pub strategy: Option<Strategy>,
    pub lock_wait: Duration,
    /// The release to return to (`rollback --to VERSION`).
    pub to_version: Option<String>,
}

/// What a deploy or rollback did.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub entry: Entry,
    pub gateway_url: String,
    pub notified: Option<bool>,
}

/// The release serving now, as the gateway and the containers say.
#[derive(Debug, Clone)]
struct Release {
    number: u64,
    version: String,
    image_id: String,
    replicas: Vec<String>,
}

struct Timeline {
    start: Instant,
    last: Instant,
    phases: Vec<Phase>,
}

impl Timeline {
    fn new() -> Timeline {
        let now = Instant::now();
        Timeline {
            start: now,
            last: now,
            phases: Vec::new(),
        }
    }

    fn mark(&mut self, name: &str) {
        let now = Instant::now();
        self.phases.push(Phase {
            name: name.into(),
            ms: (now - self.last).as_millis() as u64,
        });
        self.last = now;
    }

    fn total_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

/// What every step of one deploy or rollback works with.
struct Job<'a> {
    engine: &'a Engine,
    settings: &'a Settings,
    out: &'a Output,
    cancel: &'a Cancel,
    /// The image new replicas run (empty for a rollback, which starts kept ones).
    image_ref: &'a str,
    secrets: &'a [(String, String)],
}

/// A failed step: which, why, and the failing container's last lines.
struct Failure {
    phase: &'static str,
    reason: String,
    container: Option<String>,
    logs: String,
}

impl Failure {
    fn new(phase: &'static str, reason: impl Into<String>) -> Failure {
        Failure {
            phase,
            reason: reason.into(),
            container: None,
            logs: String::new(),
        }
    }

    fn text(&self) -> String {
        format!(
            "{} failed{}: {}{}",
            self.phase,
            self.container
                .as_ref()
                .map(|c| format!(" for {c}"))
                .unwrap_or_default(),
            self.reason,
            gateway::tail(&self.logs)
        )
    }
}

/// The image on the engine: present, or pulled from its registry.
async fn ensure_image(
    engine: &Engine,
    reference: &str,
    what: &str,
    hint: &str,
) -> Result<String, Error> {
    if let Some(id) = engine.image_id(reference).await {
        return Ok(id);
    }
    if let Err(e) = engine.pull(reference).await {
        return Err(Error::Deploy {
            message: format!(
                "the {what} image {reference} is not on the engine and could not be pulled ({e}); nothing was changed\n{hint}"
            ),
        });
    }
    engine
        .image_id(reference)
        .await
        .ok_or_else(|| Error::Deploy {
            message: format!("the {what} image {reference} was pulled but cannot be found"),
        })
}

async fn replicas_of(engine: &Engine, settings: &Settings) -> Result<Vec<ContainerInfo>, Error> {
    engine.containers(&settings.site.filter("replica")).await
}

fn release_of(c: &ContainerInfo) -> u64 {
    c.labels
        .get(RELEASE)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Brings the site to one consistent state before a deploy or rollback:
/// the release the gateway serves (and the kept previous ones) stay; what
/// an interrupted run left behind goes. Returns what it repaired.
async fn repair(
    engine: &Engine,
    settings: &Settings,
    store: &Store<'_>,
    history: &[Entry],
    out: &Output,
) -> Result<(Option<Release>, Vec<String>), Error> {
    let mut repaired = Vec::new();
    let all = replicas_of(engine, settings).await?;
    let serving = gateway::serving(engine, settings).await?;
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
            let conf = gateway::config(settings, &names, back)?;
            gateway::switch(engine, settings, &conf, back)
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
            });
            // A switch that happened but was never recorded.
            let last = history
                .iter()
                .rev()
                .find(|e| e.served())
                .and_then(|e| e.release);
            if last != Some(number) {
                let mut entry = Entry::new("repair", "repaired", super::now());
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
    // Containers of releases that never served: left by an interrupted deploy.
    let serving_number = current.as_ref().map(|r| r.number);
    let mut orphans: Vec<&ContainerInfo> = all
        .iter()
        .filter(|c| Some(release_of(c)) != serving_number && !kept.contains(&release_of(c)))
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
        let mut entry = Entry::new("deploy", "interrupted", super::now());
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
    let mut started = Vec::new();
    for name in names {
        let Some(info) = engine.container(name).await.map_err(|e| e.to_string())? else {
            return Err(format!("{name} is gone"));
        };
        if info.running && draining(settings, &info).await {
            let deadline = Instant::now() + settings.drain + Duration::from_secs(15);
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
        started.push(name.clone());
    }
    replicas::wait_healthy(engine, names, settings.health_timeout, &|| false)
        .await
        .map_err(|u| format!("{}: {}", u.container, u.reason))?;
    Ok(started)
}

/// Whether a running replica has been told to stop: healthy, yet its
/// readiness says 503 (one still starting is not healthy yet).
async fn draining(settings: &Settings, info: &ContainerInfo) -> bool {
    let Some(port) = info.ports.get(&settings.port) else {
        return false;
    };
    if info.health != "healthy" {
        return false;
    }
    let url = format!(
        "http://{}:{port}{}",
        super::engine_host(),
        settings.paths.ready
    );
    tokio::task::spawn_blocking(move || {
        crate::http::request(&url, "GET", &[], b"", Duration::from_secs(2))
    })
    .await
    .ok()
    .and_then(Result::ok)
    .is_some_and(|r| r.status == 503)
}

/// The next release number: above every one recorded or present.
fn next_number(history: &[Entry], all: &[ContainerInfo]) -> u64 {
    let recorded = history.iter().filter_map(|e| e.release).max().unwrap_or(0);
    let present = all.iter().map(release_of).max().unwrap_or(0);
    recorded.max(present) + 1
}

/// Removes releases beyond the newest `keep` previous ones.
async fn prune(
    engine: &Engine,
    settings: &Settings,
    history: &[Entry],
    serving: u64,
) -> Result<Vec<String>, Error> {
    let mut previous: Vec<u64> = Vec::new();
    for e in history.iter().rev().filter(|e| e.served()) {
        if let Some(r) = e.release
            && r != serving
            && !previous.contains(&r)
        {
            previous.push(r);
        }
    }
    let keep: Vec<u64> = previous.into_iter().take(settings.keep_releases).collect();
    let mut removed = Vec::new();
    for c in replicas_of(engine, settings).await? {
        let r = release_of(&c);
        if r != serving && !keep.contains(&r) {
            engine.remove_container(&c.name).await?;
            removed.push(c.name);
        }
    }
    Ok(removed)
}

/// Takes the environment's lock, saying so while it waits for another holder.
async fn take_lock(
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
        |info| {
            out.status("waiting", &format!("for the lock: {}", info.describe()));
        },
    )
    .await
}

/// `shipit deploy ENV`.
pub async fn deploy(
    engine: &Engine,
    settings: &Settings,
    options: &Options,
    out: &Output,
    cancel: &Cancel,
) -> Result<Outcome, Error> {
    let started = super::now();
    let mut timeline = Timeline::new();
    let image_ref = options
        .image
        .clone()
        .unwrap_or_else(|| settings.image_ref.clone());
    let strategy = options.strategy.unwrap_or(settings.strategy);
    let image_id = ensure_image(
        engine,
        &image_ref,
        "release",
        &format!("build it first: `shipit build {}` (or --push it to the registry and deploy from there)", settings.site.environment),
    )
    .await?;
    ensure_image(
        engine,
        &settings.gateway_image,
        "gateway",
        "where nothing can be pulled, make it from Debian's nginx: `bash .ci/gateway-image` and set gateway.image to the name it prints",
    )
    .await?;
    let secrets = settings.resolve_secrets()?;
    timeline.mark("preflight");

    let command = format!("shipit deploy {}", settings.site.environment);
    let guard = take_lock(engine, settings, out, cancel, &command, options.lock_wait).await?;
    timeline.mark("lock");
    let job = Job {
        engine,
        settings,
        out,
        cancel,
        image_ref: &image_ref,
        secrets: &secrets,
    };
    let result = locked_deploy(&job, &image_id, strategy, started, timeline).await;
    guard.release(engine).await;
    result
}

async fn locked_deploy(
    job: &Job<'_>,
    image_id: &str,
    strategy: Strategy,
    started: i64,
    mut timeline: Timeline,
) -> Result<Outcome, Error> {
    let (engine, settings, out, cancel) = (job.engine, job.settings, job.out, job.cancel);
    let image_ref = job.image_ref;
    let site = &settings.site;
    engine
        .ensure_network(&site.network(), &site.labels("network"))
        .await?;
    let store = Store::open(engine, settings).await?;
    let history = store.read().await?;
    let (current, repaired) = repair(engine, settings, &store, &history, out).await?;
    let history = if repaired.is_empty() {
        history
    } else {
        store.read().await?
    };
    timeline.mark("inspect");

    let mut entry = Entry::new("deploy", "succeeded", started);
    entry.version = Some(settings.version.clone());
    entry.image = Some(image_ref.to_string());
    entry.image_id = Some(image_id.to_string());
    entry.strategy = Some(strategy_name(strategy).into());
    entry.repaired = repaired;
    entry.previous_release = current.as_ref().map(|r| r.number);
    entry.previous_version = current.as_ref().map(|r| r.version.clone());

    if let Some(cur) = &current
        && cur.version == settings.version
        && cur.image_id == image_id
    {
        out.status(
            "unchanged",
            &format!(
                "release {} already serves {} ({image_ref}): nothing to do",
                cur.number, cur.version
            ),
        );
        entry.result = "no-op".into();
        entry.release = Some(cur.number);
        entry.replicas = cur.replicas.clone();
        return finish(&store, settings, entry, timeline, out).await;
    }

    let all = replicas_of(engine, settings).await?;
    let number = next_number(&history, &all);
    entry.release = Some(number);
    out.status(
        "deploying",
        &format!(
            "{} {} as release {number} ({}, {} replica(s)){}",
            site.environment,
            settings.version,
            strategy_name(strategy),
            settings.replicas,
            current
                .as_ref()
                .map(|c| format!(", replacing release {} ({})", c.number, c.version))
                .unwrap_or_else(|| ", first release".into())
        ),
    );

    let outcome = match (&current, strategy) {
        (Some(cur), Strategy::Rolling) => rolling(job, cur, number, &mut timeline).await,
        _ => blue_green(job, current.as_ref(), number, &mut timeline).await,
    };
    match outcome {
        Ok(names) => {
            entry.replicas = names;
            // Prune with this release recorded, so it counts as served.
            let mut with_this = history.clone();
            with_this.push(entry.clone());
            let removed = prune(engine, settings, &with_this, number).await?;
            if !removed.is_empty() {
                out.detail(&format!("removed old releases: {}", removed.join(", ")));
            }
            timeline.mark("cleanup");
            out.status(
                "deployed",
                &format!(
                    "{} release {number} ({}) serves at {}",
                    site.environment,
                    settings.version,
                    gateway::url(settings)
                ),
            );
            finish(&store, settings, entry, timeline, out).await
        }
        Err(failure) => {
            let interrupted = cancel.signal();
            entry.result = if interrupted != 0 {
                "interrupted"
            } else {
                "rolled-back"
            }
            .into();
            let previous = current
                .as_ref()
                .map(|c| format!("release {} ({}) keeps serving", c.number, c.version))
                .unwrap_or_else(|| {
                    "nothing was serving before, and nothing is left running".into()
                });
            let cause = if interrupted != 0 {
                format!(
                    "interrupted by signal {interrupted} during {}",
                    failure.phase
                )
            } else {
                failure.text()
            };
            entry.reason = Some(cause.clone());
            let outcome = finish(&store, settings, entry, timeline, out).await?;
            let what_to_do = match failure.phase {
                "health" => {
                    "check the container's logs above; `shipit status` shows the serving release"
                }
                "smoke" => {
                    "the release is healthy but failed its smoke tests: run it locally and `shipit smoke ENV --url ...` against it"
                }
                "switch" => {
                    "the gateway kept its previous configuration; check gateway.* in the configuration"
                }
                _ => "fix the cause and deploy again",
            };
            let _ = outcome;
            Err(Error::Reported {
                code: if interrupted != 0 {
                    128 + interrupted
                } else {
                    1
                },
                message: format!(
                    "deploy of {} {} (release {number}) failed and was rolled back: {cause}\n{previous}.\n{what_to_do}",
                    site.environment, settings.version
                ),
            })
        }
    }
}

async fn finish(
    store: &Store<'_>,
    settings: &Settings,
    mut entry: Entry,
    timeline: Timeline,
    out: &Output,
) -> Result<Outcome, Error> {
    entry.duration_ms = timeline.total_ms();
    entry.phases = timeline.phases;
    store.append(&entry).await?;
    let notified = match notify::send(settings, &entry).await {
        Ok(sent) => sent.then_some(true),
        Err(why) => {
            out.warn(&format!(
                "the webhook was not delivered: {why} (the deploy result stands)"
            ));
            Some(false)
        }
    };
    Ok(Outcome {
        entry,
        gateway_url: gateway::url(settings),
        notified,
    })
}

fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::Rolling => "rolling",
        Strategy::BlueGreen => "blue-green",
        Strategy::Canary => "canary",
    }
}

/// Runs the smoke suite against one replica directly (its loopback port).
async fn smoke_replica(job: &Job<'_>, name: &str) -> Result<(), Failure> {
    let (engine, settings, cancel) = (job.engine, job.settings, job.cancel);
    let info = engine
        .container(name)
        .await
        .map_err(|e| Failure::new("smoke", e.to_string()))?
        .ok_or_else(|| Failure::new("smoke", format!("{name} disappeared")))?;
    let port = info.ports.get(&settings.port).copied().ok_or_else(|| {
        Failure::new(
            "smoke",
            format!("{name} publishes no port for the smoke tests"),
        )
    })?;
    let base = format!("http://{}:{port}", super::engine_host());
    let paths = settings.paths.clone();
    let deadline = settings.smoke_timeout;
    let flag = cancel.clone();
    let spinner = job.out.spinner(&format!("smoke tests against {name}"));
    let report =
        tokio::task::spawn_blocking(move || smoke::run(&base, &paths, deadline, &|| flag.is_set()))
            .await
            .map_err(|e| Failure::new("smoke", e.to_string()));
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    let report = report?;
    if report.passed {
        Ok(())
    } else {
        Err(Failure {
            phase: "smoke",
            reason: report.summary(),
            container: Some(name.to_string()),
            logs: engine.logs(name, 20).await,
        })
    }
}

/// Starts replicas and gates them on health; on failure removes them all.
async fn start_healthy(
    job: &Job<'_>,
    number: u64,
    indexes: std::ops::Range<usize>,
    timeline: &mut Timeline,
) -> Result<Vec<String>, Failure> {
    let (engine, settings, cancel) = (job.engine, job.settings, job.cancel);
    let (image_ref, secrets) = (job.image_ref, job.secrets);
    let mut names = Vec::new();
    for i in indexes {
        match replicas::start(
            engine,
            settings,
            number,
            i,
            image_ref,
            &settings.version,
            secrets,
        )
        .await
        {
            Ok(name) => names.push(name),
            Err(e) => {
                for n in &names {
                    let _ = engine.remove_container(n).await;
                }
                let _ = engine
                    .remove_container(&settings.site.replica(number, i))
                    .await;
                return Err(Failure::new("start", e.to_string()));
            }
        }
    }
    timeline.mark("start");
    let spinner = job.out.spinner(&format!(
        "waiting for {} to report healthy",
        names.join(", ")
    ));
    let gated =
        replicas::wait_healthy(engine, &names, settings.health_timeout, &|| cancel.is_set()).await;
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    if let Err(u) = gated {
        for n in &names {
            let _ = engine.remove_container(n).await;
        }
        return Err(Failure {
            phase: "health",
            reason: u.reason,
            container: Some(u.container),
            logs: u.logs,
        });
    }
    timeline.mark("health");
    Ok(names)
}

/// Stops replicas in parallel, letting each drain its in-flight requests.
async fn drain(engine: &Engine, settings: &Settings, names: &[String]) {
    let stops = names.iter().map(|n| engine.stop(n, settings.drain));
    let _ = futures_util::future::join_all(stops).await;
}

async fn blue_green(
    job: &Job<'_>,
    current: Option<&Release>,
    number: u64,
    timeline: &mut Timeline,
) -> Result<Vec<String>, Failure> {
    let names = start_healthy(job, number, 0..job.settings.replicas, timeline).await?;
    job.out.status("healthy", &names.join(", "));
    promote(job, current, number, &names, true, timeline).await?;
    Ok(names)
}

/// Smoke-tests `names`, switches the gateway to them, and drains `current`.
/// On failure the new replicas are removed (`created`) or stopped again.
async fn promote(
    job: &Job<'_>,
    current: Option<&Release>,
    number: u64,
    names: &[String],
    created: bool,
    timeline: &mut Timeline,
) -> Result<(), Failure> {
    let (engine, settings, out, cancel) = (job.engine, job.settings, job.out, job.cancel);
    let undo = async |names: &[String]| {
        for n in names {
            if created {
                let _ = engine.remove_container(n).await;
            } else {
                let _ = engine.stop(n, Duration::from_secs(1)).await;
            }
        }
    };
    let check = async {
        if cancel.is_set() {
            return Err(Failure::new("health", "interrupted"));
        }
        smoke_replica(job, &names[0]).await?;
        timeline.mark("smoke");
        out.status("smoke", &format!("passed against {}", names[0]));
        if cancel.is_set() {
            return Err(Failure::new("smoke", "interrupted"));
        }
        let conf = gateway::config(settings, names, number)
            .map_err(|e| Failure::new("switch", e.to_string()))?;
        let switched = if current.is_some()
            && engine
                .container(&settings.site.gateway())
                .await
                .ok()
                .flatten()
                .is_some()
        {
            gateway::switch(engine, settings, &conf, number).await
        } else {
            gateway::create(engine, settings, &conf, number).await
        };
        switched.map_err(|why| Failure::new("switch", why))?;
        timeline.mark("switch");
        Ok(())
    }
    .await;
    if let Err(failure) = check {
        undo(names).await;
        return Err(failure);
    }
    out.status(
        "switched",
        &format!(
            "the gateway serves release {number} at {}",
            gateway::url(settings)
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

async fn rolling(
    job: &Job<'_>,
    current: &Release,
    number: u64,
    timeline: &mut Timeline,
) -> Result<Vec<String>, Failure> {
    let (engine, settings, out, cancel) = (job.engine, job.settings, job.out, job.cancel);
    let old = current.replicas.clone();
    let mut new: Vec<String> = Vec::new();
    let mut stopped: Vec<String> = Vec::new();
    let mut failure = None;
    for i in 0..settings.replicas {
        let step = async {
            let mut started = start_healthy(job, number, i..i + 1, timeline).await?;
            let name = started.remove(0);
            if i == 0
                && let Err(f) = smoke_replica(job, &name).await
            {
                let _ = engine.remove_container(&name).await;
                return Err(f);
            }
            if i == 0 {
                timeline.mark("smoke");
                out.status("smoke", &format!("passed against {name}"));
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
        let conf = match gateway::config(settings, &upstreams, announce) {
            Ok(conf) => conf,
            Err(e) => {
                failure = Some(Failure::new("switch", e.to_string()));
                break;
            }
        };
        if let Err(why) = gateway::switch(engine, settings, &conf, announce).await {
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
        timeline.mark("drain");
        return Ok(new);
    };
    // Put the old release back whole, then let go of the new replicas.
    for n in &stopped {
        let _ = engine.start(n).await;
    }
    let _ = replicas::wait_healthy(engine, &stopped, settings.health_timeout, &|| false).await;
    if !new.is_empty()
        && let Ok(conf) = gateway::config(settings, &old, current.number)
        && let Err(why) = gateway::switch(engine, settings, &conf, current.number).await
    {
        out.warn(&format!(
            "restoring the gateway to release {} failed: {why}",
            current.number
        ));
    }
    // The new replicas took traffic: drained like old ones before they go.
    drain(engine, settings, &new).await;
    for n in &new {
        let _ = engine.remove_container(n).await;
    }
    Err(failure)
}

fn nothing_deployed(settings: &Settings) -> Error {
    Error::Deploy {
        message: format!(
            "nothing was ever deployed to {} on this engine: there is nothing to roll back to",
            settings.site.environment
        ),
    }
}

/// `shipit rollback ENV [--to VERSION]`.
pub async fn rollback(
    engine: &Engine,
    settings: &Settings,
    options: &Options,
    out: &Output,
    cancel: &Cancel,
) -> Result<Outcome, Error> {
    let started = super::now();
    let mut timeline = Timeline::new();
    if Store::existing(engine, &settings.site).await?.is_none() {
        return Err(nothing_deployed(settings));
    }
    let command = format!("shipit rollback {}", settings.site.environment);
    let guard = take_lock(engine, settings, out, cancel, &command, options.lock_wait).await?;
    timeline.mark("lock");
    let result = locked_rollback(engine, settings, options, out, cancel, started, timeline).await;
    guard.release(engine).await;
    result
}

async fn locked_rollback(
    engine: &Engine,
    settings: &Settings,
    options: &Options,
    out: &Output,
    cancel: &Cancel,
    started: i64,
    mut timeline: Timeline,
) -> Result<Outcome, Error> {
    let site = &settings.site;
    let Some(store) = Store::existing(engine, site).await? else {
        return Err(nothing_deployed(settings));
    };
    let history = store.read().await?;
    let (current, repaired) = repair(engine, settings, &store, &history, out).await?;
    let history = if repaired.is_empty() {
        history
    } else {
        store.read().await?
    };
    let Some(current) = current else {
        return Err(Error::Deploy {
            message: format!(
                "no release serves {}: deploy one with `shipit deploy {}`",
                site.environment, site.environment
            ),
        });
    };
    let all = replicas_of(engine, settings).await?;
    let present = |r: u64| all.iter().any(|c| release_of(c) == r);
    let target = history
        .iter()
        .rev()
        .filter(|e| e.served())
        .filter(|e| e.release.is_some_and(|r| r != current.number && present(r)))
        .find(|e| match &options.to_version {
            Some(v) => e.version.as_deref() == Some(v.as_str()),
            None => true,
        })
        .cloned();
    let Some(target) = target else {
        let kept: Vec<String> = history
            .iter()
            .rev()
            .filter(|e| e.served())
            .filter_map(|e| {
                e.release
                    .filter(|r| *r != current.number && present(*r))
                    .map(|r| format!("{} (release {r})", e.version.clone().unwrap_or_default()))
            })
            .collect();
        return Err(Error::Deploy {
            message: match &options.to_version {
                Some(v) => format!(
                    "no kept release of version {v} to roll back to; kept: {}",
                    if kept.is_empty() {
                        "none".into()
                    } else {
                        kept.join(", ")
                    }
                ),
                None => "no previous release is kept on the engine to roll back to".to_string(),
            },
        });
    };
    let number = target.release.unwrap_or_default();
    let names: Vec<String> = all
        .iter()
        .filter(|c| release_of(c) == number)
        .map(|c| c.name.clone())
        .collect();
    timeline.mark("inspect");
    let mut entry = Entry::new("rollback", "succeeded", started);
    entry.release = Some(number);
    entry.version = target.version.clone();
    entry.image = target.image.clone();
    entry.image_id = target.image_id.clone();
    entry.replicas = names.clone();
    entry.previous_release = Some(current.number);
    entry.previous_version = Some(current.version.clone());
    entry.repaired = repaired;
    out.status(
        "rolling back",
        &format!(
            "{} from release {} ({}) to release {number} ({})",
            site.environment,
            current.number,
            current.version,
            target.version.clone().unwrap_or_default()
        ),
    );
    for n in &names {
        if let Err(e) = engine.start(n).await {
            for m in &names {
                let _ = engine.stop(m, Duration::from_secs(1)).await;
            }
            return Err(Error::Deploy {
                message: format!(
                    "cannot start {n}: {e}; release {} keeps serving",
                    current.number
                ),
            });
        }
    }
    timeline.mark("start");
    let gated =
        replicas::wait_healthy(engine, &names, settings.health_timeout, &|| cancel.is_set()).await;
    let result = match gated {
        Err(u) => {
            for m in &names {
                let _ = engine.stop(m, Duration::from_secs(1)).await;
            }
            Err(Failure {
                phase: "health",
                reason: u.reason,
                container: Some(u.container),
                logs: u.logs,
            })
        }
        Ok(()) => {
            timeline.mark("health");
            let job = Job {
                engine,
                settings,
                out,
                cancel,
                image_ref: "",
                secrets: &[],
            };
            promote(&job, Some(&current), number, &names, false, &mut timeline).await
        }
    };
    match result {
        Ok(()) => {
            out.status(
                "rolled back",
                &format!("{} release {number} serves again", site.environment),
            );
            finish(&store, settings, entry, timeline, out).await
        }
        Err(failure) => {
            entry.result = "failed".into();
            entry.reason = Some(failure.text());
            finish(&store, settings, entry, timeline, out).await?;
            Err(Error::Reported {
                code: 1,
                message: format!(
                    "rollback of {} to release {number} failed: {}\nrelease {} ({}) keeps serving.",
                    site.environment,
                    failure.text(),
                    current.number,
                    current.version
                ),
            })
        }
    }
}
