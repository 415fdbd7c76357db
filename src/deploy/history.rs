//! The audit log: one JSON entry per deploy, rollback, repair and failure,
//! kept in a volume on the engine (through a never-started container), so a
//! deploy from any machine sees the same history.
//!
//! Each entry is a file of its own (`history.d/00000042.json`), written
//! once and never rewritten: an append that is cut off can damage only the
//! entry it was writing, never the ones before it. Histories written before
//! (`history.jsonl`, one line per entry) are still read, first. An entry
//! that does not read is counted as damage, and while there is any, no
//! release the history cannot account for is removed (see `History`).

use serde::{Deserialize, Serialize};

use super::{Settings, Site};
use crate::engine::{ContainerSpec, Engine};
use crate::error::Error;
pub use crate::record::Phase;
use crate::record::{Action, Conclusion};

const DIR: &str = "/state";
/// The history before entries had files of their own: read, never written.
const LEGACY: &str = "/state/history.jsonl";
/// One file per entry, named by its place in the history.
const ENTRIES: &str = "/state/history.d";

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

    /// The history, from one archive read of the state directory (the
    /// legacy file and every entry's file together).
    pub async fn read(&self) -> Result<History, Error> {
        let mut history = History::default();
        let all = self
            .engine
            .download_all(&self.container, DIR)
            .await?
            .unwrap_or_default();
        // Named relative to `/`: `state/history.jsonl`, `state/history.d/N.json`.
        let below = |name: &str, path: &str| {
            name.strip_prefix(path.trim_start_matches('/'))
                .map(str::to_string)
        };
        if let Some((_, bytes)) = all
            .iter()
            .find(|(n, _)| below(n, LEGACY).as_deref() == Some(""))
        {
            for (i, line) in String::from_utf8_lossy(bytes).lines().enumerate() {
                match serde_json::from_str(line) {
                    Ok(entry) => history.entries.push(entry),
                    Err(_) if line.trim().is_empty() => {}
                    Err(_) => history
                        .unreadable
                        .push(format!("history.jsonl line {}", i + 1)),
                }
            }
        }
        let mut files: Vec<(String, &Vec<u8>)> = all
            .iter()
            .filter_map(|(n, bytes)| {
                let rest = below(n, ENTRIES)?;
                let file = rest.strip_prefix('/')?;
                Some((format!("history.d/{file}"), bytes))
            })
            .collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, bytes) in files {
            match serde_json::from_slice(bytes) {
                Ok(entry) => history.entries.push(entry),
                Err(_) => history.unreadable.push(name),
            }
        }
        Ok(history)
    }

    /// The entries' files, `history.d/NAME` with their bytes.
    async fn entry_files(&self) -> Result<Vec<(String, Vec<u8>)>, Error> {
        Ok(self
            .engine
            .download_all(&self.container, ENTRIES)
            .await?
            .unwrap_or_default())
    }

    /// Writes `entry` as a new file after the last one; no entry before it
    /// is read back or written again.
    pub async fn append(&self, entry: &Entry) -> Result<(), Error> {
        let last = self
            .entry_files()
            .await?
            .iter()
            .filter_map(|(name, _)| {
                name.rsplit('/')
                    .next()?
                    .strip_suffix(".json")?
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap_or(0);
        let name = format!("history.d/{:08}.json", last + 1);
        let text = serde_json::to_string(entry).unwrap_or_default();
        self.engine
            .upload(&self.container, DIR, &[(&name, text.as_bytes())])
            .await
    }
}

/// A site's history as it reads: its entries in order, and the entries that
/// do not read (a write that was cut off, a damaged volume).
#[derive(Debug, Clone, Default)]
pub struct History {
    pub entries: Vec<Entry>,
    /// Where an entry did not read: `history.d/00000007.json`, `history.jsonl line 3`.
    pub unreadable: Vec<String>,
}

impl std::ops::Deref for History {
    type Target = [Entry];
    fn deref(&self) -> &[Entry] {
        &self.entries
    }
}

impl History {
    /// Whether `release` may be removed as far as the history can tell: a
    /// complete history accounts for everything; a damaged one only for the
    /// releases its readable entries name (an unknown release may be one
    /// that served, recorded in the entry that does not read).
    pub fn accounts_for(&self, release: u64) -> bool {
        self.unreadable.is_empty() || self.entries.iter().any(|e| e.release == Some(release))
    }

    /// What people are told while the history is damaged.
    pub fn damage(&self) -> Option<String> {
        (!self.unreadable.is_empty()).then(|| {
            format!(
                "the history has {} unreadable entr{} ({}): releases it does not account for are kept, not removed",
                self.unreadable.len(),
                if self.unreadable.len() == 1 { "y" } else { "ies" },
                self.unreadable.join(", ")
            )
        })
    }
}
