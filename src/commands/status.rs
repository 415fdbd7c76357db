//! `shipit status ENV`: the serving release, its replicas, the gateway, the
//! kept releases, the lock and the last deploys (read-only).

use super::Context;
use super::deploy::{runtime, settings};
use crate::deploy::status;
use crate::engine::Engine;
use crate::error::Error;

pub fn run(ctx: &Context, environment: &str, last: usize, host: Option<&str>) -> Result<(), Error> {
    if let Some((_, target)) = super::kube::target(ctx, environment)? {
        super::deploy::no_hosts(host)?;
        return super::kube::status(ctx, &target, last);
    }
    let settings = settings(ctx, environment)?;
    if !settings.hosts.is_empty() {
        let report = runtime(ctx)?.block_on(super::hosts::fleet_status(&settings, last, host))?;
        if ctx.out.is_json() {
            ctx.out.json(&report);
        } else {
            super::hosts::print_status(ctx, &report);
        }
        return Ok(());
    }
    super::deploy::no_hosts(host)?;
    let report = runtime(ctx)?.block_on(async {
        let engine = Engine::connect().await?;
        status::status(&engine, &settings, last).await
    })?;
    if ctx.out.is_json() {
        ctx.out.json(&report);
        return Ok(());
    }
    let out = &ctx.out;
    match (&report.release, &report.version) {
        (Some(r), Some(v)) => out.status(
            "serving",
            &format!("{environment}: release {r}, version {v}"),
        ),
        _ => out.status(
            "serving",
            &format!("{environment}: nothing is deployed on this engine"),
        ),
    }
    if let Some(g) = &report.gateway {
        out.status(
            "gateway",
            &format!(
                "{} {} at {} -> {}",
                g.container,
                g.state,
                g.url,
                g.upstreams.join(", ")
            ),
        );
    }
    if let Some(days) = report
        .gateway
        .as_ref()
        .and_then(|g| g.certificate_days_left)
    {
        let text = format!("{days} day(s) left on the gateway's certificate");
        if days < 30 {
            out.warn(&format!("{text}: renew it, then deploy to rotate it live"));
        } else {
            out.status("tls", &text);
        }
    }
    for r in &report.replicas {
        let uptime = r
            .uptime_seconds
            .map(|s| format!(", up {s} s"))
            .unwrap_or_default();
        out.status(
            "replica",
            &format!("{} {} {}{uptime}", r.name, r.state, r.health),
        );
    }
    for (r, v) in &report.kept {
        out.status(
            "kept",
            &format!("release {r} ({v}), stopped: `shipit rollback {environment} --to {v}`"),
        );
    }
    match &report.lock {
        Some(l) => out.warn(&format!("locked: {}", l.describe())),
        None => out.status("lock", "free"),
    }
    for p in &report.problems {
        out.warn(&format!("{p} (the next deploy or rollback repairs it)"));
    }
    for e in &report.history {
        let phases = e
            .phases
            .iter()
            .map(|p| format!("{} {}ms", p.name, p.ms))
            .collect::<Vec<_>>()
            .join(" ");
        out.status(
            "history",
            &format!(
                "{} {} {} {} release {} by {} in {} ms{}{}",
                e.started,
                e.action,
                e.version.as_deref().unwrap_or("-"),
                e.result,
                e.release
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "-".into()),
                e.who,
                e.duration_ms,
                if phases.is_empty() {
                    String::new()
                } else {
                    format!(" ({phases})")
                },
                e.reason
                    .as_ref()
                    .map(|r| format!(": {}", r.lines().next().unwrap_or("")))
                    .unwrap_or_default()
            ),
        );
    }
    Ok(())
}
