//! The gateway container's life: created with its files, brought in line
//! with the configuration before a deploy (recreated, reloaded gracefully
//! after `haproxy -c`, or its certificate rotated live).

use std::time::{Duration, Instant};

use super::api::api;
use super::{
    CANDIDATE_ACL, CERT, CONF, DIR, Files, PROBE_ACL, RELEASE_MAP, SPEC, Serving, config,
    release_map, tail, verify,
};
use crate::deploy::Settings;
use crate::deploy::tls::Material;
use crate::engine::{ContainerSpec, Engine, Upload};
use crate::error::Error;
use crate::offline::GATEWAY_UID;

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
            Upload {
                name: PROBE_ACL,
                bytes: b"",
                mode: 0o644,
                owner: 0,
            },
        ];
        match tls {
            Some(material) => files.push(Upload {
                name: CERT,
                bytes: material.pem(),
                mode: 0o400,
                owner: GATEWAY_UID,
            }),
            // TLS turned off: a key left in the volume from before is overwritten.
            None if engine
                .download(&name, &format!("{DIR}/{CERT}"))
                .await?
                .is_some_and(|pem| !pem.is_empty()) =>
            {
                files.push(Upload {
                    name: CERT,
                    bytes: b"",
                    mode: 0o400,
                    owner: GATEWAY_UID,
                });
            }
            None => {}
        }
        engine.upload_owned(&name, DIR, &files).await?;
        // Maintenance mode outlives a new gateway container (the volume keeps its map).
        super::maintenance::ensure_file(engine, &name)
            .await
            .map_err(|message| Error::Deploy { message })?;
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
    /// What the gateway serves, as read to ensure it (`None`: not read, for
    /// a gateway just created).
    pub serving: Option<Option<Serving>>,
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
    let files = match info {
        Some(_) => Some(
            Files::read(engine, settings)
                .await
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let serving = files.as_ref().and_then(Files::serving);
    let have = files
        .as_ref()
        .and_then(|f| f.get(CONF))
        .unwrap_or_default()
        .to_vec();
    // What it serves, for the repair that follows (unchanged by anything below
    // but a new gateway).
    done.serving = Some(serving.clone());
    let current = serving.unwrap_or(Serving {
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
        done.serving = None;
        return Ok(done);
    }
    if info.as_ref().is_some_and(|i| !i.running) {
        engine.start(&name).await.map_err(|e| e.to_string())?;
        verify(engine, settings, current.release).await?;
    }
    let want = config(settings, &current.upstreams).map_err(|e| e.to_string())?;
    if let Some(material) = tls {
        let installed = files.as_ref().and_then(Files::certificate);
        if installed != Some(material.pem()) {
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
    // A gateway made by an earlier shipit has no probe.acl or maintenance.map yet.
    engine
        .upload(&name, DIR, &[(&next, conf.as_bytes()), (PROBE_ACL, b"")])
        .await
        .map_err(|e| e.to_string())?;
    super::maintenance::ensure_file(engine, &name).await?;
    let (code, output) = engine
        .exec(
            &name,
            &["/usr/sbin/haproxy", "-c", "-f", &format!("{DIR}/{next}")],
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
