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

pub mod runtime;

pub use runtime::{ContainerInfo, ContainerSpec, ExecSession, Upload};

pub struct Engine {
    pub(crate) docker: Docker,
    /// Where the engine was looked for, for messages.
    pub address: String,
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

pub struct ImageInfo {
    pub size: i64,
}

impl Engine {
    /// Connects as `DOCKER_HOST` says (unix socket by default; tcp; https or
    /// tcp with `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`; ssh://), agrees on
    /// an API version and checks that the engine answers.
    pub async fn connect() -> Result<Engine, Error> {
        let address = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string());
        let unreachable = |message: String| {
            Error::Engine {
            address: address.clone(),
            message,
            help: "start the Docker engine, or point DOCKER_HOST at one (unix://, tcp://, https:// with DOCKER_CERT_PATH, ssh://)".into(),
        }
        };
        let docker = Docker::connect_with_defaults().map_err(|e| unreachable(e.to_string()))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        docker
            .ping()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Engine { docker, address })
    }

    /// Builds from a tar stream; returns the image id. The image is left
    /// untagged: tags are applied afterwards, all or none.
    pub async fn build(
        &self,
        context: impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
        dockerfile: &str,
        build_args: &HashMap<String, String>,
        labels: &HashMap<String, String>,
        no_cache: bool,
        mut on_event: impl FnMut(BuildEvent<'_>),
    ) -> Result<String, Error> {
        let options = BuildImageOptionsBuilder::default()
            .dockerfile(dockerfile)
            .buildargs(build_args)
            .labels(labels)
            .nocache(no_cache)
            .rm(true)
            .forcerm(true)
            .pull("false")
            .build();
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_try_stream(context)));
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
        self.docker
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
        let _ = self.docker.remove_image(name, Some(options), None).await;
    }

    pub async fn inspect(&self, name: &str) -> Option<ImageInfo> {
        let image = self.docker.inspect_image(name).await.ok()?;
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
        let mut stream = self.docker.push_image(repo, Some(options), credentials);
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
