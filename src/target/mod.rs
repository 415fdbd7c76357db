//! Where an environment deploys, chosen once when its configuration is
//! loaded: Docker hosts (`deploy.hosts`, or the one engine of `DOCKER_HOST`)
//! or a Kubernetes cluster. Each target implements the same operations, so a
//! command loads once, asks its target and never branches on which it holds.
//! The coming capabilities (logs, exec, run, accessories, canary) are
//! further operations of this interface, written once per target.

pub mod accessory;
pub mod docker;
pub mod kubernetes;
pub mod logs;

use std::path::Path;
use std::time::Duration;

use crate::config::model::{Strategy, Target as Kind};
use crate::config::{self, Loaded, Overrides};
use crate::error::Error;
use crate::output::Output;

/// What `shipit deploy` asks for.
#[derive(Debug, Clone, Default)]
pub struct DeployRequest {
    /// `--image`: deploy this reference instead of the environment's.
    pub image: Option<String>,
    /// `--strategy`: instead of `deploy.strategy`.
    pub strategy: Option<Strategy>,
    /// `--lock-wait`: how long to wait for another run's lock.
    pub lock_wait: Duration,
    /// `--dry-run`: print the plan, change nothing.
    pub dry_run: bool,
}

/// What `shipit rollback` asks for.
#[derive(Debug, Clone, Default)]
pub struct RollbackRequest {
    /// `--to VERSION`: the kept release (or revision) to return to.
    pub to: Option<String>,
    pub lock_wait: Duration,
}

/// `shipit lock show` or `shipit lock release`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockAction {
    Show,
    /// `force`: even a lock whose holder still runs (a person decides).
    Release {
        force: bool,
    },
}

/// What `shipit exec` and `shipit run` ask for.
#[derive(Debug, Clone, Default)]
pub struct CommandRequest {
    /// The command and its arguments (exec form, never through a shell).
    pub command: Vec<String>,
    /// `--host`: where (default: the first of deploy.hosts).
    pub host: Option<String>,
    /// `exec --replica`: its number in the serving release, or its name.
    pub replica: Option<String>,
    /// `run --image`: another release's image than the serving one.
    pub image: Option<String>,
    /// `-i`: this process's input goes to the command, on a terminal when
    /// this one is.
    pub interactive: bool,
}

/// What `shipit prune` asks for.
#[derive(Debug, Clone, Default)]
pub struct PruneRequest {
    pub host: Option<String>,
    /// Say what would be removed; remove nothing.
    pub dry_run: bool,
}

/// What `shipit maintenance ENV on|off` asks for.
#[derive(Debug, Clone, Default)]
pub struct MaintenanceRequest {
    pub on: bool,
    /// The page's text (escaped where it is shown).
    pub message: String,
    /// Seconds, in `Retry-After`.
    pub retry_after: u64,
}

/// The operations every target implements. Each prints through `out`
/// (human or JSON) and returns the error that sets the exit code.
pub trait Target {
    /// `shipit deploy`: the plan printed (`--dry-run`), or carried out.
    fn deploy(&self, out: &Output, request: &DeployRequest) -> Result<(), Error>;
    /// `shipit rollback`: back to a kept release.
    fn rollback(&self, out: &Output, request: &RollbackRequest) -> Result<(), Error>;
    /// `shipit status`: what serves, its health, the lock, the last runs.
    fn status(&self, out: &Output, last: usize, host: Option<&str>) -> Result<(), Error>;
    /// `shipit lock show | release`.
    fn lock(&self, out: &Output, action: LockAction, host: Option<&str>) -> Result<(), Error>;
    /// `shipit logs`: the serving replicas' lines, merged in time order, or followed.
    fn logs(&self, out: &Output, request: &logs::LogsRequest) -> Result<(), Error>;
    /// `shipit exec`: a command in a running replica; its exit code is shipit's.
    fn exec(&self, out: &Output, request: &CommandRequest) -> Result<(), Error>;
    /// `shipit run`: a one-off container (or pod) of the serving release's
    /// image with the service's environment and secrets, removed afterwards.
    fn run(&self, out: &Output, request: &CommandRequest) -> Result<(), Error>;
    /// `shipit prune`: what releases beyond `deploy.keep_releases` and
    /// finished one-off runs leave behind.
    fn prune(&self, out: &Output, request: &PruneRequest) -> Result<(), Error>;
    /// `shipit maintenance`: every request but health answered 503, or back.
    fn maintenance(&self, out: &Output, request: &MaintenanceRequest) -> Result<(), Error>;
    /// `shipit accessory`: the services beside the application.
    fn accessory(&self, out: &Output, request: &accessory::AccessoryRequest) -> Result<(), Error>;
}

/// A command's exit code as shipit's (0 is success).
pub fn exited(code: i64) -> Result<(), Error> {
    match code {
        0 => Ok(()),
        code => Err(Error::Exited {
            code: i32::try_from(code).unwrap_or(1),
        }),
    }
}

/// Loads the environment once and chooses its target.
pub fn load(
    project: &Path,
    overrides: &Overrides,
    environment: &str,
) -> Result<(Loaded, Box<dyn Target>), Error> {
    let loaded = config::load(project, Some(environment), overrides).map_err(Error::Config)?;
    let target: Box<dyn Target> = match loaded.config.deploy.target {
        Kind::Kubernetes => Box::new(kubernetes::Kubernetes::new(&loaded)?),
        Kind::Docker => Box::new(docker::Docker::new(&loaded)?),
    };
    Ok((loaded, target))
}

/// The runtime the engine's API and the signal handlers run on.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Deploy {
            message: format!("cannot start the async runtime: {e}"),
        })
}

/// `--host` names one of deploy.hosts; a target without them has nothing to choose.
pub fn no_hosts(host: Option<&str>) -> Result<(), Error> {
    match host {
        Some(h) => Err(Error::Usage(format!(
            "--host {h}: this environment sets no deploy.hosts (it deploys to the engine of DOCKER_HOST)"
        ))),
        None => Ok(()),
    }
}

/// Prints what a deploy or rollback did, the same for every target: the
/// outcome as JSON, or its timeline and then the target's own lines
/// (`people`) for people; its exit code becomes the command's.
pub fn report<D: serde::Serialize, P: serde::Serialize>(
    out: &Output,
    outcome: crate::record::Outcome<D, P>,
    people: impl FnOnce(&crate::record::Outcome<D, P>),
) -> Result<(), Error> {
    if out.is_json() {
        out.json(&outcome);
    } else {
        out.status("timeline", &outcome.summary());
        people(&outcome);
    }
    match outcome.exit_code {
        0 => Ok(()),
        code => Err(Error::Reported {
            code,
            message: outcome.cause.unwrap_or_else(|| "the deploy failed".into()),
        }),
    }
}
