//! `deploy` and `rollback` across hosts: prepare, lock, go, unlock.

use super::preflight::*;
use super::steps::*;
use super::*;
use crate::record::{Action, Conclusion};

/// `shipit deploy ENV` to several hosts, from what the preflight found.
pub async fn deploy(
    prepared: Prepared,
    settings: &Settings,
    options: &Options,
    out: &Output,
    cancel: &Cancel,
) -> Result<Outcome, Error> {
    let image_ref = options.image_ref(settings);
    let Prepared {
        started,
        mut timeline,
        source,
        needs,
        hosts,
        problems,
        secrets,
        tls,
    } = prepared;
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

pub(super) async fn locked_deploy(
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
        let mut e = Entry::new(Action::Deploy, Conclusion::Succeeded, started);
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
                e.result = Conclusion::NoOp;
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
        action: Action::Deploy,
        number,
        kept: Vec::new(),
        drifted,
    };
    go(&members, base, out, plan, entry_for, timeline).await
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
                    .filter(|c| super::super::releases::release_of(c) == r)
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
        let mut e = Entry::new(Action::Rollback, Conclusion::Succeeded, started);
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
        action: Action::Rollback,
        number,
        kept,
        drifted: None,
    };
    go(&members, base, out, plan, entry_for, timeline).await
}
