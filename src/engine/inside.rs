//! What runs and lives inside a container: its logs, files copied in and
//! out (through the engine's archive API), and exec, one-shot or as a
//! conversation.

use std::time::Duration;

use bollard::query_parameters::{
    DownloadFromContainerOptions, LogsOptions, UploadToContainerOptions,
};
use futures_util::StreamExt;

use super::Engine;
use super::runtime::{failed, is_status};
use crate::error::Error;

impl Engine {
    /// The last `lines` lines the container wrote (stdout and stderr).
    pub async fn logs(&self, name: &str, lines: usize) -> String {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        let Ok(api) = self.api() else {
            return String::new();
        };
        let mut stream = api.logs(name, Some(options));
        let mut out = String::new();
        // Within the call limit: what came by then, if the network went silent.
        let _ = tokio::time::timeout(super::CALL_LIMIT, async {
            while let Some(Ok(chunk)) = stream.next().await {
                out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            }
        })
        .await;
        out
    }

    /// Writes files into `dir` of a container (running or not) as one tar,
    /// owned by root and readable by all.
    pub async fn upload(
        &self,
        container: &str,
        dir: &str,
        files: &[(&str, &[u8])],
    ) -> Result<(), Error> {
        let files: Vec<Upload> = files
            .iter()
            .map(|(name, bytes)| Upload {
                name,
                bytes,
                mode: 0o644,
                owner: 0,
            })
            .collect();
        self.upload_owned(container, dir, &files).await
    }

    /// Writes files into `dir` of a container with their own mode and owner
    /// (uid and gid). The engine extracts the tar as it is: the bytes go
    /// straight into the container's filesystem or volume.
    pub async fn upload_owned(
        &self,
        container: &str,
        dir: &str,
        files: &[Upload<'_>],
    ) -> Result<(), Error> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut dirs: Vec<String> = Vec::new();
        for file in files {
            // Parent directories inside the tar, owned like the file.
            let mut parent = String::new();
            for part in file
                .name
                .split('/')
                .rev()
                .skip(1)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                parent = if parent.is_empty() {
                    part.to_string()
                } else {
                    format!("{parent}/{part}")
                };
                if dirs.contains(&parent) {
                    continue;
                }
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                header.set_mode(0o750);
                header.set_uid(file.owner);
                header.set_gid(file.owner);
                header.set_mtime(0);
                header.set_cksum();
                builder
                    .append_data(&mut header, &parent, std::io::empty())
                    .map_err(|e| failed(self, format!("pack {parent}"), e))?;
                dirs.push(parent.clone());
            }
            let mut header = tar::Header::new_gnu();
            header.set_size(file.bytes.len() as u64);
            header.set_mode(file.mode);
            header.set_uid(file.owner);
            header.set_gid(file.owner);
            header.set_mtime(0);
            header.set_cksum();
            builder
                .append_data(&mut header, file.name, file.bytes)
                .map_err(|e| failed(self, format!("pack {}", file.name), e))?;
        }
        let tar = builder
            .into_inner()
            .map_err(|e| failed(self, "pack files".into(), e))?;
        let options = UploadToContainerOptions {
            path: dir.to_string(),
            ..Default::default()
        };
        self.api()?
            .upload_to_container(container, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(|e| failed(self, format!("write {dir} in {container}"), e))
    }

    /// One file from a container, `None` when it does not exist.
    pub async fn download(&self, container: &str, path: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self
            .download_all(container, path)
            .await?
            .and_then(|files| files.into_iter().next())
            .map(|(_, bytes)| bytes))
    }

    /// The files at `path` in a container (a file, or every file below a
    /// directory), each named relative to `path`'s parent, in the engine's
    /// order; `None` when `path` does not exist.
    pub async fn download_all(
        &self,
        container: &str,
        path: &str,
    ) -> Result<Option<Vec<(String, Vec<u8>)>>, Error> {
        let options = DownloadFromContainerOptions {
            path: path.to_string(),
        };
        let mut stream = self
            .api()?
            .download_from_container(container, Some(options));
        let mut tar = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => tar.extend_from_slice(&bytes),
                Err(e) if is_status(&e, 404) => return Ok(None),
                Err(e) => return Err(failed(self, format!("read {path} in {container}"), e)),
            }
        }
        let unpack = |e: std::io::Error| failed(self, format!("unpack {path}"), e);
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut files = Vec::new();
        for entry in archive.entries().map_err(unpack)? {
            let mut entry = entry.map_err(unpack)?;
            if entry.header().entry_type().is_file() {
                let name = entry.path().map_err(unpack)?.display().to_string();
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(unpack)?;
                files.push((name, bytes));
            }
        }
        Ok(Some(files))
    }

    /// Starts `cmd` in a running container with its input and output attached.
    pub async fn exec_session(&self, container: &str, cmd: &[&str]) -> Result<ExecSession, Error> {
        let what = || format!("exec {} in {container}", cmd[0]);
        let created = self
            .api()?
            .create_exec(
                container,
                bollard::exec::CreateExecOptions {
                    cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    attach_stdin: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| failed(self, what(), e))?;
        match self
            .api()?
            .start_exec(&created.id, None)
            .await
            .map_err(|e| failed(self, what(), e))?
        {
            bollard::exec::StartExecResults::Attached { output, input } => Ok(ExecSession {
                id: created.id,
                input,
                output,
            }),
            bollard::exec::StartExecResults::Detached => Err(failed(self, what(), "detached")),
        }
    }

    /// Runs a command in a running container; its exit code and output.
    pub async fn exec(&self, container: &str, cmd: &[&str]) -> Result<(i64, String), Error> {
        self.exec_with_input(container, cmd, b"").await
    }

    /// Runs a command in a running container with `input` on its standard
    /// input (closed after it); its exit code and output. The input never
    /// appears in the command line, the engine's records or any log.
    pub async fn exec_with_input(
        &self,
        container: &str,
        cmd: &[&str],
        input: &[u8],
    ) -> Result<(i64, String), Error> {
        let what = || format!("exec {} in {container}", cmd[0]);
        let mut session = self.exec_session(container, cmd).await?;
        if !input.is_empty() {
            session
                .send(input)
                .await
                .map_err(|e| failed(self, what(), e))?;
        }
        session.close_input().await;
        let output = session.read_to_end().await;
        let inspect = self
            .api()?
            .inspect_exec(&session.id)
            .await
            .map_err(|e| failed(self, what(), e))?;
        Ok((inspect.exit_code.unwrap_or(-1), output))
    }
}

/// A process running in a container with its standard input and output
/// attached, for a conversation (a CLI that answers one line at a time).
pub struct ExecSession {
    id: String,
    input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    output: std::pin::Pin<
        Box<
            dyn futures_util::Stream<
                    Item = Result<bollard::container::LogOutput, bollard::errors::Error>,
                > + Send,
        >,
    >,
}

impl ExecSession {
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        use tokio::io::AsyncWriteExt;
        self.input
            .write_all(bytes)
            .await
            .map_err(|e| e.to_string())?;
        self.input.flush().await.map_err(|e| e.to_string())
    }

    /// Closes the process's standard input (end of file).
    pub async fn close_input(&mut self) {
        use tokio::io::AsyncWriteExt;
        let _ = self.input.shutdown().await;
    }

    /// All the output until the process ends.
    async fn read_to_end(&mut self) -> String {
        let mut text = String::new();
        while let Some(Ok(chunk)) = self.output.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        text
    }

    /// Output until it ends with `suffix` (which is left off), within `limit`.
    pub async fn read_until(&mut self, suffix: &str, limit: Duration) -> Result<String, String> {
        let mut text = String::new();
        let read = async {
            while let Some(chunk) = self.output.next().await {
                let chunk = chunk.map_err(|e| e.to_string())?;
                text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                if text.ends_with(suffix) {
                    text.truncate(text.len() - suffix.len());
                    return Ok(());
                }
            }
            Err("the session ended".to_string())
        };
        match tokio::time::timeout(limit, read).await {
            Ok(Ok(())) => Ok(text),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("no answer within {} s", limit.as_secs())),
        }
    }
}

/// A file to upload, with its mode and owner (uid = gid).
pub struct Upload<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
    pub mode: u32,
    pub owner: u64,
}
