//! `shipit accessory status`: each accessory on each of its hosts.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::model::Accessory;
use crate::deploy::host;
use crate::deploy::{ACCESSORY_CONFIG, Settings};
use crate::error::Error;
use crate::output::Output;

#[derive(Debug, Serialize)]
struct Shown {
    accessory: String,
    host: String,
    container: String,
    /// `running`, `exited`, ..., or `missing` (not booted).
    state: String,
    health: String,
    image: String,
    started_at: String,
    /// `IP:PORT` where it is published on the host.
    published: Option<String>,
    volumes: Vec<String>,
    /// Booted with another configuration than today's.
    changed: bool,
}

pub(super) async fn status(
    out: &Output,
    settings: &Settings,
    chosen: &BTreeMap<&str, &Accessory>,
) -> Result<(), Error> {
    let site = &settings.site;
    let mut shown = Vec::new();
    for (name, a) in chosen {
        for want in super::hosts_of(settings, a)? {
            let h = host::connect_one(settings, want.as_deref()).await?;
            let container = site.accessory(name);
            let info = h.engine.container(&container).await?;
            let volumes = a
                .volumes
                .iter()
                .filter_map(|v| v.split_once(':'))
                .map(|(v, path)| format!("{}:{path}", site.accessory_volume(name, v)))
                .collect();
            // Files are not read here: a change of theirs alone shows at boot.
            let today = super::container::digest_of_config(a);
            shown.push(match info {
                Some(i) => Shown {
                    accessory: name.to_string(),
                    host: h.name.clone(),
                    container,
                    state: i.state.clone(),
                    health: i.health.clone(),
                    image: a.image.clone(),
                    started_at: i.started_at.clone(),
                    published: i.ports.get(&(a.port as u16)).map(|p| {
                        format!(
                            "{}:{p}",
                            a.publish.rsplit_once(':').map_or("", |(ip, _)| ip)
                        )
                    }),
                    volumes,
                    changed: i
                        .labels
                        .get(ACCESSORY_CONFIG)
                        .is_none_or(|d| !d.starts_with(&today)),
                },
                None => Shown {
                    accessory: name.to_string(),
                    host: h.name.clone(),
                    container,
                    state: "missing".into(),
                    health: "-".into(),
                    image: a.image.clone(),
                    started_at: String::new(),
                    published: None,
                    volumes,
                    changed: false,
                },
            });
        }
    }
    if out.is_json() {
        out.json(&serde_json::json!({
            "environment": site.environment,
            "accessories": shown,
        }));
        return Ok(());
    }
    for s in &shown {
        out.status(
            &s.accessory,
            &format!(
                "{} on {}: {}{} {}{}{}",
                s.container,
                s.host,
                s.state,
                if s.health == "none" || s.health == "-" {
                    String::new()
                } else {
                    format!(" ({})", s.health)
                },
                s.image,
                s.published
                    .as_ref()
                    .map(|p| format!(", published at {p}"))
                    .unwrap_or_default(),
                if s.changed {
                    ", configuration changed since boot (reboot applies it)"
                } else {
                    ""
                }
            ),
        );
        for v in &s.volumes {
            out.detail(&format!("volume {v}"));
        }
    }
    Ok(())
}
