//! `shipit prune ENV`: what releases beyond `deploy.keep_releases` and
//! finished one-off runs leave on each host (or in the namespace).

use super::Context;
use crate::error::Error;
use crate::target::{self, PruneRequest};

pub fn run(ctx: &Context, environment: &str, request: &PruneRequest) -> Result<(), Error> {
    let (_, target) = target::load(&ctx.project, &ctx.overrides, environment)?;
    target.prune(&ctx.out, request)
}
