//! The nginx gateway in front of a site: created once, then switched between
//! releases by uploading a new configuration, testing it with `nginx -t`,
//! and reloading gracefully (old workers finish their requests). The
//! configuration it runs is the record of which release serves.

use std::time::{Duration, Instant};

use super::Settings;
use crate::engine::{ContainerSpec, Engine};
use crate::error::Error;

const DIR: &str = "/etc/shipit-gateway";
const CONF: &str = "/etc/shipit-gateway/nginx.conf";
const NEXT: &str = "/etc/shipit-gateway/nginx.conf.next";
const HEADER: &str = "X-Shipit-Release";
const GENERATION: &str = "X-Shipit-Config";
const RELOAD: [&str; 7] = [
    "/usr/sbin/nginx",
    "-s",
    "reload",
    "-e",
    "stderr",
    "-c",
    CONF,
];

/// What the gateway's configuration says it serves.
#[derive(Debug, Clone, PartialEq)]
pub struct Serving {
    pub release: u64,
    /// Upstream container names.
    pub upstreams: Vec<String>,
}

/// nginx.conf for `upstreams` (container names), announcing `release`.
pub fn config(settings: &Settings, upstreams: &[String], release: u64) -> Result<String, Error> {
    let mut ctx = settings.ctx.clone();
    ctx.upstream_servers = upstreams
        .iter()
        .map(|n| format!("{n}:{}", settings.port))
        .collect();
    ctx.release = release.to_string();
    // FNV-1a of what the configuration routes to: distinct for every step.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("{release}|{}", upstreams.join(",")).bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    ctx.generation = format!("{hash:016x}");
    crate::render::gateway_config(&ctx)
}

pub fn parse(conf: &str) -> Option<Serving> {
    let release = conf
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("add_header {HEADER} ")))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|r| r.parse().ok())?;
    let upstreams = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("server "))
        .filter_map(|rest| rest.split([':', ' ', ';']).next())
        .filter(|name| !name.is_empty() && *name != "{")
        .map(String::from)
        .collect();
    Some(Serving { release, upstreams })
}

pub async fn serving(engine: &Engine, settings: &Settings) -> Result<Option<Serving>, Error> {
    let gateway = settings.site.gateway();
    if engine.container(&gateway).await?.is_none() {
        return Ok(None);
    }
    Ok(engine
        .download(&gateway, CONF)
        .await?
        .and_then(|bytes| parse(&String::from_utf8_lossy(&bytes))))
}

/// The URL the gateway answers on, from here.
pub fn url(settings: &Settings) -> String {
    format!("http://{}:{}", super::engine_host(), settings.gateway_port)
}

/// Creates and starts the gateway with `conf`; on failure nothing is left.
pub async fn create(
    engine: &Engine,
    settings: &Settings,
    conf: &str,
    release: u64,
) -> Result<(), String> {
    let site = &settings.site;
    let name = site.gateway();
    let fail = |e: Error| e.to_string();
    engine
        .ensure_volume(&site.gateway_volume(), &site.labels("gateway"))
        .await
        .map_err(fail)?;
    let spec = ContainerSpec {
        name: name.clone(),
        image: settings.gateway_image.clone(),
        entrypoint: Some(vec!["/usr/sbin/nginx".into()]),
        cmd: Some(
            ["-e", "stderr", "-g", "daemon off;", "-c", CONF]
                .map(String::from)
                .to_vec(),
        ),
        labels: site.labels("gateway"),
        network: site.network(),
        user: Some("101:101".into()),
        publish: vec![(8080, "0.0.0.0".into(), settings.gateway_port)],
        volumes: vec![(site.gateway_volume(), DIR.into())],
        tmpfs: vec!["/tmp".into()],
        memory_bytes: Some(128 << 20),
        stop_timeout: Some(settings.drain.as_secs() as i64 + 5),
        restart: true,
        ..Default::default()
    };
    engine.remove_container(&name).await.map_err(fail)?;
    engine.create_container(&spec).await.map_err(fail)?;
    let started = async {
        engine
            .upload(&name, DIR, &[("nginx.conf", conf.as_bytes())])
            .await?;
        engine.start(&name).await
    }
    .await;
    if let Err(e) = started {
        let logs = engine.logs(&name, 20).await;
        let _ = engine.remove_container(&name).await;
        let message = e.to_string();
        let hint = if message.contains("allocated") || message.contains("in use") {
            format!(
                "\nport {} is already taken on the Docker host: stop what holds it, or set gateway.port",
                settings.gateway_port
            )
        } else {
            String::new()
        };
        return Err(format!(
            "the gateway did not start: {message}{hint}{}",
            tail(&logs)
        ));
    }
    wait_serving(engine, settings, conf, release).await
}

/// Points the running gateway at a new configuration. On any failure the
/// previous configuration is back in place and serving.
pub async fn switch(
    engine: &Engine,
    settings: &Settings,
    conf: &str,
    release: u64,
) -> Result<(), String> {
    let gateway = settings.site.gateway();
    let previous = engine
        .download(&gateway, CONF)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    engine
        .upload(&gateway, DIR, &[("nginx.conf.next", conf.as_bytes())])
        .await
        .map_err(|e| e.to_string())?;
    let (code, output) = engine
        .exec(
            &gateway,
            &["/usr/sbin/nginx", "-t", "-e", "stderr", "-c", NEXT],
        )
        .await
        .map_err(|e| e.to_string())?;
    if code != 0 {
        return Err(format!(
            "nginx rejected the new gateway configuration (nothing was switched):\n{}",
            output.trim_end()
        ));
    }
    let reload = async {
        engine
            .upload(&gateway, DIR, &[("nginx.conf", conf.as_bytes())])
            .await
            .map_err(|e| e.to_string())?;
        let (code, output) = engine
            .exec(&gateway, &RELOAD)
            .await
            .map_err(|e| e.to_string())?;
        if code != 0 {
            return Err(format!("nginx -s reload failed: {}", output.trim_end()));
        }
        wait_serving(engine, settings, conf, release).await
    }
    .await;
    if let Err(why) = reload {
        // Put the previous configuration back and reload it.
        let _ = engine
            .upload(&gateway, DIR, &[("nginx.conf", previous.as_slice())])
            .await;
        let _ = engine.exec(&gateway, &RELOAD).await;
        return Err(format!(
            "{why}; the previous gateway configuration was restored"
        ));
    }
    Ok(())
}

/// Waits until requests through the gateway are answered by `release`'s configuration.
async fn wait_serving(
    engine: &Engine,
    settings: &Settings,
    conf: &str,
    release: u64,
) -> Result<(), String> {
    let url = format!("{}{}", url(settings), settings.paths.health);
    let want = conf
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("add_header {GENERATION} ")))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(15) {
        let probe = url.clone();
        let result = tokio::task::spawn_blocking(move || {
            crate::http::request(&probe, "GET", &[], b"", Duration::from_secs(2))
        })
        .await
        .map_err(|e| e.to_string())?;
        match result {
            Ok(r) if r.header(GENERATION) == Some(want.as_str()) && r.status == 200 => {
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
        tokio::time::sleep(Duration::from_millis(20)).await;
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
