//! `deploy.release_command`: run exactly once per deploy, under the deploy
//! lock, on the first host, from the new release's image with the service's
//! environment and secrets on the environment's network (where its
//! accessories answer), after the image is on every host and before any
//! new replica starts. Its output is shown as it comes; its container is
//! removed whatever happens. A failure stops the deploy with nothing else
//! changed (what the command itself changed, in a database, stays).

use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::{RELEASE, Settings, VERSION, replicas};
use crate::cancel::Cancel;
use crate::engine::Engine;
use crate::output::Output;

/// Runs the release command of release `number`; why it failed, if it did.
pub async fn run(
    engine: &Engine,
    host: &str,
    settings: &Settings,
    (image, number): (&str, u64),
    secrets: &[(String, String)],
    out: &Output,
    cancel: &Cancel,
) -> Result<Duration, String> {
    let command = &settings.release_command;
    let site = &settings.site;
    let name = format!("{}-{}-release-{number}", site.app, site.environment);
    let mut labels = site.labels("release-command");
    labels.extend([
        (RELEASE.to_string(), number.to_string()),
        (VERSION.to_string(), settings.version.clone()),
    ]);
    let spec = replicas::one_off(settings, &name, image, command, secrets, labels);
    out.status(
        "release",
        &format!("running {} on {host} (release {number})", command.join(" ")),
    );
    // One left by an interrupted run of the same release number.
    let _ = engine.remove_container(&name).await;
    let what = |e: crate::error::Error| format!("the release command could not start: {e}");
    engine.create_container(&spec).await.map_err(what)?;
    let start = Instant::now();
    let result = attached(engine, settings, &name, secrets, out, cancel).await;
    if let Err(e) = engine.remove_container(&name).await {
        out.warn(&format!(
            "{name} could not be removed ({e}): `shipit prune {}` removes it",
            site.environment
        ));
    }
    result.map(|()| start.elapsed())
}

async fn attached(
    engine: &Engine,
    settings: &Settings,
    name: &str,
    secrets: &[(String, String)],
    out: &Output,
    cancel: &Cancel,
) -> Result<(), String> {
    let what = |e: crate::error::Error| format!("the release command could not start: {e}");
    replicas::give_secrets(engine, settings, name, secrets)
        .await
        .map_err(what)?;
    let mut session = engine.attach(name, false).await.map_err(what)?;
    engine.start(name).await.map_err(what)?;
    let limit = settings.release_timeout;
    let shown = async {
        let mut partial = String::new();
        while let Some(Ok(chunk)) = session.output.next().await {
            partial.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            while let Some(at) = partial.find('\n') {
                let line: String = partial.drain(..=at).collect();
                out.status("|", line.trim_end());
            }
        }
        if !partial.trim().is_empty() {
            out.status("|", partial.trim_end());
        }
    };
    let interrupted = async {
        while !cancel.is_set() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        _ = tokio::time::timeout(limit, shown) => {}
        _ = interrupted => {
            let _ = engine.stop(name, Duration::from_secs(5)).await;
            return Err(format!("the release command was interrupted ({})", cancel.cause()));
        }
    }
    match engine.container(name).await {
        Ok(Some(info)) if info.running => {
            let _ = engine.stop(name, Duration::from_secs(5)).await;
            return Err(format!(
                "the release command did not finish within {} s (deploy.release_timeout) and was stopped",
                limit.as_secs()
            ));
        }
        _ => {}
    }
    match engine.wait_exit(name).await {
        Ok(0) => Ok(()),
        Ok(code) => Err(format!("the release command exited with code {code}")),
        Err(e) => Err(format!("the release command's end is unknown: {e}")),
    }
}
