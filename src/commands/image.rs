//! `shipit image gateway|python|node`: the deploy gateway's image and the
//! bases of the rendered Python and Node.js Dockerfiles, made from this
//! machine's packages where nothing can be pulled.

use super::Context;
use super::deploy::runtime;
use crate::engine::Engine;
use crate::error::Error;
use crate::offline;

pub fn gateway(ctx: &Context, tag: Option<&str>, force: bool, dry_run: bool) -> Result<(), Error> {
    let plan = offline::gateway_plan(tag)?;
    let out = &ctx.out;
    if dry_run {
        if out.is_json() {
            out.json(&serde_json::json!({ "made": false, "plan": plan }));
        } else {
            out.status(
                "plan",
                &format!(
                    "{} from HAProxy {}, FROM scratch, user 101:101:",
                    plan.image, plan.haproxy_version
                ),
            );
            for file in &plan.files {
                out.detail(file);
            }
        }
        return Ok(());
    }
    let made = runtime(ctx)?.block_on(async {
        let engine = Engine::connect().await?;
        offline::make_gateway(&engine, &plan, force).await
    })?;
    if out.is_json() {
        out.json(&serde_json::json!({ "made": made, "plan": plan }));
    } else if made {
        out.status(
            "made",
            &format!("{} (HAProxy {})", plan.image, plan.haproxy_version),
        );
    } else {
        out.status(
            "present",
            &format!("{} is already on the engine", plan.image),
        );
    }
    // The name alone on stdout, for scripts: `--set deploy.gateway_image=$(shipit image gateway)`.
    if !out.is_json() {
        out.data(&format!("{}\n", plan.image));
    }
    Ok(())
}

pub fn interpreter(
    ctx: &Context,
    which: offline::Interpreter,
    tag: Option<&str>,
    force: bool,
    dry_run: bool,
) -> Result<(), Error> {
    let plan = offline::interpreter_plan(which, tag)?;
    let out = &ctx.out;
    let size = super::build::human_bytes(plan.bytes);
    if dry_run {
        if out.is_json() {
            out.json(&serde_json::json!({ "made": false, "plan": plan }));
        } else {
            out.status(
                "plan",
                &format!(
                    "{} from this machine's {:?} {} ({} files, {size}), FROM scratch:",
                    plan.image, plan.interpreter, plan.version, plan.files
                ),
            );
            for source in &plan.sources {
                out.detail(source);
            }
        }
        return Ok(());
    }
    let made = runtime(ctx)?.block_on(async {
        let engine = Engine::connect().await?;
        offline::make(&engine, &plan.root, force).await
    })?;
    if out.is_json() {
        out.json(&serde_json::json!({ "made": made, "plan": plan }));
        return Ok(());
    }
    if made {
        out.status(
            "made",
            &format!("{} ({} files, {size})", plan.image, plan.files),
        );
    } else {
        out.status(
            "present",
            &format!("{} is already on the engine", plan.image),
        );
    }
    // For scripts: `--set image.builder=$(shipit image python) --set image.runtime=...`.
    out.data(&format!("{}\n", plan.image));
    Ok(())
}
