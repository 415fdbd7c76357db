//! `shipit lock show | release ENV [--host H]`: who holds the deploy lock, and
//! releasing one that a killed run left behind.

use super::Context;
use crate::error::Error;
use crate::target::{self, LockAction};

#[derive(Debug, Clone)]
pub struct Args {
    pub environment: String,
    pub action: LockAction,
    pub host: Option<String>,
}

pub fn run(ctx: &Context, args: &Args) -> Result<(), Error> {
    let (_, target) = target::load(&ctx.project, &ctx.overrides, &args.environment)?;
    target.lock(&ctx.out, args.action, args.host.as_deref())
}
