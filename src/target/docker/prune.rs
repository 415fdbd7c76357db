//! `shipit prune` on Docker hosts: under each host's deploy lock, removes
//! the stopped replicas of releases beyond `deploy.keep_releases`, the
//! finished containers of `shipit run`, and the images of releases no
//! longer kept that nothing uses; never the serving release or a kept one,
//! never anything the history does not account for, never a running
//! container. Reports what it removed and the removed images' sizes.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::deploy::history::Store;
use crate::deploy::host::{self, Host};
use crate::deploy::{RELEASE, Settings, gateway, lock, releases};
use crate::error::Error;
use crate::output::Output;
use crate::target::PruneRequest;

/// What prune removed (or, with `--dry-run`, would remove) on one host.
#[derive(Debug, Default, Serialize)]
struct Pruned {
    host: String,
    containers: Vec<String>,
    images: Vec<String>,
    /// Images of old releases the engine would not remove, and its reason
    /// (a container uses one, a child image or another repository's tag).
    left: Vec<(String, String)>,
    /// The removed images' sizes, added up (layers they share with images
    /// that stay are not freed; the engine's own figure is not available
    /// through every API version).
    image_bytes: i64,
    /// Why nothing was done here.
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<String>,
}

pub(super) async fn prune(
    out: &Output,
    settings: &Settings,
    request: &PruneRequest,
) -> Result<(), Error> {
    let (hosts, unreachable) = host::connect_all(settings).await?;
    let chosen = super::hosts::chosen(&hosts, request.host.as_deref())?;
    let mut report = Vec::new();
    let mut failed = Vec::new();
    for h in chosen {
        let name = super::replicas::who(h, settings);
        match prune_host(h, settings, request.dry_run).await {
            Ok(mut pruned) => {
                pruned.host = name;
                say(out, &pruned, request.dry_run);
                report.push(pruned);
            }
            Err(e) => {
                out.warn(&format!("{name}: {e}"));
                failed.push(name);
            }
        }
    }
    for u in &unreachable {
        out.warn(&format!("{}: unreachable, not pruned: {}", u.name, u.why));
        failed.push(u.name.clone());
    }
    if out.is_json() {
        out.json(&serde_json::json!({
            "environment": settings.site.environment,
            "dry_run": request.dry_run,
            "hosts": report,
            "failed": failed,
        }));
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Reported {
            code: 1,
            message: format!("not pruned: {}", failed.join(", ")),
        })
    }
}

fn say(out: &Output, pruned: &Pruned, dry_run: bool) {
    let verb = if dry_run { "would remove" } else { "removed" };
    if let Some(why) = &pruned.skipped {
        out.status("skipped", &format!("{}: {why}", pruned.host));
        return;
    }
    for c in &pruned.containers {
        out.status(verb, &format!("{}: container {c}", pruned.host));
    }
    for i in &pruned.images {
        out.status(verb, &format!("{}: image {i}", pruned.host));
    }
    for (i, why) in &pruned.left {
        out.status("left", &format!("{}: image {i}: {why}", pruned.host));
    }
    let freed = format!(
        ", images of {:.1} MiB",
        pruned.image_bytes as f64 / 1_048_576.0
    );
    out.status(
        if dry_run { "planned" } else { "pruned" },
        &format!(
            "{}: {} container(s), {} image(s){freed}",
            pruned.host,
            pruned.containers.len(),
            pruned.images.len()
        ),
    );
}

async fn prune_host(h: &Host, settings: &Settings, dry_run: bool) -> Result<Pruned, Error> {
    let engine = &h.engine;
    let site = &settings.site;
    let Some(store) = Store::existing(engine, site).await? else {
        return Ok(Pruned {
            skipped: Some("nothing of this environment was ever deployed here".into()),
            ..Default::default()
        });
    };
    let guard = if dry_run {
        None
    } else {
        Some(
            lock::acquire(
                engine,
                settings,
                "prune",
                Default::default(),
                &|| false,
                |_| {},
            )
            .await?,
        )
    };
    let result = plan_and_remove(h, settings, &store, dry_run).await;
    if let Some(guard) = guard {
        guard.release(engine).await;
    }
    result
}

async fn plan_and_remove(
    h: &Host,
    settings: &Settings,
    store: &Store<'_>,
    dry_run: bool,
) -> Result<Pruned, Error> {
    let engine = &h.engine;
    let site = &settings.site;
    let history = store.read().await?;
    let serving = gateway::serving(engine, settings).await?.map(|s| s.release);
    let kept = releases::kept(&history, serving, settings.keep_releases);
    let keep = |r: u64| Some(r) == serving || kept.contains(&r) || !history.accounts_for(r);
    let release_of = |c: &crate::engine::ContainerInfo| -> Option<u64> {
        c.labels.get(RELEASE).and_then(|r| r.parse().ok())
    };

    let replicas = engine.containers(&site.filter("replica")).await?;
    let runs = engine.containers(&site.filter("run")).await?;
    let mut pruned = Pruned::default();
    let mut staying: BTreeSet<String> = BTreeSet::new();
    for c in &replicas {
        let old = release_of(c).is_some_and(|r| !keep(r));
        if old && !c.running {
            pruned.containers.push(c.name.clone());
        } else {
            staying.insert(c.image.clone());
        }
    }
    for c in &runs {
        if c.running {
            staying.insert(c.image.clone());
        } else {
            pruned.containers.push(c.name.clone());
        }
    }
    // Images of the releases the history names and no longer keeps.
    let mut old_images: BTreeSet<String> = BTreeSet::new();
    for e in history.iter() {
        if let (Some(r), Some(id)) = (e.release, &e.image_id)
            && !keep(r)
        {
            old_images.insert(id.clone());
        }
    }
    for e in history.iter() {
        if let (Some(r), Some(id)) = (e.release, &e.image_id)
            && keep(r)
        {
            old_images.remove(id);
        }
    }
    old_images.retain(|id| !staying.contains(id));
    let mut candidates = Vec::new();
    for id in old_images {
        if let Some(info) = engine.inspect(&id).await {
            candidates.push((id, info.size));
        }
    }
    if dry_run {
        pruned.image_bytes = candidates.iter().map(|(_, size)| size).sum();
        pruned.images = candidates.into_iter().map(|(id, _)| id).collect();
        return Ok(pruned);
    }
    for name in &pruned.containers {
        engine.remove_container(name).await?;
    }
    for (id, size) in candidates {
        match engine.remove_image(&id).await? {
            None => {
                pruned.images.push(id);
                pruned.image_bytes += size;
            }
            Some(why) => pruned.left.push((id, why)),
        }
    }
    Ok(pruned)
}
