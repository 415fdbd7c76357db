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

    #[error("cannot reach the Docker engine at {address}: {message}\n{help}")]
    Engine {
        address: String,
        message: String,
        help: String,
    },

    #[error("the image build failed{}: {message}{}\n{help}", if step.is_empty() { String::new() } else { format!(" at `{step}`") }, if output.is_empty() { String::new() } else { format!("\noutput of that step:\n{output}") })]
    Build {
        step: String,
        output: String,
        message: String,
        help: String,
    },

    #[error("pushing {reference} failed: {message}\n{help}")]
    Push {
        reference: String,
        message: String,
        help: String,
    },

    #[error("the Docker engine at {address} refused to {action}: {message}")]
    Docker {
        action: String,
        message: String,
        address: String,
    },

    /// A deploy, rollback or smoke run that did not succeed; the message says
    /// what happened, what was rolled back, and what to do.
    #[error("{message}")]
    Deploy { message: String },

    /// An image whose signature does not verify, or a key that cannot be used.
    #[error("{message}\n{help}")]
    Signature { message: String, help: String },

    /// The registry could not be asked (unreachable, refused credentials).
    #[error("{message}")]
    Registry { message: String },

    /// A failure whose details were already printed (e.g. several environments' problems).
    #[error("{message}")]
    Reported { code: i32, message: String },

    /// A command run for the user (`exec`, `run`) ended with this code;
    /// what it printed said why.
    #[error("the command exited with code {code}")]
    Exited { code: i32 },

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
            Error::Config(_) | Error::Usage(_) | Error::Signature { .. } => 2,
            Error::Template { .. } | Error::GeneratedInvalid { .. } => 70,
            Error::Io { .. } | Error::Stale { .. } => 1,
            Error::Engine { .. } | Error::Build { .. } | Error::Push { .. } => 1,
            Error::Docker { .. } | Error::Deploy { .. } | Error::Registry { .. } => 1,
            Error::Reported { code, .. } | Error::Exited { code } => *code,
        }
    }
}
