//! The optional webhook: a JSON message on deploy success, failure and
//! rollback. It never fails a deploy; a failure to deliver is a warning.

use std::time::Duration;

use serde::Serialize;

use super::Settings;
use super::history::Entry;

#[derive(Debug, Serialize)]
pub struct Message<'a> {
    /// `deploy.succeeded`, `deploy.failed`, `rollback.succeeded`, ...
    pub event: String,
    pub app: &'a str,
    pub environment: &'a str,
    pub text: String,
    #[serde(flatten)]
    pub entry: &'a Entry,
}

/// Sends the message; `Err` says why it was not delivered (never the URL).
pub async fn send(settings: &Settings, entry: &Entry) -> Result<bool, String> {
    let Some(reference) = &settings.webhook else {
        return Ok(false);
    };
    let url =
        crate::secrets::resolve(reference).map_err(|why| format!("webhook {reference}: {why}"))?;
    let site = &settings.site;
    let event = format!("{}.{}", entry.action, entry.result);
    let text = format!(
        "{} {}: {} {} {}{}",
        site.app,
        site.environment,
        entry.action,
        entry.version.as_deref().unwrap_or("-"),
        entry.result,
        entry
            .reason
            .as_ref()
            .map(|r| format!(" ({})", r.lines().next().unwrap_or("")))
            .unwrap_or_default()
    );
    let body = serde_json::to_vec(&Message {
        event,
        app: &site.app,
        environment: &site.environment,
        text,
        entry,
    })
    .map_err(|e| e.to_string())?;
    let response = tokio::task::spawn_blocking(move || {
        crate::http::request(
            &url,
            "POST",
            &[("Content-Type", "application/json")],
            &body,
            Duration::from_secs(5),
        )
        // The URL carries tokens: errors mention only what went wrong.
        .map_err(|e| e.split(": ").last().unwrap_or("request failed").to_string())
    })
    .await
    .map_err(|e| e.to_string())??;
    if (200..300).contains(&response.status) {
        Ok(true)
    } else {
        Err(format!("the webhook answered {}", response.status))
    }
}

/// Sends the notice for `entry`; a webhook that fails is a warning, never the
/// result: `Some(true)` sent, `Some(false)` failed, `None` none configured.
pub async fn announce(
    settings: &Settings,
    entry: &Entry,
    out: &crate::output::Output,
) -> Option<bool> {
    match send(settings, entry).await {
        Ok(sent) => sent.then_some(true),
        Err(why) => {
            out.warn(&format!(
                "the webhook was not delivered: {why} (the deploy result stands)"
            ));
            Some(false)
        }
    }
}
