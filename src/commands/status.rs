//! `shipit status ENV`: the serving release, its replicas, the gateway, the
//! kept releases, the lock and the last deploys (read-only), as the
//! environment's target sees them.

use super::Context;
use crate::error::Error;
use crate::target;

#[derive(Debug, Clone, Default)]
pub struct Args {
    pub environment: String,
    pub last: usize,
    pub host: Option<String>,
}

pub fn run(ctx: &Context, args: &Args) -> Result<(), Error> {
    let (_, target) = target::load(&ctx.project, &ctx.overrides, &args.environment)?;
    target.status(&ctx.out, args.last, args.host.as_deref())
}
