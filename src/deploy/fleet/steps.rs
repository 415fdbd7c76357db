//! The steps over every host once they are locked: stage, switch (or switch
//! back), drain, record; and the report of a run that failed.

use super::*;
use crate::deploy::steps::Detail;
use crate::record::{Action, Conclusion, Subject};

pub(super) fn limit_for_stage(settings: &Settings) -> Duration {
    settings.health_timeout + settings.smoke_timeout + Duration::from_secs(60)
}

pub(super) fn limit_for_switch(settings: &Settings) -> Duration {
    settings.drain + Duration::from_secs(60)
}

/// How long a host that went silent during its switch is tried again, on a
/// new connection, to switch it back.
fn limit_for_switch_back(settings: &Settings) -> Duration {
    settings.drain + crate::engine::CALL_LIMIT
}

/// What the shared steps do: start a new release (deploy) or kept replicas
/// (rollback, `kept` per host in host order).
pub(super) struct Plan {
    pub(super) action: Action,
    pub(super) number: u64,
    pub(super) kept: Vec<Vec<String>>,
    pub(super) drifted: Option<String>,
}

/// Steps 3 to 7 over every host: stage everywhere, then switch everywhere,
/// drain, record. A fleet of one promotes as soon as it passed (`one.rs`).
pub(super) async fn go(
    members: &[Member<'_>],
    base: &Base<'_>,
    out: &Output,
    plan: Plan,
    entry_for: impl Fn(&Member<'_>) -> Entry,
    mut timeline: Timeline,
) -> Result<Outcome, Error> {
    if let [one] = members {
        return super::one::go((one, entry_for(one)), base, out, plan, timeline).await;
    }
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

    // 3. Stage everywhere; the first host that fails stops the others.
    let staged = host::on_each_or_stop(
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
                    start_healthy(&job, number, 0..settings.replicas, true, &mut t).await?
                } else {
                    start_kept(&job, &kept, &mut t).await?;
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
    let mut failures: Vec<(usize, String, String, String)> = Vec::new();
    let mut ready = Vec::new();
    for (i, r) in staged.into_iter().enumerate() {
        match r {
            Ok(Ok(s)) => ready.push(Some(s)),
            Ok(Err(f)) => {
                failures.push((i, f.phase.to_string(), f.brief(), f.text()));
                ready.push(None);
            }
            // Stopped or out of time part-way: what it may have started, by name.
            Err(why) => {
                failures.push((i, "stage".into(), why.clone(), why));
                let names = match plan.kept.get(i) {
                    Some(kept) if !created => kept.clone(),
                    _ => settings.release_replicas(number),
                };
                ready.push(Some((names, Vec::new())));
            }
        }
    }
    if failures.is_empty() && base.cancel.is_set() {
        let why = format!("interrupted by signal {}", base.cancel.signal());
        failures.push((usize::MAX, "stage".into(), why.clone(), why));
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
            members,
            base,
            &plan,
            entry_for,
            failures,
            timeline,
            out,
            "staging",
            Silent::default(),
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
    // Hosts that went silent during their switch: whether it took is unknown.
    let mut lost = Vec::new();
    for (i, r) in switches.iter().enumerate() {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(why)) => {
                if members[i].host.engine.is_lost() {
                    lost.push(i);
                }
                switch_failures.push((i, "switch".to_string(), why.clone(), why.clone()))
            }
            Err(why) => {
                lost.push(i);
                switch_failures.push((i, "switch".to_string(), why.clone(), why.clone()));
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
        // A silent host is switched back if it answers again in time, on a new
        // connection; otherwise it is reported as unknown.
        let again = lost.iter().map(|&i| {
            let (m, names) = (&members[i], ready[i].as_ref().map(|(n, _)| n.clone()));
            let let_go = &let_go;
            async move {
                let back =
                    switch_back_when_it_answers(m, settings, limit_for_switch_back(settings));
                match back.await {
                    Some(engine) => {
                        if let Some(names) = names {
                            drain(&engine, settings, &names).await;
                            let_go(&engine, &names).await;
                        }
                        None
                    }
                    None => Some(i),
                }
            }
        });
        let unknown: Vec<usize> = futures_util::future::join_all(again)
            .await
            .into_iter()
            .flatten()
            .collect();
        let silent = Silent {
            lost: &lost,
            unknown: &unknown,
        };
        return fail(
            members,
            base,
            &plan,
            entry_for,
            switch_failures,
            timeline,
            out,
            "switch",
            silent,
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
        with_this.entries.push(e.clone());
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

/// Appends each host's entry to its history and sends the webhook once.
pub(super) async fn record(
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
    // Every host's history at once: each is its own engine.
    let appends = members.iter().zip(&entries).map(|(m, e)| async move {
        if let Err(why) = m.store.append(e).await {
            m.out
                .warn(&format!("the history could not be written: {why}"));
        }
    });
    futures_util::future::join_all(appends).await;
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
        subject: Subject {
            action: first.action,
            environment: settings.site.environment.clone(),
            version: first.version.clone().unwrap_or_default(),
            image: first.image.clone().unwrap_or_default(),
        },
        result: first.result,
        cause: first.reason.clone(),
        phases: first.phases.clone(),
        duration_ms: first.duration_ms,
        exit_code: 0,
        detail: Detail {
            gateway_url: gateway::url(&members[0].host.engine, settings),
            entry: first,
            hosts,
        },
        plan: None,
        notified,
    })
}

/// Switches a host that went silent during its switch back to what it
/// served, on a new connection, trying until `within` has passed; the new
/// engine once done.
async fn switch_back_when_it_answers(
    m: &Member<'_>,
    settings: &Settings,
    within: Duration,
) -> Option<Engine> {
    let deadline = std::time::Instant::now() + within;
    m.out.warn(&format!(
        "it went silent during the switch: trying to put it back for up to {} s",
        within.as_secs()
    ));
    while std::time::Instant::now() < deadline {
        if let Ok(engine) = host::reconnect(settings, &m.host.name).await {
            let back = match &m.current {
                Some(cur) => async {
                    let servers = gateway::servers(&engine, settings, &cur.replicas).await?;
                    gateway::switch(&engine, settings, &servers, cur.number).await
                }
                .await
                .is_ok(),
                // Nothing served before: the gateway made by this run goes.
                None if !m.gateway_was_there => engine
                    .remove_container(&settings.site.gateway())
                    .await
                    .is_ok(),
                None => true,
            };
            if back {
                return Some(engine);
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    None
}

/// The hosts that went silent during their switch (`lost`), and those of
/// them that did not answer again in time (`unknown`): what they serve is not
/// known.
#[derive(Default, Clone, Copy)]
pub(super) struct Silent<'a> {
    pub(super) lost: &'a [usize],
    pub(super) unknown: &'a [usize],
}

/// Records a failed run on every host and reports it: which step failed
/// where, and what each host serves now (or that it is not known). The
/// outcome carries the exit code; `--output json` lists every host.
#[allow(clippy::too_many_arguments)]
pub(super) async fn fail(
    members: &[Member<'_>],
    base: &Base<'_>,
    plan: &Plan,
    entry_for: impl Fn(&Member<'_>) -> Entry,
    failures: Vec<(usize, String, String, String)>,
    timeline: Timeline,
    out: &Output,
    during: &str,
    silent: Silent<'_>,
) -> Result<Outcome, Error> {
    let settings = base.settings;
    let number = plan.number;
    let interrupted = base.cancel.signal();
    let mut entries = Vec::new();
    let mut lines = Vec::new();
    let within = limit_for_switch_back(settings).as_secs();
    for (i, m) in members.iter().enumerate() {
        let mut e = entry_for(m);
        e.release = Some(number);
        e.result = match (interrupted != 0, plan.action) {
            (true, _) => Conclusion::Interrupted,
            (false, Action::Deploy) => Conclusion::RolledBack,
            _ => Conclusion::Failed,
        };
        let own = failures.iter().find(|(j, ..)| *j == i);
        e.reason = Some(match own {
            // What leaves this machine: no log line, no body.
            Some((_, step, brief, _)) => format!("{step} failed on this host: {brief}"),
            None => format!("another host failed during {during}; this one was put back"),
        });
        let now = if silent.unknown.contains(&i) {
            format!(
                "unknown: it stopped answering during the switch and did not answer again within {within} s; it serves release {number} or {}, and the next deploy brings it in line",
                describe(&m.current)
            )
        } else if silent.lost.contains(&i) {
            format!(
                "it answered again and was switched back: serves {}",
                describe(&m.current)
            )
        } else {
            format!("now serves {}", describe(&m.current))
        };
        match own {
            Some((_, step, _, why)) => {
                lines.push(format!("{} ({step}): {why}\n  {now}", m.host.name))
            }
            None => lines.push(format!(
                "{}: passed, put back; serves {}",
                m.host.name,
                describe(&m.current)
            )),
        }
        entries.push(e);
    }
    if let Some((.., why)) = failures.iter().find(|(j, ..)| *j == usize::MAX) {
        lines.insert(0, why.clone());
    }
    let code = if interrupted != 0 {
        128 + interrupted
    } else {
        1
    };
    let undone = if !silent.unknown.is_empty() {
        format!(
            "was undone on every host but {} of them, whose state is unknown",
            silent.unknown.len()
        )
    } else if during == "staging" {
        "was undone on every host (no host had switched to it)".to_string()
    } else {
        "was undone on every host (the hosts that had switched were switched back)".to_string()
    };
    let message = format!(
        "{} of {} to release {number} failed during {during} and {undone}:\n{}\nfix the cause and try again; `shipit status {}` shows every host",
        plan.action,
        settings.site.environment,
        indent(&lines),
        settings.site.environment
    );
    let mut outcome = record(members, settings, entries, timeline, out, "rolled-back").await?;
    // What each host serves now, as far as shipit knows.
    for (i, (h, m)) in outcome.detail.hosts.iter_mut().zip(members).enumerate() {
        if silent.unknown.contains(&i) {
            h.result = "unknown".into();
            h.serving_release = None;
            h.serving_version = None;
        } else {
            h.serving_release = m.current.as_ref().map(|c| c.number);
            h.serving_version = m.current.as_ref().map(|c| c.version.clone());
        }
    }
    outcome.exit_code = code;
    outcome.cause = Some(message);
    Ok(outcome)
}
