//! `shipit image gateway|python|node`: the deploy gateway's image and the
//! bases of the rendered Python and Node.js Dockerfiles, made from this
//! machine's packages where nothing can be pulled. One flow for every kind:
//! plan, dry run or make, report; the kinds differ in their plan and words.

use serde::Serialize;

use super::Context;
use crate::engine::Engine;
use crate::error::Error;
use crate::offline::{self, RootImage};
use crate::target::runtime;

pub fn gateway(ctx: &Context, tag: Option<&str>, force: bool, dry_run: bool) -> Result<(), Error> {
    let plan = offline::gateway_plan(tag)?;
    let root = offline::gateway_image(&plan)?;
    let what = format!("HAProxy {}", plan.haproxy_version);
    let shown = Shown {
        plan: format!("{what}, FROM scratch, user 101:101:"),
        made: what,
        details: &plan.files,
    };
    make(ctx, &plan, &root, &shown, force, dry_run)
}

pub fn interpreter(
    ctx: &Context,
    which: offline::Interpreter,
    tag: Option<&str>,
    force: bool,
    dry_run: bool,
) -> Result<(), Error> {
    let plan = offline::interpreter_plan(which, tag)?;
    let size = super::build::human_bytes(plan.bytes);
    let shown = Shown {
        plan: format!(
            "this machine's {:?} {} ({} files, {size}), FROM scratch:",
            plan.interpreter, plan.version, plan.files
        ),
        made: format!("{} files, {size}", plan.files),
        details: &plan.sources,
    };
    make(ctx, &plan, &plan.root, &shown, force, dry_run)
}

/// How a kind of image is described to people.
struct Shown<'a> {
    /// After "IMAGE from ": what goes in.
    plan: String,
    /// In parentheses after "made IMAGE".
    made: String,
    /// One line each with -v on a dry run.
    details: &'a [String],
}

fn make(
    ctx: &Context,
    plan: &impl Serialize,
    root: &RootImage,
    shown: &Shown<'_>,
    force: bool,
    dry_run: bool,
) -> Result<(), Error> {
    let out = &ctx.out;
    let made = if dry_run {
        false
    } else {
        runtime()?.block_on(async {
            let engine = Engine::connect().await?;
            offline::make(&engine, root, force).await
        })?
    };
    if out.is_json() {
        out.json(&serde_json::json!({ "made": made, "plan": plan }));
        return Ok(());
    }
    if dry_run {
        out.status("plan", &format!("{} from {}", root.image, shown.plan));
        for line in shown.details {
            out.detail(line);
        }
        return Ok(());
    }
    if made {
        out.status("made", &format!("{} ({})", root.image, shown.made));
    } else {
        out.status(
            "present",
            &format!("{} is already on the engine", root.image),
        );
    }
    // The name alone on stdout, for scripts:
    // `--set deploy.gateway_image=$(shipit image gateway)`, `--set image.builder=$(shipit image python)`.
    out.data(&format!("{}\n", root.image));
    Ok(())
}
