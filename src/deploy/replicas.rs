//! A release's replicas: created, started and health-gated through the
//! engine's own health checks (when the image has one; the gateway checks
//! `app.health_path` over HTTP in every case); removed or stopped again when
//! they fail.

use std::time::{Duration, Instant};

use super::{RELEASE, REPLICA, Settings, VERSION};
use crate::engine::{ContainerSpec, Engine, Upload};
use crate::error::Error;

/// Why a replica did not become healthy.
#[derive(Debug)]
pub struct Unhealthy {
    pub container: String,
    pub reason: String,
    pub logs: String,
}

/// Creates and starts replica `index` of `release`.
pub async fn start(
    engine: &Engine,
    settings: &Settings,
    release: u64,
    index: usize,
    image: &str,
    version: &str,
    secrets: &[(String, String)],
) -> Result<String, Error> {
    let site = &settings.site;
    let name = site.replica(release, index);
    let mut labels = site.labels("replica");
    labels.extend([
        (RELEASE.to_string(), release.to_string()),
        (VERSION.to_string(), version.to_string()),
        (REPLICA.to_string(), (index + 1).to_string()),
    ]);
    let spec = ContainerSpec {
        name: name.clone(),
        image: image.to_string(),
        env: environment(settings, secrets),
        labels,
        network: site.network(),
        user: Some(settings.user.clone()),
        // No port on the host: the gateway reaches replicas on the site's network.
        publish: Vec::new(),
        tmpfs: vec!["/tmp".into()],
        // The secrets' files: a volume of the replica's own (the root file
        // system is read-only), removed with it.
        volumes: if secrets.is_empty() {
            Vec::new()
        } else {
            vec![(String::new(), crate::secrets::DIR.to_string())]
        },
        health_interval: Some(settings.health_interval),
        memory_bytes: settings.memory_bytes,
        nano_cpus: settings.nano_cpus,
        stop_timeout: Some(settings.drain.as_secs() as i64 + 5),
        restart: true,
        ..Default::default()
    };
    if engine.create_container(&spec).await?.is_none() {
        // A container of the same name left by an interrupted run.
        engine.remove_container(&name).await?;
        engine.create_container(&spec).await?;
    }
    give_secrets(engine, settings, &name, secrets).await?;
    engine.start(&name).await?;
    Ok(name)
}

/// A one-off container of the release's image (`shipit run`, the release
/// command): `command` is the whole of what runs (exec form, never through a
/// shell), with the service's environment, secrets' volume, user, limits and
/// network; never restarted.
pub fn one_off(
    settings: &Settings,
    name: &str,
    image: &str,
    command: &[String],
    secrets: &[(String, String)],
    labels: Vec<(String, String)>,
) -> ContainerSpec {
    ContainerSpec {
        name: name.to_string(),
        image: image.to_string(),
        entrypoint: Some(vec![command[0].clone()]),
        cmd: Some(command[1..].to_vec()),
        env: environment(settings, secrets),
        labels,
        network: settings.site.network(),
        user: Some(settings.user.clone()),
        tmpfs: vec!["/tmp".into()],
        volumes: if secrets.is_empty() {
            Vec::new()
        } else {
            vec![(String::new(), crate::secrets::DIR.to_string())]
        },
        memory_bytes: settings.memory_bytes,
        nano_cpus: settings.nano_cpus,
        ..Default::default()
    }
}

/// The service's environment: `[env]`, and `NAME_FILE` for each secret.
/// Secrets are files, never environment values: `docker inspect` shows
/// only where they are.
pub fn environment(settings: &Settings, secrets: &[(String, String)]) -> Vec<(String, String)> {
    let mut env = settings.env.clone();
    env.extend(secrets.iter().map(|(name, _)| {
        (
            format!("{name}_FILE"),
            format!(
                "{}/{}",
                crate::secrets::DIR,
                crate::secrets::file_name(name)
            ),
        )
    }));
    env
}

/// Writes the current secret values into a replica that is not running
/// (new, or kept for a rollback), through the engine's archive API: one file
/// each in `/run/secrets` (the replica's own volume, removed with it),
/// readable by the service's user only. A rollback's replicas get today's
/// values, not those of their first deploy.
pub async fn give_secrets(
    engine: &Engine,
    settings: &Settings,
    name: &str,
    secrets: &[(String, String)],
) -> Result<(), Error> {
    if secrets.is_empty() {
        return Ok(());
    }
    let uid = settings
        .user
        .split(':')
        .next()
        .and_then(|u| u.parse().ok())
        .unwrap_or(0);
    let files: Vec<(String, &[u8])> = secrets
        .iter()
        .map(|(secret, value)| (crate::secrets::file_name(secret), value.as_bytes()))
        .collect();
    let uploads: Vec<Upload> = files
        .iter()
        .map(|(file, bytes)| Upload {
            name: file,
            bytes,
            mode: 0o400,
            owner: uid,
        })
        .collect();
    engine
        .upload_owned(name, crate::secrets::DIR, &uploads)
        .await
}

/// Waits until every container reports healthy; fails fast when one exits.
pub async fn wait_healthy(
    engine: &Engine,
    names: &[String],
    deadline: Duration,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<(), Unhealthy> {
    let start = Instant::now();
    let mut pending: Vec<String> = names.to_vec();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for name in &pending {
            let info = match engine.container(name).await {
                Ok(Some(info)) => info,
                Ok(None) => {
                    return Err(Unhealthy {
                        container: name.clone(),
                        reason: "the container disappeared".into(),
                        logs: String::new(),
                    });
                }
                Err(e) => {
                    return Err(Unhealthy {
                        container: name.clone(),
                        reason: e.to_string(),
                        logs: String::new(),
                    });
                }
            };
            if !info.running {
                return Err(Unhealthy {
                    container: name.clone(),
                    reason: format!(
                        "it exited with code {} before it was healthy",
                        info.exit_code
                    ),
                    logs: engine.logs(name, 20).await,
                });
            }
            match info.health.as_str() {
                "healthy" => {}
                // No HEALTHCHECK in the image: running is all the engine can
                // say; the gateway's HTTP check of `app.health_path` gates it
                // before it takes traffic (the candidate route, the switch).
                "none" => {}
                _ => still.push(name.clone()),
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if cancelled() {
            return Err(Unhealthy {
                container: pending[0].clone(),
                reason: "interrupted".into(),
                logs: String::new(),
            });
        }
        if start.elapsed() >= deadline {
            let name = pending[0].clone();
            let (health, output) = engine
                .container(&name)
                .await
                .ok()
                .flatten()
                .map(|i| (i.health, i.health_output))
                .unwrap_or_default();
            return Err(Unhealthy {
                reason: format!(
                    "it was not healthy within {} s (health: {health}{})",
                    deadline.as_secs(),
                    if output.is_empty() {
                        String::new()
                    } else {
                        format!("; last check said: {output}")
                    }
                ),
                logs: engine.logs(&name, 20).await,
                container: name,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
