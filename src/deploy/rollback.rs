//! `shipit rollback ENV [--to VERSION]`: a kept release started again,
//! health- and smoke-gated, switched to; the current one drained and kept.

use crate::cancel::Cancel;
use crate::record::{Action, Conclusion};
use std::time::Duration;

use super::history::{Entry, Store};
use super::releases::{release_of, replicas_of};
use super::repair::repair;
use super::run::{
    Failure, Job, Options, Outcome, Timeline, finish, prepare_gateway, promote, take_lock,
};
use super::{Settings, replicas};
use crate::engine::Engine;
use crate::error::Error;
use crate::output::Output;

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
    let started = crate::clock::now();
    let mut timeline = Timeline::new();
    // Checked before the lock: with nothing deployed there is nothing to lock.
    let Some(store) = Store::existing(engine, &settings.site).await? else {
        return Err(nothing_deployed(settings));
    };
    let tls = settings.load_tls()?;
    let command = format!("shipit rollback {}", settings.site.environment);
    let guard = take_lock(engine, settings, out, cancel, &command, options.lock_wait).await?;
    timeline.mark("lock");
    // A rollback starts kept replicas: no image to run, no secrets to pass.
    let job = Job {
        engine,
        settings,
        out,
        cancel,
        image_ref: "",
        secrets: &[],
        tls: tls.as_ref().map(|(m, _)| m),
    };
    let result = locked_rollback(&job, options, &store, started, timeline).await;
    guard.release(engine).await;
    result
}

async fn locked_rollback(
    job: &Job<'_>,
    options: &Options,
    store: &Store<'_>,
    started: i64,
    mut timeline: Timeline,
) -> Result<Outcome, Error> {
    let (engine, settings, out, cancel) = (job.engine, job.settings, job.out, job.cancel);
    let site = &settings.site;
    let history = store.read().await?;
    prepare_gateway(job).await?;
    let (current, repaired) = repair(engine, settings, store, &history, out).await?;
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
    let mut entry = Entry::new(Action::Rollback, Conclusion::Succeeded, started);
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
            promote(job, Some(&current), number, &names, false, &mut timeline).await
        }
    };
    match result {
        Ok(()) => {
            out.status(
                "rolled back",
                &format!("{} release {number} serves again", site.environment),
            );
            finish(store, settings, entry, timeline, out).await
        }
        Err(failure) => {
            entry.result = Conclusion::Failed;
            entry.reason = Some(failure.text());
            finish(store, settings, entry, timeline, out).await?;
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
