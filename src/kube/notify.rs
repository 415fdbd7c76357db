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
            outcome.subject.action,
            outcome.subject.version,
            outcome.result,
            outcome
                .cause
                .as_ref()
                .map(|c| format!(" ({})", c.lines().next().unwrap_or("")))
                .unwrap_or_default()
        );
        let mut body = json!({
            "event": format!("{}.{}", outcome.subject.action, outcome.result),
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
        without_bodies(&mut body);
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

/// What leaves this machine carries the reason, not what the service
/// answered: the cause's first line, and no smoke check's `detail` (the
/// run's own JSON and the terminal keep both).
fn without_bodies(body: &mut serde_json::Value) {
    if let Some(cause) = body.get("cause").and_then(|c| c.as_str()) {
        let first = cause.lines().next().unwrap_or_default().to_string();
        body["cause"] = json!(first);
    }
    if let Some(checks) = body
        .pointer_mut("/smoke/checks")
        .and_then(|c| c.as_array_mut())
    {
        for check in checks.iter_mut().filter_map(|c| c.as_object_mut()) {
            check.remove("detail");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_gets_no_answer_bodies() {
        let mut body = json!({
            "cause": "failed its smoke tests: 1 of 2 checks failed:\n  - GET /: got {\"secret\":1}",
            "smoke": {"checks": [{"name": "GET /", "passed": false, "detail": "got {\"secret\":1}"}]},
        });
        without_bodies(&mut body);
        assert!(!body.to_string().contains("secret"), "{body}");
        assert_eq!(body["smoke"]["checks"][0]["name"], "GET /");
    }
}
