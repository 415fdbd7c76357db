//! The audit log: one JSON line per deploy, rollback, repair and failure,
//! kept in a volume on the engine (through a never-started container), so a
//! deploy from any machine sees the same history.

use serde::{Deserialize, Serialize};

use super::{Settings, Site};
use crate::engine::{ContainerSpec, Engine};
use crate::error::Error;
pub use crate::record::Phase;
use crate::record::{Action, Conclusion};

const DIR: &str = "/state";
const FILE: &str = "/state/history.jsonl";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub action: Action,
    pub result: Conclusion,
    pub release: Option<u64>,
    pub version: Option<String>,
    pub image: Option<String>,
    pub image_id: Option<String>,
    /// The replicas' container names, for successful entries.
    #[serde(default)]
    pub replicas: Vec<String>,
    /// The release serving before this one.
    pub previous_release: Option<u64>,
    pub previous_version: Option<String>,
    pub strategy: Option<String>,
    pub who: String,
    /// RFC 3339, UTC.
    pub started: String,
    pub duration_ms: u64,
    #[serde(default)]
    pub phases: Vec<Phase>,
    pub reason: Option<String>,
    #[serde(default)]
    pub repaired: Vec<String>,
    /// The run this entry belongs to: the same on every host of one deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_id: Option<String>,
}

impl Entry {
    pub fn new(action: Action, result: Conclusion, started: i64) -> Entry {
        Entry {
            action,
            result,
            release: None,
            version: None,
            image: None,
            image_id: None,
            replicas: Vec::new(),
            previous_release: None,
            previous_version: None,
            strategy: None,
            who: crate::identity::who().0,
            started: crate::clock::rfc3339(started),
            duration_ms: 0,
            phases: Vec::new(),
            reason: None,
            repaired: Vec::new(),
            deploy_id: None,
        }
    }

    /// A release that served: deploys and rollbacks that succeeded.
    pub fn served(&self) -> bool {
        self.release.is_some()
            && match self.action {
                Action::Deploy | Action::Rollback => self.result == Conclusion::Succeeded,
                Action::Repair => true,
                Action::LockRelease => false,
            }
    }
}

pub struct Store<'a> {
    engine: &'a Engine,
    container: String,
}

impl<'a> Store<'a> {
    /// The engine the history lives on.
    pub fn engine(&self) -> &'a Engine {
        self.engine
    }

    /// The state volume and its container, created when missing.
    pub async fn open(engine: &'a Engine, settings: &Settings) -> Result<Store<'a>, Error> {
        let site = &settings.site;
        let store = Store {
            engine,
            container: site.state(),
        };
        if engine.container(&store.container).await?.is_none() {
            engine
                .ensure_volume(&site.state(), &site.labels("state"))
                .await?;
            let spec = ContainerSpec {
                name: site.state(),
                image: settings.gateway_image.clone(),
                labels: site.labels("state"),
                volumes: vec![(site.state(), DIR.into())],
                ..Default::default()
            };
            engine.create_container(&spec).await?;
        }
        Ok(store)
    }

    /// Read-only access: `None` when nothing was ever deployed here.
    pub async fn existing(engine: &'a Engine, site: &Site) -> Result<Option<Store<'a>>, Error> {
        Ok(engine.container(&site.state()).await?.map(|_| Store {
            engine,
            container: site.state(),
        }))
    }

    pub async fn read(&self) -> Result<Vec<Entry>, Error> {
        let Some(bytes) = self.engine.download(&self.container, FILE).await? else {
            return Ok(Vec::new());
        };
        // A line that does not parse (a torn write) is skipped, not fatal.
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    pub async fn append(&self, entry: &Entry) -> Result<(), Error> {
        let mut text = match self.engine.download(&self.container, FILE).await? {
            Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            None => String::new(),
        };
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&serde_json::to_string(entry).unwrap_or_default());
        text.push('\n');
        self.engine
            .upload(&self.container, DIR, &[("history.jsonl", text.as_bytes())])
            .await
    }
}
