//! HAProxy's runtime API, reached by `docker exec` of socat on the
//! gateway's admin socket. One interactive session per gateway is kept open
//! for the whole run (a `docker exec` costs 150-300 ms; a command on an open
//! session about a millisecond); answers are checked.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use super::{SOCAT, Server};
use crate::deploy::Settings;
use crate::engine::{Engine, ExecSession};

type Shared = Arc<tokio::sync::Mutex<Option<ExecSession>>>;

/// The open session of each gateway (by engine and container).
static SESSIONS: LazyLock<Mutex<HashMap<String, Shared>>> = LazyLock::new(Default::default);

const PROMPT: &str = "\n> ";

/// Sends one command line and returns its answer, opening (or reopening,
/// once, when HAProxy closed an idle or reloaded session) the session.
async fn converse(engine: &Engine, gateway: &str, command: &str) -> Result<String, String> {
    let key = format!("{}|{gateway}", engine.address);
    let shared = SESSIONS
        .lock()
        .map_err(|_| "the gateway session lock is poisoned".to_string())?
        .entry(key)
        .or_default()
        .clone();
    let mut slot = shared.lock().await;
    let mut last = String::new();
    for _ in 0..2 {
        if slot.is_none() {
            let mut session = engine
                .exec_session(gateway, &SOCAT)
                .await
                .map_err(|e| e.to_string())?;
            session.send(b"prompt\n").await?;
            session.read_until(PROMPT, Duration::from_secs(10)).await?;
            *slot = Some(session);
        }
        let Some(session) = slot.as_mut() else {
            continue;
        };
        let answer = match session.send(format!("{command}\n").as_bytes()).await {
            Ok(()) => session.read_until(PROMPT, Duration::from_secs(20)).await,
            Err(e) => Err(e),
        };
        match answer {
            Ok(text) => return Ok(text),
            // Closed before answering: the command was not run; once more on a new session.
            Err(e) if e.contains("ended") || e.contains("pipe") || e.contains("reset") => {
                *slot = None;
                last = e;
            }
            Err(e) => {
                *slot = None;
                return Err(e);
            }
        }
    }
    Err(format!("the gateway's runtime API session closed: {last}"))
}

/// One runtime API command. `secret` (a token, a key) is scrubbed from any
/// answer that is turned into an error.
pub(super) async fn api(
    engine: &Engine,
    settings: &Settings,
    command: &str,
    secret: Option<&str>,
) -> Result<String, String> {
    let gateway = settings.site.gateway();
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
    // One command per line: HAProxy answers each with its own prompt.
    let mut output = String::new();
    for part in command.split("; ") {
        let answer = converse(engine, &gateway, part).await.map_err(|e| {
            format!(
                "the gateway's runtime API did not answer `{verb}`: {}",
                scrub(&e)
            )
        })?;
        output.push_str(&answer);
    }
    if command.starts_with("show ") {
        // Tables, not verdicts: a server's check text may say "invalid".
        return Ok(output);
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

/// A server as `show servers state` describes it.
pub(super) struct ServerState {
    pub(super) name: String,
    /// 2: running (up).
    pub(super) op: u32,
    /// Bit flags; `MAINT` when in maintenance.
    pub(super) admin: u32,
    /// The last health check's result: 3 when it passed (0 before any ran).
    pub(super) check: u32,
}

impl ServerState {
    pub(super) fn in_maintenance(&self) -> bool {
        self.admin & MAINT != 0
    }

    /// Up, and its own health check has run and passed.
    fn checked_up(&self) -> bool {
        self.op == 2 && self.check == 3
    }
}

/// The servers of `backend`.
pub(super) async fn states(
    engine: &Engine,
    settings: &Settings,
    backend: &str,
) -> Result<Vec<ServerState>, String> {
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
            (f.len() > 11 && f[1] == backend).then(|| ServerState {
                name: f[3].to_string(),
                op: f[5].parse().unwrap_or(0),
                admin: f[6].parse().unwrap_or(0),
                check: f[11].parse().unwrap_or(0),
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
        let commands = if present.iter().any(|s| s.name == server.name) {
            format!(
                "set server {id} addr {address} port {port}; enable health {id}; set server {id} state ready"
            )
        } else {
            // `pool-max-conn -1`: a server added at run time keeps no idle
            // connections otherwise (HAProxy 2.6's default for dynamic
            // servers is 0, for configured ones -1), so every request opened
            // a new connection to the replica: measured, 25,712 connects for
            // as many requests, 8,554 req/s; with it, 40 and 21,924 req/s.
            // `downinter 100ms`: a server added at run time is checked first
            // at its down interval; with 250 ms, a deploy waited ~300 ms for
            // that first check, now ~100 ms.
            format!(
                "add server {id} {address}:{port} check inter 1s fastinter 250ms downinter 100ms fall 2 rise 1 pool-purge-delay 1s pool-max-conn -1; enable health {id}; enable server {id}"
            )
        };
        api(engine, settings, &commands, None).await?;
    }
    Ok(())
}

/// Waits until HAProxy's own health check has run and passed for every one
/// of `servers` (a newly enabled server counts as up before any check ran),
/// or, for a server whose check already passed in this run, until it is up.
pub(super) async fn wait_up(
    engine: &Engine,
    settings: &Settings,
    backend: &str,
    servers: &[Server],
    deadline: Duration,
) -> Result<(), String> {
    let start = Instant::now();
    let check = format!("the gateway's health check (GET {})", settings.paths.health);
    let list = |names: &[&Server]| {
        names
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    loop {
        let states = states(engine, settings, backend).await?;
        let down: Vec<&Server> = servers
            .iter()
            .filter(|n| {
                !states.iter().any(|s| {
                    s.name == n.name && (s.checked_up() || (n.gateway_checked && s.op == 2))
                })
            })
            .collect();
        if down.is_empty() {
            // Up without a check here: the engine still says they run.
            let checked = servers.iter().filter(|s| s.gateway_checked);
            return match first_exited(engine, checked).await {
                Some((name, why)) => Err(format!("{name} {why} after the gateway's check passed")),
                None => Ok(()),
            };
        }
        // A replica that exited (or was restarted by its policy) will not
        // pass the check by waiting: fail now, not at the deadline.
        if let Some((name, why)) = first_exited(engine, down.iter().copied()).await {
            return Err(format!("{name} {why} while {check} waited for it"));
        }
        // The engine already called these healthy: a check that keeps
        // failing from the gateway (after the first ones) will not pass.
        // Without a HEALTHCHECK, the service may still be starting.
        let failing: Vec<&Server> = down
            .iter()
            .copied()
            .filter(|n| {
                n.engine_checked
                    && states
                        .iter()
                        .any(|s| s.name == n.name && s.op == 0 && s.check == 2)
            })
            .collect();
        if !failing.is_empty() && start.elapsed() > Duration::from_secs(3) {
            let why = check_detail(engine, settings, backend, &failing[0].name).await;
            return Err(format!("{check} fails for {}{why}", list(&failing)));
        }
        if start.elapsed() > deadline {
            let why = check_detail(engine, settings, backend, &down[0].name).await;
            return Err(format!(
                "{check} did not pass for {} within {} s{why}",
                list(&down),
                deadline.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first of `servers` whose replica exited or was restarted, and how.
async fn first_exited<'s>(
    engine: &Engine,
    servers: impl Iterator<Item = &'s Server>,
) -> Option<(&'s str, String)> {
    for server in servers {
        if let Ok(Some(info)) = engine.container(&server.name).await
            && let Some(why) = crate::deploy::replicas::crashed(&info)
        {
            return Some((&server.name, why.trim_start_matches("it ").to_string()));
        }
    }
    None
}

/// HAProxy's words for a server's last check (`: Layer4 connection problem`).
async fn check_detail(engine: &Engine, settings: &Settings, backend: &str, name: &str) -> String {
    let Ok(text) = api(engine, settings, "show stat", None).await else {
        return String::new();
    };
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return String::new();
    };
    let columns: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
    let at = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(status), Some(desc)) = (at("check_status"), at("check_desc")) else {
        return String::new();
    };
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&backend) && f.get(1) == Some(&name))
        .map(|f| {
            format!(
                ": {} ({})",
                f.get(desc).copied().unwrap_or_default(),
                f.get(status).copied().unwrap_or_default()
            )
        })
        .unwrap_or_default()
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
        .filter(|s| s.in_maintenance() && !keep.contains(&s.name))
        .map(|s| format!("del server {backend}/{}", s.name))
        .collect();
    if !commands.is_empty() {
        let _ = api(engine, settings, &commands.join("; "), None).await;
    }
}
