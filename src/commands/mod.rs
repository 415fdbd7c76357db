//! One module per subcommand, each an args struct and a `run`.

pub mod build;
pub mod deploy;
pub mod hosts;
pub mod image;
pub mod init;
pub mod kube;
pub mod release;
pub mod render;
pub mod smoke;
pub mod status;
pub mod validate;

use std::path::PathBuf;

use crate::config::Overrides;
use crate::output::Output;

/// What every command gets: where the project is, the overrides, and the output.
#[derive(Debug, Clone)]
pub struct Context {
    pub project: PathBuf,
    pub overrides: Overrides,
    pub out: Output,
}
