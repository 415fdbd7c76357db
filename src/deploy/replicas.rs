//! A release's replicas: created, started and health-gated through the
//! engine's own health checks (when the image has one; the gateway checks
//! `app.health_path` over HTTP in every case); removed or stopped again when
//! they fail.

use std::time::{Duration, Instant};

use super::{PROCESS, RELEASE, REPLICA, ROLES, Role, Settings, VERSION};
use crate::engine::{ContainerInfo, ContainerSpec, Engine, Upload};
use crate::error::Error;

/// Why a replica did not become healthy.
#[derive(Debug)]
pub struct Unhealthy {
    pub container: String,
    pub reason: String,
    pub logs: String,
}

/// Creates and starts replica `index` of `release`: of the web role (the
/// image's command, the service's health check), or of `role` (its
/// command, its check or none, its stop grace).
#[allow(clippy::too_many_arguments)]
pub async fn start(
    engine: &Engine,
    settings: &Settings,
    release: u64,
    role: Option<&Role>,
    index: usize,
    image: &str,
    version: &str,
    secrets: &[(String, String)],
) -> Result<String, Error> {
    let site = &settings.site;
    let name = match role {
        None => site.replica(release, index),
        Some(r) => site.role_replica(release, &r.name, index),
    };
    let mut labels = site.labels("replica");
    labels.extend([
        (RELEASE.to_string(), release.to_string()),
        (VERSION.to_string(), version.to_string()),
        (REPLICA.to_string(), (index + 1).to_string()),
        (
            PROCESS.to_string(),
            role.map_or("web", |r| r.name.as_str()).to_string(),
        ),
    ]);
    let digest = settings.roles_digest();
    if !digest.is_empty() {
        labels.push((ROLES.to_string(), digest));
    }
    let mut spec = ContainerSpec {
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
    if let Some(r) = role {
        // Its own command in exec form, never the image's entrypoint around it.
        spec.entrypoint = Some(vec![r.cmd[0].clone()]);
        spec.cmd = Some(r.cmd[1..].to_vec());
        // Its own check, or none: the image's checks the web role over HTTP.
        spec.health_test = Some(r.healthcheck.clone());
        spec.stop_timeout = Some(r.stop_grace.as_secs() as i64 + 5);
    }
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

/// Why a replica that should be up is not: stopped, restarting, or
/// restarted by its restart policy since it was started (it exited, even if
/// it runs again); `None` while it runs as it was started.
pub fn crashed(info: &ContainerInfo) -> Option<String> {
    if info.state == "restarting" {
        Some(format!(
            "it exited with code {} and is restarting",
            info.exit_code
        ))
    } else if !info.running {
        Some(format!("it exited with code {}", info.exit_code))
    } else if info.restart_count > 0 {
        // Running again: the engine has reset its exit code.
        Some(format!(
            "it exited and the engine restarted it ({} time{})",
            info.restart_count,
            if info.restart_count == 1 { "" } else { "s" }
        ))
    } else {
        None
    }
}

/// Waits until every container reports healthy; fails fast when one exits
/// or restarts.
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
            // Restarting or restarted by its policy is as definite as
            // stopped: it will not become healthy by waiting.
            if let Some(why) = crashed(&info) {
                return Err(Unhealthy {
                    container: name.clone(),
                    reason: format!("{why} before it was healthy"),
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

/// Waits until every replica is ready: healthy by its check (`wait_healthy`),
/// and each role replica without a check has kept running, without
/// restarting, for three `deploy.health_interval`s. Fails fast when one
/// exits or restarts.
pub async fn wait_ready(
    engine: &Engine,
    settings: &Settings,
    names: &[String],
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<(), Unhealthy> {
    wait_healthy(engine, names, settings.health_timeout, cancelled).await?;
    let unchecked: Vec<&String> = names
        .iter()
        .filter(|n| {
            settings.site.role_of(n).is_some_and(|role| {
                settings
                    .roles
                    .iter()
                    .find(|r| r.name == role)
                    .is_none_or(|r| r.healthcheck.is_empty())
            })
        })
        .collect();
    let steady = settings.health_interval * 3;
    let start = Instant::now();
    let mut first: Vec<Option<String>> = vec![None; unchecked.len()];
    while !unchecked.is_empty() {
        for (name, first) in unchecked.iter().zip(first.iter_mut()) {
            let info = engine.container(name).await.ok().flatten();
            let Some(info) = info else {
                return Err(Unhealthy {
                    container: name.to_string(),
                    reason: "the container disappeared".into(),
                    logs: String::new(),
                });
            };
            let restarted = first.as_ref().is_some_and(|s| *s != info.started_at);
            let what = crashed(&info)
                .or_else(|| restarted.then(|| "it exited and the engine restarted it".to_string()));
            if let Some(what) = what {
                return Err(Unhealthy {
                    container: name.to_string(),
                    reason: format!(
                        "{what} before it had run steadily for {} s",
                        steady.as_secs_f64()
                    ),
                    logs: engine.logs(name, 20).await,
                });
            }
            first.get_or_insert(info.started_at);
        }
        if start.elapsed() >= steady {
            return Ok(());
        }
        if cancelled() {
            return Err(Unhealthy {
                container: unchecked[0].to_string(),
                reason: "interrupted".into(),
                logs: String::new(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}
