//! Work that stays attached for as long as it runs: a container's log
//! stream (to its end, or followed), a command in a running container with
//! the caller's terminal, a one-off container's input and output, its exit
//! code, and an image's removal.

use std::pin::Pin;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::query_parameters::{
    AttachContainerOptions, LogsOptions, RemoveImageOptions, WaitContainerOptions,
};
use futures_util::{Stream, StreamExt};

use super::Engine;
use super::runtime::{failed, is_status};
use crate::error::Error;

/// How long an attached session (a followed log, an interactive shell) may
/// last before the engine's client gives up on it.
const SESSION_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Output as the engine sends it: each item stdout, stderr or a terminal's.
pub type OutputStream =
    Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;
/// The attached process's standard input.
pub type InputSink = Pin<Box<dyn tokio::io::AsyncWrite + Send>>;

/// Which lines of a container's log: `since`/`until` in epoch seconds,
/// `tail` lines from the end (all when `None`), and whether to follow it.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogQuery {
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub tail: Option<usize>,
    pub follow: bool,
}

/// A command started in a running container, attached.
pub struct Attached {
    /// The exec's id (`None` for a container's own process).
    pub exec: Option<String>,
    pub output: OutputStream,
    pub input: InputSink,
}

impl Engine {
    /// The container's log, each line prefixed with its RFC 3339 time as the
    /// engine recorded it.
    pub fn log_stream(&self, name: &str, query: LogQuery) -> Result<OutputStream, Error> {
        let options = LogsOptions {
            follow: query.follow,
            stdout: true,
            stderr: true,
            since: query.since.unwrap_or(0).clamp(0, i32::MAX as i64) as i32,
            until: query.until.unwrap_or(0).clamp(0, i32::MAX as i64) as i32,
            timestamps: true,
            tail: query
                .tail
                .map(|n| n.to_string())
                .unwrap_or_else(|| "all".into()),
        };
        let api = self.api_within(if query.follow {
            SESSION_LIMIT
        } else {
            super::CALL_LIMIT
        })?;
        let name = name.to_string();
        Ok(Box::pin(async_stream(api, name, options)))
    }

    /// Starts `cmd` in a running container, its output attached (and its
    /// input, with `stdin`); with `tty`, on a terminal of its own.
    pub async fn exec_attached(
        &self,
        container: &str,
        cmd: &[String],
        stdin: bool,
        tty: bool,
    ) -> Result<Attached, Error> {
        let what = || format!("exec {} in {container}", cmd[0]);
        let api = self.api_within(SESSION_LIMIT)?;
        let created = api
            .create_exec(
                container,
                bollard::exec::CreateExecOptions {
                    cmd: Some(cmd.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    attach_stdin: Some(stdin),
                    tty: Some(tty),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| failed(self, what(), e))?;
        let options = bollard::exec::StartExecOptions {
            detach: false,
            tty,
            output_capacity: None,
        };
        match api
            .start_exec(&created.id, Some(options))
            .await
            .map_err(|e| failed(self, what(), e))?
        {
            bollard::exec::StartExecResults::Attached { output, input } => Ok(Attached {
                exec: Some(created.id),
                output,
                input,
            }),
            bollard::exec::StartExecResults::Detached => Err(failed(self, what(), "detached")),
        }
    }

    /// An exec's exit code, once it has ended.
    pub async fn exec_exit_code(&self, exec: &str) -> Result<i64, Error> {
        let inspect = self
            .api()?
            .inspect_exec(exec)
            .await
            .map_err(|e| failed(self, format!("inspect exec {exec}"), e))?;
        Ok(inspect.exit_code.unwrap_or(-1))
    }

    /// Sets the size of an exec's (or a container's) terminal.
    pub async fn resize(&self, attached: &Attached, container: &str, rows: u16, columns: u16) {
        let Ok(api) = self.api() else { return };
        let _ = match &attached.exec {
            Some(id) => {
                api.resize_exec(
                    id,
                    bollard::exec::ResizeExecOptions {
                        height: rows,
                        width: columns,
                    },
                )
                .await
            }
            None => {
                api.resize_container_tty(
                    container,
                    bollard::query_parameters::ResizeContainerTTYOptions {
                        h: rows as i32,
                        w: columns as i32,
                    },
                )
                .await
            }
        };
    }

    /// Attaches to a created container's output (and input, with `stdin`)
    /// before it starts, so nothing it writes is missed.
    pub async fn attach(&self, container: &str, stdin: bool) -> Result<Attached, Error> {
        let options = AttachContainerOptions {
            stdin,
            stdout: true,
            stderr: true,
            stream: true,
            logs: true,
            detach_keys: None,
        };
        let attached = self
            .api_within(SESSION_LIMIT)?
            .attach_container(container, Some(options))
            .await
            .map_err(|e| failed(self, format!("attach to {container}"), e))?;
        Ok(Attached {
            exec: None,
            output: attached.output,
            input: attached.input,
        })
    }

    /// Waits for a container to stop; its exit code.
    pub async fn wait_exit(&self, container: &str) -> Result<i64, Error> {
        let options = WaitContainerOptions {
            condition: "not-running".into(),
        };
        let api = self.api_within(SESSION_LIMIT)?;
        let mut waiting = api.wait_container(container, Some(options));
        match waiting.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(failed(self, format!("wait for {container}"), e)),
            None => Err(failed(
                self,
                format!("wait for {container}"),
                "the engine ended the wait without an exit code",
            )),
        }
    }

    /// Removes an image by id (never by force). `Ok(Some(why))` when the
    /// engine refuses because something holds it (a container, a child
    /// image, another repository's tag).
    pub async fn remove_image(&self, id: &str) -> Result<Option<String>, Error> {
        let options = RemoveImageOptions {
            force: false,
            noprune: false,
            platforms: None,
        };
        match self.api()?.remove_image(id, Some(options), None).await {
            Ok(_) => Ok(None),
            Err(e) if is_status(&e, 404) => Ok(None),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                message,
            }) => Ok(Some(message)),
            Err(e) => Err(failed(self, format!("remove image {id}"), e)),
        }
    }
}

/// The logs call as a stream that owns its client.
fn async_stream(
    api: bollard::Docker,
    name: String,
    options: LogsOptions,
) -> impl Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send {
    futures_util::stream::once(async move { api.logs(&name, Some(options)) }).flatten()
}
