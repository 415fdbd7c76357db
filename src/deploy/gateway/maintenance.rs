//! Maintenance mode at the gateway: `maintenance.map` in its volume holds
//! the state, the Retry-After seconds and the page (HTML and JSON, escaped
//! here, base64 in the map so HAProxy's map parser never sees their
//! spaces). HAProxy reads the file at every start; the runtime API changes
//! its memory live, so no connection is touched by the switch.

use base64::Engine as _;
use serde::Serialize;

use super::api::api;
use super::{DIR, MAINTENANCE_MAP};
use crate::deploy::Settings;
use crate::engine::Engine;

/// What the gateway says while in maintenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Maintenance {
    pub message: String,
    pub retry_after: u64,
}

pub const DEFAULT_MESSAGE: &str = "This service is down for maintenance and will be back shortly.";

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn unb64(text: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// `text` with HTML's special characters escaped.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl Maintenance {
    pub fn html(&self) -> String {
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Down for maintenance</title></head>\n<body><h1>Down for maintenance</h1>\n<p>{}</p></body></html>\n",
            html_escape(&self.message)
        )
    }

    pub fn json(&self) -> String {
        serde_json::json!({
            "error": "maintenance",
            "message": self.message,
            "retry_after": self.retry_after,
        })
        .to_string()
    }

    /// The map's entries, `state` last (HAProxy sees the page before the switch).
    fn entries(&self) -> Vec<(&'static str, String)> {
        vec![
            ("retry", self.retry_after.to_string()),
            ("message", b64(&self.message)),
            ("html", b64(&self.html())),
            ("json", b64(&self.json())),
            ("state", "on".into()),
        ]
    }
}

/// The map file for `state` (empty: not in maintenance).
pub fn file(state: Option<&Maintenance>) -> String {
    state
        .map(|m| {
            m.entries()
                .into_iter()
                .map(|(k, v)| format!("{k} {v}\n"))
                .collect()
        })
        .unwrap_or_default()
}

/// What a map file says.
pub fn parse(file: &str) -> Option<Maintenance> {
    let value = |key: &str| {
        file.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ').map(str::to_string))
    };
    (value("state")? == "on").then(|| Maintenance {
        message: value("message").and_then(|m| unb64(&m)).unwrap_or_default(),
        retry_after: value("retry").and_then(|r| r.parse().ok()).unwrap_or(60),
    })
}

/// What the gateway's file says (`None`: not in maintenance, or no gateway).
pub async fn read(engine: &Engine, settings: &Settings) -> Option<Maintenance> {
    let bytes = engine
        .download(
            &settings.site.gateway(),
            &format!("{DIR}/{MAINTENANCE_MAP}"),
        )
        .await
        .ok()??;
    parse(&String::from_utf8_lossy(&bytes))
}

/// Puts the gateway in (or out of) maintenance: its file first (a restart
/// keeps the state), then HAProxy's memory, live.
pub async fn set(
    engine: &Engine,
    settings: &Settings,
    state: Option<&Maintenance>,
) -> Result<(), String> {
    let gateway = settings.site.gateway();
    let before = read(engine, settings).await;
    engine
        .upload(&gateway, DIR, &[(MAINTENANCE_MAP, file(state).as_bytes())])
        .await
        .map_err(|e| e.to_string())?;
    // A new page while in maintenance is changed in place (never off
    // meanwhile); otherwise every entry goes at once, and the page's come
    // back before the switch (`state` is last).
    let in_place = before.is_some() && state.is_some();
    if !in_place {
        api(
            engine,
            settings,
            &format!("clear map {MAINTENANCE_MAP}"),
            None,
        )
        .await?;
    }
    if let Some(m) = state {
        let verb = if in_place { "set" } else { "add" };
        for (key, value) in m.entries() {
            let command = format!("{verb} map {MAINTENANCE_MAP} {key} {value}");
            api(engine, settings, &command, None).await?;
        }
    }
    Ok(())
}

/// Writes an empty map into a gateway that has none (one made by an
/// earlier shipit), so its configuration loads; an existing one is kept.
pub async fn ensure_file(engine: &Engine, gateway: &str) -> Result<(), String> {
    let present = engine
        .download(gateway, &format!("{DIR}/{MAINTENANCE_MAP}"))
        .await
        .map_err(|e| e.to_string())?;
    if present.is_none() {
        engine
            .upload(gateway, DIR, &[(MAINTENANCE_MAP, b"")])
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_escaped_and_the_file_reads_back() {
        let m = Maintenance {
            message: "<b>Back</b> & \"soon\"".into(),
            retry_after: 120,
        };
        assert!(
            m.html()
                .contains("<p>&lt;b&gt;Back&lt;/b&gt; &amp; &quot;soon&quot;</p>")
        );
        let json: serde_json::Value = serde_json::from_str(&m.json()).unwrap();
        assert_eq!(json["message"], m.message);
        let text = file(Some(&m));
        assert!(text.ends_with("state on\n"), "{text}");
        assert!(text.lines().all(|l| l.split(' ').count() == 2), "{text}");
        assert_eq!(parse(&text), Some(m));
        assert_eq!(parse(""), None);
        assert_eq!(file(None), "");
    }
}
