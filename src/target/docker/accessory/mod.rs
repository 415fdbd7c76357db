//! Accessories on Docker hosts: a container of their own per host
//! (`APP-ENV-NAME`), on the environment's network under its own name, with
//! named volumes that outlive it. Booted once, never restarted by a deploy;
//! a reboot brings the old container back when the new one is not healthy.

mod container;
mod dump;
mod show;

use std::collections::BTreeMap;

use crate::config::model::Accessory;
use crate::deploy::Settings;
use crate::deploy::host::{self, Host};
use crate::engine::Endpoint;
use crate::error::Error;
use crate::output::Output;
use crate::target::accessory::{AccessoryAction, AccessoryRequest};

pub(super) use container::unready;

pub(in crate::target::docker) async fn accessory(
    out: &Output,
    settings: &Settings,
    request: &AccessoryRequest,
) -> Result<(), Error> {
    let chosen = chosen(settings, request.name.as_deref())?;
    match &request.action {
        AccessoryAction::Status => show::status(out, settings, &chosen).await,
        AccessoryAction::Backup { output } => {
            let (name, a) = one(&chosen)?;
            let h = first_host(settings, a).await?;
            dump::backup(out, settings, &h, name, a, output.as_deref()).await
        }
        AccessoryAction::Restore { input } => {
            let (name, a) = one(&chosen)?;
            let h = first_host(settings, a).await?;
            dump::restore(out, settings, &h, name, a, input).await
        }
        action => {
            let mut failed = Vec::new();
            for (name, a) in &chosen {
                for host in hosts_of(settings, a)? {
                    let h = host::connect_one(settings, host.as_deref()).await?;
                    let result = match action {
                        AccessoryAction::Boot => {
                            container::boot(out, settings, &h, name, a, &request.project).await
                        }
                        AccessoryAction::Reboot => {
                            container::reboot(out, settings, &h, name, a, &request.project).await
                        }
                        AccessoryAction::Remove { volumes } => {
                            container::remove(out, settings, &h, name, a, *volumes).await
                        }
                        _ => unreachable!("handled above"),
                    };
                    if let Err(e) = result {
                        out.error(&format!("{name} on {}: {e}", h.name));
                        failed.push(format!("{name} on {}", h.name));
                    }
                }
            }
            if failed.is_empty() {
                Ok(())
            } else {
                Err(Error::Reported {
                    code: 1,
                    message: format!("failed: {}", failed.join(", ")),
                })
            }
        }
    }
}

/// The accessories a request is about: the one it names, or all.
fn chosen<'s>(
    settings: &'s Settings,
    name: Option<&str>,
) -> Result<BTreeMap<&'s str, &'s Accessory>, Error> {
    let all = &settings.accessories;
    if all.is_empty() {
        return Err(Error::Usage(format!(
            "{} declares no accessories: add an [accessories.NAME] table (`shipit init` writes a commented example)",
            settings.site.environment
        )));
    }
    match name {
        None => Ok(all.iter().map(|(n, a)| (n.as_str(), a)).collect()),
        Some(name) => match all.get_key_value(name) {
            Some((n, a)) => Ok(BTreeMap::from([(n.as_str(), a)])),
            None => Err(Error::Usage(format!(
                "{name} is not an accessory of {} (declared: {})",
                settings.site.environment,
                all.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
        },
    }
}

fn one<'a>(chosen: &BTreeMap<&'a str, &'a Accessory>) -> Result<(&'a str, &'a Accessory), Error> {
    match chosen.len() {
        1 => Ok(chosen
            .iter()
            .next()
            .map(|(n, a)| (*n, *a))
            .unwrap_or_else(|| unreachable!())),
        _ => Err(Error::Usage("name the accessory".into())),
    }
}

/// The hosts an accessory runs on, as `host::connect_one` names them (the
/// engine's address); `[None]` for the one engine without deploy.hosts.
pub(crate) fn hosts_of(settings: &Settings, a: &Accessory) -> Result<Vec<Option<String>>, Error> {
    if settings.hosts.is_empty() {
        return Ok(vec![None]);
    }
    let named: Vec<&crate::config::model::Host> = if a.hosts.is_empty() {
        settings.hosts.iter().take(1).collect()
    } else {
        a.hosts
            .iter()
            .filter_map(|n| {
                settings
                    .hosts
                    .iter()
                    .find(|h| h.engine == *n || (!h.address.is_empty() && h.address == *n))
            })
            .collect()
    };
    named
        .into_iter()
        .map(|h| {
            Endpoint::parse(&h.engine)
                .map(|e| Some(e.to_string()))
                .map_err(Error::Usage)
        })
        .collect()
}

/// The first host an accessory runs on, connected (backups and restores
/// are of one instance).
async fn first_host(settings: &Settings, a: &Accessory) -> Result<Host, Error> {
    let first = hosts_of(settings, a)?.into_iter().next().flatten();
    host::connect_one(settings, first.as_deref()).await
}
