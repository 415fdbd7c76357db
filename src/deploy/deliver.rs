//! The release and gateway images on every host: pulled from the registry
//! (credentials passed per pull) or, with `deploy.transfer = "stream"`,
//! streamed from the engine they were built on. A host that already has
//! the image id gets nothing; every host's id is checked against the built one.

use std::time::{Duration, Instant};

use super::Settings;
use super::host::Host;
use crate::config::model::Transfer;
use crate::engine::Engine;
use crate::engine::transfer::{Progress, Streamed};
use crate::output::Output;

/// One image every host needs.
#[derive(Debug, Clone)]
pub struct Need {
    /// `release` or `gateway`, for messages.
    pub what: &'static str,
    pub reference: String,
    /// The id on the engine it was built on (the one every host must end with),
    /// when that engine has it.
    pub id: Option<String>,
    /// Without that engine's: the id the hosts that have it agree on, which
    /// a host that pulls it must end with too.
    pub agreed: Option<String>,
}

impl Need {
    pub async fn of(source: &Engine, what: &'static str, reference: &str) -> Need {
        Need {
            what,
            reference: reference.to_string(),
            id: source.image_id(reference).await,
            agreed: None,
        }
    }

    /// Without a source engine: known by its reference alone.
    pub fn unknown(what: &'static str, reference: &str) -> Need {
        Need {
            what,
            reference: reference.to_string(),
            id: None,
            agreed: None,
        }
    }

    /// How this image travels: the release as `deploy.transfer` says; the
    /// gateway (shipit's own, made with `shipit image gateway`) is streamed
    /// whenever this engine has it, so a fleet that pulls its releases needs
    /// no registry copy of the gateway.
    fn transfer(&self, settings: &Settings) -> Transfer {
        if matches!(self.what, "gateway" | "accessory") && self.id.is_some() {
            Transfer::Stream
        } else {
            settings.transfer
        }
    }
}

/// The credentials of `reference`'s own registry: a reference without a
/// registry host is Docker Hub's, never given `image.registry`'s.
fn credentials(settings: &Settings, reference: &str) -> Option<bollard::auth::DockerCredentials> {
    crate::build::credentials::for_reference(reference, &settings.registry)
}

/// What is missing for `host` to get every image: nothing when each is
/// there with the right id, or can be streamed or pulled.
pub async fn problems(
    host: &Host,
    settings: &Settings,
    needs: &[Need],
    same_engine_as_source: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    for need in needs {
        let have = host.engine.image_id(&need.reference).await;
        if have.is_some() && (need.id.is_none() || have == need.id) {
            continue;
        }
        match (need.transfer(settings), &need.id) {
            (Transfer::Stream, Some(_)) if !same_engine_as_source => {}
            (Transfer::Stream, _) => problems.push(format!(
                "the {} image {} is not on the engine it would be streamed from: {}",
                need.what,
                need.reference,
                hint(need.what, settings)
            )),
            (Transfer::Pull, _) => {
                let found = host
                    .engine
                    .registry_has(&need.reference, credentials(settings, &need.reference))
                    .await;
                if let Err(why) = found {
                    problems.push(format!(
                        "the {} image {} is not on the engine and could not be pulled ({why}): {}",
                        need.what,
                        need.reference,
                        if need.id.is_some() {
                            "push it (`shipit build --push`), or set deploy.transfer = \"stream\" to send it from this engine".to_string()
                        } else {
                            hint(need.what, settings)
                        }
                    ));
                }
            }
        }
    }
    problems
}

fn hint(what: &str, settings: &Settings) -> String {
    if what == "gateway" {
        "make it with `shipit image gateway`".into()
    } else {
        format!(
            "build it first: `shipit build {}`",
            settings.site.environment
        )
    }
}

/// Gets every image onto `host`, saying how many bytes moved; returns an
/// error naming the image when it could not, or when the id differs.
pub async fn deliver(
    source: &Engine,
    host: &Host,
    settings: &Settings,
    needs: &[Need],
    out: &Output,
) -> Result<(), String> {
    for need in needs {
        let have = host.engine.image_id(&need.reference).await;
        if have.is_some() && (need.id.is_none() || have == need.id) {
            continue;
        }
        // The same image under another tag: only the tag is new.
        if let Some(want) = &need.id
            && host.engine.image_id(want).await.as_ref() == Some(want)
            && let Some((repo, tag)) = split_tag(&need.reference)
        {
            host.engine
                .tag(want, repo, tag)
                .await
                .map_err(|e| format!("the {} image {}: {e}", need.what, need.reference))?;
            out.status(
                "delivered",
                &format!(
                    "{} image {} (already there as {}: tagged, 0 bytes sent)",
                    need.what,
                    need.reference,
                    short(want)
                ),
            );
            continue;
        }
        let progress = Progress::default();
        let start = Instant::now();
        let ticker = {
            let (progress, out, what) = (progress.clone(), out.clone(), need.what);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    out.status(
                        "sending",
                        &format!("{what} image: {} so far", megabytes(progress.bytes())),
                    );
                }
            })
        };
        let mut note = String::new();
        let (how, result) = match need.transfer(settings) {
            Transfer::Stream => {
                let streamed = host
                    .engine
                    .stream_image_from(source, &need.reference, &progress)
                    .await;
                note = streamed.as_ref().map(streamed_note).unwrap_or_default();
                ("streamed", streamed.map(|s| s.id))
            }
            Transfer::Pull => (
                "pulled",
                host.engine
                    .pull_with(
                        &need.reference,
                        credentials(settings, &need.reference),
                        &progress,
                    )
                    .await,
            ),
        };
        ticker.abort();
        let id = result.map_err(|e| format!("the {} image {}: {e}", need.what, need.reference))?;
        if let Some(want) = need.id.as_ref().or(need.agreed.as_ref())
            && &id != want
        {
            return Err(format!(
                "the {} image {} is {id} on this host, not {want} as {}: refusing to run another build under the same tag",
                need.what,
                need.reference,
                if need.id.is_some() {
                    "built"
                } else {
                    "on the other hosts"
                }
            ));
        }
        if need.what == "gateway"
            && let Some(why) = gateway_holds_other(&host.engine, &need.reference, settings).await
        {
            return Err(why);
        }
        out.status(
            "delivered",
            &format!(
                "{} image {} ({} {how} in {:.1} s{note})",
                need.what,
                need.reference,
                megabytes(progress.bytes()),
                start.elapsed().as_secs_f64()
            ),
        );
    }
    Ok(())
}

/// What a stream left out: the layers the host already had, or why the
/// whole image was sent again.
fn streamed_note(streamed: &Streamed) -> String {
    match (&streamed.resent, streamed.skipped.layers) {
        (Some(why), _) => format!("; sent whole after {why}"),
        (None, 0) => String::new(),
        (None, n) => format!(
            "; {n} of {} layers already on the host, {} not sent",
            streamed.layers,
            megabytes(streamed.skipped.bytes)
        ),
    }
}

/// Why the gateway image under `reference` on `engine` is not the one
/// `deploy.gateway_packages` pins (its labels say what it holds); `None`
/// when it is, or when the engine does not have it.
async fn gateway_holds_other(
    engine: &Engine,
    reference: &str,
    settings: &Settings,
) -> Option<String> {
    let (id, labels) = engine.image_labels(reference).await?;
    pinned_otherwise(&id, &labels, reference, settings)
}

/// Why an image with these labels is not the one `deploy.gateway_packages` pins.
fn pinned_otherwise(
    id: &str,
    labels: &std::collections::HashMap<String, String>,
    reference: &str,
    settings: &Settings,
) -> Option<String> {
    let want = crate::offline::pinned(&settings.gateway_packages);
    let holds = labels.get(crate::offline::LABEL_PINNED);
    (holds != Some(&want)).then(|| {
        format!(
            "the gateway image {reference} ({}) holds {}, and deploy.gateway_packages pins {want}: make it with `shipit image gateway {}` where those packages are installed",
            short(id),
            holds.map_or("no record of its packages (not made by `shipit image gateway`)".to_string(), |h| h.clone()),
            settings.site.environment
        )
    })
}

/// The gateway every host will run is one build of the pinned packages:
/// the source engine's (which hosts that differ get streamed), or, when
/// this machine has none, the one every host that has it agrees on (set
/// as `need.agreed`, which hosts that pull it must match). Every problem.
pub async fn gateway_identity(
    source: Option<&Engine>,
    hosts: &[Host],
    settings: &Settings,
    need: &mut Need,
) -> Vec<String> {
    if let (Some(source), Some(_)) = (source, &need.id) {
        return gateway_holds_other(source, &need.reference, settings)
            .await
            .map(|why| format!("this machine: {why}"))
            .into_iter()
            .collect();
    }
    let mut problems = Vec::new();
    let mut ids: Vec<(String, String)> = Vec::new();
    for host in hosts {
        // One inspection a host: its id and what its labels say it holds.
        if let Some((id, labels)) = host.engine.image_labels(&need.reference).await {
            if let Some(why) = pinned_otherwise(&id, &labels, &need.reference, settings) {
                problems.push(format!("{}: {why}", host.name));
            }
            ids.push((host.name.clone(), id));
        }
    }
    let mut distinct: Vec<&String> = ids.iter().map(|(_, id)| id).collect();
    distinct.sort();
    distinct.dedup();
    match distinct.as_slice() {
        [one] => need.agreed = Some((*one).clone()),
        [] => {}
        _ => problems.push(format!(
            "the hosts hold different gateway images under {}: {}; this machine has none to send them all: make it here (`shipit image gateway {}`) and deploy again, and every host gets that one",
            need.reference,
            ids.iter()
                .map(|(host, id)| format!("{host} has {}", short(id)))
                .collect::<Vec<_>>()
                .join(", "),
            settings.site.environment
        )),
    }
    problems
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// `registry:5000/name:tag` into `("registry:5000/name", "tag")`; `None` for a digest or no tag.
fn split_tag(reference: &str) -> Option<(&str, &str)> {
    if reference.contains('@') {
        return None;
    }
    let (repo, tag) = reference.rsplit_once(':')?;
    (!tag.contains('/')).then_some((repo, tag))
}

fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::split_tag;

    #[test]
    fn tags() {
        assert_eq!(
            split_tag("127.0.0.1:5000/shipit/calculator:0.2.0"),
            Some(("127.0.0.1:5000/shipit/calculator", "0.2.0"))
        );
        assert_eq!(split_tag("127.0.0.1:5000/shipit/calculator"), None);
        assert_eq!(split_tag("a/b:1@sha256:00"), None);
    }
}
