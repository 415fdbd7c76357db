//! Before anything changes: every host reached, checked and locked, and
//! inspected (repaired, drift found), every problem reported at once.

use super::*;

/// Every problem that would stop the run, from every host, before anything
/// changes anywhere.
pub(super) async fn preflight(
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
                    Ok(Some(info)) if info.stale != Some(true) && !info.expired => {
                        found.push(format!(
                            "{} is locked by another deploy: {}\nwait for it (--lock-wait 10m), or, if that deploy is dead, `shipit lock release {}`",
                            settings.site.environment,
                            info.describe(),
                            settings.site.environment
                        ))
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
pub(super) async fn ports_taken(engine: &Engine, settings: &Settings) -> Vec<String> {
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
                .map(|p| {
                    format!(
                        "the gateway could not be prepared, so nothing else was changed: a port the gateway publishes is already taken (port {p}, by the container {})",
                        c.name
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Takes every host's lock in host order; all or none.
pub(super) async fn lock_all(
    hosts: &[Host],
    settings: &Settings,
    out: &Output,
    cancel: &Cancel,
    command: &str,
    wait: Duration,
) -> Result<Vec<Guard>, Error> {
    let mut guards: Vec<Guard> = Vec::new();
    for h in hosts {
        let o = host_out(out, hosts, &h.name);
        // Across several hosts, a lock whose holder died on this machine (a
        // run killed, or one that lost this host before it could let go) is
        // taken over, and said so. One host's stale lock is refused with the
        // way to release it (`shipit lock release`): a person decides.
        if hosts.len() > 1
            && let Ok(Some(info)) = lock::inspect(&h.engine, &settings.site).await
            && info.stale == Some(true)
        {
            o.warn(&format!("taking over a stale lock: {}", info.describe()));
            let _ = lock::release_abandoned(&h.engine, &settings.site).await;
        }
        match super::super::steps::take_lock(&h.engine, settings, &o, cancel, command, wait).await {
            Ok(g) => guards.push(g),
            Err(e) if hosts.len() == 1 => return Err(e),
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
pub(super) async fn unlock_all(hosts: &[Host], guards: Vec<Guard>) {
    let releases = guards
        .into_iter()
        .zip(hosts)
        .map(|(g, h)| tokio::time::timeout(ANSWER, g.release(&h.engine)));
    futures_util::future::join_all(releases).await;
}

/// How long a small request to a host may take before it counts as lost.
pub(super) const ANSWER: Duration = Duration::from_secs(20);

/// Network, store, gateway and repair on every host: what serves on each.
pub(super) async fn inspect_all<'h>(
    hosts: &'h [Host],
    base: &Base<'_>,
    out: &Output,
) -> Result<Vec<Member<'h>>, Error> {
    let settings = base.settings;
    let results = host::on_each(
        hosts,
        |h| &h.name,
        Duration::from_secs(120),
        |h| {
            let o = host_out(out, hosts, &h.name);
            async move {
                let engine = &h.engine;
                let (store, history, gateway_was_there) =
                    super::super::steps::open_site(engine, settings).await?;
                let job = Job {
                    engine,
                    settings,
                    out: &o,
                    cancel: base.cancel,
                    image_ref: base.image_ref,
                    secrets: base.secrets,
                    tls: base.tls,
                };
                let ensured = super::super::steps::prepare_gateway(&job).await?;
                let (current, repaired) = repair(
                    engine,
                    settings,
                    &store,
                    &history,
                    ensured.serving.clone(),
                    &o,
                )
                .await?;
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
                    ensured,
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
            // One host: its own error, as it always said it.
            Ok(Err(e)) if hosts.len() == 1 => return Err(e),
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

/// Hosts on different releases (a run killed between switches, a host that
/// was down): said plainly, and brought together by this run.
pub(super) fn drift(members: &[Member<'_>]) -> Option<String> {
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
pub struct Prepared {
    /// When the run started (its preflight is its first phase).
    pub(super) started: i64,
    pub(super) timeline: Timeline,
    pub(super) source: Option<Engine>,
    pub(super) needs: Vec<Need>,
    /// The hosts that answered, in lock order.
    pub hosts: Vec<Host>,
    /// What would stop the run, from every host at once.
    pub problems: Vec<String>,
    pub(super) secrets: Vec<(String, String)>,
    pub(super) tls: Option<(super::super::tls::Material, Vec<String>)>,
}

/// The preflight of a deploy across hosts: every host reached and checked,
/// nothing changed.
pub async fn prepare(settings: &Settings, options: &Options) -> Result<Prepared, Error> {
    let started = crate::clock::now();
    let timeline = Timeline::new();
    let image_ref = options.image_ref(settings);
    let image_ref = image_ref.as_str();
    // What this machine holds is checked first: a usage error, before any host.
    let secrets = settings.resolve_secrets()?;
    let tls = settings.load_tls()?;
    let (hosts, unreachable) = host::connect_all(settings).await?;
    // The engine the image was built on: where it is streamed from. One
    // engine (DOCKER_HOST) is that one: connected once.
    let source = match (settings.hosts.is_empty(), hosts.first()) {
        (true, Some(h)) => Some(h.engine.clone()),
        _ => Engine::connect().await.ok(),
    };
    let mut needs = match &source {
        Some(s) => vec![
            Need::of(s, "release", image_ref).await,
            Need::of(s, "gateway", &settings.gateway_image).await,
        ],
        None => vec![
            Need::unknown("release", image_ref),
            Need::unknown("gateway", &settings.gateway_image),
        ],
    };
    let gateway = deliver::gateway_identity(source.as_ref(), &hosts, settings, &mut needs[1]).await;
    let mut problems = preflight(
        source.as_ref(),
        &hosts,
        &unreachable,
        settings,
        &needs,
        options,
    )
    .await;
    problems.extend(gateway);

    Ok(Prepared {
        started,
        timeline,
        source,
        needs,
        hosts,
        problems,
        secrets,
        tls,
    })
}
