//! `shipit accessory backup | restore`: the accessory's own backup command
//! run inside it, its output streamed to a file on this machine (written
//! to a temporary file beside it, synced, renamed: a whole dump or none),
//! and a dump streamed back into its restore command.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cancel::Cancel;
use crate::config::model::Accessory;
use crate::deploy::Settings;
use crate::deploy::host::Host;
use crate::error::Error;
use crate::output::Output;

pub(super) async fn backup(
    out: &Output,
    settings: &Settings,
    h: &Host,
    name: &str,
    a: &Accessory,
    output: Option<&Path>,
) -> Result<(), Error> {
    let command = commands(settings, name, a)?.0;
    let container = running(settings, h, name).await?;
    let path = match output {
        Some(p) => p.to_path_buf(),
        None => PathBuf::from(format!(
            "{name}-{}-{}.dump",
            settings.site.environment,
            crate::clock::rfc3339(crate::clock::now()).replace(':', "")
        )),
    };
    if path.exists() {
        return Err(Error::Usage(format!(
            "{} exists: a backup never replaces a file (name another with --output)",
            path.display()
        )));
    }
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .ok_or_else(|| Error::Usage(format!("{}: not a file name", path.display())))?;
    let partial = path.with_file_name(format!(".{file_name}.partial-{}", std::process::id()));
    // A dump holds the data: readable by this user only.
    let mut file = std::fs::OpenOptions::new()
        .mode(0o600)
        .write(true)
        .create_new(true)
        .open(&partial)
        .map_err(|e| Error::io(&partial, e))?;
    out.status(
        "backing up",
        &format!("{name} on {} into {}", h.name, path.display()),
    );
    let cancel = Cancel::install();
    let start = Instant::now();
    let bytes = Arc::new(AtomicU64::new(0));
    let ticker = ticker(out, "written", bytes.clone());
    let result = async {
        let mut session = h.engine.exec_attached(&container, &command, false, false).await?;
        let mut errors = String::new();
        loop {
            let chunk = tokio::select! {
                chunk = session.output.next() => chunk,
                _ = interrupted(&cancel) => return Err(Error::Exited { code: 128 + cancel.signal() }),
            };
            match chunk {
                None => break,
                Some(Ok(LogOutput::StdOut { message })) => {
                    file.write_all(&message).map_err(|e| Error::io(&partial, e))?;
                    bytes.fetch_add(message.len() as u64, Ordering::Relaxed);
                }
                Some(Ok(other)) => {
                    let text = String::from_utf8_lossy(&other.into_bytes()).into_owned();
                    out.detail(text.trim_end());
                    errors.push_str(&text);
                }
                Some(Err(e)) => {
                    return Err(Error::Deploy {
                        message: format!("the connection to {} broke off: {e}", h.name),
                    });
                }
            }
        }
        let code = h
            .engine
            .exec_exit_code(session.exec.as_deref().unwrap_or_default())
            .await?;
        if code != 0 {
            return Err(Error::Deploy {
                message: format!(
                    "the backup command exited with code {code}{}",
                    last_words(&errors)
                ),
            });
        }
        file.sync_all().map_err(|e| Error::io(&partial, e))?;
        Ok(())
    }
    .await;
    ticker.abort();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        if let Error::Exited { .. } = e {
            out.warn("interrupted: no backup file was written");
        }
        return Err(e);
    }
    std::fs::rename(&partial, &path).map_err(|e| Error::io(&path, e))?;
    // The rename itself, durable.
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    report(
        out,
        "backed up",
        name,
        h,
        &path,
        bytes.load(Ordering::Relaxed),
        start.elapsed(),
    );
    Ok(())
}

pub(super) async fn restore(
    out: &Output,
    settings: &Settings,
    h: &Host,
    name: &str,
    a: &Accessory,
    input: &Path,
) -> Result<(), Error> {
    let command = commands(settings, name, a)?.1;
    let mut file = tokio::fs::File::open(input)
        .await
        .map_err(|e| Error::io(input, e))?;
    let container = running(settings, h, name).await?;
    out.status(
        "restoring",
        &format!("{name} on {} from {}", h.name, input.display()),
    );
    let cancel = Cancel::install();
    let start = Instant::now();
    let bytes = Arc::new(AtomicU64::new(0));
    let ticker = ticker(out, "sent", bytes.clone());
    let result = async {
        let session = h
            .engine
            .exec_attached(&container, &command, true, false)
            .await?;
        let exec = session.exec.clone().unwrap_or_default();
        let (mut output, mut sink) = (session.output, session.input);
        let sent = bytes.clone();
        let send = async move {
            let mut buffer = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buffer).await?;
                if n == 0 {
                    break;
                }
                sink.write_all(&buffer[..n]).await?;
                sent.fetch_add(n as u64, Ordering::Relaxed);
            }
            sink.flush().await?;
            sink.shutdown().await
        };
        let read = async {
            let mut said = String::new();
            while let Some(chunk) = output.next().await {
                match chunk {
                    Ok(chunk) => {
                        let text = String::from_utf8_lossy(&chunk.into_bytes()).into_owned();
                        out.detail(text.trim_end());
                        said.push_str(&text);
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(said)
        };
        let both = async { tokio::join!(send, read) };
        let (sent, said) = tokio::select! {
            both = both => both,
            _ = interrupted(&cancel) => return Err(Error::Exited { code: 128 + cancel.signal() }),
        };
        let said = said.map_err(|e| Error::Deploy {
            message: format!("the connection to {} broke off: {e}", h.name),
        })?;
        let code = h.engine.exec_exit_code(&exec).await?;
        if let Err(e) = sent
            && code == 0
        {
            return Err(Error::Deploy {
                message: format!("the dump could not be sent whole: {e}"),
            });
        }
        if code != 0 {
            return Err(Error::Deploy {
                message: format!(
                    "the restore command exited with code {code}{}",
                    last_words(&said)
                ),
            });
        }
        Ok(())
    }
    .await;
    ticker.abort();
    if let Err(Error::Exited { .. }) = &result {
        out.warn(&format!(
            "interrupted: the restore into {name} stopped partway; what it had written stays (run the restore again)"
        ));
    }
    result?;
    report(
        out,
        "restored",
        name,
        h,
        input,
        bytes.load(Ordering::Relaxed),
        start.elapsed(),
    );
    Ok(())
}

/// The backup and restore commands, or why there are none.
fn commands(
    settings: &Settings,
    name: &str,
    a: &Accessory,
) -> Result<(Vec<String>, Vec<String>), Error> {
    if a.backup.command.is_empty() {
        return Err(Error::Usage(format!(
            "accessory {name} of {} has no backup commands: set [accessories.{name}.backup] command and restore",
            settings.site.environment
        )));
    }
    Ok((a.backup.command.clone(), a.backup.restore.clone()))
}

/// The accessory's container, when it is running.
async fn running(settings: &Settings, h: &Host, name: &str) -> Result<String, Error> {
    let container = settings.site.accessory(name);
    match h.engine.container(&container).await? {
        Some(info) if info.running => Ok(container),
        _ => Err(Error::Deploy {
            message: format!(
                "accessory {name} is not running on {}: `shipit accessory boot {} {name}`",
                h.name, settings.site.environment
            ),
        }),
    }
}

/// Resolves when a signal has arrived.
async fn interrupted(cancel: &Cancel) {
    while !cancel.is_set() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Says how far a long transfer has got, every 5 s.
fn ticker(out: &Output, verb: &'static str, bytes: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    let out = out.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            out.status(
                verb,
                &format!("{} so far", megabytes(bytes.load(Ordering::Relaxed))),
            );
        }
    })
}

fn report(out: &Output, verb: &str, name: &str, h: &Host, path: &Path, bytes: u64, took: Duration) {
    let seconds = took.as_secs_f64();
    if out.is_json() {
        out.json(&serde_json::json!({
            "result": verb,
            "accessory": name,
            "host": h.name,
            "file": path.display().to_string(),
            "bytes": bytes,
            "seconds": (seconds * 1000.0).round() / 1000.0,
        }));
    }
    out.status(
        verb,
        &format!(
            "{name} on {}: {} in {seconds:.1} s ({}/s), {}",
            h.name,
            megabytes(bytes),
            megabytes((bytes as f64 / seconds.max(0.001)) as u64),
            path.display()
        ),
    );
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The end of what a failed command said, for its error.
fn last_words(said: &str) -> String {
    let lines: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    format!(": {}", lines[lines.len().saturating_sub(5)..].join("\n"))
}
