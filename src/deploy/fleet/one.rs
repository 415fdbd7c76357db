//! A fleet of one host: there is no other host to wait for, so the new
//! release is promoted as soon as it passed (healthy, then smoke-tested
//! through the candidate route, switched, the old one drained), replica by
//! replica with the rolling strategy; each step is a phase of the run.

use super::steps::{Plan, record};
use super::*;
use crate::config::model::Strategy;
use crate::deploy::releases::prune;
use crate::deploy::steps::{Failure, promote, rolling, start_kept};
use crate::record::{Action, Conclusion};

/// Stages, switches and drains on the one host, records, and reports.
/// `entry` is the host's history entry for the run, filled in as it goes.
pub(super) async fn go(
    (m, mut entry): (&Member<'_>, Entry),
    base: &Base<'_>,
    out: &Output,
    plan: Plan,
    mut timeline: Timeline,
) -> Result<Outcome, Error> {
    let settings = base.settings;
    let site = &settings.site;
    let job = m.job(base);
    let number = plan.number;
    let current = m.current.as_ref();
    entry.release = Some(number);
    let outcome = match (plan.action, current, base.strategy) {
        (Action::Rollback, _, _) => {
            let names = plan.kept.first().cloned().unwrap_or_default();
            match start_kept(&job, &names, &mut timeline).await {
                Ok(()) => promote(&job, current, number, &names, false, &mut timeline)
                    .await
                    .map(|()| names),
                Err(f) => Err(f),
            }
        }
        (_, Some(cur), Strategy::Rolling) => rolling(&job, cur, number, &mut timeline).await,
        _ => match super::start_healthy(&job, number, 0..settings.replicas, true, &mut timeline)
            .await
        {
            Ok(names) => {
                m.out.status("healthy", &names.join(", "));
                promote(&job, current, number, &names, true, &mut timeline)
                    .await
                    .map(|()| names)
            }
            Err(f) => Err(f),
        },
    };
    let names = match outcome {
        Ok(names) => names,
        Err(failure) => return failed(m, base, out, &plan, entry, failure, timeline).await,
    };
    entry.replicas = names;
    if plan.action == Action::Rollback {
        out.status(
            "rolled back",
            &format!("{} release {number} serves again", site.environment),
        );
    } else {
        // Pruned with this release recorded, so it counts as served.
        let mut with_this = m.history.clone();
        with_this.entries.push(entry.clone());
        let removed = prune(&m.host.engine, settings, &with_this, number).await?;
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
                gateway::url(&m.host.engine, settings)
            ),
        );
    }
    record_one(m, settings, entry, timeline, out, "succeeded").await
}

/// Appends the host's entry to its history, sends the webhook, reports.
async fn record_one(
    m: &Member<'_>,
    settings: &Settings,
    entry: Entry,
    timeline: Timeline,
    out: &Output,
    result: &str,
) -> Result<Outcome, Error> {
    record(
        std::slice::from_ref(m),
        settings,
        vec![entry],
        timeline,
        out,
        result,
    )
    .await
}

/// Records the failed run and says what serves now and what to do.
async fn failed(
    m: &Member<'_>,
    base: &Base<'_>,
    out: &Output,
    plan: &Plan,
    mut entry: Entry,
    failure: Failure,
    timeline: Timeline,
) -> Result<Outcome, Error> {
    let settings = base.settings;
    let site = &settings.site;
    let number = plan.number;
    let interrupted = base.cancel.signal();
    let previous = m
        .current
        .as_ref()
        .map(|c| format!("release {} ({}) keeps serving", c.number, c.version));
    if plan.action == Action::Rollback {
        entry.result = Conclusion::Failed;
        entry.reason = Some(failure.brief());
        record_one(m, settings, entry, timeline, out, "failed").await?;
        return Err(Error::Reported {
            code: 1,
            message: format!(
                "rollback of {} to release {number} failed: {}\n{}.",
                site.environment,
                failure.text(),
                previous.unwrap_or_default()
            ),
        });
    }
    entry.result = if interrupted != 0 {
        Conclusion::Interrupted
    } else {
        Conclusion::RolledBack
    };
    if m.current.is_none() && !m.gateway_was_there {
        // A first release that failed: the gateway made for it goes too.
        let _ = m.host.engine.remove_container(&site.gateway()).await;
    }
    let cause = if interrupted != 0 {
        format!(
            "interrupted by signal {interrupted} during {}",
            failure.phase
        )
    } else {
        failure.text()
    };
    // The history and the webhook get the cause without logs or bodies.
    entry.reason = Some(if interrupted != 0 {
        cause.clone()
    } else {
        failure.brief()
    });
    record_one(m, settings, entry, timeline, out, "rolled-back").await?;
    let what_to_do = match failure.phase {
        "health" => "check the container's logs above; `shipit status` shows the serving release",
        "smoke" => {
            "the release is healthy but failed its smoke tests: run it locally and `shipit smoke ENV --url ...` against it"
        }
        "switch" => "the gateway kept routing to the previous release; `shipit status` shows it",
        _ => "fix the cause and deploy again",
    };
    Err(Error::Reported {
        code: if interrupted != 0 {
            128 + interrupted
        } else {
            1
        },
        message: format!(
            "deploy of {} {} (release {number}) failed and was rolled back: {cause}\n{}.\n{what_to_do}",
            site.environment,
            settings.version,
            previous.unwrap_or_else(|| {
                "nothing was serving before, and nothing is left running".into()
            })
        ),
    })
}
