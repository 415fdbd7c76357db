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

mod api;
mod candidate;
mod lifecycle;
pub mod maintenance;

use std::time::{Duration, Instant};

pub use candidate::{Candidate, clear_candidates, close_candidate, open_candidate};
pub use lifecycle::{Ensured, create, ensure, reconfigure};

use super::Settings;
use crate::engine::Engine;
use crate::error::Error;
use api::{api, forget, put, retire, states, wait_up};

const DIR: &str = "/etc/shipit-gateway";
const CONF: &str = "haproxy.cfg";
const RELEASE_MAP: &str = "release.map";
const CANDIDATE_ACL: &str = "candidate.acl";
/// Tokens of shipit's own checks, which are told the serving release (the
/// public is not): held in HAProxy's memory while a check runs.
const PROBE_ACL: &str = "probe.acl";
/// Maintenance mode's state and page (`maintenance.rs`).
const MAINTENANCE_MAP: &str = "maintenance.map";
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
pub const PROBE_HEADER: &str = "X-Shipit-Probe";

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
    /// The image's HEALTHCHECK passed in the engine. Without one, the
    /// gateway's check is the first to look, and a slow start is no failure.
    pub engine_checked: bool,
    /// The gateway's own check passed for it in this run (the candidate
    /// route's): added to another backend, it takes traffic at once, as a
    /// server does before its first check there, instead of that check
    /// being awaited a second time.
    pub gateway_checked: bool,
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
    if engine.container(&settings.site.gateway()).await?.is_none() {
        return Ok(None);
    }
    Ok(read(engine, settings).await?.0)
}

/// The gateway's files (its configuration, maps and certificate), as one
/// archive read of its directory gives them: each read of a file costs the
/// engine an archive call (about 40 ms), so a run reads them together.
pub struct Files(Vec<(String, Vec<u8>)>);

impl Files {
    pub async fn read(engine: &Engine, settings: &Settings) -> Result<Files, Error> {
        let all = engine.download_all(&settings.site.gateway(), DIR).await?;
        Ok(Files(all.unwrap_or_default()))
    }

    /// A file by its path below the gateway's directory.
    fn get(&self, file: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(name, _)| name.split_once('/').map(|(_, rest)| rest) == Some(file))
            .map(|(_, bytes)| bytes.as_slice())
    }

    /// What the configuration and the release map say it serves.
    pub fn serving(&self) -> Option<Serving> {
        parse(
            &String::from_utf8_lossy(self.get(CONF)?),
            &String::from_utf8_lossy(self.get(RELEASE_MAP)?),
        )
    }

    pub fn maintenance(&self) -> Option<maintenance::Maintenance> {
        maintenance::parse(&String::from_utf8_lossy(self.get(MAINTENANCE_MAP)?))
    }

    /// Days the installed certificate has left.
    pub fn certificate_days_left(&self) -> Option<i64> {
        super::tls::days_left(self.get(CERT)?, crate::clock::now())
    }

    fn certificate(&self) -> Option<&[u8]> {
        self.get(CERT)
    }
}

/// What the gateway's files say it serves, and its `haproxy.cfg` as it is.
async fn read(engine: &Engine, settings: &Settings) -> Result<(Option<Serving>, Vec<u8>), Error> {
    let files = Files::read(engine, settings).await?;
    Ok((
        files.serving(),
        files.get(CONF).map(<[u8]>::to_vec).unwrap_or_default(),
    ))
}

/// The URL the gateway on `engine`'s host answers on, from here (plain HTTP).
pub fn url(engine: &Engine, settings: &Settings) -> String {
    format!("http://{}:{}", engine.published_host, settings.gateway_port)
}

/// Where shipit's own checks reach the gateway, and how: over HTTPS with the
/// first server name (SNI, Host) when TLS is on, so they test the real path.
pub fn check_route(
    engine: &Engine,
    settings: &Settings,
    headers: Vec<(String, String)>,
) -> Result<(String, crate::http::Route), String> {
    let host = &engine.published_host;
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
            url(engine, settings),
            crate::http::Route {
                connect: None,
                headers,
                tls: None,
            },
        )),
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
        // A role's replica serves no HTTP.
        if crate::deploy::process_of(&info) != "web" {
            continue;
        }
        let address = info
            .addresses
            .get(&network)
            .ok_or_else(|| format!("{name} has no address on {network}"))?;
        out.push(Server {
            name: name.clone(),
            address: format!("{address}:{}", settings.port),
            engine_checked: info.health == "healthy",
            gateway_checked: false,
        });
    }
    Ok(out)
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
            request.as_bytes(),
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
        .filter(|s| !s.in_maintenance())
        .map(|s| s.name)
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
            to,
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

/// Waits until answers through the gateway announce `release`. The
/// gateway tells only private networks and shipit's own checks which release
/// answers: this one carries a token that HAProxy holds in memory meanwhile.
async fn verify(engine: &Engine, settings: &Settings, release: u64) -> Result<(), String> {
    let token = candidate::token()?;
    // A gateway just started (or reloaded) opens its runtime API a moment
    // later: asked again until it answers, within the check's 15 s.
    let start = Instant::now();
    loop {
        let added = api(
            engine,
            settings,
            &format!("add acl {PROBE_ACL} {token}"),
            Some(&token),
        )
        .await;
        match added {
            Ok(_) => break,
            Err(why) if start.elapsed() >= Duration::from_secs(15) => return Err(why),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let verified = verify_with(engine, settings, release, &token).await;
    let _ = api(engine, settings, &format!("clear acl {PROBE_ACL}"), None).await;
    verified
}

async fn verify_with(
    engine: &Engine,
    settings: &Settings,
    release: u64,
    token: &str,
) -> Result<(), String> {
    let (base, route) = check_route(engine, settings, Vec::new())?;
    let url = format!("{base}{}", settings.paths.health);
    let want = release.to_string();
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(15) {
        let (probe, route, token) = (url.clone(), route.clone(), token.to_string());
        let result = tokio::task::spawn_blocking(move || {
            let headers = [(PROBE_HEADER, token.as_str())];
            crate::http::request_via(&route, &probe, "GET", &headers, b"", Duration::from_secs(2))
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
}
