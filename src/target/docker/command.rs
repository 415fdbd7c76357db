//! `shipit exec` (a command in a running replica) and `shipit run` (a
//! one-off container of the serving release's image, with the service's
//! environment and secrets on the environment's network, removed afterwards
//! whatever happens) on one Docker host. The command's exit code is shipit's.

use super::replicas::{number, serving_replicas, who};
use crate::cancel::Cancel;
use crate::deploy::{Settings, VERSION, replicas};
use crate::engine::{Attached, ContainerSpec, Engine};
use crate::error::Error;
use crate::output::Output;
use crate::target::{CommandRequest, exited};
use crate::terminal::{self, Ended};

pub(super) async fn exec(
    out: &Output,
    settings: &Settings,
    request: &CommandRequest,
) -> Result<(), Error> {
    let h = crate::deploy::host::connect_one(settings, request.host.as_deref()).await?;
    let running = serving_replicas(&h.engine, settings).await?;
    let name = choose(&running, request.replica.as_deref(), &who(&h, settings))?;
    out.detail(&format!("exec in {name} on {}", who(&h, settings)));
    let tty = terminal::wanted(request.interactive);
    let cancel = Cancel::install();
    let mut session = h
        .engine
        .exec_attached(&name, &request.command, request.interactive, tty)
        .await?;
    let ended = attached(
        &h.engine,
        &name,
        &mut session,
        request.interactive,
        tty,
        &cancel,
    )
    .await;
    match ended {
        Ended::Finished => {
            let exec = session.exec.as_deref().unwrap_or_default();
            exited(h.engine.exec_exit_code(exec).await?)
        }
        Ended::Signalled(signal) => Err(Error::Exited { code: 128 + signal }),
        Ended::Lost(why) => Err(Error::Deploy {
            message: format!("the connection to {} broke off: {why}", h.name),
        }),
    }
}

/// The replica `--replica` names (its number or its container's name), or
/// the first.
fn choose(
    running: &[crate::engine::ContainerInfo],
    asked: Option<&str>,
    host: &str,
) -> Result<String, Error> {
    let listed = || {
        running
            .iter()
            .map(|c| {
                format!(
                    "{} ({})",
                    number(c).map(|n| n.to_string()).unwrap_or_default(),
                    c.name
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    match asked {
        None => running.first().map(|c| c.name.clone()).ok_or_else(|| {
            Error::Deploy {
                message: format!(
                    "no replica is running on {host}: deploy first (`shipit status` shows what is there)"
                ),
            }
        }),
        Some(asked) => running
            .iter()
            .find(|c| c.name == asked || number(c).is_some_and(|n| n.to_string() == asked))
            .map(|c| c.name.clone())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "--replica {asked}: not a running replica of the serving release on {host} (running: {})",
                    if running.is_empty() { "none".to_string() } else { listed() }
                ))
            }),
    }
}

/// Runs the attached session with this terminal (raw while it lasts when
/// the session has one) until it ends or a signal arrives.
async fn attached(
    engine: &Engine,
    container: &str,
    session: &mut Attached,
    input: bool,
    tty: bool,
    cancel: &Cancel,
) -> Ended {
    let raw = if tty { terminal::Raw::enable() } else { None };
    let ended = terminal::pump(engine, container, session, input, tty, cancel).await;
    drop(raw);
    ended
}

pub(super) async fn run(
    out: &Output,
    settings: &Settings,
    request: &CommandRequest,
) -> Result<(), Error> {
    // From the start: a signal before the container exists stops cleanly too.
    let cancel = Cancel::install();
    let h = crate::deploy::host::connect_one(settings, request.host.as_deref()).await?;
    let host = who(&h, settings);
    let engine = &h.engine;
    let (image, version) = image(engine, settings, request.image.as_deref(), &host).await?;
    let secrets = settings.resolve_secrets()?;
    let site = &settings.site;
    let name = format!(
        "{}-{}-run-{}-{}",
        site.app,
        site.environment,
        std::process::id(),
        crate::clock::now()
    );
    let mut labels = site.labels("run");
    labels.push((VERSION.to_string(), version.clone()));
    let tty = terminal::wanted(request.interactive);
    let spec = ContainerSpec {
        stdin: request.interactive,
        tty,
        ..replicas::one_off(settings, &name, &image, &request.command, &secrets, labels)
    };
    if engine.containers(&site.filter("replica")).await?.is_empty() {
        out.warn(&format!(
            "nothing of {} is deployed on {host}: the environment's network may be missing",
            site.environment
        ));
    }
    out.status("running", &format!("{name} ({version}) on {host}"));
    if engine.create_container(&spec).await?.is_none() {
        return Err(Error::Deploy {
            message: format!("a container named {name} exists on {host}; nothing was run"),
        });
    }
    // From here on the container is removed whatever happens.
    let result = run_created(engine, settings, &name, &secrets, request, tty, &cancel).await;
    let removed = engine.remove_container(&name).await;
    match (&result, removed) {
        (Err(Error::Exited { code }), Ok(())) if *code > 128 => {
            out.warn(&format!("interrupted: {name} was stopped and removed"));
        }
        (_, Err(e)) => out.warn(&format!(
            "{name} could not be removed ({e}): `shipit prune {}` removes it",
            site.environment
        )),
        _ => {}
    }
    result
}

async fn run_created(
    engine: &Engine,
    settings: &Settings,
    name: &str,
    secrets: &[(String, String)],
    request: &CommandRequest,
    tty: bool,
    cancel: &Cancel,
) -> Result<(), Error> {
    replicas::give_secrets(engine, settings, name, secrets).await?;
    let mut session = engine.attach(name, request.interactive).await?;
    if cancel.is_set() {
        return Err(Error::Exited {
            code: 128 + cancel.signal(),
        });
    }
    engine.start(name).await?;
    match attached(engine, name, &mut session, request.interactive, tty, cancel).await {
        Ended::Finished => exited(engine.wait_exit(name).await?),
        Ended::Signalled(signal) => Err(Error::Exited { code: 128 + signal }),
        Ended::Lost(why) => Err(Error::Deploy {
            message: format!("the connection to the engine broke off: {why}"),
        }),
    }
}

/// The image to run and its version: `--image` (a reference or id the host
/// has), else the serving release's.
async fn image(
    engine: &Engine,
    settings: &Settings,
    asked: Option<&str>,
    host: &str,
) -> Result<(String, String), Error> {
    if let Some(reference) = asked {
        return match engine.image_id(reference).await {
            Some(id) => Ok((id, reference.to_string())),
            None => Err(Error::Usage(format!(
                "--image {reference}: {host} has no such image (a kept release's is there: `shipit status` lists them)"
            ))),
        };
    }
    let serving = serving_replicas(engine, settings).await?;
    let first = serving.first().ok_or_else(|| Error::Deploy {
        message: format!(
            "no release serves on {host}: deploy first, or name an image with --image"
        ),
    })?;
    Ok((
        first.image.clone(),
        first.labels.get(VERSION).cloned().unwrap_or_default(),
    ))
}
