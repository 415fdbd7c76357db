//! Getting an image onto an engine: streamed from another engine through
//! the API (`GET /images/NAME/get` into `POST /images/load`, never touching
//! a disk or a registry), or pulled with credentials passed per pull.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bollard::auth::DockerCredentials;
use bollard::query_parameters::{CreateImageOptions, ImportImageOptionsBuilder};
use futures_util::StreamExt;

use super::Engine;
use super::runtime::{failed, silent};
use crate::error::Error;

/// Bytes moved so far, shared with whoever shows progress.
#[derive(Clone, Default)]
pub struct Progress(Arc<AtomicU64>);

impl Progress {
    pub fn bytes(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl Engine {
    /// Streams `reference` (with its tag) from `source` into this engine and
    /// returns the image id it loaded, as this engine reports it.
    pub async fn stream_image_from(
        &self,
        source: &Engine,
        reference: &str,
        progress: &Progress,
    ) -> Result<String, Error> {
        let counter = progress.clone();
        let export = source.api()?.export_image(reference).map(move |chunk| {
            if let Ok(bytes) = &chunk {
                counter.add(bytes.len());
            }
            chunk
        });
        let options = ImportImageOptionsBuilder::default().quiet(true).build();
        let api = self.api_within(super::LONG_LIMIT)?;
        let mut load = api.import_image_stream(options, export, None);
        while let Some(item) = load.next().await {
            let info = item.map_err(|e| {
                failed(
                    self,
                    format!("stream {reference} from {}", source.address),
                    e,
                )
            })?;
            if let Some(detail) = info.error_detail {
                return Err(failed(
                    self,
                    format!("load {reference}"),
                    detail.message.unwrap_or_default(),
                ));
            }
        }
        self.image_id(reference).await.ok_or_else(|| {
            failed(
                self,
                format!("load {reference}"),
                "the engine loaded the stream but has no such image",
            )
        })
    }

    /// Whether the registry has `reference`, asked by this engine (so with
    /// its network and the credentials given): the error says why not.
    pub async fn registry_has(
        &self,
        reference: &str,
        credentials: Option<DockerCredentials>,
    ) -> Result<(), String> {
        self.api()
            .map_err(|e| e.to_string())?
            .inspect_registry_image(reference, credentials)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The digest the registry gives `reference` (its manifest, or its
    /// index for several platforms), asked by this engine.
    pub async fn registry_digest(
        &self,
        reference: &str,
        credentials: Option<DockerCredentials>,
    ) -> Result<String, String> {
        let inspect = self
            .api()
            .map_err(|e| e.to_string())?
            .inspect_registry_image(reference, credentials)
            .await
            .map_err(|e| e.to_string())?;
        inspect
            .descriptor
            .digest
            .filter(|d| !d.is_empty())
            .ok_or_else(|| "the registry gave no digest".into())
    }

    /// Pulls `reference` with `credentials` (sent with this pull only);
    /// progress counts the layers' downloaded bytes.
    pub async fn pull_with(
        &self,
        reference: &str,
        credentials: Option<DockerCredentials>,
        progress: &Progress,
    ) -> Result<String, Error> {
        let options = CreateImageOptions {
            from_image: Some(reference.to_string()),
            ..Default::default()
        };
        let mut stream = self.api()?.create_image(Some(options), None, credentials);
        let mut layers: std::collections::HashMap<String, i64> = Default::default();
        // A pull reports progress as it goes: silence past the limit is a lost host.
        let quiet = super::CALL_LIMIT * 4;
        loop {
            let Ok(next) = tokio::time::timeout(quiet, stream.next()).await else {
                return Err(silent(self, format!("pull {reference}"), quiet));
            };
            let Some(item) = next else { break };
            let info = item.map_err(|e| failed(self, format!("pull {reference}"), e))?;
            if let Some(detail) = info.error_detail {
                return Err(failed(
                    self,
                    format!("pull {reference}"),
                    detail.message.unwrap_or_default(),
                ));
            }
            if let (Some(id), Some(p)) = (info.id, info.progress_detail)
                && let Some(current) = p.current
            {
                let before = layers.insert(id, current).unwrap_or(0);
                progress.add((current - before).max(0) as usize);
            }
        }
        self.image_id(reference).await.ok_or_else(|| {
            failed(
                self,
                format!("pull {reference}"),
                "the pull ended but the engine has no such image",
            )
        })
    }
}
