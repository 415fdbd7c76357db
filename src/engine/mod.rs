//! The Docker Engine, through bollard: the only module that talks to it.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, PushImageOptionsBuilder, RemoveImageOptionsBuilder,
    TagImageOptionsBuilder,
};
use futures_util::StreamExt;

use crate::error::Error;

mod attached;
pub mod endpoint;
mod inside;
pub mod layers;
pub mod runtime;
pub mod transfer;

pub use attached::{Attached, LogQuery, OutputStream};
pub use endpoint::Endpoint;
pub use inside::{ExecSession, Upload};
pub use runtime::{ContainerInfo, ContainerSpec};

#[derive(Clone)]
pub struct Engine {
    pub(crate) docker: Docker,
    /// Where the engine was looked for, for messages.
    pub address: String,
    /// Where the ports it publishes answer from here (the gateway's host).
    pub published_host: String,
    /// A tcp:// engine reached without TLS (allowed explicitly): warned each run.
    pub plain_http: bool,
    /// Set once a call found no answer within [`CALL_LIMIT`] (shared by clones).
    lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// `SHIPIT_ALLOW_PLAIN_TCP=1`: a `DOCKER_HOST=tcp://` engine without TLS is
/// accepted (with a warning each run); the `insecure` of a configured host.
pub const ALLOW_PLAIN_TCP: &str = "SHIPIT_ALLOW_PLAIN_TCP";

/// What to build from a context: the Dockerfile's path inside it, the stage,
/// build arguments and labels.
#[derive(Debug, Clone)]
pub struct BuildSpec<'a> {
    pub dockerfile: &'a str,
    /// The stage to build; empty: the last one.
    pub target: &'a str,
    pub build_args: &'a HashMap<String, String>,
    pub labels: &'a HashMap<String, String>,
    pub no_cache: bool,
}

/// What happened while building, for progress output.
pub enum BuildEvent<'a> {
    /// A line of build output (`Step 3/9 : RUN ...`, or a step's own output).
    Line(&'a str),
}

/// What happened while pushing.
pub enum PushEvent<'a> {
    Status {
        status: &'a str,
        current: Option<i64>,
        total: Option<i64>,
    },
    Retry {
        attempt: u32,
        wait: Duration,
        reason: &'a str,
    },
}

/// How long one call to an engine may take, all told, before the engine is
/// taken for gone: a network gone silent (a cut link drops packets, no reset)
/// ends the call here instead of hanging the run, and the engine is not asked
/// again in this run ([`Engine::api`]).
pub const CALL_LIMIT: Duration = Duration::from_secs(30);
const TIMEOUT_SECS: u64 = CALL_LIMIT.as_secs();
/// Work that takes as long as the bytes do: a build's context, an image
/// loaded from another engine (the delivery budget).
pub(super) const LONG_LIMIT: Duration = Duration::from_secs(1800);
/// How long connecting (version and ping) may take before the engine is unreachable.
const CONNECT_LIMIT: Duration = Duration::from_secs(20);

pub struct ImageInfo {
    pub size: i64,
}

impl Engine {
    /// Connects as `DOCKER_HOST` says (unix socket by default; tcp; tcp with
    /// `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`; ssh://), agrees on an API
    /// version and checks that the engine answers.
    pub async fn connect() -> Result<Engine, Error> {
        let address =
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| endpoint::LOCAL_SOCKET.into());
        let endpoint = Endpoint::from_env().map_err(|message| Error::Engine {
            address: address.clone(),
            message,
            help:
                "point DOCKER_HOST at an engine: unix:///path, tcp://host:port, ssh://[user@]host"
                    .into(),
        })?;
        let insecure = std::env::var(ALLOW_PLAIN_TCP).is_ok_and(|v| v == "1");
        Engine::connect_to(&endpoint, None, None, insecure).await
    }

    /// Connects to one engine: `cert_path` holds a tcp:// engine's client
    /// certificates (else `DOCKER_CERT_PATH` when `DOCKER_TLS_VERIFY` or
    /// `DOCKER_CERT_PATH` is set); `published_host` is where its published
    /// ports answer, when not at the engine's own host name.
    pub async fn connect_to(
        endpoint: &Endpoint,
        cert_path: Option<&str>,
        published_host: Option<&str>,
        insecure: bool,
    ) -> Result<Engine, Error> {
        let address = endpoint.to_string();
        let unreachable = |message: String| {
            Error::Engine {
            address: address.clone(),
            message,
            help: match endpoint {
                Endpoint::Unix(_) => "start the Docker engine, or point DOCKER_HOST (or deploy.hosts) at one".into(),
                Endpoint::Tcp { .. } => "check that the engine listens there; with TLS, that cert_path (or DOCKER_CERT_PATH) holds ca.pem, cert.pem and key.pem".into(),
                Endpoint::Ssh { .. } => "check `ssh HOST docker version` works: the system ssh is used, with your ~/.ssh/config, agent and known_hosts".into(),
            },
        }
        };
        let version = bollard::API_DEFAULT_VERSION;
        let mut plain_http = false;
        let docker = match endpoint {
            Endpoint::Unix(path) => Docker::connect_with_unix(path, TIMEOUT_SECS, version),
            Endpoint::Tcp { host, port } => {
                let certs = cert_path.map(std::path::PathBuf::from).or_else(|| {
                    let verify =
                        std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty() && v != "0");
                    let path = std::env::var("DOCKER_CERT_PATH")
                        .ok()
                        .filter(|p| !p.is_empty());
                    match (verify, path) {
                        (_, Some(p)) => Some(p.into()),
                        (true, None) => std::env::var("HOME")
                            .ok()
                            .map(|h| std::path::Path::new(&h).join(".docker")),
                        _ => None,
                    }
                });
                match certs {
                    Some(dir) => Docker::connect_with_ssl(
                        &format!("{host}:{port}"),
                        &dir.join("key.pem"),
                        &dir.join("cert.pem"),
                        &dir.join("ca.pem"),
                        TIMEOUT_SECS,
                        version,
                    ),
                    None if !insecure => {
                        return Err(Error::Engine {
                            address: address.clone(),
                            message: "refusing to talk plain HTTP to a tcp:// engine: secrets and TLS keys would cross the network unencrypted".into(),
                            help: format!(
                                "give the engine TLS (dockerd --tlsverify) and shipit its client certificates (cert_path in deploy.hosts, or DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH); on a network you trust entirely, set insecure = true on the host ({ALLOW_PLAIN_TCP}=1 for DOCKER_HOST)"
                            ),
                        });
                    }
                    None => {
                        plain_http = true;
                        Docker::connect_with_http(
                            &format!("tcp://{host}:{port}"),
                            TIMEOUT_SECS,
                            version,
                        )
                    }
                }
            }
            Endpoint::Ssh { .. } => {
                // bollard's ssh accepts a host key it has never seen
                // (StrictHostKeyChecking=accept-new): check it first, strictly.
                endpoint::verify_host_key(endpoint, CONNECT_LIMIT)
                    .await
                    .map_err(&unreachable)?;
                Docker::connect_with_ssh(&address, TIMEOUT_SECS, version, None)
            }
        }
        .map_err(|e| unreachable(e.to_string()))?;
        let docker = tokio::time::timeout(CONNECT_LIMIT, async {
            let docker = docker.negotiate_version().await?;
            docker.ping().await?;
            Ok::<_, bollard::errors::Error>(docker)
        })
        .await
        .map_err(|_| unreachable(format!("no answer within {} s", CONNECT_LIMIT.as_secs())))?
        .map_err(|e| unreachable(e.to_string()))?;
        Ok(Engine {
            docker,
            address,
            published_host: published_host
                .filter(|h| !h.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| endpoint.published_host()),
            plain_http,
            lost: Default::default(),
        })
    }

    /// The engine's API for one call, within [`CALL_LIMIT`]; refused at once
    /// when an earlier call of this run found the engine silent, so a lost
    /// host costs one time limit, not one per call.
    pub(crate) fn api(&self) -> Result<&Docker, Error> {
        if self.is_lost() {
            return Err(runtime::failed(
                self,
                "reach the engine".into(),
                format!(
                    "it stopped answering earlier in this run (no answer within {} s); not asked again",
                    CALL_LIMIT.as_secs()
                ),
            ));
        }
        Ok(&self.docker)
    }

    /// The API for one call that may take up to `limit` (a stop's drain, a build).
    pub(crate) fn api_within(&self, limit: Duration) -> Result<Docker, Error> {
        Ok(self.api()?.clone().with_timeout(limit))
    }

    /// Whether a call of this run found the engine silent.
    pub fn is_lost(&self) -> bool {
        self.lost.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn mark_lost(&self) {
        self.lost.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Builds from a tar stream; returns the image id. The image is left
    /// untagged: tags are applied afterwards, all or none.
    pub async fn build(
        &self,
        context: impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
        spec: &BuildSpec<'_>,
        mut on_event: impl FnMut(BuildEvent<'_>),
    ) -> Result<String, Error> {
        let mut options = BuildImageOptionsBuilder::default()
            .dockerfile(spec.dockerfile)
            .buildargs(spec.build_args)
            .labels(spec.labels)
            .nocache(spec.no_cache)
            .rm(true)
            .forcerm(true)
            .pull("false");
        if !spec.target.is_empty() {
            options = options.target(spec.target);
        }
        let options = options.build();
        let api = self.api_within(LONG_LIMIT)?;
        let mut stream = api.build_image(options, None, Some(bollard::body_try_stream(context)));
        let mut image_id = None;
        let mut step_output: Vec<String> = Vec::new();
        let mut step = String::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| self.build_error(&step, &step_output, &e.to_string()))?;
            if let Some(text) = &info.stream {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    if line.starts_with("Step ") {
                        step = line.to_string();
                        step_output.clear();
                    } else {
                        step_output.push(line.to_string());
                        if step_output.len() > 200 {
                            step_output.remove(0);
                        }
                    }
                    on_event(BuildEvent::Line(line));
                }
            }
            if let Some(detail) = &info.error_detail {
                let message = detail
                    .message
                    .clone()
                    .unwrap_or_else(|| "the build failed".into());
                return Err(self.build_error(&step, &step_output, &message));
            }
            if let Some(id) = info.aux.as_ref().and_then(|aux| aux.id.as_ref()) {
                image_id = Some(id.clone());
            }
        }
        image_id
            .ok_or_else(|| self.build_error(&step, &step_output, "the engine reported no image id"))
    }

    fn build_error(&self, step: &str, output: &[String], message: &str) -> Error {
        let missing_base = message.contains("pull access denied")
            || message.contains("not found")
            || message.contains("failed to resolve")
            || message.contains("no such host")
            || message.contains("dial tcp");
        let help = if missing_base && step.contains("FROM") {
            "the base image is not on this engine and cannot be pulled: make it locally (see README, \"Offline and air-gapped use\": bash .ci/offline-images) or load it with docker load".to_string()
        } else {
            "fix the failing step; its output is above".to_string()
        };
        Error::Build {
            step: step.to_string(),
            output: output.join("\n"),
            message: message.to_string(),
            help,
        }
    }

    pub async fn tag(&self, image: &str, repo: &str, tag: &str) -> Result<(), Error> {
        let options = TagImageOptionsBuilder::default()
            .repo(repo)
            .tag(tag)
            .build();
        self.api()?
            .tag_image(image, Some(options))
            .await
            .map_err(|e| Error::Engine {
                address: self.address.clone(),
                message: format!("cannot tag {image} as {repo}:{tag}: {e}"),
                help: "check the tag".into(),
            })
    }

    /// Removes a tag (or an image); a missing one is fine.
    pub async fn remove(&self, name: &str) {
        let options = RemoveImageOptionsBuilder::default().noprune(false).build();
        if let Ok(api) = self.api() {
            let _ = api.remove_image(name, Some(options), None).await;
        }
    }

    pub async fn inspect(&self, name: &str) -> Option<ImageInfo> {
        let image = self.api().ok()?.inspect_image(name).await.ok()?;
        Some(ImageInfo {
            size: image.size.unwrap_or(0),
        })
    }

    /// Pushes `repo:tag`; returns the registry's digest. Transient failures
    /// (connection errors, 5xx, timeouts) are retried with backoff; refusals
    /// (authentication, authorisation) are not.
    pub async fn push(
        &self,
        repo: &str,
        tag: &str,
        credentials: Option<DockerCredentials>,
        mut on_event: impl FnMut(PushEvent<'_>),
    ) -> Result<String, Error> {
        const ATTEMPTS: u32 = 4;
        let mut attempt = 1;
        loop {
            match self
                .push_once(repo, tag, credentials.clone(), &mut on_event)
                .await
            {
                Ok(digest) => return Ok(digest),
                Err(PushFailure::Transient(reason)) if attempt < ATTEMPTS => {
                    let wait = Duration::from_millis(500 * 2u64.pow(attempt));
                    on_event(PushEvent::Retry {
                        attempt,
                        wait,
                        reason: &reason,
                    });
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(PushFailure::Transient(reason)) => {
                    return Err(Error::Push {
                        reference: format!("{repo}:{tag}"),
                        message: format!("{reason} (after {ATTEMPTS} attempts)"),
                        help: "check that the registry is up and reachable from the engine".into(),
                    });
                }
                Err(PushFailure::Refused(reason)) => {
                    return Err(Error::Push {
                        reference: format!("{repo}:{tag}"),
                        message: reason,
                        help: "check the credentials: SHIPIT_REGISTRY_USERNAME / SHIPIT_REGISTRY_PASSWORD, or `docker login` (~/.docker/config.json)".into(),
                    });
                }
            }
        }
    }

    async fn push_once(
        &self,
        repo: &str,
        tag: &str,
        credentials: Option<DockerCredentials>,
        on_event: &mut impl FnMut(PushEvent<'_>),
    ) -> Result<String, PushFailure> {
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let api = self
            .api()
            .map_err(|e| PushFailure::Refused(e.to_string()))?;
        let mut stream = api.push_image(repo, Some(options), credentials);
        let mut digest = None;
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| classify(&e.to_string()))?;
            if let Some(detail) = &info.error_detail {
                return Err(classify(
                    detail.message.as_deref().unwrap_or("the push failed"),
                ));
            }
            if let Some(status) = &info.status {
                if let Some(rest) = status.split("digest: ").nth(1) {
                    digest = rest.split_whitespace().next().map(str::to_string);
                }
                let (current, total) = info
                    .progress_detail
                    .as_ref()
                    .map_or((None, None), |p| (p.current, p.total));
                on_event(PushEvent::Status {
                    status,
                    current,
                    total,
                });
            }
        }
        digest.ok_or_else(|| PushFailure::Transient("the registry reported no digest".into()))
    }
}

enum PushFailure {
    Transient(String),
    Refused(String),
}

fn classify(message: &str) -> PushFailure {
    let lower = message.to_ascii_lowercase();
    let refused = [
        "unauthorized",
        "authentication required",
        "denied",
        "forbidden",
        "401",
        "403",
    ]
    .iter()
    .any(|w| lower.contains(w));
    if refused {
        PushFailure::Refused(message.to_string())
    } else {
        PushFailure::Transient(message.to_string())
    }
}
