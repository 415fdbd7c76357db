//! `shipit deploy ENV`, `shipit rollback ENV` and `shipit lock release ENV`:
//! releases on a Docker host, through the engine API.

use std::time::Duration;

use serde::Serialize;

use super::Context;
use crate::cancel::Cancel;
use crate::config::model::Strategy;
use crate::config::{self, rules};
use crate::deploy::run::{self, Options};
use crate::deploy::{Settings, fleet, gateway, lock, status};
use crate::engine::Engine;
use crate::error::Error;

#[derive(Debug, Clone, Default)]
pub struct Args {
    pub environment: String,
    pub image: Option<String>,
    pub strategy: Option<Strategy>,
    pub lock_wait: Option<String>,
    pub dry_run: bool,
    /// For rollback: the version to return to.
    pub to: Option<String>,
}

pub fn runtime(ctx: &Context) -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io(&ctx.project, e))
}

pub fn settings(ctx: &Context, environment: &str) -> Result<Settings, Error> {
    let loaded =
        config::load(&ctx.project, Some(environment), &ctx.overrides).map_err(Error::Config)?;
    Settings::new(&loaded)
}

fn options(args: &Args) -> Result<Options, Error> {
    let lock_wait = match &args.lock_wait {
        Some(text) => rules::parse_duration(text).ok_or_else(|| {
            Error::Usage(format!(
                "--lock-wait {text}: expected a duration such as 30s, 5m, 1h"
            ))
        })?,
        None => Duration::ZERO,
    };
    Ok(Options {
        image: args.image.clone(),
        strategy: args.strategy,
        lock_wait,
        to_version: args.to.clone(),
    })
}

#[derive(Serialize)]
struct DeployPlan<'a> {
    environment: &'a str,
    version: &'a str,
    image: String,
    image_present: bool,
    strategy: &'static str,
    replicas: usize,
    gateway_image: &'a str,
    gateway_url: String,
    /// The gateway's certificate as it would be installed (TLS environments).
    certificate: Option<CertificatePlan>,
    serving_release: Option<u64>,
    serving_version: Option<String>,
    no_op: bool,
    lock: Option<lock::LockInfo>,
    problems: Vec<String>,
}

#[derive(Serialize)]
struct CertificatePlan {
    subject: String,
    names: Vec<String>,
    days_left: i64,
    warnings: Vec<String>,
}

pub fn deploy(ctx: &Context, args: &Args) -> Result<(), Error> {
    if let Some((loaded, target)) = super::kube::target(ctx, &args.environment)? {
        return super::kube::deploy(ctx, args, &loaded, &target);
    }
    let settings = settings(ctx, &args.environment)?;
    let options = options(args)?;
    runtime(ctx)?.block_on(async {
        if !settings.hosts.is_empty() {
            if args.dry_run {
                return super::hosts::plan(ctx, &settings, &options).await;
            }
            let cancel = Cancel::install();
            let outcome = fleet::deploy(&settings, &options, &ctx.out, &cancel).await;
            return report(ctx, outcome);
        }
        let engine = Engine::connect().await?;
        if args.dry_run {
            return plan(ctx, &engine, &settings, &options).await;
        }
        let cancel = Cancel::install();
        let outcome = run::deploy(&engine, &settings, &options, &ctx.out, &cancel).await;
        report(ctx, outcome)
    })
}

async fn plan(
    ctx: &Context,
    engine: &Engine,
    settings: &Settings,
    options: &Options,
) -> Result<(), Error> {
    let image = options.image_ref(settings);
    let image_id = engine.image_id(&image).await;
    // The same checks the deploy makes before it changes anything.
    let certificate = settings
        .load_tls()?
        .map(|(material, warnings)| CertificatePlan {
            days_left: material.days_left(crate::clock::now()),
            subject: material.subject.clone(),
            names: material.names.clone(),
            warnings,
        });
    let now = status::status(engine, settings, 0).await?;
    let strategy = match options.strategy.unwrap_or(settings.strategy) {
        Strategy::BlueGreen => "blue-green",
        Strategy::Rolling => "rolling",
        Strategy::Canary => "canary",
    };
    let serving_image = now.replicas.first().map(|r| r.name.clone());
    let mut no_op = false;
    if let (Some(version), Some(name), Some(id)) = (&now.version, &serving_image, &image_id)
        && version == &settings.version
        && engine
            .container(name)
            .await?
            .is_some_and(|c| &c.image == id)
    {
        no_op = true;
    }
    let report = DeployPlan {
        environment: &settings.site.environment,
        version: &settings.version,
        image_present: image_id.is_some(),
        image,
        strategy,
        replicas: settings.replicas,
        gateway_image: &settings.gateway_image,
        gateway_url: gateway::url(engine, settings),
        certificate,
        serving_release: now.release,
        serving_version: now.version.clone(),
        no_op,
        lock: now.lock.clone(),
        problems: now.problems.clone(),
    };
    if ctx.out.is_json() {
        ctx.out.json(&report);
    } else {
        let out = &ctx.out;
        out.status(
            "plan",
            &format!(
                "deploy {} {} ({}), {strategy}, {} replica(s), gateway {}",
                report.environment,
                report.version,
                report.image,
                report.replicas,
                report.gateway_url
            ),
        );
        if let Some(c) = &report.certificate {
            out.status(
                "tls",
                &format!(
                    "certificate {} for {}: valid, {} day(s) left",
                    c.subject,
                    c.names.join(", "),
                    c.days_left
                ),
            );
            for w in &c.warnings {
                out.warn(w);
            }
        }
        match (&report.serving_release, &report.serving_version) {
            (Some(r), Some(v)) => out.status("serving", &format!("release {r} ({v})")),
            _ => out.status("serving", "nothing yet: this is the first release"),
        }
        if !report.image_present {
            out.warn(&format!(
                "{} is not on the engine: it would be pulled (or build it first)",
                report.image
            ));
        }
        if no_op {
            out.status(
                "unchanged",
                "this version and image already serve: the deploy would do nothing",
            );
        }
        if let Some(l) = &report.lock {
            out.warn(&format!("locked: {}", l.describe()));
        }
        for p in &report.problems {
            out.warn(&format!("{p} (the deploy repairs it)"));
        }
        out.status("dry run", "nothing was changed");
    }
    Ok(())
}

fn report(ctx: &Context, outcome: Result<run::Outcome, Error>) -> Result<(), Error> {
    match outcome {
        Ok(outcome) => {
            if ctx.out.is_json() {
                ctx.out.json(&outcome);
            } else {
                let phases = outcome
                    .entry
                    .phases
                    .iter()
                    .map(|p| format!("{} {} ms", p.name, p.ms))
                    .collect::<Vec<_>>()
                    .join(", ");
                ctx.out.status(
                    "timeline",
                    &format!("{} ms in all: {phases}", outcome.entry.duration_ms),
                );
                for h in &outcome.hosts {
                    ctx.out.status(
                        "host",
                        &format!(
                            "{}: {} release {} ({}) at {}",
                            h.host,
                            h.result,
                            h.serving_release
                                .map(|r| r.to_string())
                                .unwrap_or("-".into()),
                            h.serving_version.clone().unwrap_or_default(),
                            h.gateway_url
                        ),
                    );
                }
            }
            Ok(())
        }
        Err(e) => {
            if ctx.out.is_json() {
                ctx.out.json(&serde_json::json!({
                    "result": "failed",
                    "error": e.to_string(),
                    "exit_code": e.exit_code(),
                }));
            }
            Err(match e {
                Error::Reported { code, message } => Error::Reported { code, message },
                other => Error::Reported {
                    code: other.exit_code(),
                    message: other.to_string(),
                },
            })
        }
    }
}

pub fn rollback(ctx: &Context, args: &Args) -> Result<(), Error> {
    if let Some((_, target)) = super::kube::target(ctx, &args.environment)? {
        return super::kube::rollback(ctx, args, &target);
    }
    let settings = settings(ctx, &args.environment)?;
    let options = options(args)?;
    runtime(ctx)?.block_on(async {
        if !settings.hosts.is_empty() {
            let cancel = Cancel::install();
            let outcome = fleet::rollback(&settings, &options, &ctx.out, &cancel).await;
            return report(ctx, outcome);
        }
        let engine = Engine::connect().await?;
        let cancel = Cancel::install();
        let outcome =
            crate::deploy::rollback::rollback(&engine, &settings, &options, &ctx.out, &cancel)
                .await;
        report(ctx, outcome)
    })
}

pub fn lock_release(ctx: &Context, environment: &str, host: Option<&str>) -> Result<(), Error> {
    if let Some((_, target)) = super::kube::target(ctx, environment)? {
        no_hosts(host)?;
        return super::kube::lock(ctx, &target, true);
    }
    let settings = settings(ctx, environment)?;
    runtime(ctx)?.block_on(async {
        if !settings.hosts.is_empty() {
            return super::hosts::locks(ctx, &settings, host, true).await;
        }
        no_hosts(host)?;
        let engine = Engine::connect().await?;
        let held = lock::release_recorded(&engine, &settings.site).await?;
        if ctx.out.is_json() {
            ctx.out
                .json(&serde_json::json!({ "environment": environment, "released": held }));
        }
        match held {
            Some(info) => {
                ctx.out.status(
                    "released",
                    &format!("the lock on {environment}, {}", info.describe()),
                );
            }
            None => ctx
                .out
                .status("unlocked", &format!("{environment} was not locked")),
        }
        Ok(())
    })
}

pub fn lock_show(ctx: &Context, environment: &str, host: Option<&str>) -> Result<(), Error> {
    if let Some((_, target)) = super::kube::target(ctx, environment)? {
        no_hosts(host)?;
        return super::kube::lock(ctx, &target, false);
    }
    let settings = settings(ctx, environment)?;
    runtime(ctx)?.block_on(async {
        if !settings.hosts.is_empty() {
            return super::hosts::locks(ctx, &settings, host, false).await;
        }
        no_hosts(host)?;
        let engine = Engine::connect().await?;
        let held = lock::inspect(&engine, &settings.site).await?;
        if ctx.out.is_json() {
            ctx.out
                .json(&serde_json::json!({ "environment": environment, "lock": held }));
        } else {
            match held {
                Some(info) => ctx.out.status("locked", &info.describe()),
                None => ctx
                    .out
                    .status("unlocked", &format!("{environment} is not locked")),
            }
        }
        Ok(())
    })
}

/// `--host` names one of deploy.hosts; without them it has nothing to choose.
pub fn no_hosts(host: Option<&str>) -> Result<(), Error> {
    match host {
        Some(h) => Err(Error::Usage(format!(
            "--host {h}: this environment sets no deploy.hosts (it deploys to the engine of DOCKER_HOST)"
        ))),
        None => Ok(()),
    }
}
