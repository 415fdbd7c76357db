//! `shipit rollback ENV [--to VERSION]`: back to a kept release, through the
//! environment's target.

use super::{Context, duration_flag};
use crate::error::Error;
use crate::target::{self, RollbackRequest};

#[derive(Debug, Clone, Default)]
pub struct Args {
    pub environment: String,
    pub to: Option<String>,
    pub lock_wait: Option<String>,
}

pub fn run(ctx: &Context, args: &Args) -> Result<(), Error> {
    let request = RollbackRequest {
        to: args.to.clone(),
        lock_wait: duration_flag("--lock-wait", args.lock_wait.as_deref())?,
    };
    let (_, target) = target::load(&ctx.project, &ctx.overrides, &args.environment)?;
    target.rollback(&ctx.out, &request)
}
