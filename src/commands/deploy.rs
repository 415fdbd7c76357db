//! `shipit deploy ENV`: load once, then the environment's target prints the
//! plan (`--dry-run`) or carries it out, and reports.

use super::{Context, duration_flag};
use crate::config::model::Strategy;
use crate::error::Error;
use crate::target::{self, DeployRequest};

#[derive(Debug, Clone, Default)]
pub struct Args {
    pub environment: String,
    pub image: Option<String>,
    pub strategy: Option<Strategy>,
    pub lock_wait: Option<String>,
    pub dry_run: bool,
}

pub fn run(ctx: &Context, args: &Args) -> Result<(), Error> {
    let request = DeployRequest {
        image: args.image.clone(),
        strategy: args.strategy,
        lock_wait: duration_flag("--lock-wait", args.lock_wait.as_deref())?,
        dry_run: args.dry_run,
    };
    let (_, target) = target::load(&ctx.project, &ctx.overrides, &args.environment)?;
    target.deploy(&ctx.out, &request)
}
