//! `shipit logs` on Docker hosts: each chosen host's serving replicas (and
//! its gateway, with `--gateway`) read at once and merged in time order;
//! or followed, picking up the replicas a deploy starts meanwhile, going on
//! without a host that stops answering.

use std::collections::HashSet;
use std::time::Duration;

use bollard::container::LogOutput;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::replicas::{serving_replicas, who};
use crate::cancel::Cancel;
use crate::deploy::Settings;
use crate::deploy::host::{self, Host};
use crate::engine::{Engine, LogQuery, OutputStream};
use crate::error::Error;
use crate::output::Output;
use crate::target::logs::{self, Line, LogsRequest};

/// How often `--follow` looks for new replicas, and how long a host may
/// take to answer that before it is taken for lost.
const LOOK_EVERY: Duration = Duration::from_secs(1);
const LOOK_LIMIT: Duration = Duration::from_secs(10);

pub(super) async fn logs(
    out: &Output,
    settings: &Settings,
    request: &LogsRequest,
) -> Result<(), Error> {
    let (hosts, unreachable) = host::connect_all(settings).await?;
    for u in &unreachable {
        out.warn(&format!(
            "{}: unreachable, its lines are missing: {}",
            u.name, u.why
        ));
    }
    let chosen = super::hosts::chosen(&hosts, request.host.as_deref())?;
    if request.follow {
        return follow(out, settings, request, &chosen).await;
    }
    let reads = chosen.iter().map(|h| read_host(h, settings, request));
    let mut lines = Vec::new();
    for (h, read) in chosen
        .iter()
        .zip(futures_util::future::join_all(reads).await)
    {
        match read {
            Ok(read) => lines.extend(read),
            Err(e) => out.warn(&format!("{}: its lines are missing: {e}", h.name)),
        }
    }
    for line in logs::merge(lines) {
        logs::print(out, &line);
    }
    Ok(())
}

/// The containers whose lines a host gives: the serving release's
/// replicas (every running one while nothing is known to serve), and the
/// gateway when asked.
async fn sources(
    engine: &Engine,
    settings: &Settings,
    request: &LogsRequest,
    serving_only: bool,
) -> Result<Vec<String>, Error> {
    let replicas = if serving_only {
        serving_replicas(engine, settings).await?
    } else {
        engine
            .containers(&settings.site.filter("replica"))
            .await?
            .into_iter()
            .filter(|c| c.running)
            .collect()
    };
    // `--role`: a replica made before roles existed is the web role's.
    let wanted = |c: &crate::engine::ContainerInfo| {
        request
            .role
            .as_deref()
            .is_none_or(|role| crate::deploy::process_of(c) == role)
    };
    let mut names: Vec<String> = replicas
        .into_iter()
        .filter(wanted)
        .map(|c| c.name)
        .collect();
    if request.gateway {
        names.push(settings.site.gateway());
    }
    Ok(names)
}

async fn read_host(
    h: &Host,
    settings: &Settings,
    request: &LogsRequest,
) -> Result<Vec<Line>, Error> {
    let names = sources(&h.engine, settings, request, true).await?;
    let query = LogQuery {
        since: request.since,
        until: request.until,
        tail: request.lines,
        follow: false,
    };
    let host = who(h, settings);
    let reads = names.iter().map(|name| {
        let host = host.clone();
        async move {
            let stream = h.engine.log_stream(name, query)?;
            let mut lines = Vec::new();
            read_stream(stream, request, &host, name, |line| lines.push(line)).await?;
            Ok::<_, Error>(lines)
        }
    });
    let mut lines = Vec::new();
    for read in futures_util::future::join_all(reads).await {
        lines.extend(read?);
    }
    Ok(lines)
}

/// Reads a container's log stream to its end, each kept line to `take`.
async fn read_stream(
    mut stream: OutputStream,
    request: &LogsRequest,
    host: &str,
    replica: &str,
    mut take: impl FnMut(Line),
) -> Result<(), Error> {
    let (mut out, mut err) = (String::new(), String::new());
    while let Some(chunk) = stream.next().await {
        let (pending, name, bytes) = match chunk {
            Ok(LogOutput::StdErr { message }) => (&mut err, "stderr", message),
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                (&mut out, "stdout", message)
            }
            Ok(LogOutput::StdIn { .. }) => continue,
            Err(e) => {
                return Err(Error::Deploy {
                    message: format!("the log of {replica} broke off: {e}"),
                });
            }
        };
        for raw in logs::complete_lines(pending, &String::from_utf8_lossy(&bytes)) {
            if let Some(line) = logs::line(request, &raw, host, replica, name) {
                take(line);
            }
        }
    }
    for (pending, name) in [(out, "stdout"), (err, "stderr")] {
        if let Some(line) = logs::line(request, &pending, host, replica, name) {
            take(line);
        }
    }
    Ok(())
}

/// `--follow`: every chosen host's running replicas, looked for again each
/// second; lines printed as they come until SIGINT or SIGTERM.
async fn follow(
    out: &Output,
    settings: &Settings,
    request: &LogsRequest,
    hosts: &[&Host],
) -> Result<(), Error> {
    let cancel = Cancel::install();
    let (tx, mut rx) = mpsc::unbounded_channel::<Line>();
    let mut watched: HashSet<(String, String)> = HashSet::new();
    let mut lost: HashSet<String> = HashSet::new();
    let mut first = true;
    while !cancel.is_set() {
        for h in hosts {
            if lost.contains(&h.name) {
                continue;
            }
            let found =
                tokio::time::timeout(LOOK_LIMIT, sources(&h.engine, settings, request, false))
                    .await;
            let names = match found {
                Ok(Ok(names)) => names,
                Ok(Err(e)) => {
                    out.warn(&format!("{}: lost, following the others: {e}", h.name));
                    lost.insert(h.name.clone());
                    continue;
                }
                Err(_) => {
                    out.warn(&format!(
                        "{}: lost (no answer within {} s), following the others",
                        h.name,
                        LOOK_LIMIT.as_secs()
                    ));
                    lost.insert(h.name.clone());
                    continue;
                }
            };
            for name in names {
                if !watched.insert((h.name.clone(), name.clone())) {
                    continue;
                }
                // Replicas there from the start: as asked (`--lines`,
                // `--since`); a new one: everything it writes.
                let query = LogQuery {
                    since: if first { request.since } else { None },
                    until: None,
                    tail: if first { request.lines } else { None },
                    follow: true,
                };
                let stream = h.engine.log_stream(&name, query)?;
                let (tx, request, host) = (tx.clone(), request.clone(), who(h, settings));
                tokio::spawn(async move {
                    let send = |line| {
                        let _ = tx.send(line);
                    };
                    let _ = read_stream(stream, &request, &host, &name, send).await;
                });
            }
        }
        first = false;
        if lost.len() == hosts.len() {
            return Err(Error::Deploy {
                message: "every host was lost: nothing left to follow".into(),
            });
        }
        let until = tokio::time::Instant::now() + LOOK_EVERY;
        loop {
            let event = tokio::select! {
                event = rx.recv() => event,
                _ = tokio::time::sleep_until(until) => break,
            };
            if let Some(line) = event {
                logs::print(out, &line);
            }
            if cancel.is_set() {
                break;
            }
        }
    }
    Ok(())
}
