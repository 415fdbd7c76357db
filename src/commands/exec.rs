//! `shipit exec ENV -- CMD...` (in a running replica) and `shipit run ENV
//! -- CMD...` (in a one-off container of the serving release): the
//! command's exit code is shipit's.

use super::Context;
use crate::error::Error;
use crate::target::{self, CommandRequest};

#[derive(Debug, Clone, Default)]
pub struct Args {
    pub environment: String,
    pub request: CommandRequest,
}

fn checked(args: &Args) -> Result<&CommandRequest, Error> {
    if args.request.command.is_empty() {
        return Err(Error::Usage(
            "name the command after `--`, e.g. `shipit exec ENV -- ls /`".into(),
        ));
    }
    Ok(&args.request)
}

/// `shipit exec`.
pub fn exec(ctx: &Context, args: &Args) -> Result<(), Error> {
    let request = checked(args)?;
    let (_, target) = target::load(&ctx.project, &ctx.overrides, &args.environment)?;
    target.exec(&ctx.out, request)
}

/// `shipit run`.
pub fn run(ctx: &Context, args: &Args) -> Result<(), Error> {
    let request = checked(args)?;
    let (_, target) = target::load(&ctx.project, &ctx.overrides, &args.environment)?;
    target.run(&ctx.out, request)
}
