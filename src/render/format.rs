//! Configuration values in the forms the generated files' syntaxes take:
//! durations for nginx and Prometheus, CPUs and memory for compose, rates
//! for the ingress, JSON arrays for exec-form commands.

use std::time::Duration;

use crate::config::model::BuildKind;

/// The first server name that is not a wildcard (else a wildcard's domain),
/// with the HTTPS port unless it is 443.
pub(super) fn redirect_authority(names: &[String], port: i64) -> String {
    let name = names
        .iter()
        .find(|n| !n.starts_with("*."))
        .or(names.first())
        .map(|n| n.trim_start_matches("*.").to_string())
        .unwrap_or_default();
    if port == 443 {
        name
    } else {
        format!("{name}:{port}")
    }
}

/// `20r/s` -> a 10 s window allowing 200 requests; `600r/m` -> 1 minute, 600.
pub(super) fn rate_window(rate: (u32, char)) -> (&'static str, u64) {
    match rate {
        (n, 'm') => ("1m", u64::from(n)),
        (n, _) => ("10s", u64::from(n) * 10),
    }
}

/// The requests a rate allows in one second, rounded up (`600r/m`: 10).
pub(super) fn per_second(rate: (u32, char)) -> u64 {
    match rate {
        (n, 'm') => u64::from(n).div_ceil(60),
        (n, _) => u64::from(n),
    }
}

/// `20r/s` -> (`limit-rps`, 20, burst / 20 rounded up, at least 1).
pub(super) fn ingress_rate(rate: (u32, char), burst: i64) -> (&'static str, u64, u64) {
    let (n, unit) = rate;
    let n = u64::from(n);
    let key = if unit == 'm' {
        "limit-rpm"
    } else {
        "limit-rps"
    };
    let multiplier = if n == 0 {
        1
    } else {
        (burst.max(0) as u64).div_ceil(n).max(1)
    };
    (key, n, multiplier)
}

/// The health check shipit renders where the image has an interpreter:
/// `app.health_path` over HTTP, from inside the container, no curl needed.
pub(super) fn default_healthcheck(kind: BuildKind, path: &str) -> Vec<String> {
    let script = match kind {
        BuildKind::Python => format!(
            "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '{path}', timeout=3)"
        ),
        BuildKind::Node => format!(
            "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '{path}').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
        ),
        _ => return Vec::new(),
    };
    let interpreter = if kind == BuildKind::Python {
        "python3"
    } else {
        "node"
    };
    let flag = if kind == BuildKind::Python {
        "-c"
    } else {
        "-e"
    };
    vec![interpreter.into(), flag.into(), script]
}

/// A JSON array of strings (Dockerfile and compose exec form); empty for none.
pub(super) fn json_array(items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = items
            .iter()
            .map(|i| serde_json::to_string(i).unwrap_or_default())
            .collect();
        format!("[{}]", quoted.join(", "))
    }
}

/// Whole seconds (at least one), for nginx and Kubernetes fields that take them.
pub(super) fn seconds(d: Duration) -> u64 {
    d.as_secs().max(1)
}

/// A duration in the shortest exact nginx / Prometheus form: `500ms`, `30s`, `5m`, `2h`.
pub fn short_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else {
        format!("{}s", ms / 1000)
    }
}

/// Compose wants CPUs as a decimal number of cores.
pub(super) fn compose_cpus(milli: u64) -> String {
    let text = format!("{}.{:03}", milli / 1000, milli % 1000);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Compose wants memory as bytes with a b/k/m/g suffix (binary units).
pub(super) fn compose_memory(bytes: u64) -> String {
    for (unit, size) in [("g", 1u64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
        if bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}b")
}

pub(super) fn rust_target(platform: &str) -> &'static str {
    match platform {
        "linux/arm64" => "aarch64-unknown-linux-gnu",
        _ => "x86_64-unknown-linux-gnu",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_quantities_in_target_forms() {
        assert_eq!(short_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(short_duration(Duration::from_secs(90)), "90s");
        assert_eq!(short_duration(Duration::from_secs(300)), "5m");
        assert_eq!(short_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(compose_cpus(500), "0.5");
        assert_eq!(compose_cpus(1000), "1");
        assert_eq!(compose_cpus(1250), "1.25");
        assert_eq!(compose_memory(128 << 20), "128m");
        assert_eq!(compose_memory(1 << 30), "1g");
        assert_eq!(compose_memory(500_000_000), "500000000b");
        assert_eq!(ingress_rate((20, 's'), 40), ("limit-rps", 20, 2));
        assert_eq!(ingress_rate((600, 'm'), 40), ("limit-rpm", 600, 1));
        assert_eq!(ingress_rate((10, 's'), 25), ("limit-rps", 10, 3));
        assert_eq!(ingress_rate((10, 's'), 0), ("limit-rps", 10, 1));
    }
}
