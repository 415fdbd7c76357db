//! Getting an image onto an engine: streamed from another engine through
//! the API (`GET /images/NAME/get` into `POST /images/load`, never touching
//! a disk or a registry), or pulled with credentials passed per pull.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    CreateImageOptions, ImportImageOptionsBuilder, ListImagesOptionsBuilder,
};
use bytes::Bytes;
use futures_util::StreamExt;

use super::runtime::{failed, silent};
use super::{Engine, layers};
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

/// What a stream delivered.
#[derive(Debug, Clone)]
pub struct Streamed {
    /// The image id the engine loaded.
    pub id: String,
    /// The image's layers.
    pub layers: usize,
    /// The layers left out: the engine had them.
    pub skipped: layers::Skipped,
    /// Why the archive without them was refused, when the whole image was sent again.
    pub resent: Option<String>,
}

/// How a refused load's message begins.
const REFUSED: &str = "the engine refused the image archive";

impl Engine {
    /// Streams `reference` (with its tag) from `source` into this engine,
    /// leaving out the layers this engine already holds, and returns the
    /// image id it loaded, as this engine reports it.
    pub async fn stream_image_from(
        &self,
        source: &Engine,
        reference: &str,
        progress: &Progress,
    ) -> Result<Streamed, Error> {
        let layers = source.image_layers(reference).await;
        let skip = layers::already_there(&layers, &self.layer_chains().await);
        self.stream_leaving_out(source, reference, progress, skip)
            .await
            .map(|s| Streamed {
                layers: layers.len(),
                ..s
            })
    }

    /// Streams `reference` without the layers of `skip` (diff ids). Should
    /// the engine refuse the archive without them (it lacks one after all:
    /// removed meanwhile), the whole image is sent once more.
    pub async fn stream_leaving_out(
        &self,
        source: &Engine,
        reference: &str,
        progress: &Progress,
        skip: HashSet<String>,
    ) -> Result<Streamed, Error> {
        if skip.is_empty() {
            return self.load_from(source, reference, progress, skip).await;
        }
        match self.load_from(source, reference, progress, skip).await {
            Err(Error::Docker { message, .. }) if message.starts_with(REFUSED) => {
                progress.0.store(0, Ordering::Relaxed);
                let mut whole = self
                    .load_from(source, reference, progress, HashSet::new())
                    .await?;
                whole.resent = Some(message);
                Ok(whole)
            }
            other => other,
        }
    }

    async fn load_from(
        &self,
        source: &Engine,
        reference: &str,
        progress: &Progress,
        skip: HashSet<String>,
    ) -> Result<Streamed, Error> {
        let counter = progress.clone();
        let mut export = source.api()?.export_image(reference);
        let (send, mut receive) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
        let filtering = tokio::spawn(async move {
            let mut filter = layers::Filter::new(skip);
            while let Some(chunk) = export.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        let _ = send.send(Err(std::io::Error::other(e.to_string()))).await;
                        return None;
                    }
                };
                for piece in filter.push(&chunk) {
                    counter.add(piece.len());
                    if send.send(Ok(piece)).await.is_err() {
                        return None;
                    }
                }
            }
            if !filter.complete() {
                let _ = send
                    .send(Err(std::io::Error::other("the image archive ended early")))
                    .await;
                return None;
            }
            Some(filter.skipped)
        });
        let body = futures_util::stream::poll_fn(move |cx| receive.poll_recv(cx));
        let options = ImportImageOptionsBuilder::default().quiet(true).build();
        let api = self.api_within(super::LONG_LIMIT)?;
        let mut load = api.import_image_stream(options, body, None);
        let refused = |why: String| {
            failed(
                self,
                format!("load {reference}"),
                format!("{REFUSED}: {why}"),
            )
        };
        while let Some(item) = load.next().await {
            let info = item.map_err(|e| match e {
                // The engine read the archive and would not load it.
                bollard::errors::Error::DockerResponseServerError { message, .. }
                | bollard::errors::Error::DockerStreamError { error: message } => refused(message),
                e => failed(
                    self,
                    format!("stream {reference} from {}", source.address),
                    e,
                ),
            })?;
            if let Some(detail) = info.error_detail {
                return Err(refused(detail.message.unwrap_or_default()));
            }
        }
        let skipped = filtering.await.ok().flatten().unwrap_or_default();
        let id = self.image_id(reference).await.ok_or_else(|| {
            failed(
                self,
                format!("load {reference}"),
                "the engine loaded the stream but has no such image",
            )
        })?;
        Ok(Streamed {
            id,
            layers: 0,
            skipped,
            resent: None,
        })
    }

    /// An image's layers (diff ids, bottom first); none when the engine lacks it.
    pub async fn image_layers(&self, reference: &str) -> Vec<String> {
        let Ok(api) = self.api() else {
            return Vec::new();
        };
        api.inspect_image(reference)
            .await
            .ok()
            .and_then(|i| i.root_fs)
            .and_then(|r| r.layers)
            .unwrap_or_default()
    }

    /// Every layer chain this engine's images stand on. None from an engine
    /// that keeps images in containerd's store, whose load wants every blob.
    pub async fn layer_chains(&self) -> HashSet<String> {
        let Ok(api) = self.api() else {
            return HashSet::new();
        };
        let containerd = api.info().await.ok().is_some_and(|info| {
            info.driver_status
                .unwrap_or_default()
                .iter()
                .flatten()
                .any(|s| s.contains("io.containerd.snapshotter"))
        });
        if containerd {
            return HashSet::new();
        }
        // Top-level images: an intermediate one's chains are its children's too.
        let options = ListImagesOptionsBuilder::default().all(false).build();
        let Ok(images) = api.list_images(Some(options)).await else {
            return HashSet::new();
        };
        let inspected = futures_util::stream::iter(images)
            .map(|image| async move { self.image_layers(&image.id).await })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
        inspected
            .iter()
            .flat_map(|diff_ids| layers::chain_ids(diff_ids))
            .collect()
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
