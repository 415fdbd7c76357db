//! `shipit maintenance ENV on [--message TEXT] [--retry-after SECONDS]` and
//! `shipit maintenance ENV off`: the gateway answers every request but
//! health with 503 and a page, switched live on every host, or back.

use super::Context;
use crate::deploy::gateway::maintenance::DEFAULT_MESSAGE;
use crate::error::Error;
use crate::target::{self, MaintenanceRequest};

/// The longest page text: the page must fit in one of HAProxy's buffers.
const MAX_MESSAGE: usize = 2000;

#[derive(Debug, Clone, Default)]
pub struct Args {
    pub environment: String,
    pub on: bool,
    pub message: Option<String>,
    pub retry_after: Option<u64>,
}

pub fn request(args: &Args) -> Result<MaintenanceRequest, Error> {
    if !args.on && (args.message.is_some() || args.retry_after.is_some()) {
        return Err(Error::Usage(
            "--message and --retry-after go with `on`; `off` takes neither".into(),
        ));
    }
    let message = args
        .message
        .clone()
        .unwrap_or_else(|| DEFAULT_MESSAGE.into());
    if message.chars().count() > MAX_MESSAGE || message.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(Error::Usage(format!(
            "--message: at most {MAX_MESSAGE} characters of text (no control characters)"
        )));
    }
    let retry_after = args.retry_after.unwrap_or(60);
    if !(1..=86_400).contains(&retry_after) {
        return Err(Error::Usage(format!(
            "--retry-after {retry_after}: from 1 to 86400 seconds"
        )));
    }
    Ok(MaintenanceRequest {
        on: args.on,
        message,
        retry_after,
    })
}

pub fn run(ctx: &Context, args: &Args) -> Result<(), Error> {
    let request = request(args)?;
    let (_, target) = target::load(&ctx.project, &ctx.overrides, &args.environment)?;
    target.maintenance(&ctx.out, &request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_takes_no_page_and_the_page_is_bounded() {
        let off = Args {
            message: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(request(&off).unwrap_err().exit_code(), 2);
        let long = Args {
            on: true,
            message: Some("x".repeat(MAX_MESSAGE + 1)),
            ..Default::default()
        };
        assert_eq!(request(&long).unwrap_err().exit_code(), 2);
        let zero = Args {
            on: true,
            retry_after: Some(0),
            ..Default::default()
        };
        assert_eq!(request(&zero).unwrap_err().exit_code(), 2);
        let on = request(&Args {
            on: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!((on.message.as_str(), on.retry_after), (DEFAULT_MESSAGE, 60));
    }
}
