//! `deploy` and `rollback` on the environment's hosts (one engine is a fleet
//! of one): prepare, lock, inspect, go, unlock.

use super::preflight::*;
use super::steps::*;
use super::*;
use crate::record::{Action, Conclusion};

/// `shipit deploy ENV`, from what the preflight found.
pub async fn deploy(
    prepared: Prepared,
    settings: &Settings,
    options: &Options,
    out: &Output,
    cancel: &Cancel,
) -> Result<Outcome, Error> {
    let image_ref = options.image_ref(settings);
    let (started, mut timeline) = (prepared.started, prepared.timeline);
    let (hosts, problems, needs) = (prepared.hosts, prepared.problems, prepared.needs);
    let (source, secrets, tls) = (prepared.source, prepared.secrets, prepared.tls);
    let one = hosts.len() == 1 && problems.is_empty();
    for w in host::plain_http_warnings(&hosts) {
        out.warn(&w);
    }
    if !problems.is_empty() {
        return Err(Error::Deploy {
            message: format!(
                "preflight found {} problem(s) across {} host(s); nothing was changed on any host:\n{}",
                problems.len(),
                settings.hosts.len().max(1),
                indent(&problems)
            ),
        });
    }
    if let Some((material, warnings)) = &tls {
        for w in warnings {
            out.warn(w);
        }
        out.detail(&format!(
            "certificate {} for {}: {} day(s) left",
            material.subject,
            material.names.join(", "),
            material.days_left(crate::clock::now())
        ));
    }
    if !one {
        timeline.mark("preflight");
    }

    if let Some(source) = &source {
        let deliveries = host::on_each(
            &hosts,
            |h| &h.name,
            Duration::from_secs(1800),
            |h| {
                let o = host_out(out, &hosts, &h.name);
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
    // One host: getting its images is part of its preflight, as it always was.
    timeline.mark(if one { "preflight" } else { "images" });

    let guards = lock(
        &hosts,
        settings,
        out,
        cancel,
        Action::Deploy,
        options,
        &mut timeline,
    )
    .await?;
    let base = Base {
        image_ref: Some(&image_ref),
        secrets: &secrets,
        strategy: if one {
            options.strategy.unwrap_or(settings.strategy)
        } else {
            Strategy::BlueGreen
        },
        ..Base::new(settings, cancel, tls.as_ref().map(|(m, _)| m))
    };
    let result = locked_deploy(
        &hosts,
        &base,
        out,
        (&image_ref, &image_id),
        started,
        timeline,
    )
    .await;
    unlock_all(&hosts, guards).await;
    result
}

pub(super) async fn locked_deploy(
    hosts: &[Host],
    base: &Base<'_>,
    out: &Output,
    (image_ref, image_id): (&str, &str),
    started: i64,
    mut timeline: Timeline,
) -> Result<Outcome, Error> {
    let settings = base.settings;
    let site = &settings.site;
    let members = inspect_all(hosts, base, out).await?;
    timeline.mark("inspect");
    let one = members.len() == 1;
    let id = deploy_id();
    let drifted = drift(&members);
    if let Some(d) = &drifted {
        out.warn(&format!(
            "the hosts serve different releases ({d}): this deploy brings them all to {}",
            settings.version
        ));
    }
    let entry_for = |m: &Member<'_>| {
        let mut e = m.entry(Action::Deploy, started, &id);
        e.version = Some(settings.version.clone());
        e.image = Some(image_ref.to_string());
        e.image_id = Some(image_id.to_string());
        e.strategy = Some(crate::deploy::plan::strategy_name(base.strategy).into());
        e
    };

    let unchanged = members.iter().all(|m| {
        m.current.as_ref().is_some_and(|c| {
            c.version == settings.version
                && c.image_id == image_id
                && c.roles_digest == settings.roles_digest()
        })
    }) && drifted.is_none();
    if unchanged {
        let cur = members[0].current.clone().unwrap_or_else(|| unreachable!());
        let changes = gateway_changes(&members);
        let said = match (&changes, one) {
            (Some(what), _) => format!(
                "release {} keeps serving {} ({}); {what}",
                cur.number, cur.version, image_ref
            ),
            (None, true) => format!(
                "release {} already serves {} ({}): nothing to do",
                cur.number, cur.version, image_ref
            ),
            (None, false) => format!(
                "release {} already serves {} on all {} hosts: nothing to do",
                cur.number,
                cur.version,
                members.len()
            ),
        };
        out.status("unchanged", &said);
        let entries: Vec<Entry> = members
            .iter()
            .map(|m| {
                let mut e = entry_for(m);
                e.result = Conclusion::NoOp;
                e.reason = changes.clone();
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
    if !one && settings.strategy == Strategy::Rolling {
        out.detail(
            "several hosts: each stages a whole new release beside the old one (blue-green), so that no host switches before every host has passed",
        );
    }

    let mut number = 0;
    for m in &members {
        let all = replicas_of(&m.host.engine, settings).await?;
        number = number.max(next_number(&m.history, &all));
    }
    if one {
        let m = &members[0];
        out.status(
            "deploying",
            &format!(
                "{} {} as release {number} ({}, {} replica(s)){}",
                site.environment,
                settings.version,
                crate::deploy::plan::strategy_name(base.strategy),
                settings.replicas,
                m.current
                    .as_ref()
                    .map(|c| format!(", replacing release {} ({})", c.number, c.version))
                    .unwrap_or_else(|| ", first release".into())
            ),
        );
    } else {
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
    }

    if !settings.release_command.is_empty() {
        let first = &members[0].host;
        let ran = crate::deploy::release_task::run(
            &first.engine,
            &first.name,
            settings,
            (image_ref, number),
            base.secrets,
            out,
            base.cancel,
        )
        .await;
        match ran {
            Ok(took) => {
                out.status(
                    "release",
                    &format!("the release command passed in {:.1} s", took.as_secs_f64()),
                );
                timeline.mark("release");
            }
            Err(why) => {
                let serving = match &members[0].current {
                    Some(c) => format!("release {} ({}) still serves", c.number, c.version),
                    None => "nothing was serving, and nothing serves now".into(),
                };
                let reason = format!(
                    "{why}; the deploy stopped before any new replica started: {serving}, and nothing else changed. What the command changed (a migration) stays as it left it: shipit cannot undo it (README: \"Release commands\")"
                );
                timeline.mark("release");
                // In every host's history (and the webhook's notice), as a failed deploy.
                let entries: Vec<Entry> = members
                    .iter()
                    .map(|m| {
                        let mut e = entry_for(m);
                        e.result = Conclusion::Failed;
                        e.reason = Some(reason.clone());
                        e.release = m.current.as_ref().map(|c| c.number);
                        e
                    })
                    .collect();
                let outcome = record(&members, settings, entries, timeline, out, "failed").await?;
                return Ok(Outcome {
                    exit_code: 1,
                    ..outcome
                });
            }
        }
    }
    let plan = Plan {
        action: Action::Deploy,
        number,
        kept: Vec::new(),
        drifted,
    };
    go(&members, base, out, plan, entry_for, timeline).await
}

/// What the gateways' preparation changed, when a deploy changes nothing else.
fn gateway_changes(members: &[Member<'_>]) -> Option<String> {
    let reloaded = members.iter().any(|m| m.ensured.reloaded);
    let rotated = members.iter().any(|m| m.ensured.rotated);
    (reloaded || rotated).then(|| {
        crate::deploy::steps::gateway_changes(&crate::deploy::gateway::Ensured {
            reloaded,
            rotated,
            ..Default::default()
        })
    })
}

/// `shipit rollback ENV [--to VERSION]` on every host together: the same
/// kept release started, gated and switched to on all of them, or on none.
pub async fn rollback(
    settings: &Settings,
    options: &Options,
    out: &Output,
    cancel: &Cancel,
) -> Result<Outcome, Error> {
    let started = crate::clock::now();
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
    for w in host::plain_http_warnings(&hosts) {
        out.warn(&w);
    }
    // Checked before the lock: with nothing deployed there is nothing to lock.
    let mut deployed = false;
    for h in &hosts {
        deployed |= Store::existing(&h.engine, &settings.site).await?.is_some();
    }
    if !deployed {
        return Err(Error::Deploy {
            message: format!(
                "nothing was ever deployed to {} on {}: there is nothing to roll back to",
                settings.site.environment,
                if hosts.len() == 1 {
                    "this engine"
                } else {
                    "these hosts"
                }
            ),
        });
    }
    // The kept replicas get today's secret values, not their first deploy's.
    let secrets = settings.resolve_secrets()?;
    let tls = settings.load_tls()?;
    let guards = lock(
        &hosts,
        settings,
        out,
        cancel,
        Action::Rollback,
        options,
        &mut timeline,
    )
    .await?;
    // A rollback starts kept replicas: no image to run.
    let base = Base {
        secrets: &secrets,
        ..Base::new(settings, cancel, tls.as_ref().map(|(m, _)| m))
    };
    let result = locked_rollback(&hosts, &base, options, out, started, timeline).await;
    unlock_all(&hosts, guards).await;
    result
}

pub(super) async fn locked_rollback(
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
    let one = members.len() == 1;
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
                "no release serves {}{}: deploy one with `shipit deploy {}`",
                site.environment,
                if one { "" } else { " on these hosts" },
                site.environment
            ),
        });
    };
    // The releases that served, newest first, kept on every host, not the current one.
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
                    .filter(|c| super::super::releases::release_of(c) == r)
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>(),
            );
        }
        if names.iter().all(|n| !n.is_empty()) {
            kept_everywhere.push((r, e.clone(), names));
        }
    }
    let where_kept = if one { "" } else { " on every host" };
    let listed: Vec<String> = kept_everywhere
        .iter()
        .map(|(r, e, _)| format!("{} (release {r})", e.version.clone().unwrap_or_default()))
        .collect();
    let target = kept_everywhere
        .into_iter()
        .find(|(_, e, _)| match &options.to_version {
            Some(v) => e.version.as_deref() == Some(v.as_str()),
            None => true,
        });
    let Some((number, target, kept)) = target else {
        return Err(Error::Deploy {
            message: match &options.to_version {
                Some(v) => format!(
                    "no kept release of version {v}{where_kept} to roll back to; kept: {}",
                    if listed.is_empty() {
                        "none".into()
                    } else {
                        listed.join(", ")
                    }
                ),
                None => format!(
                    "no previous release is kept {} to roll back to",
                    if one {
                        "on the engine"
                    } else {
                        "on every host"
                    }
                ),
            },
        });
    };
    timeline.mark("inspect");
    let id = deploy_id();
    let from_to = format!(
        "from release {} ({}) to release {number} ({})",
        current.number,
        current.version,
        target.version.clone().unwrap_or_default()
    );
    out.status(
        "rolling back",
        &if one {
            format!("{} {from_to}", site.environment)
        } else {
            format!(
                "{} on {} hosts {from_to}, deploy {id}",
                site.environment,
                members.len()
            )
        },
    );
    let entry_for = |m: &Member<'_>| {
        let mut e = m.entry(Action::Rollback, started, &id);
        e.version = target.version.clone();
        e.image = target.image.clone();
        e.image_id = target.image_id.clone();
        e
    };
    let plan = Plan {
        action: Action::Rollback,
        number,
        kept,
        drifted: None,
    };
    go(&members, base, out, plan, entry_for, timeline).await
}

/// Every host's lock for `action`, in lock order; the run's `lock` phase.
async fn lock(
    hosts: &[Host],
    settings: &Settings,
    out: &Output,
    cancel: &Cancel,
    action: Action,
    options: &Options,
    timeline: &mut Timeline,
) -> Result<Vec<Guard>, Error> {
    let command = format!("shipit {action} {}", settings.site.environment);
    let guards = lock_all(hosts, settings, out, cancel, &command, options.lock_wait).await?;
    timeline.mark("lock");
    Ok(guards)
}
