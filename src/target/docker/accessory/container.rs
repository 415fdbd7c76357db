//! An accessory's container on one host: created from today's
//! configuration, given its secrets and files, started and waited for;
//! replaced by a reboot; removed on request; checked before a deploy.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::model::Accessory;
use crate::deploy::deliver::{self, Need};
use crate::deploy::host::Host;
use crate::deploy::{ACCESSORY, ACCESSORY_CONFIG, Settings};
use crate::engine::{ContainerInfo, ContainerSpec, Engine, Upload};
use crate::error::Error;
use crate::output::Output;

/// How long an accessory has to stop cleanly (a database flushing).
const STOP_GRACE: Duration = Duration::from_secs(30);

/// `shipit accessory boot`: what is running stays; what is stopped starts;
/// what is missing is created.
pub(super) async fn boot(
    out: &Output,
    settings: &Settings,
    h: &Host,
    name: &str,
    a: &Accessory,
    project: &Path,
) -> Result<(), Error> {
    let container = settings.site.accessory(name);
    let files = read_files(project, a)?;
    let digest = digest(a, &files);
    match h.engine.container(&container).await? {
        Some(info) if info.running => {
            out.status("running", &format!("{name} on {} ({})", h.name, info.image));
            if info.labels.get(ACCESSORY_CONFIG) != Some(&digest) {
                out.warn(&format!(
                    "{name} on {}: its configuration changed since it was booted; `shipit accessory reboot {} {name}` applies it",
                    h.name, settings.site.environment
                ));
            }
            Ok(())
        }
        Some(_) => {
            h.engine.start(&container).await?;
            ready(&h.engine, settings, &container).await?;
            out.status("started", &format!("{name} on {} (it was stopped)", h.name));
            Ok(())
        }
        None => {
            create(out, settings, h, name, a, &files, &digest).await?;
            out.status("booted", &format!("{name} on {}", h.name));
            Ok(())
        }
    }
}

/// `shipit accessory reboot`: the old container renamed and stopped, a new
/// one from today's configuration on the same volumes; when that one is not
/// healthy it is removed and the old one started again.
pub(super) async fn reboot(
    out: &Output,
    settings: &Settings,
    h: &Host,
    name: &str,
    a: &Accessory,
    project: &Path,
) -> Result<(), Error> {
    let container = settings.site.accessory(name);
    let previous = format!("{container}-previous");
    let files = read_files(project, a)?;
    let digest = digest(a, &files);
    if h.engine.container(&container).await?.is_none() {
        return boot(out, settings, h, name, a, project).await;
    }
    // A previous one left by an interrupted reboot: the current one is newer.
    h.engine.remove_container(&previous).await?;
    h.engine.rename(&container, &previous).await?;
    out.status("stopping", &format!("{name} on {}", h.name));
    h.engine.stop(&previous, STOP_GRACE).await?;
    match create(out, settings, h, name, a, &files, &digest).await {
        Ok(()) => {
            h.engine.remove_container(&previous).await?;
            out.status("rebooted", &format!("{name} on {}", h.name));
            Ok(())
        }
        Err(e) => {
            h.engine.remove_container(&container).await?;
            h.engine.rename(&previous, &container).await?;
            h.engine.start(&container).await?;
            let back = ready(&h.engine, settings, &container).await;
            Err(Error::Deploy {
                message: format!(
                    "the new container did not come up: {e}\n{}",
                    match back {
                        Ok(()) => "the previous container runs again, on the same volumes".into(),
                        Err(why) => format!(
                            "the previous container was started again, and is not healthy either: {why}"
                        ),
                    }
                ),
            })
        }
    }
}

/// `shipit accessory remove`: the container; its volumes only when asked.
pub(super) async fn remove(
    out: &Output,
    settings: &Settings,
    h: &Host,
    name: &str,
    a: &Accessory,
    volumes: bool,
) -> Result<(), Error> {
    let site = &settings.site;
    let container = site.accessory(name);
    h.engine.stop(&container, STOP_GRACE).await?;
    h.engine.remove_container(&container).await?;
    h.engine
        .remove_container(&format!("{container}-previous"))
        .await?;
    out.status("removed", &format!("{name} on {}", h.name));
    let names: Vec<String> = volume_names(a)
        .iter()
        .map(|v| site.accessory_volume(name, v))
        .collect();
    if volumes {
        for v in &names {
            if h.engine.remove_volume(v).await? {
                out.status("removed", &format!("volume {v} on {}", h.name));
            }
        }
    } else if !names.is_empty() {
        out.detail(&format!(
            "kept its volume(s) {} (--volumes removes them)",
            names.join(", ")
        ));
    }
    Ok(())
}

/// What stands between a deploy and the accessories: each that is not
/// running and healthy on a host the deploy reaches, with the command that
/// boots it.
pub(crate) async fn unready(settings: &Settings, hosts: &[Host]) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, a) in &settings.accessories {
        let Ok(wanted) = super::hosts_of(settings, a) else {
            continue;
        };
        for want in wanted {
            let Some(h) = hosts
                .iter()
                .find(|h| want.as_ref().is_none_or(|w| *w == h.name))
            else {
                continue;
            };
            let container = settings.site.accessory(name);
            let boot = format!(
                "`shipit accessory boot {} {name}`",
                settings.site.environment
            );
            match h.engine.container(&container).await {
                Ok(Some(info))
                    if info.running && matches!(info.health.as_str(), "healthy" | "none") => {}
                Ok(Some(info)) => problems.push(format!(
                    "{}: accessory {name} is {} ({}): {boot} (or reboot) first",
                    h.name,
                    if info.running {
                        "running"
                    } else {
                        "not running"
                    },
                    info.health
                )),
                Ok(None) => problems.push(format!(
                    "{}: accessory {name} is not booted: {boot} first",
                    h.name
                )),
                Err(e) => problems.push(format!("{}: accessory {name}: {e}", h.name)),
            }
        }
    }
    problems
}

/// Creates, fills and starts the accessory's container, and waits for it.
async fn create(
    out: &Output,
    settings: &Settings,
    h: &Host,
    name: &str,
    a: &Accessory,
    files: &[(String, Vec<u8>)],
    digest: &str,
) -> Result<(), Error> {
    let site = &settings.site;
    let engine = &h.engine;
    image(out, settings, h, &a.image).await?;
    let pairs: Vec<(String, String)> = a.secrets.clone().into_iter().collect();
    let secrets = crate::deploy::resolve_secrets(&pairs, &format!("the accessory {name}"))?;
    engine
        .ensure_network(&site.network(), &site.labels("network"))
        .await?;
    let mut labels = site.labels("accessory");
    labels.push((ACCESSORY.to_string(), name.to_string()));
    for v in volume_names(a) {
        engine
            .ensure_volume(&site.accessory_volume(name, &v), &labels)
            .await?;
    }
    labels.push((ACCESSORY_CONFIG.to_string(), digest.to_string()));
    let container = site.accessory(name);
    let mut volumes: Vec<(String, String)> = a
        .volumes
        .iter()
        .filter_map(|v| v.split_once(':'))
        .map(|(v, path)| (site.accessory_volume(name, v), path.to_string()))
        .collect();
    if !secrets.is_empty() {
        volumes.push((String::new(), crate::secrets::DIR.to_string()));
    }
    // Each uploaded file's directory: a volume of the container's own (the
    // root file system is read-only), filled with what the image has there.
    for dir in file_dirs(a) {
        if !volumes.iter().any(|(_, p)| *p == dir) {
            volumes.push((String::new(), dir));
        }
    }
    let mut env: Vec<(String, String)> =
        a.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    env.extend(secrets.iter().map(|(secret, _)| {
        (
            format!("{secret}_FILE"),
            format!(
                "{}/{}",
                crate::secrets::DIR,
                crate::secrets::file_name(secret)
            ),
        )
    }));
    let publish = match a.publish.rsplit_once(':') {
        Some((ip, port)) => vec![(a.port as u16, ip.to_string(), port.parse().unwrap_or(0))],
        None => Vec::new(),
    };
    let spec = ContainerSpec {
        name: container.clone(),
        image: a.image.clone(),
        cmd: (!a.cmd.is_empty()).then(|| a.cmd.clone()),
        env,
        labels,
        network: site.network(),
        aliases: vec![name.to_string()],
        user: (!a.user.is_empty()).then(|| a.user.clone()),
        publish,
        volumes,
        tmpfs: vec!["/tmp".into()],
        health_interval: Some(settings.health_interval),
        health_test: (!a.healthcheck.is_empty()).then(|| a.healthcheck.clone()),
        stop_timeout: Some(STOP_GRACE.as_secs() as i64),
        restart: true,
        ..Default::default()
    };
    if engine.create_container(&spec).await?.is_none() {
        return Err(Error::Deploy {
            message: format!("a container named {container} exists on {}", h.name),
        });
    }
    let filled = fill(engine, &container, a, &secrets, files).await;
    let started = match filled {
        Ok(()) => engine.start(&container).await,
        Err(e) => Err(e),
    };
    if let Err(e) = started {
        engine.remove_container(&container).await?;
        return Err(e);
    }
    out.status("starting", &format!("{name} on {}", h.name));
    ready(engine, settings, &container).await
}

/// The accessory's image on the host: there already, streamed from this
/// machine's engine when it has it, else pulled.
async fn image(out: &Output, settings: &Settings, h: &Host, reference: &str) -> Result<(), Error> {
    if h.engine.image_id(reference).await.is_some() {
        return Ok(());
    }
    let need = match Engine::connect().await {
        Ok(local) if local.address != h.engine.address => {
            let need = Need::of(&local, "accessory", reference).await;
            return deliver::deliver(&local, h, settings, &[need], out)
                .await
                .map_err(|message| Error::Deploy { message });
        }
        _ => Need::unknown("accessory", reference),
    };
    deliver::deliver(&h.engine, h, settings, &[need], out)
        .await
        .map_err(|message| Error::Deploy { message })
}

/// Secrets and files into the created container, owned by its user.
async fn fill(
    engine: &Engine,
    container: &str,
    a: &Accessory,
    secrets: &[(String, String)],
    files: &[(String, Vec<u8>)],
) -> Result<(), Error> {
    let uid = uid(engine, container, a).await;
    if !secrets.is_empty() {
        let names: Vec<String> = secrets
            .iter()
            .map(|(s, _)| crate::secrets::file_name(s))
            .collect();
        let uploads: Vec<Upload> = names
            .iter()
            .zip(secrets)
            .map(|(file, (_, value))| Upload {
                name: file,
                bytes: value.as_bytes(),
                mode: 0o400,
                owner: uid,
            })
            .collect();
        engine
            .upload_owned(container, crate::secrets::DIR, &uploads)
            .await?;
    }
    for (path, bytes) in files {
        let (dir, file) = path.rsplit_once('/').unwrap_or(("/", path));
        let upload = Upload {
            name: file,
            bytes,
            mode: 0o440,
            owner: uid,
        };
        engine
            .upload_owned(container, if dir.is_empty() { "/" } else { dir }, &[upload])
            .await?;
    }
    Ok(())
}

/// The uid the container runs as: `user`, else the image's; a name is
/// looked up in the image's /etc/passwd. Root when nothing says otherwise.
async fn uid(engine: &Engine, container: &str, a: &Accessory) -> u64 {
    let user = if a.user.is_empty() {
        engine.image_user(&a.image).await.unwrap_or_default()
    } else {
        a.user.clone()
    };
    let name = user.split(':').next().unwrap_or_default().to_string();
    if let Ok(uid) = name.parse() {
        return uid;
    }
    if name.is_empty() {
        return 0;
    }
    let passwd = engine
        .download(container, "/etc/passwd")
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    String::from_utf8_lossy(&passwd)
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name.as_str()))
        .and_then(|f| f.get(2).and_then(|u| u.parse().ok()))
        .unwrap_or(0)
}

/// Waits until the container is healthy (its check, or the image's), or,
/// without a check, has kept running for three health intervals.
pub(super) async fn ready(
    engine: &Engine,
    settings: &Settings,
    container: &str,
) -> Result<(), Error> {
    let start = Instant::now();
    let steady = settings.health_interval * 3;
    let mut first: Option<(String, Instant)> = None;
    loop {
        let info: Option<ContainerInfo> = engine.container(container).await?;
        let Some(info) = info else {
            return Err(Error::Deploy {
                message: format!("{container} disappeared"),
            });
        };
        let logs = || async { engine.logs(container, 20).await };
        if !info.running || info.state == "restarting" || info.health == "unhealthy" {
            return Err(Error::Deploy {
                message: format!(
                    "{container} {}; its last lines:\n{}",
                    if info.running && info.state != "restarting" {
                        format!("is unhealthy ({})", info.health_output.trim())
                    } else {
                        format!("exited with code {}", info.exit_code)
                    },
                    logs().await
                ),
            });
        }
        match info.health.as_str() {
            "healthy" => return Ok(()),
            "none" => match &first {
                Some((started, since)) if *started == info.started_at => {
                    if since.elapsed() >= steady {
                        return Ok(());
                    }
                }
                // Started (again, when it restarted): from now.
                _ => first = Some((info.started_at.clone(), Instant::now())),
            },
            _ => {}
        }
        if start.elapsed() >= settings.health_timeout {
            return Err(Error::Deploy {
                message: format!(
                    "{container} was not healthy within {} s (health: {}); its last lines:\n{}",
                    settings.health_timeout.as_secs(),
                    info.health,
                    logs().await
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `files`: each destination path with the project file's bytes.
fn read_files(project: &Path, a: &Accessory) -> Result<Vec<(String, Vec<u8>)>, Error> {
    a.files
        .iter()
        .filter_map(|f| f.split_once(':'))
        .map(|(local, path)| {
            let from = project.join(local);
            let bytes = std::fs::read(&from).map_err(|e| Error::io(&from, e))?;
            if bytes.len() > 1 << 20 {
                return Err(Error::Usage(format!(
                    "{local} is {} bytes: accessory files are small configuration files (at most 1 MiB); use a volume for data",
                    bytes.len()
                )));
            }
            Ok((path.to_string(), bytes))
        })
        .collect()
}

fn volume_names(a: &Accessory) -> Vec<String> {
    a.volumes
        .iter()
        .filter_map(|v| v.split_once(':').map(|(v, _)| v.to_string()))
        .collect()
}

fn file_dirs(a: &Accessory) -> Vec<String> {
    let mut dirs: Vec<String> = a
        .files
        .iter()
        .filter_map(|f| f.split_once(':'))
        .filter_map(|(_, path)| path.rsplit_once('/').map(|(d, _)| d.to_string()))
        .filter(|d| !d.is_empty())
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// What the container is made from (its configuration, then its files'
/// bytes; never secret values): a changed digest means `reboot` has work
/// to do.
fn digest(a: &Accessory, files: &[(String, Vec<u8>)]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for (path, bytes) in files {
        ctx.update(path.as_bytes());
        ctx.update(&(bytes.len() as u64).to_le_bytes());
        ctx.update(bytes);
    }
    format!("{}{}", digest_of_config(a), hex(ctx.finish().as_ref()))
}

/// The first half of `digest`: the configuration's alone.
pub(super) fn digest_of_config(a: &Accessory) -> String {
    let json = serde_json::to_string(a).unwrap_or_default();
    hex(ring::digest::digest(&ring::digest::SHA256, json.as_bytes()).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis() -> Accessory {
        Accessory {
            image: "redis:7.0.15".into(),
            files: vec![
                "redis.conf:/etc/redis/shipit.conf".into(),
                "users.acl:/etc/redis/users.acl".into(),
            ],
            volumes: vec!["data:/data".into()],
            ..Default::default()
        }
    }

    #[test]
    fn files_get_one_volume_per_directory_and_a_change_shows_in_the_digest() {
        let a = redis();
        assert_eq!(file_dirs(&a), ["/etc/redis"]);
        assert_eq!(volume_names(&a), ["data"]);
        let files = vec![(
            "/etc/redis/shipit.conf".to_string(),
            b"port 6379\n".to_vec(),
        )];
        let first = digest(&a, &files);
        assert_eq!(
            first,
            digest(&a, &files),
            "the same inputs, the same digest"
        );
        assert!(first.starts_with(&digest_of_config(&a)));
        let edited = vec![(
            "/etc/redis/shipit.conf".to_string(),
            b"port 6380\n".to_vec(),
        )];
        let second = digest(&a, &edited);
        assert_ne!(first, second);
        assert_eq!(
            first[..16],
            second[..16],
            "the configuration alone did not change"
        );
        let mut other = a.clone();
        other.cmd = vec!["redis-server".into()];
        assert_ne!(digest_of_config(&a), digest_of_config(&other));
    }
}
