//! `shipit image gateway|python|node`: the deploy gateway's image and the
//! bases of the rendered Python and Node.js Dockerfiles, made from this
//! machine's packages where nothing can be pulled. One flow for every kind:
//! plan, dry run or make, report; the kinds differ in their plan and words.

use serde::Serialize;

use std::collections::HashMap;

use super::Context;
use crate::config::{self, model::Deploy};
use crate::engine::Engine;
use crate::error::Error;
use crate::offline::{self, RootImage};
use crate::target::runtime;

/// The gateway of `environment` (its `deploy.gateway_image` and
/// `deploy.gateway_packages`; shipit's defaults without one).
pub fn gateway(
    ctx: &Context,
    environment: Option<&str>,
    tag: Option<&str>,
    force: bool,
    dry_run: bool,
) -> Result<(), Error> {
    let deploy = match environment {
        Some(environment) => {
            config::load(&ctx.project, Some(environment), &ctx.overrides)
                .map_err(Error::Config)?
                .config
                .deploy
        }
        None => Deploy::default(),
    };
    let image = tag.unwrap_or(&deploy.gateway_image);
    let plan = offline::gateway_plan(image, &deploy.gateway_packages)?;
    let root = offline::gateway_image(&plan)?;
    let what = format!("HAProxy {}, {}", plan.haproxy_version, plan.pinned);
    let mut details = plan.files.clone();
    details.extend(plan.packages.iter().map(|p| format!("package {p}")));
    let shown = Shown {
        plan: format!("{what}, FROM scratch, user 101:101:"),
        made: what,
        details: &details,
    };
    // An image under this name that holds other packages is made again.
    let stale = |labels: &HashMap<String, String>| {
        labels.get(offline::LABEL_PACKAGES) != Some(&plan.packages.join(" "))
            || labels.get(offline::LABEL_PINNED) != Some(&plan.pinned)
    };
    make(ctx, &plan, &root, &shown, force, dry_run, &stale)
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
    make(ctx, &plan, &plan.root, &shown, force, dry_run, &|_| false)
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

/// Makes `root` unless the engine has it under its name (and `stale` does
/// not say it holds something else); says which, and the image's id.
fn make(
    ctx: &Context,
    plan: &impl Serialize,
    root: &RootImage,
    shown: &Shown<'_>,
    force: bool,
    dry_run: bool,
    stale: &dyn Fn(&HashMap<String, String>) -> bool,
) -> Result<(), Error> {
    let out = &ctx.out;
    let (made, id) = if dry_run {
        (false, None)
    } else {
        runtime()?.block_on(async {
            let engine = Engine::connect().await?;
            let force = force
                || engine
                    .image_labels(&root.image)
                    .await
                    .is_some_and(|(_, labels)| stale(&labels));
            let made = offline::make(&engine, root, force).await?;
            Ok::<_, Error>((made, engine.image_id(&root.image).await))
        })?
    };
    if out.is_json() {
        out.json(&serde_json::json!({ "made": made, "id": id, "plan": plan }));
        return Ok(());
    }
    if dry_run {
        out.status("plan", &format!("{} from {}", root.image, shown.plan));
        for line in shown.details {
            out.detail(line);
        }
        return Ok(());
    }
    let id = id.unwrap_or_default();
    if made {
        out.status("made", &format!("{} ({}), id {id}", root.image, shown.made));
    } else {
        out.status(
            "present",
            &format!("{} is already on the engine, id {id}", root.image),
        );
    }
    // The name alone on stdout, for scripts:
    // `--set deploy.gateway_image=$(shipit image gateway)`, `--set image.builder=$(shipit image python)`.
    out.data(&format!("{}\n", root.image));
    Ok(())
}
