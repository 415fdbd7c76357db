//! `deploy.webhook` for Kubernetes deploys: one JSON message per deploy or
//! rollback (`deploy.succeeded`, `deploy.rolled-back`, `rollback.failed`,
//! ...) with the whole outcome. It never changes the result; a failure to
//! deliver is a warning that never shows the URL (it carries tokens).

use std::time::Duration;

use serde_json::json;

use super::Target;
use super::outcome::Outcome;

/// `None`: no webhook; `Some(true)` delivered; `Some(false)` not (why is in the warning).
pub fn announce(target: &Target, outcome: &Outcome, warn: &dyn Fn(&str)) -> Option<bool> {
    let reference = target.webhook.as_ref()?;
    let delivered = (|| {
        let url = crate::secrets::resolve(reference)
            .map_err(|why| format!("webhook {reference}: {why}"))?;
        let text = format!(
            "{} {}: {} {} {}{}",
            target.app,
            target.environment,
            outcome.action,
            outcome.version,
            outcome.result,
            outcome
                .cause
                .as_ref()
                .map(|c| format!(" ({})", c.lines().next().unwrap_or("")))
                .unwrap_or_default()
        );
        let mut body = json!({
            "event": format!("{}.{}", outcome.action, outcome.result),
            "app": target.app,
            "text": text,
        });
        if let (Some(b), Ok(serde_json::Value::Object(o))) =
            (body.as_object_mut(), serde_json::to_value(outcome))
        {
            for (k, v) in o {
                b.entry(k).or_insert(v);
            }
        }
        let response = crate::http::request(
            &url,
            "POST",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
            Duration::from_secs(5),
        )
        .map_err(|e| e.split(": ").last().unwrap_or("request failed").to_string())?;
        if (200..300).contains(&response.status) {
            Ok(())
        } else {
            Err(format!("the webhook answered {}", response.status))
        }
    })();
    match delivered {
        Ok(()) => Some(true),
        Err(why) => {
            warn(&format!(
                "the webhook was not delivered: {why} (the deploy result stands)"
            ));
            Some(false)
        }
    }
}
