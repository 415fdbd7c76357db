//! One module per subcommand, each an args struct and a `run`.

pub mod accessory;
pub mod build;
pub mod deploy;
pub mod exec;
pub mod image;
pub mod init;
pub mod lock;
pub mod logs;
pub mod maintenance;
pub mod prune;
pub mod release;
pub mod render;
pub mod rollback;
pub mod smoke;
pub mod status;
pub mod validate;
pub mod verify;

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Overrides, rules};
use crate::error::Error;
use crate::output::Output;

/// What every command gets: where the project is, the overrides, and the output.
#[derive(Debug, Clone)]
pub struct Context {
    pub project: PathBuf,
    pub overrides: Overrides,
    pub out: Output,
}

/// A duration flag (`--lock-wait 30s`): zero when absent, a usage error when
/// it is not a duration.
pub fn duration_flag(flag: &str, text: Option<&str>) -> Result<Duration, Error> {
    match text {
        Some(text) => rules::parse_duration(text).ok_or_else(|| {
            Error::Usage(format!(
                "{flag} {text}: expected a duration such as 30s, 5m, 1h"
            ))
        }),
        None => Ok(Duration::ZERO),
    }
}

/// Reports a command's error (with `--output json`, as a JSON document too,
/// unless the command already printed one) and returns the exit code.
pub fn fail(out: &Output, error: &Error) -> i32 {
    // The command's own output said it all; its code is shipit's.
    if let Error::Exited { code } = error {
        return *code;
    }
    if out.is_json() && !matches!(error, Error::Reported { .. } | Error::Stale { .. }) {
        let problems = match error {
            Error::Config(errors) => errors.reports(),
            _ => Vec::new(),
        };
        out.json(&serde_json::json!({
            "error": error.to_string(),
            "exit_code": error.exit_code(),
            "problems": problems,
        }));
    }
    out.error(&error.to_string());
    error.exit_code()
}
