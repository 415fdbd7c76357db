//! `shipit render TARGET... [--check] [--dry-run]`: every generated file of
//! an environment (or `ci`: the CI workflows), planned in memory first.

use serde::Serialize;

use super::Context;
use crate::config::{self, Loaded};
use crate::error::Error;
use crate::render::write::{self, FileChange, Status};
use crate::render::{self, Artifact, CI_TARGET, GENERATED_DIR};

#[derive(Debug, Clone, Default)]
pub struct Args {
    /// Environment names, or `ci` for the workflows.
    pub targets: Vec<String>,
    /// Every environment and `ci`.
    pub all: bool,
    /// Render in memory, print a diff of stale files, exit 1 when any is stale.
    pub check: bool,
    /// Print the plan, write nothing.
    pub dry_run: bool,
}

/// One target's rendered files and what writing them would change.
struct TargetPlan {
    target: String,
    root: String,
    /// Whether shipit owns the whole directory (generated/ENV) or only its files (ci).
    owned: bool,
    artifacts: Vec<Artifact>,
    changes: Vec<FileChange>,
}

#[derive(Serialize)]
struct Report<'a> {
    mode: &'a str,
    stale: bool,
    targets: Vec<TargetReport<'a>>,
}

#[derive(Serialize)]
struct TargetReport<'a> {
    target: &'a str,
    directory: &'a str,
    files: &'a [FileChange],
}

pub fn run(ctx: &Context, args: &Args) -> Result<(), Error> {
    let environments = config::environment_names(&ctx.project);
    let mut targets = targets(args, &environments)?;
    // `ci` last: it reads the deploy environments, planned (and reported) first.
    targets.sort_by_key(|t| t == CI_TARGET);
    if !ctx.overrides.set.is_empty() || !ctx.overrides.env.is_empty() {
        let mut names: Vec<String> = ctx
            .overrides
            .env
            .iter()
            .map(|(name, _)| name.clone())
            .collect();
        names.extend(
            ctx.overrides
                .set
                .iter()
                .map(|s| format!("--set {}", s.split_once('=').map_or(s.as_str(), |(k, _)| k))),
        );
        ctx.out.warn(&format!(
            "rendering with overrides ({}): the files will differ from a plain `shipit render`",
            names.join(", ")
        ));
    }

    // Plan every target before touching the disk: one bad environment writes nothing.
    let mut plans = Vec::new();
    let mut failed = Vec::new();
    for target in &targets {
        // The workflows read the deploy environments: an environment that
        // already failed is not reported a second time under `ci`.
        if target == CI_TARGET && !failed.is_empty() {
            continue;
        }
        match plan_target(ctx, target, &environments) {
            Ok(plan) => plans.push(plan),
            Err(Error::Config(errors)) => {
                ctx.out.error(&errors.render());
                failed.push(target.clone());
            }
            Err(other) => return Err(other),
        }
    }
    if !failed.is_empty() {
        return Err(Error::Reported {
            code: 2,
            message: format!(
                "configuration problems in: {}; nothing was written",
                failed.join(", ")
            ),
        });
    }

    let stale: usize = plans
        .iter()
        .map(|p| {
            p.changes
                .iter()
                .filter(|c| c.status != Status::Unchanged)
                .count()
        })
        .sum();
    let mode = if args.check {
        "check"
    } else if args.dry_run {
        "dry-run"
    } else {
        "write"
    };

    if args.check || args.dry_run {
        for plan in &plans {
            report_plan(ctx, plan, args.check);
        }
    } else {
        for plan in &plans {
            write::apply(
                &ctx.project,
                &plan.root,
                &plan.artifacts,
                &plan.changes,
                plan.owned,
            )?;
            report_plan(ctx, plan, false);
        }
    }
    if ctx.out.is_json() {
        ctx.out.json(&Report {
            mode,
            stale: stale > 0,
            targets: plans
                .iter()
                .map(|p| TargetReport {
                    target: &p.target,
                    directory: &p.root,
                    files: &p.changes,
                })
                .collect(),
        });
    }
    if args.check && stale > 0 {
        let names: Vec<&str> = plans
            .iter()
            .filter(|p| p.changes.iter().any(|c| c.status != Status::Unchanged))
            .map(|p| p.target.as_str())
            .collect();
        return Err(Error::Stale {
            count: stale,
            targets: names.join(" "),
        });
    }
    Ok(())
}

fn targets(args: &Args, environments: &[String]) -> Result<Vec<String>, Error> {
    if args.all {
        if !args.targets.is_empty() {
            return Err(Error::Usage("name targets or pass --all, not both".into()));
        }
        let mut all = environments.to_vec();
        all.push(CI_TARGET.to_string());
        return Ok(all);
    }
    if args.targets.is_empty() {
        return Err(Error::Usage(format!(
            "name what to render: an environment ({}), `ci`, or --all",
            if environments.is_empty() {
                "none found in environments/".to_string()
            } else {
                environments.join(", ")
            }
        )));
    }
    let mut seen = Vec::new();
    for t in &args.targets {
        if !seen.contains(t) {
            seen.push(t.clone());
        }
    }
    Ok(seen)
}

fn plan_target(ctx: &Context, target: &str, environments: &[String]) -> Result<TargetPlan, Error> {
    let (loaded, root, artifacts, owned) = if target == CI_TARGET {
        let loaded: Loaded =
            config::load(&ctx.project, None, &ctx.overrides).map_err(Error::Config)?;
        let deploys = loaded
            .config
            .ci
            .deploy_environments
            .iter()
            .filter(|e| environments.contains(e))
            .map(|e| config::load(&ctx.project, Some(e), &ctx.overrides).map_err(Error::Config))
            .collect::<Result<Vec<_>, _>>()?;
        let artifacts = render::ci_workflows(&loaded, environments.to_vec(), &deploys)?;
        (loaded, String::new(), artifacts, false)
    } else {
        let loaded =
            config::load(&ctx.project, Some(target), &ctx.overrides).map_err(Error::Config)?;
        let artifacts = render::environment(&loaded)?;
        (loaded, format!("{GENERATED_DIR}/{target}"), artifacts, true)
    };
    ctx.out.detail(&format!(
        "{target}: from {}, image {}",
        loaded.files.join(" + "),
        loaded.image_ref()
    ));
    let changes = write::plan(&ctx.project, &root, &artifacts, owned)?;
    Ok(TargetPlan {
        target: target.to_string(),
        root,
        owned,
        artifacts,
        changes,
    })
}

fn report_plan(ctx: &Context, plan: &TargetPlan, check: bool) {
    let count = |s: Status| plan.changes.iter().filter(|c| c.status == s).count();
    let (created, updated, removed, unchanged) = (
        count(Status::Created),
        count(Status::Updated),
        count(Status::Removed),
        count(Status::Unchanged),
    );
    let directory = if plan.root.is_empty() {
        "the repository (workflows, dependabot, .dockerignore, trivy)".to_string()
    } else {
        plan.root.clone()
    };
    for change in plan
        .changes
        .iter()
        .filter(|c| c.status != Status::Unchanged)
    {
        let verb = match change.status {
            Status::Created => "create",
            Status::Updated => "update",
            Status::Removed => "remove",
            Status::Unchanged => "keep",
        };
        ctx.out.detail(&format!("  {verb} {}", change.path));
        if check && !ctx.out.is_json() {
            ctx.out.data(&change.diff);
        }
    }
    let summary = format!(
        "{}: {created} created, {updated} updated, {removed} removed, {unchanged} unchanged -> {directory}",
        plan.target
    );
    let stale = created + updated + removed > 0;
    let verb = match (check, stale) {
        (true, true) => "stale",
        (true, false) => "current",
        (false, _) if check => "checked",
        _ => "rendered",
    };
    ctx.out.status(verb, &summary);
}
