//! `shipit release LEVEL`: show the plan (the default), or carry it out with
//! `--execute`, leaving the repository untouched on any failure.

use serde::Serialize;

use super::Context;
use crate::error::Error;
use crate::release::{self, Options, Plan};

#[derive(Debug, Clone)]
pub struct Args {
    pub options: Options,
    pub execute: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    executed: bool,
    plan: &'a Plan,
    result: Option<release::Outcome>,
    error: Option<String>,
}

pub fn run(ctx: &Context, args: &Args) -> Result<(), Error> {
    let plan = release::plan(&ctx.project, &args.options).map_err(Error::Usage)?;
    if !ctx.out.is_json() {
        show(ctx, &plan);
    }
    if !plan.ok() {
        let list = plan
            .problems
            .iter()
            .map(|p| format!("  - [{}] {}", p.check, p.message))
            .collect::<Vec<_>>()
            .join("\n");
        let message = format!(
            "the release cannot be made ({} problem(s)); nothing was changed:\n{list}",
            plan.problems.len()
        );
        return Err(refused(ctx, &plan, message));
    }
    if !args.execute {
        if ctx.out.is_json() {
            ctx.out.json(&Report {
                executed: false,
                plan: &plan,
                result: None,
                error: None,
            });
        } else {
            ctx.out.status(
                "dry run",
                "nothing was changed; run again with --execute to release",
            );
        }
        return Ok(());
    }
    match release::execute(&plan, &ctx.project) {
        Ok(outcome) => {
            if ctx.out.is_json() {
                ctx.out.json(&Report {
                    executed: true,
                    plan: &plan,
                    result: Some(outcome),
                    error: None,
                });
            } else {
                ctx.out.status(
                    "released",
                    &format!(
                        "{} (commit {}){}",
                        outcome.tag,
                        &outcome.commit[..7],
                        if outcome.pushed { ", pushed" } else { "" }
                    ),
                );
            }
            Ok(())
        }
        Err(failure) => {
            let restored = if failure.restore_errors.is_empty() {
                "every file, the branch, the index and the tags were put back as they were"
                    .to_string()
            } else {
                format!(
                    "restoring failed too, check the repository by hand:\n  {}",
                    failure.restore_errors.join("\n  ")
                )
            };
            let message = format!(
                "the release failed at `{}`: {}\n{restored}",
                failure.step, failure.message
            );
            Err(refused(ctx, &plan, message))
        }
    }
}

/// The error for a release that did not happen (and, with --output json, its report).
fn refused(ctx: &Context, plan: &Plan, message: String) -> Error {
    if ctx.out.is_json() {
        ctx.out.json(&Report {
            executed: false,
            plan,
            result: None,
            error: Some(message.clone()),
        });
    }
    Error::Reported { code: 1, message }
}

fn show(ctx: &Context, plan: &Plan) {
    let out = &ctx.out;
    match (&plan.next, &plan.level) {
        (Some(next), Some(level)) => out.status(
            "release",
            &format!(
                "{} -> {next} ({level}; current from {})",
                plan.current, plan.current_from
            ),
        ),
        _ => out.status(
            "release",
            &format!("{} (current from {})", plan.current, plan.current_from),
        ),
    }
    if !plan.decided_by.is_empty() {
        for change in &plan.decided_by {
            let kind = if change.breaking {
                "breaking"
            } else {
                change.kind.as_str()
            };
            out.status(
                "decided by",
                &format!("{} {kind}: {}", &change.sha[..7], change.description),
            );
        }
    }
    out.status(
        "commits",
        &format!(
            "{} since {}",
            plan.commits_since,
            plan.previous_tag.as_deref().unwrap_or("the first commit")
        ),
    );
    if plan.next.is_none() {
        return;
    }
    out.status("files", &plan.files.join(", "));
    out.status("commit", &plan.commit_message);
    out.status("tag", &format!("{} (annotated)", plan.tag));
    if let (Some(push), Some(branch)) = (&plan.push, &plan.branch) {
        out.status(
            "push",
            &format!(
                "{} {branch}:{} and {} (atomic)",
                push.remote, push.branch, plan.tag
            ),
        );
    }
    out.status("changelog", "entry:");
    for line in plan.changelog_entry.lines() {
        out.status("", &format!("  {line}"));
    }
}
