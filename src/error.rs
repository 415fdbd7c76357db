//! shipit's one error type, and the exit code each kind of failure gets.

use std::path::Path;

use crate::config::ConfigErrors;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid: every problem, located.
    #[error("{}", .0.render())]
    Config(ConfigErrors),

    /// The command line asks for something that cannot be done.
    #[error("{0}")]
    Usage(String),

    #[error("cannot access {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },

    /// `render --check` found generated files that differ from what shipit renders.
    #[error(
        "{count} generated file(s) are stale: run `shipit render {targets}` and commit the result"
    )]
    Stale { count: usize, targets: String },

    /// A failure whose details were already printed (e.g. several environments' problems).
    #[error("{message}")]
    Reported { code: i32, message: String },

    #[error(
        "template {template} failed to render: {message}\nthis is a shipit bug: please report it with the command you ran"
    )]
    Template { template: String, message: String },

    #[error(
        "shipit rendered an invalid {path}: {message}\nthis is a shipit bug: nothing was written; please report it with your configuration"
    )]
    GeneratedInvalid { path: String, message: String },
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// 2 for bad input (configuration, usage), 70 for shipit bugs, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Usage(_) => 2,
            Error::Template { .. } | Error::GeneratedInvalid { .. } => 70,
            Error::Io { .. } | Error::Stale { .. } => 1,
            Error::Reported { code, .. } => *code,
        }
    }
}
