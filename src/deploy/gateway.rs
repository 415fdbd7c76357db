//! The deploy gateway: HAProxy in front of a site's releases, switched live
//! through its runtime API (`docker exec` of socat on its admin socket), so
//! no switch reloads anything or touches a client connection: new servers
//! are added and must pass HAProxy's own health check, old ones are set to
//! drain (in-flight requests finish, no new ones arrive), then removed.
//!
//! The files in its volume (`haproxy.cfg`, `release.map`) are rewritten
//! after every switch, so a restarted gateway comes back serving the same
//! release; they are the record of which release serves. A release on trial
//! is reached through the same port only with a per-deploy token (the
//! candidate route): HAProxy holds the token in memory, never in a file.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::Settings;
use super::tls::Material;
use crate::engine::{ContainerSpec, Engine, Upload};
use crate::error::Error;
use crate::offline::GATEWAY_UID;

const DIR: &str = "/etc/shipit-gateway";
const CONF: &str = "haproxy.cfg";
const RELEASE_MAP: &str = "release.map";
const CANDIDATE_ACL: &str = "candidate.acl";
const CERT: &str = "tls/site.pem";
const SOCAT: [&str; 4] = [
    "/usr/bin/socat",
    "-t5",
    "stdio",
    "unix-connect:/tmp/admin.sock",
];
/// Label naming what the gateway container was created with (image, ports,
/// TLS): a change recreates it.
const SPEC: &str = "dev.shipit.gateway-spec";
pub const HEADER: &str = "X-Shipit-Release";
pub const CANDIDATE_HEADER: &str = "X-Shipit-Candidate";

/// What the gateway's files say it serves.
#[derive(Debug, Clone, PartialEq)]
pub struct Serving {
    pub release: u64,
    /// Replica (container) names.
    pub upstreams: Vec<String>,
}

/// A replica as the gateway reaches it: its name and `address:port` on the site's network.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub name: String,
    pub address: String,
}

/// haproxy.cfg with `upstreams` (container names) as the app's servers.
pub fn config(settings: &Settings, upstreams: &[String]) -> Result<String, Error> {
    let mut ctx = settings.ctx.clone();
    ctx.gateway_servers = upstreams
        .iter()
        .map(|n| (n.clone(), format!("{n}:{}", settings.port)))
        .collect();
    crate::render::gateway_config(&ctx)
}

fn release_map(release: u64) -> String {
    format!("release {release}\n")
}

pub fn parse(conf: &str, map: &str) -> Option<Serving> {
    let release = map
        .lines()
        .find_map(|l| l.trim().strip_prefix("release "))
        .and_then(|r| r.trim().parse().ok())?;
    let mut in_app = false;
    let mut upstreams = Vec::new();
    for line in conf.lines() {
        let trimmed = line.trim();
        if !line.starts_with(' ') && !trimmed.is_empty() && !trimmed.starts_with('#') {
            in_app = trimmed == "backend app";
        } else if in_app && let Some(rest) = trimmed.strip_prefix("server ") {
            upstreams.extend(rest.split_whitespace().next().map(String::from));
        }
    }
    Some(Serving { release, upstreams })
}

pub async fn serving(engine: &Engine, settings: &Settings) -> Result<Option<Serving>, Error> {
    let gateway = settings.site.gateway();
    if engine.container(&gateway).await?.is_none() {
        return Ok(None);
    }
    let conf = engine.download(&gateway, &format!("{DIR}/{CONF}")).await?;
    let map = engine
        .download(&gateway, &format!("{DIR}/{RELEASE_MAP}"))
        .await?;
    Ok(match (conf, map) {
        (Some(conf), Some(map)) => parse(
            &String::from_utf8_lossy(&conf),
            &String::from_utf8_lossy(&map),
        ),
        _ => None,
    })
}

/// Days the installed certificate has left (the key beside it is not read
/// into anything but this check's memory).
pub async fn certificate_days_left(engine: &Engine, settings: &Settings) -> Option<i64> {
    let pem = engine
        .download(&settings.site.gateway(), &format!("{DIR}/{CERT}"))
        .await
        .ok()??;
    super::tls::days_left(&pem, super::now())
}

/// The URL the gateway answers on, from here (plain HTTP).
pub fn url(settings: &Settings) -> String {
    format!("http://{}:{}", super::engine_host(), settings.gateway_port)
}

/// Where shipit's own checks reach the gateway, and how: over HTTPS with the
/// first server name (SNI, Host) when TLS is on, so they test the real path.
pub fn check_route(
    settings: &Settings,
    headers: Vec<(String, String)>,
) -> Result<(String, crate::http::Route), String> {
    let host = super::engine_host();
    match &settings.tls {
        Some(tls) => {
            let name = tls
                .server_names
                .iter()
                .find(|n| !n.starts_with("*."))
                .cloned()
                .unwrap_or_else(|| tls.server_names[0].replace("*.", "www."));
            Ok((
                format!("https://{name}:{}", tls.port),
                crate::http::Route {
                    connect: Some(format!("{host}:{}", tls.port)),
                    headers,
                    tls: crate::smoke::trust(&settings.smoke_ca)?,
                },
            ))
        }
        None => Ok((
            url(settings),
            crate::http::Route {
                connect: None,
                headers,
                tls: None,
            },
        )),
    }
}

/// One runtime API command. `secret` (a token, a key) is scrubbed from any
/// answer that is turned into an error.
async fn api(
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
async fn states(
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
async fn sessions(
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

const MAINT: u32 = 0x01;

/// Puts `servers` into `backend`, ready to take traffic once HAProxy's
/// health check passes: added, or re-addressed and readied when a server of
/// that name is still there in maintenance.
async fn put(
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
async fn wait_up(
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
async fn retire(
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
async fn forget(engine: &Engine, settings: &Settings, backend: &str, keep: &[String]) {
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

/// The servers for replica `names`, with their addresses on the site's network.
pub async fn servers(
    engine: &Engine,
    settings: &Settings,
    names: &[String],
) -> Result<Vec<Server>, String> {
    let network = settings.site.network();
    let mut out = Vec::new();
    for name in names {
        let info = engine
            .container(name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{name} disappeared"))?;
        let address = info
            .addresses
            .get(&network)
            .ok_or_else(|| format!("{name} has no address on {network}"))?;
        out.push(Server {
            name: name.clone(),
            address: format!("{address}:{}", settings.port),
        });
    }
    Ok(out)
}

/// A release on trial, reachable through the gateway with `token`.
pub struct Candidate {
    token: String,
    names: Vec<String>,
}

impl std::fmt::Debug for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Candidate")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl Candidate {
    /// The header that routes a request to the candidate.
    pub fn header(&self) -> (String, String) {
        (CANDIDATE_HEADER.to_string(), self.token.clone())
    }
}

/// 128 random bits, hex.
fn token() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").map_err(|e| format!("/dev/urandom: {e}"))?,
        &mut bytes,
    )
    .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Opens the candidate route to `servers` and waits for the gateway's
/// health check to pass for each.
pub async fn open_candidate(
    engine: &Engine,
    settings: &Settings,
    servers: &[Server],
    deadline: Duration,
) -> Result<Candidate, String> {
    let candidate = Candidate {
        token: token()?,
        names: servers.iter().map(|s| s.name.clone()).collect(),
    };
    let opened = async {
        put(engine, settings, "candidate", servers).await?;
        api(
            engine,
            settings,
            &format!("add acl {CANDIDATE_ACL} {}", candidate.token),
            Some(&candidate.token),
        )
        .await?;
        wait_up(engine, settings, "candidate", &candidate.names, deadline).await
    }
    .await;
    if let Err(why) = opened {
        close_candidate(engine, settings, &candidate).await;
        return Err(why);
    }
    Ok(candidate)
}

/// Forgets the token and takes the candidate servers out.
pub async fn close_candidate(engine: &Engine, settings: &Settings, candidate: &Candidate) {
    let _ = api(
        engine,
        settings,
        &format!("clear acl {CANDIDATE_ACL}"),
        None,
    )
    .await;
    retire(engine, settings, "candidate", &candidate.names, None).await;
    forget(engine, settings, "candidate", &[]).await;
}

/// Takes out whatever candidate route a killed run left open.
pub async fn clear_candidates(engine: &Engine, settings: &Settings) -> Result<Vec<String>, String> {
    let left: Vec<String> = states(engine, settings, "candidate")
        .await?
        .into_iter()
        .filter(|(_, _, admin)| admin & MAINT == 0)
        .map(|(n, _, _)| n)
        .collect();
    api(
        engine,
        settings,
        &format!("clear acl {CANDIDATE_ACL}"),
        None,
    )
    .await?;
    retire(engine, settings, "candidate", &left, None).await;
    forget(engine, settings, "candidate", &[]).await;
    Ok(left)
}

/// The HTTP status `path` answers on replica `name`, asked from inside the
/// gateway (so it works wherever the engine is); `None` when unreachable.
pub async fn probe(engine: &Engine, settings: &Settings, name: &str, path: &str) -> Option<u16> {
    let target = format!("TCP:{name}:{}", settings.port);
    let request = format!("GET {path} HTTP/1.0\r\nHost: {name}\r\n\r\n");
    let (code, output) = engine
        .exec_with_input(
            &settings.site.gateway(),
            &["/usr/bin/socat", "-t2", "stdio", &target],
            Some(request.as_bytes()),
        )
        .await
        .ok()?;
    if code != 0 {
        return None;
    }
    output
        .lines()
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Writes the gateway's files: what it serves, so a restart serves the same.
async fn record(
    engine: &Engine,
    settings: &Settings,
    upstreams: &[String],
    release: u64,
) -> Result<(), String> {
    let conf = config(settings, upstreams).map_err(|e| e.to_string())?;
    engine
        .upload(
            &settings.site.gateway(),
            DIR,
            &[
                (CONF, conf.as_bytes()),
                (RELEASE_MAP, release_map(release).as_bytes()),
            ],
        )
        .await
        .map_err(|e| e.to_string())
}

/// Points the running gateway at `to`, announcing `release`. New servers
/// must pass the gateway's health check before anything else changes; on a
/// failure before the old servers are drained nothing has changed.
pub async fn switch(
    engine: &Engine,
    settings: &Settings,
    to: &[Server],
    release: u64,
) -> Result<(), String> {
    let before: Vec<String> = states(engine, settings, "app")
        .await?
        .into_iter()
        .filter(|(_, _, admin)| admin & MAINT == 0)
        .map(|(n, _, _)| n)
        .collect();
    let names: Vec<String> = to.iter().map(|s| s.name.clone()).collect();
    forget(engine, settings, "app", &names).await;
    let added: Vec<String> = names
        .iter()
        .filter(|n| !before.contains(n))
        .cloned()
        .collect();
    let ready = async {
        put(engine, settings, "app", to).await?;
        wait_up(
            engine,
            settings,
            "app",
            &names,
            settings.health_timeout.min(Duration::from_secs(30)),
        )
        .await
    }
    .await;
    if let Err(why) = ready {
        retire(engine, settings, "app", &added, None).await;
        return Err(format!("{why}; the gateway still routes as before"));
    }
    api(
        engine,
        settings,
        &format!("set map {RELEASE_MAP} release {release}"),
        None,
    )
    .await?;
    let old: Vec<String> = before.into_iter().filter(|n| !names.contains(n)).collect();
    retire(engine, settings, "app", &old, Some(settings.drain)).await;
    record(engine, settings, &names, release).await?;
    verify(engine, settings, release).await
}

/// Waits until answers through the gateway announce `release`.
async fn verify(engine: &Engine, settings: &Settings, release: u64) -> Result<(), String> {
    let (base, route) = check_route(settings, Vec::new())?;
    let url = format!("{base}{}", settings.paths.health);
    let want = release.to_string();
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(15) {
        let (probe, route) = (url.clone(), route.clone());
        let result = tokio::task::spawn_blocking(move || {
            crate::http::request_via(&route, &probe, "GET", &[], b"", Duration::from_secs(2))
        })
        .await
        .map_err(|e| e.to_string())?;
        match result {
            Ok(r)
                if r.header(HEADER) == Some(want.as_str()) && (release == 0 || r.status == 200) =>
            {
                return Ok(());
            }
            Ok(r) => {
                last = format!(
                    "answered {} with release {}",
                    r.status,
                    r.header(HEADER).unwrap_or("(none)")
                )
            }
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = engine.logs(&settings.site.gateway(), 20).await;
    Err(format!(
        "the gateway did not serve release {release} within 15 s at {url}: {last}{}",
        tail(&logs)
    ))
}

fn spec_label(settings: &Settings) -> String {
    format!(
        "{}|{}|{}",
        settings.gateway_image,
        settings.gateway_port,
        settings
            .tls
            .as_ref()
            .map(|t| t.port.to_string())
            .unwrap_or_default()
    )
}

/// Creates and starts the gateway serving `upstreams` as `release` (none
/// and 0 before a first release); on failure nothing is left.
pub async fn create(
    engine: &Engine,
    settings: &Settings,
    upstreams: &[String],
    release: u64,
    tls: Option<&Material>,
) -> Result<(), String> {
    let site = &settings.site;
    let name = site.gateway();
    let fail = |e: Error| e.to_string();
    engine
        .ensure_volume(&site.gateway_volume(), &site.labels("gateway"))
        .await
        .map_err(fail)?;
    let mut labels = site.labels("gateway");
    labels.push((SPEC.into(), spec_label(settings)));
    let mut publish = vec![(8080, "0.0.0.0".into(), settings.gateway_port)];
    if let Some(t) = &settings.tls {
        publish.push((8443, "0.0.0.0".into(), t.port));
    }
    let spec = ContainerSpec {
        name: name.clone(),
        image: settings.gateway_image.clone(),
        entrypoint: Some(vec!["/usr/sbin/haproxy".into(), "-W".into(), "-db".into()]),
        cmd: Some(vec!["-f".into(), format!("{DIR}/{CONF}")]),
        labels,
        network: site.network(),
        user: Some(format!("{GATEWAY_UID}:{GATEWAY_UID}")),
        publish,
        volumes: vec![(site.gateway_volume(), DIR.into())],
        tmpfs: vec!["/tmp".into()],
        memory_bytes: Some(256 << 20),
        stop_timeout: Some(settings.drain.as_secs() as i64 + 5),
        restart: true,
        ..Default::default()
    };
    engine.remove_container(&name).await.map_err(fail)?;
    engine.create_container(&spec).await.map_err(fail)?;
    let conf = config(settings, upstreams).map_err(|e| e.to_string())?;
    let map = release_map(release);
    let started = async {
        let mut files = vec![
            Upload {
                name: CONF,
                bytes: conf.as_bytes(),
                mode: 0o644,
                owner: 0,
            },
            Upload {
                name: RELEASE_MAP,
                bytes: map.as_bytes(),
                mode: 0o644,
                owner: 0,
            },
            Upload {
                name: CANDIDATE_ACL,
                bytes: b"",
                mode: 0o644,
                owner: 0,
            },
        ];
        if let Some(material) = tls {
            files.push(Upload {
                name: CERT,
                bytes: material.pem(),
                mode: 0o400,
                owner: GATEWAY_UID,
            });
        }
        engine.upload_owned(&name, DIR, &files).await?;
        engine.start(&name).await
    }
    .await;
    if let Err(e) = started {
        let logs = engine.logs(&name, 20).await;
        let _ = engine.remove_container(&name).await;
        let message = e.to_string();
        let hint = if message.contains("allocated") || message.contains("in use") {
            "\na port the gateway publishes is already taken on the Docker host: stop what holds it, or set gateway.port (and gateway.tls.port)".to_string()
        } else {
            String::new()
        };
        return Err(format!(
            "the gateway did not start: {message}{hint}{}",
            tail(&logs)
        ));
    }
    if let Err(why) = verify(engine, settings, release).await {
        let _ = engine.remove_container(&name).await;
        return Err(why);
    }
    Ok(())
}

/// What `ensure` did to the gateway.
#[derive(Debug, Default, PartialEq)]
pub struct Ensured {
    pub created: bool,
    pub recreated: bool,
    pub reloaded: bool,
    pub rotated: bool,
}

/// Makes the running gateway match the configuration before a deploy, with
/// routing as it is: created when missing; recreated when its image or
/// ports changed; reloaded gracefully (idle connections are answered
/// `Connection: close`, never cut) when only its configuration changed; a
/// new certificate swapped in live.
pub async fn ensure(
    engine: &Engine,
    settings: &Settings,
    tls: Option<&Material>,
) -> Result<Ensured, String> {
    let name = settings.site.gateway();
    let mut done = Ensured::default();
    let info = engine.container(&name).await.map_err(|e| e.to_string())?;
    let current = serving(engine, settings)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or(Serving {
            release: 0,
            upstreams: Vec::new(),
        });
    let stale = info
        .as_ref()
        .is_some_and(|i| i.labels.get(SPEC) != Some(&spec_label(settings)));
    if info.is_none() || stale {
        create(engine, settings, &current.upstreams, current.release, tls).await?;
        done.created = info.is_none();
        done.recreated = stale;
        return Ok(done);
    }
    if info.as_ref().is_some_and(|i| !i.running) {
        engine.start(&name).await.map_err(|e| e.to_string())?;
        verify(engine, settings, current.release).await?;
    }
    let want = config(settings, &current.upstreams).map_err(|e| e.to_string())?;
    let have = engine
        .download(&name, &format!("{DIR}/{CONF}"))
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    if let Some(material) = tls {
        let installed = engine
            .download(&name, &format!("{DIR}/{CERT}"))
            .await
            .map_err(|e| e.to_string())?;
        if installed.as_deref() != Some(material.pem()) {
            rotate(
                engine,
                settings,
                material,
                installed.is_some() && have == want.as_bytes(),
            )
            .await?;
            done.rotated = true;
        }
    }
    if have != want.as_bytes() {
        reconfigure(engine, settings, &want, current.release).await?;
        done.reloaded = true;
    }
    Ok(done)
}

/// Loads a new configuration into the running gateway: checked by HAProxy
/// first (a configuration it rejects is never installed), then reloaded
/// gracefully.
pub async fn reconfigure(
    engine: &Engine,
    settings: &Settings,
    conf: &str,
    release: u64,
) -> Result<(), String> {
    let name = settings.site.gateway();
    let next = format!("{CONF}.next");
    engine
        .upload(&name, DIR, &[(&next, conf.as_bytes())])
        .await
        .map_err(|e| e.to_string())?;
    let (code, output) = engine
        .exec(
            &name,
            &[
                "/usr/sbin/haproxy",
                "-c",
                "-q",
                "-f",
                &format!("{DIR}/{next}"),
            ],
        )
        .await
        .map_err(|e| e.to_string())?;
    if code != 0 {
        return Err(format!(
            "HAProxy rejected the new gateway configuration (nothing was changed):\n{}",
            output.trim_end()
        ));
    }
    engine
        .upload(&name, DIR, &[(CONF, conf.as_bytes())])
        .await
        .map_err(|e| e.to_string())?;
    reload(engine, settings, release).await
}

/// Installs `material`: into the volume (for restarts) and, when the
/// gateway already serves TLS, into the running HAProxy (no reload).
async fn rotate(
    engine: &Engine,
    settings: &Settings,
    material: &Material,
    live: bool,
) -> Result<(), String> {
    let name = settings.site.gateway();
    engine
        .upload_owned(
            &name,
            DIR,
            &[Upload {
                name: CERT,
                bytes: material.pem(),
                mode: 0o400,
                owner: GATEWAY_UID,
            }],
        )
        .await
        .map_err(|e| e.to_string())?;
    if live {
        let pem = String::from_utf8_lossy(material.pem());
        let payload = format!("set ssl cert {CERT} <<\n{}\n", pem.trim_end());
        api(engine, settings, &payload, Some(&pem)).await?;
        api(engine, settings, &format!("commit ssl cert {CERT}"), None).await?;
    }
    Ok(())
}

/// A graceful reload of the gateway's configuration (the master starts new
/// workers on the same sockets; old ones finish and close idle connections
/// only after answering their next request with `Connection: close`).
async fn reload(engine: &Engine, settings: &Settings, release: u64) -> Result<(), String> {
    let name = settings.site.gateway();
    engine
        .signal(&name, "SIGUSR2")
        .await
        .map_err(|e| e.to_string())?;
    // The new worker answers the runtime API once it runs.
    let start = Instant::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    while start.elapsed() < Duration::from_secs(10) {
        if api(engine, settings, "show info", None).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    verify(engine, settings, release).await
}

pub fn tail(logs: &str) -> String {
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(20);
    format!(
        "\nlast log lines:\n{}",
        lines[start..]
            .iter()
            .map(|l| format!("  | {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_serves() {
        let conf = "global\n    x\n\nbackend app\n    balance roundrobin\n    server a-r2-1 a-r2-1:8080\n    server a-r2-2 a-r2-2:8080\n\nbackend candidate\n    server z z:1\n";
        assert_eq!(
            parse(conf, "release 2\n"),
            Some(Serving {
                release: 2,
                upstreams: vec!["a-r2-1".into(), "a-r2-2".into()]
            })
        );
        assert_eq!(parse(conf, ""), None);
    }

    #[test]
    fn candidate_token_is_never_in_debug_output() {
        let c = Candidate {
            token: token().unwrap(),
            names: vec!["x".into()],
        };
        assert_eq!(c.token.len(), 32);
        assert!(!format!("{c:?}").contains(&c.token));
    }
}
