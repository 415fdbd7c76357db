//! A Docker host that a site deploys to: its engine (reached over unix,
//! tcp+TLS or the system ssh) and the address its gateway answers at. Its
//! lock and history live on its own engine.

use std::time::Duration;

use super::Settings;
use crate::engine::{Endpoint, Engine};
use crate::error::Error;

pub struct Host {
    /// The engine's address (`ssh://web1`), as the configuration names it.
    pub name: String,
    pub engine: Engine,
}

/// A host that could not be used, and why.
#[derive(Debug, Clone)]
pub struct Unreachable {
    pub name: String,
    pub why: String,
}

/// The configured hosts' endpoints, in the fixed order locks are taken in.
pub fn endpoints(
    settings: &Settings,
) -> Result<Vec<(Endpoint, &crate::config::model::Host)>, Error> {
    let mut list = Vec::new();
    for h in &settings.hosts {
        let endpoint = Endpoint::parse(&h.engine).map_err(Error::Usage)?;
        list.push((endpoint, h));
    }
    list.sort_by_key(|(e, _)| e.to_string());
    Ok(list)
}

/// Connects to every host at once. With no `deploy.hosts`, the one engine
/// of `DOCKER_HOST` (or the local socket), which must answer.
pub async fn connect_all(settings: &Settings) -> Result<(Vec<Host>, Vec<Unreachable>), Error> {
    if settings.hosts.is_empty() {
        let engine = Engine::connect().await?;
        return Ok((
            vec![Host {
                name: engine.address.clone(),
                engine,
            }],
            Vec::new(),
        ));
    }
    let endpoints = endpoints(settings)?;
    let tries = endpoints.iter().map(|(endpoint, h)| async move {
        let name = endpoint.to_string();
        match connect(endpoint, h, Duration::from_secs(30)).await {
            Ok(engine) => Ok(Host { name, engine }),
            Err(why) => Err(Unreachable {
                name,
                why: why.lines().next().unwrap_or_default().to_string(),
            }),
        }
    });
    let mut hosts = Vec::new();
    let mut unreachable = Vec::new();
    for result in futures_util::future::join_all(tries).await {
        match result {
            Ok(h) => hosts.push(h),
            Err(u) => unreachable.push(u),
        }
    }
    Ok((hosts, unreachable))
}

/// One host to work on, connected alone: the one `only` names (its
/// engine's address or its `address`), else the first of `deploy.hosts` (in
/// their fixed order) that answers; the engine of `DOCKER_HOST` without them.
pub async fn connect_one(settings: &Settings, only: Option<&str>) -> Result<Host, Error> {
    if settings.hosts.is_empty() {
        crate::target::no_hosts(only)?;
        let engine = Engine::connect().await?;
        return Ok(Host {
            name: engine.address.clone(),
            engine,
        });
    }
    let endpoints = endpoints(settings)?;
    let named: Vec<_> = endpoints
        .iter()
        .filter(|(e, h)| only.is_none_or(|o| e.to_string() == o || h.address == o))
        .collect();
    if named.is_empty() {
        return Err(Error::Usage(format!(
            "--host {}: not one of deploy.hosts ({})",
            only.unwrap_or_default(),
            endpoints
                .iter()
                .map(|(e, _)| e.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut failures = Vec::new();
    for (endpoint, h) in named {
        let name = endpoint.to_string();
        match connect(endpoint, h, Duration::from_secs(30)).await {
            Ok(engine) => return Ok(Host { name, engine }),
            Err(why) => failures.push(format!(
                "{name}: unreachable: {}",
                why.lines().next().unwrap_or_default()
            )),
        }
    }
    Err(Error::Deploy {
        message: failures.join("; "),
    })
}

/// A new connection to the host named `name` (its engine's address), for a
/// host that went silent earlier in the run: its old one is not asked again.
pub async fn reconnect(settings: &Settings, name: &str) -> Result<Engine, String> {
    let limit = Duration::from_secs(10);
    if settings.hosts.is_empty() {
        return match tokio::time::timeout(limit, Engine::connect()).await {
            Ok(connected) => connected.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {} s", limit.as_secs())),
        };
    }
    let endpoints = endpoints(settings).map_err(|e| e.to_string())?;
    match endpoints.iter().find(|(e, _)| e.to_string() == name) {
        Some((endpoint, h)) => connect(endpoint, h, limit).await,
        None => Err(format!("{name} is not a configured host")),
    }
}

/// One configured host's engine, within `limit`.
async fn connect(
    endpoint: &Endpoint,
    h: &crate::config::model::Host,
    limit: Duration,
) -> Result<Engine, String> {
    let cert_path = (!h.cert_path.is_empty()).then_some(h.cert_path.as_str());
    let connecting = Engine::connect_to(endpoint, cert_path, Some(&h.address), h.insecure);
    match tokio::time::timeout(limit, connecting).await {
        Ok(connected) => connected.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {} s", limit.as_secs())),
    }
}

/// Runs `work` on every item (a host, or what a step knows of one) at once,
/// each bounded by `limit`: a host that stops answering fails its own step
/// (`Err`, naming it), not the others'. Results come in the items' order.
pub async fn on_each<'i, I, T, F, Fut>(
    items: &'i [I],
    name: impl Fn(&I) -> &str,
    limit: Duration,
    work: F,
) -> Vec<Result<T, String>>
where
    F: Fn(&'i I) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let runs = items.iter().map(|item| {
        let who = name(item).to_string();
        let run = work(item);
        async move {
            tokio::time::timeout(limit, run)
                .await
                .map_err(|_| format!("{who} did not answer within {} s (lost?)", limit.as_secs()))
        }
    });
    futures_util::future::join_all(runs).await
}

/// [`on_each`] for work that can fail: the first host whose work fails ends
/// the others' at once (abandoned, `Err` saying why), so a doomed step does
/// not wait on the other hosts' health or time limits.
pub async fn on_each_or_stop<'i, I, T, E, F, Fut>(
    items: &'i [I],
    name: impl Fn(&I) -> &str,
    limit: Duration,
    work: F,
) -> Vec<Result<Result<T, E>, String>>
where
    F: Fn(&'i I) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let (failed, _) = tokio::sync::watch::channel(None::<String>);
    let failed = &failed;
    let runs = items.iter().map(|item| {
        let who = name(item).to_string();
        let run = work(item);
        let mut heard = failed.subscribe();
        async move {
            let own = async {
                let result = run.await;
                if result.is_err() {
                    failed.send_if_modified(|first| {
                        first
                            .is_none()
                            .then(|| *first = Some(who.clone()))
                            .is_some()
                    });
                }
                Ok(result)
            };
            let other = async {
                match heard
                    .wait_for(|f| f.as_ref().is_some_and(|f| *f != who))
                    .await
                {
                    Ok(f) => Err(format!(
                        "stopped when {} failed",
                        f.as_deref().unwrap_or_default()
                    )),
                    Err(_) => std::future::pending().await,
                }
            };
            let both = async {
                tokio::select! {
                    biased;
                    result = own => result,
                    stopped = other => stopped,
                }
            };
            tokio::time::timeout(limit, both)
                .await
                .map_err(|_| format!("{who} did not answer within {} s (lost?)", limit.as_secs()))?
        }
    });
    futures_util::future::join_all(runs).await
}

/// A warning for each host reached over plain HTTP (its `insecure` says so).
pub fn plain_http_warnings(hosts: &[Host]) -> Vec<String> {
    hosts
        .iter()
        .filter(|h| h.engine.plain_http)
        .map(|h| {
            format!(
                "{}: plain HTTP, without TLS (insecure): anyone on the network can read the secrets and TLS keys this run sends it",
                h.name
            )
        })
        .collect()
}
