//! One deploy or rollback across several Docker hosts, all or nothing:
//! preflight every host, lock them all in a fixed order, stage the release
//! on each (healthy, then smoke-tested through that host's candidate route),
//! and only when every host passed switch every gateway; a failed switch is
//! switched back on the hosts already switched. Every host records the run
//! under one deploy id.

use std::time::Duration;

use serde::Serialize;

use super::deliver::{self, Need};
use super::history::{Entry, Store};
use super::host::{self, Host, Unreachable};
use super::lock::{self, Guard};
use super::repair::repair;
use super::run::{
    Cancel, Job, Options, Outcome, Release, Timeline, drain, next_number, on_trial, prune,
    replicas_of, restore, start_healthy,
};
use super::{Settings, gateway, notify};
use crate::engine::Engine;
use crate::error::Error;
use crate::output::Output;

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

/// What one host knows once locked and inspected.
struct Member<'a> {
    host: &'a Host,
    out: Output,
    store: Store<'a>,
    history: Vec<Entry>,
    current: Option<Release>,
    repaired: Vec<String>,
    gateway_was_there: bool,
}

impl Member<'_> {
    fn job<'j>(&'j self, base: &Base<'j>) -> Job<'j> {
        Job {
            engine: &self.host.engine,
            settings: base.settings,
            out: &self.out,
            cancel: base.cancel,
            image_ref: base.image_ref,
            secrets: base.secrets,
            tls: base.tls,
        }
    }
}

/// What every host's steps share.
struct Base<'a> {
    settings: &'a Settings,
    cancel: &'a Cancel,
    image_ref: &'a str,
    secrets: &'a [(String, String)],
    tls: Option<&'a super::tls::Material>,
}

fn limit_for_stage(settings: &Settings) -> Duration {
    settings.health_timeout + settings.smoke_timeout + Duration::from_secs(60)
}

fn limit_for_switch(settings: &Settings) -> Duration {
    settings.drain + Duration::from_secs(60)
}

/// Every problem that would stop the run, from every host, before anything
/// changes anywhere.
async fn preflight(
    source: Option<&Engine>,
    hosts: &[Host],
    unreachable: &[Unreachable],
    settings: &Settings,
    needs: &[Need],
    options: &Options,
) -> Vec<String> {
    let mut problems: Vec<String> = unreachable
        .iter()
        .map(|u| format!("{}: unreachable: {}", u.name, u.why))
        .collect();
    let checks = host::on_each(
        hosts,
        |h| &h.name,
        Duration::from_secs(60),
        |h| async move {
            let mut found = Vec::new();
            let same = source.is_some_and(|s| s.address == h.engine.address);
            found.extend(deliver::problems(h, settings, needs, same).await);
            if options.lock_wait.is_zero() {
                match lock::inspect(&h.engine, &settings.site).await {
                    Ok(Some(info)) if info.stale != Some(true) => {
                        found.push(format!("locked: {}", info.describe()))
                    }
                    Ok(_) => {}
                    Err(e) => found.push(e.to_string()),
                }
            }
            found.extend(ports_taken(&h.engine, settings).await);
            found
        },
    )
    .await;
    for (h, result) in hosts.iter().zip(checks) {
        match result {
            Ok(found) => problems.extend(found.into_iter().map(|p| format!("{}: {p}", h.name))),
            Err(why) => problems.push(why),
        }
    }
    problems
}

/// The gateway's ports, published by a container that is not this site's gateway.
async fn ports_taken(engine: &Engine, settings: &Settings) -> Vec<String> {
    let mut wanted = vec![settings.gateway_port];
    if let Some(tls) = &settings.tls {
        wanted.push(tls.port);
    }
    let Ok(all) = engine.containers(&[]).await else {
        return vec!["cannot list the containers".into()];
    };
    let gateway = settings.site.gateway();
    all.iter()
        .filter(|c| c.name != gateway && c.running)
        .flat_map(|c| {
            c.ports
                .values()
                .filter(|p| wanted.contains(p))
                .map(|p| format!("port {p} is published by the container {}", c.name))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Takes every host's lock in host order; all or none.
async fn lock_all(
    hosts: &[Host],
    settings: &Settings,
    out: &Output,
    cancel: &Cancel,
    command: &str,
    wait: Duration,
) -> Result<Vec<Guard>, Error> {
    let mut guards: Vec<Guard> = Vec::new();
    for h in hosts {
        let o = out.for_host(&h.name);
        // A lock whose holder died on this machine (a run killed, or one that
        // lost this host before it could let go) is taken over, and said so.
        if let Ok(Some(info)) = lock::inspect(&h.engine, &settings.site).await
            && info.stale == Some(true)
        {
            o.warn(&format!("taking over a stale lock: {}", info.describe()));
            let _ = lock::release(&h.engine, &settings.site).await;
        }
        match super::run::take_lock(&h.engine, settings, &o, cancel, command, wait).await {
            Ok(g) => guards.push(g),
            Err(e) => {
                for (g, h) in guards.into_iter().zip(hosts) {
                    g.release(&h.engine).await;
                }
                return Err(Error::Deploy {
                    message: format!("{}: {e}\nno host was changed.", h.name),
                });
            }
        }
    }
    Ok(guards)
}

/// Lets go of every lock; a host that does not answer keeps its lock, which
/// its holder's pid marks as stale for the next run.
async fn unlock_all(hosts: &[Host], guards: Vec<Guard>) {
    let releases = guards
        .into_iter()
        .zip(hosts)
        .map(|(g, h)| tokio::time::timeout(ANSWER, g.release(&h.engine)));
    futures_util::future::join_all(releases).await;
}

/// How long a small request to a host may take before it counts as lost.
const ANSWER: Duration = Duration::from_secs(20);

/// Network, store, gateway and repair on every host: what serves on each.
async fn inspect_all<'h>(
    hosts: &'h [Host],
    base: &Base<'_>,
    out: &Output,
) -> Result<Vec<Member<'h>>, Error> {
    let settings = base.settings;
    let site = &settings.site;
    let results = host::on_each(
        hosts,
        |h| &h.name,
        Duration::from_secs(120),
        |h| {
            let o = out.for_host(&h.name);
            async move {
                let engine = &h.engine;
                engine
                    .ensure_network(&site.network(), &site.labels("network"))
                    .await?;
                let store = Store::open(engine, settings).await?;
                let history = store.read().await?;
                let gateway_was_there = engine.container(&site.gateway()).await?.is_some();
                let job = Job {
                    engine,
                    settings,
                    out: &o,
                    cancel: base.cancel,
                    image_ref: base.image_ref,
                    secrets: base.secrets,
                    tls: base.tls,
                };
                super::run::prepare_gateway(&job).await?;
                let (current, repaired) = repair(engine, settings, &store, &history, &o).await?;
                let history = if repaired.is_empty() {
                    history
                } else {
                    store.read().await?
                };
                Ok::<_, Error>(Member {
                    host: h,
                    out: o,
                    store,
                    history,
                    current,
                    repaired,
                    gateway_was_there,
                })
            }
        },
    )
    .await;
    let mut members = Vec::new();
    let mut problems = Vec::new();
    for (h, r) in hosts.iter().zip(results) {
        match r {
            Ok(Ok(m)) => members.push(m),
            Ok(Err(e)) => problems.push(format!("{}: {e}", h.name)),
            Err(why) => problems.push(why),
        }
    }
    if problems.is_empty() {
        Ok(members)
    } else {
        Err(Error::Deploy {
            message: format!(
                "the hosts could not be prepared; no release was changed:\n{}",
                indent(&problems)
            ),
        })
    }
}

fn indent(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| format!("  - {}", l.replace('\n', "\n    ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A new deploy id: the time and 32 random bits, shared by every host's entry.
fn deploy_id() -> String {
    let mut bytes = [0u8; 4];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    let suffix = if random {
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    } else {
        format!("{:08x}", std::process::id())
    };
    format!("{}-{suffix}", super::now())
}

fn describe(current: &Option<Release>) -> String {
    current
        .as_ref()
        .map(|c| format!("release {} ({})", c.number, c.version))
        .unwrap_or_else(|| "nothing".into())
}

/// Hosts on different releases (a run killed between switches, a host that
/// was down): said plainly, and brought together by this run.
fn drift(members: &[Member<'_>]) -> Option<String> {
    let first = members.first()?.current.as_ref().map(|c| c.number);
    if members
        .iter()
        .all(|m| m.current.as_ref().map(|c| c.number) == first)
    {
        return None;
    }
    Some(
        members
            .iter()
            .map(|m| format!("{} serves {}", m.host.name, describe(&m.current)))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// What the preflight found, and what the run goes on with.
struct Prepared {
    source: Option<Engine>,
    needs: Vec<Need>,
    hosts: Vec<Host>,
    problems: Vec<String>,
    secrets: Vec<(String, String)>,
    tls: Option<(super::tls::Material, Vec<String>)>,
}

async fn prepare(
    settings: &Settings,
    options: &Options,
    image_ref: &str,
) -> Result<Prepared, Error> {
    // The engine the image was built on: where it is streamed from.
    let source = Engine::connect().await.ok();
    let needs = match &source {
        Some(s) => vec![
            Need::of(s, "release", image_ref).await,
            Need::of(s, "gateway", &settings.gateway_image).await,
        ],
        None => vec![
            Need {
                what: "release",
                reference: image_ref.to_string(),
                id: None,
            },
            Need {
                what: "gateway",
                reference: settings.gateway_image.clone(),
                id: None,
            },
        ],
    };
    let (hosts, unreachable) = host::connect_all(settings).await?;
    let mut problems = preflight(
        source.as_ref(),
        &hosts,
        &unreachable,
        settings,
        &needs,
        options,
    )
    .await;
    let secrets = match settings.resolve_secrets() {
        Ok(s) => s,
        Err(e) => {
            problems.push(e.to_string());
            Vec::new()
        }
    };
    let tls = match settings.load_tls() {
        Ok(t) => t,
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    Ok(Prepared {
        source,
        needs,
        hosts,
        problems,
        secrets,
        tls,
    })
}

/// The preflight alone (`deploy --dry-run`): every problem, and the hosts that answered.
pub async fn check(
    settings: &Settings,
    options: &Options,
) -> Result<(Vec<String>, Vec<Host>), Error> {
    let image_ref = options.image_ref(settings);
    let p = prepare(settings, options, &image_ref).await?;
    Ok((p.problems, p.hosts))
}

/// `shipit deploy ENV` to several hosts.
pub async fn deploy(
    settings: &Settings,
    options: &Options,
    out: &Output,
    cancel: &Cancel,
) -> Result<Outcome, Error> {
    let started = super::now();
    let mut timeline = Timeline::new();
    let image_ref = options.image_ref(settings);
    let Prepared {
        source,
        needs,
        hosts,
        problems,
        secrets,
        tls,
    } = prepare(settings, options, &image_ref).await?;
    if !problems.is_empty() {
        return Err(Error::Deploy {
            message: format!(
                "preflight found {} problem(s) across {} host(s); nothing was changed on any host:\n{}",
                problems.len(),
                settings.hosts.len(),
                indent(&problems)
            ),
        });
    }
    if let Some((_, warnings)) = &tls {
        for w in warnings {
            out.warn(w);
        }
    }
    timeline.mark("preflight");

    if let Some(source) = &source {
        let deliveries = host::on_each(
            &hosts,
            |h| &h.name,
            Duration::from_secs(1800),
            |h| {
                let o = out.for_host(&h.name);
                let needs = &needs;
                async move { deliver::deliver(source, h, settings, needs, &o).await }
            },
        )
        .await;
        let failed: Vec<String> = hosts
            .iter()
            .zip(deliveries)
            .filter_map(|(h, r)| match r {
                Ok(Ok(())) => None,
                Ok(Err(why)) => Some(format!("{}: {why}", h.name)),
                Err(why) => Some(why),
            })
            .collect();
        if !failed.is_empty() {
            return Err(Error::Deploy {
                message: format!(
                    "the images could not be delivered to every host; no release was changed:\n{}",
                    indent(&failed)
                ),
            });
        }
    }
    let image_id = match needs[0].id.clone() {
        Some(id) => id,
        None => hosts[0]
            .engine
            .image_id(&image_ref)
            .await
            .unwrap_or_default(),
    };
    timeline.mark("images");

    let command = format!("shipit deploy {}", settings.site.environment);
    let guards = lock_all(&hosts, settings, out, cancel, &command, options.lock_wait).await?;
    timeline.mark("lock");
    let base = Base {
        settings,
        cancel,
        image_ref: &image_ref,
        secrets: &secrets,
        tls: tls.as_ref().map(|(m, _)| m),
    };
    let result = locked_deploy(&hosts, &base, out, &image_id, started, timeline).await;
    unlock_all(&hosts, guards).await;
    result
}

async fn locked_deploy(
    hosts: &[Host],
    base: &Base<'_>,
    out: &Output,
    image_id: &str,
    started: i64,
    mut timeline: Timeline,
) -> Result<Outcome, Error> {
    let settings = base.settings;
    let site = &settings.site;
    let members = inspect_all(hosts, base, out).await?;
    timeline.mark("inspect");
    let id = deploy_id();
    let drifted = drift(&members);
    if let Some(d) = &drifted {
        out.warn(&format!(
            "the hosts serve different releases ({d}): this deploy brings them all to {}",
            settings.version
        ));
    }
    let entry_for = |m: &Member<'_>| {
        let mut e = Entry::new("deploy", "succeeded", started);
        e.deploy_id = Some(id.clone());
        e.version = Some(settings.version.clone());
        e.image = Some(base.image_ref.to_string());
        e.image_id = Some(image_id.to_string());
        e.strategy = Some("blue-green".into());
        e.repaired = m.repaired.clone();
        e.previous_release = m.current.as_ref().map(|r| r.number);
        e.previous_version = m.current.as_ref().map(|r| r.version.clone());
        e
    };

    let unchanged = members.iter().all(|m| {
        m.current
            .as_ref()
            .is_some_and(|c| c.version == settings.version && c.image_id == image_id)
    }) && drifted.is_none();
    if unchanged {
        let cur = members[0].current.clone().unwrap_or_else(|| unreachable!());
        out.status(
            "unchanged",
            &format!(
                "release {} already serves {} on all {} hosts: nothing to do",
                cur.number,
                cur.version,
                members.len()
            ),
        );
        let entries: Vec<Entry> = members
            .iter()
            .map(|m| {
                let mut e = entry_for(m);
                e.result = "no-op".into();
                e.release = m.current.as_ref().map(|c| c.number);
                e.replicas = m
                    .current
                    .as_ref()
                    .map(|c| c.replicas.clone())
                    .unwrap_or_default();
                e
            })
            .collect();
        return record(&members, settings, entries, timeline, out, "no-op").await;
    }
    if settings.strategy == crate::config::model::Strategy::Rolling {
        out.detail(
            "several hosts: each stages a whole new release beside the old one (blue-green), so that no host switches before every host has passed",
        );
    }

    let mut number = 0;
    for m in &members {
        let all = replicas_of(&m.host.engine, settings).await?;
        number = number.max(next_number(&m.history, &all));
    }
    out.status(
        "deploying",
        &format!(
            "{} {} as release {number} to {} hosts ({} replica(s) each, deploy {id})",
            site.environment,
            settings.version,
            members.len(),
            settings.replicas
        ),
    );

    let plan = Plan {
        action: "deploy",
        number,
        kept: Vec::new(),
        drifted,
    };
    go(&members, base, out, plan, entry_for, timeline).await
}

/// What the shared steps do: start a new release (deploy) or kept replicas
/// (rollback, `kept` per host in host order).
struct Plan {
    action: &'static str,
    number: u64,
    kept: Vec<Vec<String>>,
    drifted: Option<String>,
}

/// Steps 3 to 7 over every host: stage, switch, drain, record.
async fn go(
    members: &[Member<'_>],
    base: &Base<'_>,
    out: &Output,
    plan: Plan,
    entry_for: impl Fn(&Member<'_>) -> Entry,
    mut timeline: Timeline,
) -> Result<Outcome, Error> {
    let settings = base.settings;
    let site = &settings.site;
    let number = plan.number;
    let created = plan.kept.is_empty();
    // Staged replicas that are not to serve: new ones go, kept ones stop again.
    let let_go = async |engine: &Engine, names: &[String]| {
        for n in names {
            if created {
                let _ = engine.remove_container(n).await;
            } else {
                let _ = engine.stop(n, Duration::from_secs(1)).await;
            }
        }
    };

    // 3. Stage everywhere.
    let staged = host::on_each(
        members,
        |m| &m.host.name,
        limit_for_stage(settings),
        |m| {
            let kept = plan
                .kept
                .get(members_index(members, m))
                .cloned()
                .unwrap_or_default();
            let let_go = &let_go;
            async move {
                let job = m.job(base);
                let mut t = Timeline::new();
                let names = if created {
                    start_healthy(&job, number, 0..settings.replicas, &mut t).await?
                } else {
                    start_kept(&job, &kept).await?;
                    kept
                };
                m.out.status("healthy", &names.join(", "));
                let trial =
                    on_trial(&job, &names, &mut t, async |servers| Ok(servers.to_vec())).await;
                if trial.is_err() {
                    let_go(&m.host.engine, &names).await;
                }
                trial.map(|servers| (names, servers))
            }
        },
    )
    .await;
    timeline.mark("stage");
    let mut failures: Vec<(usize, String, String)> = Vec::new();
    let mut ready = Vec::new();
    for (i, r) in staged.into_iter().enumerate() {
        match r {
            Ok(Ok(s)) => ready.push(Some(s)),
            Ok(Err(f)) => {
                failures.push((i, f.phase.to_string(), f.text()));
                ready.push(None);
            }
            Err(why) => {
                failures.push((i, "stage".into(), why));
                ready.push(None);
            }
        }
    }
    if failures.is_empty() && base.cancel.is_set() {
        failures.push((
            usize::MAX,
            "stage".into(),
            format!("interrupted by signal {}", base.cancel.signal()),
        ));
    }
    if !failures.is_empty() {
        // Nothing switched anywhere: the staged replicas go.
        let cleanup = members.iter().zip(&ready).map(|(m, s)| {
            let let_go = &let_go;
            async move {
                if let Some((names, _)) = s {
                    let_go(&m.host.engine, names).await;
                }
                if m.current.is_none() && !m.gateway_was_there {
                    let _ = m.host.engine.remove_container(&site.gateway()).await;
                }
            }
        });
        futures_util::future::join_all(cleanup).await;
        return fail(
            members, base, &plan, entry_for, failures, timeline, out, "staging",
        )
        .await;
    }

    // 4. Switch everywhere, only now.
    let switches = host::on_each(
        members,
        |m| &m.host.name,
        limit_for_switch(settings),
        |m| {
            let servers = ready[members_index(members, m)]
                .as_ref()
                .map(|(_, s)| s.clone())
                .unwrap_or_default();
            async move { gateway::switch(&m.host.engine, settings, &servers, number).await }
        },
    )
    .await;
    timeline.mark("switch");
    let mut switch_failures = Vec::new();
    let mut lost = Vec::new();
    for (i, r) in switches.iter().enumerate() {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(why)) => switch_failures.push((i, "switch".to_string(), why.clone())),
            Err(why) => {
                lost.push(i);
                switch_failures.push((i, "switch".to_string(), why.clone()));
            }
        }
    }
    if !switch_failures.is_empty() {
        // 5. Back, on every host that can still be reached.
        let back = members.iter().enumerate().zip(&ready).map(|((i, m), s)| {
            let lost = lost.contains(&i);
            let let_go = &let_go;
            async move {
                if lost {
                    return;
                }
                let job = m.job(base);
                if let Some(cur) = &m.current {
                    restore(&job, cur).await;
                }
                if let Some((names, _)) = s {
                    // They may have taken traffic: drained before they go.
                    drain(&m.host.engine, settings, names).await;
                    let_go(&m.host.engine, names).await;
                }
                if m.current.is_none() && !m.gateway_was_there {
                    let _ = m.host.engine.remove_container(&site.gateway()).await;
                }
            }
        });
        futures_util::future::join_all(back).await;
        return fail(
            members,
            base,
            &plan,
            entry_for,
            switch_failures,
            timeline,
            out,
            "switch",
        )
        .await;
    }
    for m in members {
        m.out.status(
            "switched",
            &format!(
                "the gateway serves release {number} at {}",
                gateway::url(&m.host.engine, settings)
            ),
        );
    }

    // 6. Drain the old release everywhere (kept, stopped, for rollback).
    let drains = members.iter().map(|m| async move {
        if let Some(cur) = &m.current {
            drain(&m.host.engine, settings, &cur.replicas).await;
        }
    });
    futures_util::future::join_all(drains).await;
    timeline.mark("drain");

    // 7. Record everywhere, under one id.
    let mut entries = Vec::new();
    for (m, s) in members.iter().zip(&ready) {
        let mut e = entry_for(m);
        e.release = Some(number);
        e.replicas = s.as_ref().map(|(n, _)| n.clone()).unwrap_or_default();
        if let Some(d) = &plan.drifted {
            e.reason = Some(format!("brought drifted hosts together ({d})"));
        }
        let mut with_this = m.history.clone();
        with_this.push(e.clone());
        if created
            && let Ok(removed) = prune(&m.host.engine, settings, &with_this, number).await
            && !removed.is_empty()
        {
            m.out
                .detail(&format!("removed old releases: {}", removed.join(", ")));
        }
        entries.push(e);
    }
    timeline.mark("cleanup");
    out.status(
        if created { "deployed" } else { "rolled back" },
        &format!(
            "{} release {number} serves on all {} hosts",
            site.environment,
            members.len()
        ),
    );
    record(members, settings, entries, timeline, out, "succeeded").await
}

/// Starts kept replicas again and waits for them to report healthy; on
/// failure they are stopped again.
async fn start_kept(job: &Job<'_>, names: &[String]) -> Result<(), super::run::Failure> {
    let engine = job.engine;
    for n in names {
        if let Err(e) = engine.start(n).await {
            for m in names {
                let _ = engine.stop(m, Duration::from_secs(1)).await;
            }
            return Err(super::run::Failure::new("start", e.to_string()));
        }
    }
    let cancel = job.cancel;
    let gated = super::replicas::wait_healthy(engine, names, job.settings.health_timeout, &|| {
        cancel.is_set()
    })
    .await;
    if let Err(u) = gated {
        for m in names {
            let _ = engine.stop(m, Duration::from_secs(1)).await;
        }
        return Err(super::run::Failure {
            phase: "health",
            reason: u.reason,
            container: Some(u.container),
            logs: u.logs,
        });
    }
    Ok(())
}

/// `shipit rollback ENV [--to VERSION]` on every host together: the same
/// kept release started, gated and switched to on all of them, or on none.
pub async fn rollback(
    settings: &Settings,
    options: &Options,
    out: &Output,
    cancel: &Cancel,
) -> Result<Outcome, Error> {
    let started = super::now();
    let mut timeline = Timeline::new();
    let (hosts, unreachable) = host::connect_all(settings).await?;
    if !unreachable.is_empty() {
        return Err(Error::Deploy {
            message: format!(
                "a rollback moves every host together, and some cannot be reached; nothing was changed:\n{}",
                indent(
                    &unreachable
                        .iter()
                        .map(|u| format!("{}: {}", u.name, u.why))
                        .collect::<Vec<_>>()
                )
            ),
        });
    }
    let tls = settings.load_tls()?;
    let command = format!("shipit rollback {}", settings.site.environment);
    let guards = lock_all(&hosts, settings, out, cancel, &command, options.lock_wait).await?;
    timeline.mark("lock");
    let base = Base {
        settings,
        cancel,
        image_ref: "",
        secrets: &[],
        tls: tls.as_ref().map(|(m, _)| m),
    };
    let result = locked_rollback(&hosts, &base, options, out, started, timeline).await;
    unlock_all(&hosts, guards).await;
    result
}

async fn locked_rollback(
    hosts: &[Host],
    base: &Base<'_>,
    options: &Options,
    out: &Output,
    started: i64,
    mut timeline: Timeline,
) -> Result<Outcome, Error> {
    let settings = base.settings;
    let site = &settings.site;
    let members = inspect_all(hosts, base, out).await?;
    timeline.mark("inspect");
    if let Some(d) = drift(&members) {
        return Err(Error::Deploy {
            message: format!(
                "the hosts serve different releases ({d}); nothing was changed.\n`shipit deploy {}` brings them together first",
                site.environment
            ),
        });
    }
    let Some(current) = members[0].current.clone() else {
        return Err(Error::Deploy {
            message: format!(
                "no release serves {} on these hosts: deploy one with `shipit deploy {}`",
                site.environment, site.environment
            ),
        });
    };
    // The newest release that served, is kept on every host, and is not the current one.
    let mut kept_everywhere: Vec<(u64, Entry, Vec<Vec<String>>)> = Vec::new();
    for e in members[0].history.iter().rev().filter(|e| e.served()) {
        let Some(r) = e.release.filter(|r| *r != current.number) else {
            continue;
        };
        if kept_everywhere.iter().any(|(n, _, _)| *n == r) {
            continue;
        }
        let mut names = Vec::new();
        for m in &members {
            let all = replicas_of(&m.host.engine, settings).await?;
            names.push(
                all.iter()
                    .filter(|c| super::run::release_of(c) == r)
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>(),
            );
        }
        if names.iter().all(|n| !n.is_empty()) {
            kept_everywhere.push((r, e.clone(), names));
        }
    }
    let target = kept_everywhere
        .into_iter()
        .find(|(_, e, _)| match &options.to_version {
            Some(v) => e.version.as_deref() == Some(v.as_str()),
            None => true,
        });
    let Some((number, target, kept)) = target else {
        return Err(Error::Deploy {
            message: match &options.to_version {
                Some(v) => {
                    format!("no release of version {v} is kept on every host to roll back to")
                }
                None => "no previous release is kept on every host to roll back to".into(),
            },
        });
    };
    let id = deploy_id();
    out.status(
        "rolling back",
        &format!(
            "{} on {} hosts from release {} ({}) to release {number} ({}), deploy {id}",
            site.environment,
            members.len(),
            current.number,
            current.version,
            target.version.clone().unwrap_or_default()
        ),
    );
    let entry_for = |m: &Member<'_>| {
        let mut e = Entry::new("rollback", "succeeded", started);
        e.deploy_id = Some(id.clone());
        e.version = target.version.clone();
        e.image = target.image.clone();
        e.image_id = target.image_id.clone();
        e.repaired = m.repaired.clone();
        e.previous_release = m.current.as_ref().map(|r| r.number);
        e.previous_version = m.current.as_ref().map(|r| r.version.clone());
        e
    };
    let plan = Plan {
        action: "rollback",
        number,
        kept,
        drifted: None,
    };
    go(&members, base, out, plan, entry_for, timeline).await
}

fn members_index(members: &[Member<'_>], m: &Member<'_>) -> usize {
    members
        .iter()
        .position(|x| std::ptr::eq(x, m))
        .unwrap_or_default()
}

/// Appends each host's entry to its history and sends the webhook once.
async fn record(
    members: &[Member<'_>],
    settings: &Settings,
    mut entries: Vec<Entry>,
    timeline: Timeline,
    out: &Output,
    result: &str,
) -> Result<Outcome, Error> {
    let total = timeline.total_ms();
    for e in &mut entries {
        e.duration_ms = total;
        e.phases = timeline.phases.clone();
    }
    for (m, e) in members.iter().zip(&entries) {
        if let Err(why) = m.store.append(e).await {
            m.out
                .warn(&format!("the history could not be written: {why}"));
        }
    }
    let first = entries[0].clone();
    let notified = notify::announce(settings, &first, out).await;
    let hosts = members
        .iter()
        .zip(&entries)
        .map(|(m, e)| HostReport {
            host: m.host.name.clone(),
            gateway_url: gateway::url(&m.host.engine, settings),
            result: result.into(),
            step: None,
            reason: e.reason.clone(),
            serving_release: e.release,
            serving_version: e.version.clone(),
        })
        .collect();
    Ok(Outcome {
        gateway_url: gateway::url(&members[0].host.engine, settings),
        entry: first,
        notified,
        hosts,
    })
}

/// Records a failed run on every host and reports it per host.
#[allow(clippy::too_many_arguments)]
async fn fail(
    members: &[Member<'_>],
    base: &Base<'_>,
    plan: &Plan,
    entry_for: impl Fn(&Member<'_>) -> Entry,
    failures: Vec<(usize, String, String)>,
    timeline: Timeline,
    out: &Output,
    during: &str,
) -> Result<Outcome, Error> {
    let settings = base.settings;
    let number = plan.number;
    let interrupted = base.cancel.signal();
    let mut entries = Vec::new();
    let mut lines = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let mut e = entry_for(m);
        e.release = Some(number);
        e.result = match (interrupted != 0, plan.action) {
            (true, _) => "interrupted",
            (false, "deploy") => "rolled-back",
            _ => "failed",
        }
        .into();
        let own = failures.iter().find(|(j, _, _)| *j == i);
        e.reason = Some(match own {
            Some((_, step, why)) => format!("{step} failed on this host: {why}"),
            None => format!("another host failed during {during}; this one was put back"),
        });
        match own {
            Some((_, step, why)) => lines.push(format!(
                "{} ({step}): {why}\n  now serves {}",
                m.host.name,
                describe(&m.current)
            )),
            None => lines.push(format!(
                "{}: passed, put back; serves {}",
                m.host.name,
                describe(&m.current)
            )),
        }
        entries.push(e);
    }
    if let Some((_, _, why)) = failures.iter().find(|(j, _, _)| *j == usize::MAX) {
        lines.insert(0, why.clone());
    }
    let _ = record(members, settings, entries, timeline, out, "rolled-back").await;
    let code = if interrupted != 0 {
        128 + interrupted
    } else {
        1
    };
    Err(Error::Reported {
        code,
        message: format!(
            "{} of {} to release {number} failed during {during} and was undone on every host ({}):\n{}\nfix the cause and try again; `shipit status {}` shows every host",
            plan.action,
            settings.site.environment,
            if during == "staging" {
                "no host had switched to it"
            } else {
                "the hosts that had switched were switched back"
            },
            indent(&lines),
            settings.site.environment
        ),
    })
}
