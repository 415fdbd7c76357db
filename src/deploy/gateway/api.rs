//! HAProxy's runtime API, reached by `docker exec` of socat on the
//! gateway's admin socket: one command line per call, answers checked.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{SOCAT, Server};
use crate::deploy::Settings;
use crate::engine::Engine;

/// One runtime API command. `secret` (a token, a key) is scrubbed from any
/// answer that is turned into an error.
pub(super) async fn api(
    engine: &Engine,
    settings: &Settings,
    command: &str,
    secret: Option<&str>,
) -> Result<String, String> {
    let gateway = settings.site.gateway();
    let (code, output) = engine
        .exec_with_input(&gateway, &SOCAT, Some(format!("{command}\n").as_bytes()))
        .await
        .map_err(|e| e.to_string())?;
    let verb: String = command
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let scrub = |text: &str| -> String {
        text.lines()
            .filter(|l| !l.contains("-----"))
            .map(|l| match secret {
                Some(s) if !s.is_empty() => l.replace(s, "[redacted]"),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ")
            .trim()
            .to_string()
    };
    if code != 0 {
        return Err(format!(
            "the gateway's runtime API did not answer `{verb}` (exit {code}): {}",
            scrub(&output)
        ));
    }
    let lower = output.to_ascii_lowercase();
    let refused = [
        "unknown",
        "no such",
        "require",
        "cannot",
        "can't",
        "error",
        "failed",
        "not found",
        "invalid",
        "already exists",
        "unable",
        "denied",
    ];
    if refused.iter().any(|w| lower.contains(w)) {
        return Err(format!("the gateway refused `{verb}`: {}", scrub(&output)));
    }
    Ok(output)
}

/// `(name, operational state, administrative state)` of a backend's servers.
pub(super) async fn states(
    engine: &Engine,
    settings: &Settings,
    backend: &str,
) -> Result<Vec<(String, u32, u32)>, String> {
    let text = api(
        engine,
        settings,
        &format!("show servers state {backend}"),
        None,
    )
    .await?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 6 && f[1] == backend).then(|| {
                (
                    f[3].to_string(),
                    f[5].parse().unwrap_or(0),
                    f[6].parse().unwrap_or(0),
                )
            })
        })
        .collect())
}

/// Current sessions of each server of `backend`.
pub(super) async fn sessions(
    engine: &Engine,
    settings: &Settings,
    backend: &str,
) -> Result<HashMap<String, u64>, String> {
    let text = api(engine, settings, "show stat", None).await?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.len() > 4 && f[0] == backend && f[1] != "BACKEND" && f[1] != "FRONTEND")
                .then(|| (f[1].to_string(), f[4].parse().unwrap_or(0)))
        })
        .collect())
}

pub(super) const MAINT: u32 = 0x01;

/// Puts `servers` into `backend`, ready to take traffic once HAProxy's
/// health check passes: added, or re-addressed and readied when a server of
/// that name is still there in maintenance.
pub(super) async fn put(
    engine: &Engine,
    settings: &Settings,
    backend: &str,
    servers: &[Server],
) -> Result<(), String> {
    let present = states(engine, settings, backend).await?;
    for server in servers {
        let (address, port) = server
            .address
            .rsplit_once(':')
            .ok_or_else(|| format!("{} has no address", server.name))?;
        let id = format!("{backend}/{}", server.name);
        let commands = if present.iter().any(|(n, _, _)| *n == server.name) {
            format!(
                "set server {id} addr {address} port {port}; enable health {id}; set server {id} state ready"
            )
        } else {
            format!(
                "add server {id} {address}:{port} check inter 1s fall 2 rise 1 pool-purge-delay 1s; enable health {id}; enable server {id}"
            )
        };
        api(engine, settings, &commands, None).await?;
    }
    Ok(())
}

/// Waits until HAProxy's health check sees every one of `names` up.
pub(super) async fn wait_up(
    engine: &Engine,
    settings: &Settings,
    backend: &str,
    names: &[String],
    deadline: Duration,
) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let states = states(engine, settings, backend).await?;
        let down: Vec<&String> = names
            .iter()
            .filter(|n| !states.iter().any(|(s, op, _)| s == *n && *op == 2))
            .collect();
        if down.is_empty() {
            return Ok(());
        }
        if start.elapsed() > deadline {
            return Err(format!(
                "the gateway's health check ({} {}) did not pass for {} within {} s",
                "GET",
                settings.paths.health,
                down.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                deadline.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Takes `names` out of `backend`: drained first when `drain` is set (no new
/// requests; in-flight ones finish, up to `drain`), then removed, or left in
/// maintenance when HAProxy keeps them (servers from the file).
pub(super) async fn retire(
    engine: &Engine,
    settings: &Settings,
    backend: &str,
    names: &[String],
    drain: Option<Duration>,
) {
    if names.is_empty() {
        return;
    }
    let ids: Vec<String> = names.iter().map(|n| format!("{backend}/{n}")).collect();
    if let Some(limit) = drain {
        let commands: Vec<String> = ids
            .iter()
            .map(|id| format!("set server {id} state drain"))
            .collect();
        let _ = api(engine, settings, &commands.join("; "), None).await;
        let start = Instant::now();
        while start.elapsed() < limit {
            match sessions(engine, settings, backend).await {
                Ok(s) if names.iter().all(|n| s.get(n).copied().unwrap_or(0) == 0) => break,
                Err(_) => break,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    let commands: Vec<String> = ids
        .iter()
        .map(|id| format!("set server {id} state maint; shutdown sessions server {id}"))
        .collect();
    let _ = api(engine, settings, &commands.join("; "), None).await;
}

/// Deletes the servers of `backend` left in maintenance that are not in
/// `keep`. HAProxy refuses while a server still has idle connections (they
/// are purged within a second) and for servers from the file, which stay in
/// maintenance until the next reload: both are harmless and retried at the
/// next switch.
pub(super) async fn forget(engine: &Engine, settings: &Settings, backend: &str, keep: &[String]) {
    let Ok(states) = states(engine, settings, backend).await else {
        return;
    };
    let commands: Vec<String> = states
        .iter()
        .filter(|(n, _, admin)| admin & MAINT != 0 && !keep.contains(n))
        .map(|(n, _, _)| format!("del server {backend}/{n}"))
        .collect();
    if !commands.is_empty() {
        let _ = api(engine, settings, &commands.join("; "), None).await;
    }
}
