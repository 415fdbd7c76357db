//! `shipit image gateway`: the deploy gateway's image, made from this
//! machine's Debian packages where nothing can be pulled.

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
