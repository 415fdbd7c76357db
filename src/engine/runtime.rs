//! Containers, networks and volumes on the engine: what a deploy needs, as
//! small operations with plain types. What runs inside a container (its
//! logs, files and exec) is in `inside.rs`.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HealthStatusEnum, HostConfig, Mount,
    MountType, NetworkCreateRequest, NetworkingConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, RemoveContainerOptions, StopContainerOptions,
};

use super::Engine;
use crate::error::Error;

/// Everything a container is created with.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
    pub network: String,
    pub user: Option<String>,
    /// `(container port, host ip, host port)`; host port 0 means any free one.
    pub publish: Vec<(u16, String, u16)>,
    /// `(volume, path in the container)`; an empty name is an anonymous
    /// volume, removed with the container.
    pub volumes: Vec<(String, String)>,
    pub tmpfs: Vec<String>,
    /// Check every `interval` (the image's HEALTHCHECK command is kept).
    pub health_interval: Option<Duration>,
    pub memory_bytes: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub stop_timeout: Option<i64>,
    pub restart: bool,
    /// Its standard input open for one attached client (`shipit run -i`).
    pub stdin: bool,
    /// A terminal of its own.
    pub tty: bool,
    /// More names it answers to on `network` (an accessory's own name).
    pub aliases: Vec<String>,
    /// A health check command (exec form) instead of the image's; empty: none at all.
    pub health_test: Option<Vec<String>>,
}

/// What a deploy needs to know about one container.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub image: String,
    pub running: bool,
    /// `created`, `running`, `exited`, ...
    pub state: String,
    /// `healthy`, `unhealthy`, `starting`, or `none`.
    pub health: String,
    /// The output of the last health check, when it failed.
    pub health_output: String,
    pub exit_code: i64,
    pub started_at: String,
    /// Times the engine restarted it since it was last started through the
    /// API (its restart policy at work: it exited).
    pub restart_count: i64,
    pub labels: HashMap<String, String>,
    /// Host port published for each container port.
    pub ports: HashMap<u16, u16>,
    /// The container's address on each network it is attached to (`container` only).
    pub addresses: HashMap<String, String>,
}

pub(super) fn failed(engine: &Engine, action: String, e: impl std::fmt::Display) -> Error {
    let message = e.to_string();
    // bollard's RequestTimeoutError: the call's time limit passed in silence.
    if message == "Timeout error" {
        return silent(engine, action, super::CALL_LIMIT);
    }
    Error::Docker {
        action,
        message,
        address: engine.address.clone(),
    }
}

/// The engine said nothing for `limit`: it is taken for gone (not asked
/// again in this run).
pub(super) fn silent(engine: &Engine, action: String, limit: std::time::Duration) -> Error {
    engine.mark_lost();
    Error::Docker {
        action,
        message: format!(
            "no answer within {} s: the engine, or the network to it, went silent; it is not asked again in this run",
            limit.as_secs()
        ),
        address: engine.address.clone(),
    }
}

pub(super) fn is_status(e: &bollard::errors::Error, code: u16) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code, .. } if *status_code == code)
}

impl Engine {
    /// The image's id, or `None` when the engine does not have it.
    pub async fn image_id(&self, reference: &str) -> Option<String> {
        self.api()
            .ok()?
            .inspect_image(reference)
            .await
            .ok()
            .and_then(|i| i.id)
    }

    /// The user an image runs as (its config's `User`; empty: root), when
    /// the engine has it.
    pub async fn image_user(&self, reference: &str) -> Option<String> {
        let image = self.api().ok()?.inspect_image(reference).await.ok()?;
        Some(image.config.and_then(|c| c.user).unwrap_or_default())
    }

    /// An image's id and labels (its config's), when the engine has it.
    pub async fn image_labels(
        &self,
        reference: &str,
    ) -> Option<(String, std::collections::HashMap<String, String>)> {
        let image = self.api().ok()?.inspect_image(reference).await.ok()?;
        let labels = image.config.and_then(|c| c.labels).unwrap_or_default();
        Some((image.id?, labels))
    }

    /// Creates a bridge network unless it exists.
    pub async fn ensure_network(
        &self,
        name: &str,
        labels: &[(String, String)],
    ) -> Result<bool, Error> {
        if self.api()?.inspect_network(name, None).await.is_ok() {
            return Ok(false);
        }
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(labels.iter().cloned().collect()),
            ..Default::default()
        };
        match self.api()?.create_network(request).await {
            Ok(_) => Ok(true),
            Err(e) if is_status(&e, 409) => Ok(false),
            Err(e) => Err(failed(self, format!("create network {name}"), e)),
        }
    }

    pub async fn ensure_volume(
        &self,
        name: &str,
        labels: &[(String, String)],
    ) -> Result<(), Error> {
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels.iter().cloned().collect()),
            ..Default::default()
        };
        self.api()?
            .create_volume(request)
            .await
            .map(|_| ())
            .map_err(|e| failed(self, format!("create volume {name}"), e))
    }

    /// Creates (does not start) a container. `Ok(None)` when the name is taken.
    pub async fn create_container(&self, spec: &ContainerSpec) -> Result<Option<String>, Error> {
        let mut exposed = Vec::new();
        let mut bindings = HashMap::new();
        for (port, ip, host) in &spec.publish {
            exposed.push(format!("{port}/tcp"));
            bindings.insert(
                format!("{port}/tcp"),
                Some(vec![PortBinding {
                    host_ip: Some(ip.clone()),
                    host_port: Some(if *host == 0 {
                        String::new()
                    } else {
                        host.to_string()
                    }),
                }]),
            );
        }
        let mounts = spec
            .volumes
            .iter()
            .map(|(volume, target)| Mount {
                target: Some(target.clone()),
                // No name: an anonymous volume, removed with the container.
                source: (!volume.is_empty()).then(|| volume.clone()),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            })
            .collect::<Vec<_>>();
        let host_config = HostConfig {
            port_bindings: Some(bindings),
            mounts: Some(mounts),
            tmpfs: Some(
                spec.tmpfs
                    .iter()
                    .map(|p| (p.clone(), "rw,noexec,nosuid,size=16m".to_string()))
                    .collect(),
            ),
            readonly_rootfs: Some(true),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges:true".into()]),
            memory: spec.memory_bytes,
            nano_cpus: spec.nano_cpus,
            pids_limit: Some(256),
            network_mode: Some(if spec.network.is_empty() {
                "none".to_string()
            } else {
                spec.network.clone()
            }),
            restart_policy: Some(RestartPolicy {
                name: Some(if spec.restart {
                    RestartPolicyNameEnum::UNLESS_STOPPED
                } else {
                    RestartPolicyNameEnum::NO
                }),
                maximum_retry_count: None,
            }),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: spec.cmd.clone(),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(spec.labels.iter().cloned().collect()),
            user: spec.user.clone(),
            exposed_ports: Some(exposed),
            stop_timeout: spec.stop_timeout,
            healthcheck: spec.health_interval.map(|interval| HealthConfig {
                // No test: the engine keeps the image's HEALTHCHECK command;
                // an empty one turns the image's off.
                test: spec.health_test.as_ref().map(|test| {
                    if test.is_empty() {
                        return vec!["NONE".to_string()];
                    }
                    std::iter::once("CMD".to_string())
                        .chain(test.iter().cloned())
                        .collect()
                }),
                interval: Some(interval.as_nanos() as i64),
                // The image's own timeout: an interpreter's health check starts slower than 3 s under load.
                timeout: None,
                retries: Some(3),
                start_period: Some(0),
                start_interval: None,
            }),
            host_config: Some(host_config),
            networking_config: (!spec.network.is_empty()).then(|| NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    spec.network.clone(),
                    EndpointSettings {
                        aliases: (!spec.aliases.is_empty()).then(|| spec.aliases.clone()),
                        ..Default::default()
                    },
                )])),
            }),
            entrypoint: spec.entrypoint.clone(),
            open_stdin: Some(spec.stdin),
            stdin_once: Some(spec.stdin),
            attach_stdin: Some(spec.stdin),
            attach_stdout: Some(spec.stdin),
            attach_stderr: Some(spec.stdin),
            tty: Some(spec.tty),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..Default::default()
        };
        match self.api()?.create_container(Some(options), body).await {
            Ok(created) => Ok(Some(created.id)),
            Err(e) if is_status(&e, 409) => Ok(None),
            Err(e) => Err(failed(self, format!("create container {}", spec.name), e)),
        }
    }

    pub async fn start(&self, name: &str) -> Result<(), Error> {
        self.api()?
            .start_container(name, None)
            .await
            .map_err(|e| failed(self, format!("start {name}"), e))
    }

    /// SIGTERM (the image's stop signal), then SIGKILL after `timeout`.
    pub async fn stop(&self, name: &str, timeout: Duration) -> Result<(), Error> {
        let options = StopContainerOptions {
            t: Some(timeout.as_secs() as i32),
            signal: None,
        };
        let api = self.api_within(timeout + super::CALL_LIMIT)?;
        match api.stop_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_status(&e, 304) || is_status(&e, 404) => Ok(()),
            Err(e) => Err(failed(self, format!("stop {name}"), e)),
        }
    }

    /// Sends a signal to a running container's main process.
    pub async fn signal(&self, name: &str, signal: &str) -> Result<(), Error> {
        let options = bollard::query_parameters::KillContainerOptionsBuilder::new()
            .signal(signal)
            .build();
        self.api()?
            .kill_container(name, Some(options))
            .await
            .map_err(|e| failed(self, format!("signal {signal} to {name}"), e))
    }

    /// Gives a container another name.
    pub async fn rename(&self, name: &str, to: &str) -> Result<(), Error> {
        let options = bollard::query_parameters::RenameContainerOptions { name: to.into() };
        self.api()?
            .rename_container(name, options)
            .await
            .map_err(|e| failed(self, format!("rename {name} to {to}"), e))
    }

    /// Removes a named volume; `Ok(false)` when there is none.
    pub async fn remove_volume(&self, name: &str) -> Result<bool, Error> {
        match self
            .api()?
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
        {
            Ok(()) => Ok(true),
            Err(e) if is_status(&e, 404) => Ok(false),
            Err(e) => Err(failed(self, format!("remove volume {name}"), e)),
        }
    }

    /// Removes a container (running or not); a missing one is fine.
    pub async fn remove_container(&self, name: &str) -> Result<(), Error> {
        // With its anonymous volumes (a replica's secrets); named ones stay.
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        match self.api()?.remove_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(failed(self, format!("remove {name}"), e)),
        }
    }

    /// The engine's clock (epoch seconds): one clock for everyone who
    /// reads and writes a lock's heartbeat there, whatever their own say.
    pub async fn system_time(&self) -> Result<i64, Error> {
        let info = self
            .api()?
            .info()
            .await
            .map_err(|e| failed(self, "read the engine's clock".into(), e))?;
        info.system_time
            .as_deref()
            .and_then(crate::clock::parse_rfc3339)
            .ok_or_else(|| failed(self, "read the engine's clock".into(), "no SystemTime"))
    }

    pub async fn container(&self, name: &str) -> Result<Option<ContainerInfo>, Error> {
        let c = match self.api()?.inspect_container(name, None).await {
            Ok(c) => c,
            Err(e) if is_status(&e, 404) => return Ok(None),
            Err(e) => return Err(failed(self, format!("inspect {name}"), e)),
        };
        let state = c.state.unwrap_or_default();
        let config = c.config.unwrap_or_default();
        let mut ports = HashMap::new();
        let addresses: HashMap<String, String> = c
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .map(|networks| {
                networks
                    .iter()
                    .filter_map(|(name, n)| {
                        n.ip_address
                            .clone()
                            .filter(|ip| !ip.is_empty())
                            .map(|ip| (name.clone(), ip))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let Some(map) = c.network_settings.and_then(|n| n.ports) {
            for (key, bindings) in map {
                let port = key.split('/').next().and_then(|p| p.parse::<u16>().ok());
                let host = bindings
                    .unwrap_or_default()
                    .into_iter()
                    .find_map(|b| b.host_port.and_then(|p| p.parse::<u16>().ok()));
                if let (Some(port), Some(host)) = (port, host) {
                    ports.insert(port, host);
                }
            }
        }
        Ok(Some(ContainerInfo {
            id: c.id.unwrap_or_default(),
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            image: c.image.unwrap_or_default(),
            running: state.running.unwrap_or(false),
            state: state
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into()),
            health_output: state
                .health
                .as_ref()
                .and_then(|h| h.log.as_ref())
                .and_then(|log| log.last())
                .filter(|r| r.exit_code != Some(0))
                .and_then(|r| r.output.clone())
                .unwrap_or_default()
                .trim()
                .to_string(),
            health: match state.health.and_then(|h| h.status) {
                Some(HealthStatusEnum::HEALTHY) => "healthy",
                Some(HealthStatusEnum::UNHEALTHY) => "unhealthy",
                Some(HealthStatusEnum::STARTING) => "starting",
                _ => "none",
            }
            .to_string(),
            exit_code: state.exit_code.unwrap_or(0),
            started_at: state.started_at.unwrap_or_default(),
            restart_count: c.restart_count.unwrap_or(0),
            labels: config.labels.unwrap_or_default(),
            ports,
            addresses,
        }))
    }

    /// Every container (running or not) carrying all of `labels`, by name,
    /// from one listing call: `started_at`, `exit_code`, `restart_count` and `health_output`
    /// are left empty (`container` has them).
    pub async fn containers(&self, labels: &[(&str, &str)]) -> Result<Vec<ContainerInfo>, Error> {
        let filters = HashMap::from([(
            "label".to_string(),
            labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        )]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let list = self
            .api()?
            .list_containers(Some(options))
            .await
            .map_err(|e| failed(self, "list containers".into(), e))?;
        let mut out: Vec<ContainerInfo> = list
            .into_iter()
            .map(|c| {
                let state = c.state.map(|s| s.to_string()).unwrap_or_default();
                let status = c.status.unwrap_or_default();
                let health = if status.contains("(healthy)") {
                    "healthy"
                } else if status.contains("(unhealthy)") {
                    "unhealthy"
                } else if status.contains("(health: starting)") {
                    "starting"
                } else {
                    "none"
                };
                ContainerInfo {
                    id: c.id.unwrap_or_default(),
                    name: c
                        .names
                        .and_then(|n| n.into_iter().next())
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_string(),
                    image: c.image_id.unwrap_or_default(),
                    running: state == "running",
                    state,
                    health: health.to_string(),
                    health_output: String::new(),
                    exit_code: 0,
                    started_at: String::new(),
                    restart_count: 0,
                    labels: c.labels.unwrap_or_default(),
                    ports: c
                        .ports
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|p| Some((p.private_port, p.public_port?)))
                        .collect(),
                    addresses: HashMap::new(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}
