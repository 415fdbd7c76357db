//! The Docker target: one or many Docker hosts, each reached through its
//! engine's API (`deploy.hosts`, or the one engine of `DOCKER_HOST`), with
//! releases behind an HAProxy gateway on each.

pub(crate) mod accessory;
mod command;
mod hosts;
mod logs;
mod maintenance;
mod plan;
mod prune;
mod replicas;
mod status;

pub use hosts::smoke_targets;

use super::accessory::AccessoryRequest;
use super::logs::LogsRequest;
use super::{
    CommandRequest, DeployRequest, LockAction, MaintenanceRequest, PruneRequest, RollbackRequest,
    no_hosts, runtime,
};
use crate::cancel::Cancel;
use crate::config::Loaded;
use crate::deploy::plan::{self as deploy_plan, Plan};
use crate::deploy::steps::{Options, Outcome};
use crate::deploy::{Settings, fleet, lock};
use crate::engine::Engine;
use crate::error::Error;
use crate::output::Output;

/// The environment's Docker hosts and what a deploy needs to know of them.
pub struct Docker {
    settings: Settings,
}

impl Docker {
    pub fn new(loaded: &Loaded) -> Result<Docker, Error> {
        Ok(Docker {
            settings: Settings::new(loaded)?,
        })
    }

    /// Several hosts (`deploy.hosts`), rather than the engine of `DOCKER_HOST`.
    fn fleet(&self) -> bool {
        !self.settings.hosts.is_empty()
    }
}

impl super::Target for Docker {
    fn deploy(&self, out: &Output, request: &DeployRequest) -> Result<(), Error> {
        let settings = &self.settings;
        let options = Options {
            image: request.image.clone(),
            strategy: request.strategy,
            lock_wait: request.lock_wait,
            to_version: None,
        };
        runtime()?.block_on(async {
            // One engine (DOCKER_HOST) is a fleet of one host.
            let mut prepared = fleet::prepare(settings, &options).await?;
            // The accessories it uses run and are healthy, or nothing starts.
            let unready = accessory::unready(settings, &prepared.hosts).await;
            prepared.problems.extend(unready);
            let plan = deploy_plan::of_hosts(
                settings,
                &options,
                &prepared.hosts,
                prepared.problems.clone(),
            )
            .await?;
            if request.dry_run {
                return if self.fleet() {
                    plan::fleet(out, settings, &plan)
                } else {
                    plan::single(out, settings, &plan)
                };
            }
            let cancel = Cancel::install();
            let outcome = fleet::deploy(prepared, settings, &options, out, &cancel).await;
            report(out, outcome, Some(plan))
        })
    }

    fn rollback(&self, out: &Output, request: &RollbackRequest) -> Result<(), Error> {
        let settings = &self.settings;
        let options = Options {
            image: None,
            strategy: None,
            lock_wait: request.lock_wait,
            to_version: request.to.clone(),
        };
        runtime()?.block_on(async {
            let cancel = Cancel::install();
            let outcome = fleet::rollback(settings, &options, out, &cancel).await;
            report(out, outcome, None)
        })
    }

    fn status(&self, out: &Output, last: usize, host: Option<&str>) -> Result<(), Error> {
        let settings = &self.settings;
        if self.fleet() {
            let report = runtime()?.block_on(status::fleet(settings, last, host))?;
            if out.is_json() {
                out.json(&report);
            } else {
                status::print_fleet(out, &report);
            }
            return Ok(());
        }
        no_hosts(host)?;
        let report = runtime()?.block_on(async {
            let engine = Engine::connect().await?;
            crate::deploy::status::status(&engine, settings, last).await
        })?;
        if out.is_json() {
            out.json(&report);
        } else {
            status::print(out, &settings.site.environment, &report);
        }
        Ok(())
    }

    fn lock(&self, out: &Output, action: LockAction, host: Option<&str>) -> Result<(), Error> {
        let settings = &self.settings;
        let (release, force) = match action {
            LockAction::Show => (false, false),
            LockAction::Release { force } => (true, force),
        };
        let environment = &settings.site.environment;
        runtime()?.block_on(async {
            if self.fleet() {
                return hosts::locks(out, settings, host, release.then_some(force)).await;
            }
            no_hosts(host)?;
            let engine = Engine::connect().await?;
            if release {
                let held = lock::release_recorded(&engine, &settings.site, force).await?;
                if out.is_json() {
                    out.json(&serde_json::json!({ "environment": environment, "released": held }));
                }
                match held {
                    Some(info) => out.status(
                        "released",
                        &format!("the lock on {environment}, {}", info.describe()),
                    ),
                    None => out.status("unlocked", &format!("{environment} was not locked")),
                }
                return Ok(());
            }
            let held = lock::inspect(&engine, &settings.site).await?;
            if out.is_json() {
                out.json(&serde_json::json!({ "environment": environment, "lock": held }));
            } else {
                match held {
                    Some(info) => out.status("locked", &info.describe()),
                    None => out.status("unlocked", &format!("{environment} is not locked")),
                }
            }
            Ok(())
        })
    }

    fn logs(&self, out: &Output, request: &LogsRequest) -> Result<(), Error> {
        runtime()?.block_on(logs::logs(out, &self.settings, request))
    }

    fn exec(&self, out: &Output, request: &CommandRequest) -> Result<(), Error> {
        runtime()?.block_on(command::exec(out, &self.settings, request))
    }

    fn run(&self, out: &Output, request: &CommandRequest) -> Result<(), Error> {
        runtime()?.block_on(command::run(out, &self.settings, request))
    }

    fn prune(&self, out: &Output, request: &PruneRequest) -> Result<(), Error> {
        runtime()?.block_on(prune::prune(out, &self.settings, request))
    }

    fn maintenance(&self, out: &Output, request: &MaintenanceRequest) -> Result<(), Error> {
        runtime()?.block_on(maintenance::maintenance(out, &self.settings, request))
    }

    fn accessory(&self, out: &Output, request: &AccessoryRequest) -> Result<(), Error> {
        runtime()?.block_on(accessory::accessory(out, &self.settings, request))
    }
}

fn report(out: &Output, outcome: Result<Outcome, Error>, plan: Option<Plan>) -> Result<(), Error> {
    match outcome {
        Ok(outcome) => super::report(out, Outcome { plan, ..outcome }, |outcome| {
            // One host: the lines above said it all.
            let hosts = &outcome.detail.hosts;
            for h in hosts.iter().filter(|_| hosts.len() > 1) {
                out.status(
                    "host",
                    &format!(
                        "{}: {} release {} ({}) at {}",
                        h.host,
                        h.result,
                        h.serving_release
                            .map(|r| r.to_string())
                            .unwrap_or("-".into()),
                        h.serving_version.clone().unwrap_or_default(),
                        h.gateway_url
                    ),
                );
            }
        }),
        Err(e) => {
            if out.is_json() {
                out.json(&serde_json::json!({
                    "result": "failed",
                    "error": e.to_string(),
                    "exit_code": e.exit_code(),
                    "plan": plan,
                }));
            }
            Err(match e {
                Error::Reported { code, message } => Error::Reported { code, message },
                other => Error::Reported {
                    code: other.exit_code(),
                    message: other.to_string(),
                },
            })
        }
    }
}
