//! The calculator's smoke suite: what must answer before a release takes
//! traffic, and what `shipit smoke ENV` checks afterwards. Retried with
//! backoff up to a deadline; reported for people, as JSON and as JUnit XML.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::http;

/// Paths the suite uses (from `app.*_path`).
#[derive(Debug, Clone)]
pub struct Paths {
    pub health: String,
    pub ready: String,
    pub metrics: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    /// Why it failed (empty when it passed).
    pub detail: String,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    pub passed: bool,
    /// How many times the suite ran before it passed or the deadline came.
    pub attempts: u32,
    pub duration_ms: u64,
    /// The checks of the last attempt.
    pub checks: Vec<Check>,
}

impl Report {
    pub fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.passed).collect()
    }

    pub fn summary(&self) -> String {
        let failed = self.failures();
        if failed.is_empty() {
            format!(
                "{} checks passed against {} ({} attempt(s), {} ms)",
                self.checks.len(),
                self.url,
                self.attempts,
                self.duration_ms
            )
        } else {
            format!(
                "{} of {} checks failed against {} after {} attempt(s) in {} ms:\n{}",
                failed.len(),
                self.checks.len(),
                self.url,
                self.attempts,
                self.duration_ms,
                failed
                    .iter()
                    .map(|c| format!("  - {}: {}", c.name, c.detail))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        }
    }

    /// JUnit XML, one testcase per check.
    pub fn junit(&self, suite: &str) -> String {
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" time=\"{:.3}\">\n    <properties>\n      <property name=\"url\" value=\"{}\"/>\n      <property name=\"attempts\" value=\"{}\"/>\n    </properties>\n",
            xml(suite),
            self.checks.len(),
            self.failures().len(),
            self.duration_ms as f64 / 1000.0,
            xml(&self.url),
            self.attempts
        );
        for check in &self.checks {
            let time = check.duration_ms as f64 / 1000.0;
            if check.passed {
                out.push_str(&format!(
                    "    <testcase classname=\"{}\" name=\"{}\" time=\"{time:.3}\"/>\n",
                    xml(suite),
                    xml(&check.name)
                ));
            } else {
                out.push_str(&format!(
                    "    <testcase classname=\"{}\" name=\"{}\" time=\"{time:.3}\">\n      <failure message=\"{}\"/>\n    </testcase>\n",
                    xml(suite),
                    xml(&check.name),
                    xml(&check.detail)
                ));
            }
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

fn xml(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\n', "&#10;")
}

/// Known answers for every operation.
pub const ANSWERS: &[(&str, &[f64], f64)] = &[
    ("add", &[2.0, 3.0], 5.0),
    ("subtract", &[10.0, 4.0], 6.0),
    ("multiply", &[6.0, 7.0], 42.0),
    ("divide", &[1.0, 4.0], 0.25),
    ("power", &[2.0, 10.0], 1024.0),
    ("sqrt", &[81.0], 9.0),
    ("sin", &[0.0], 0.0),
    ("cos", &[0.0], 1.0),
    ("tan", &[0.0], 0.0),
    ("log", &[1.0], 0.0),
];

const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

fn timed(name: String, f: impl FnOnce() -> Result<(), String>) -> Check {
    let start = Instant::now();
    let result = f();
    Check {
        name,
        passed: result.is_ok(),
        detail: result.err().unwrap_or_default(),
        duration_ms: start.elapsed().as_millis() as u64,
    }
}

fn get(route: &http::Route, url: &str) -> Result<http::Response, String> {
    http::request_via(route, url, "GET", &[], b"", REQUEST_TIMEOUT)
}

fn status(r: &http::Response, want: u16) -> Result<(), String> {
    if r.status == want {
        Ok(())
    } else {
        let body: String = r.text().chars().take(200).collect();
        Err(format!("expected {want}, got {}: {body}", r.status))
    }
}

/// The TLS trust for `smoke.ca` (a secret reference to PEM certificates,
/// added to the system's roots); `None` when it is not set.
pub fn trust(reference: &str) -> Result<Option<std::sync::Arc<rustls::ClientConfig>>, String> {
    if reference.is_empty() {
        return Ok(None);
    }
    let pem =
        crate::deploy::resolve(reference).map_err(|e| format!("smoke.ca ({reference}): {e}"))?;
    http::trusting(pem.as_bytes())
        .map(Some)
        .map_err(|e| format!("smoke.ca ({reference}): {e}"))
}

/// One pass of every check.
pub fn once(base: &str, route: &http::Route, paths: &Paths) -> Vec<Check> {
    let base = base.trim_end_matches('/');
    let mut checks = vec![
        timed(format!("GET {}", paths.health), || {
            status(&get(route, &format!("{base}{}", paths.health))?, 200)
        }),
        timed(format!("GET {}", paths.ready), || {
            status(&get(route, &format!("{base}{}", paths.ready))?, 200)
        }),
    ];
    for (operation, operands, expected) in ANSWERS {
        let body = serde_json::json!({ "operation": operation, "operands": operands }).to_string();
        checks.push(timed(
            format!("POST /calculate {operation} {operands:?} = {expected}"),
            || {
                let r = http::request_via(
                    route,
                    &format!("{base}/calculate"),
                    "POST",
                    &[("Content-Type", "application/json")],
                    body.as_bytes(),
                    REQUEST_TIMEOUT,
                )?;
                status(&r, 200)?;
                let got = r
                    .json()
                    .and_then(|v| v["result"].as_f64())
                    .ok_or_else(|| format!("no numeric result in {}", r.text()))?;
                if (got - expected).abs() <= 1e-9 {
                    Ok(())
                } else {
                    Err(format!("expected {expected}, got {got}"))
                }
            },
        ));
    }
    checks.push(timed("POST /calculate malformed JSON = 400".into(), || {
        let r = http::request_via(
            route,
            &format!("{base}/calculate"),
            "POST",
            &[("Content-Type", "application/json")],
            br#"{"operation":"#,
            REQUEST_TIMEOUT,
        )?;
        status(&r, 400)
    }));
    checks.push(timed(
        format!("GET {} exposes http_requests_total", paths.metrics),
        || {
            let r = get(route, &format!("{base}{}", paths.metrics))?;
            status(&r, 200)?;
            if r.text()
                .lines()
                .any(|l| l.starts_with("http_requests_total"))
            {
                Ok(())
            } else {
                Err("no http_requests_total sample in the metrics".into())
            }
        },
    ));
    checks
}

/// The suite, retried with backoff until it passes or `deadline` passes,
/// or `cancelled` says to stop.
pub fn run(
    base: &str,
    route: &http::Route,
    paths: &Paths,
    deadline: Duration,
    cancelled: &dyn Fn() -> bool,
) -> Report {
    let start = Instant::now();
    let mut wait = Duration::from_millis(200);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let checks = once(base, route, paths);
        let passed = checks.iter().all(|c| c.passed);
        let out_of_time = start.elapsed() + wait >= deadline;
        if passed || out_of_time || cancelled() {
            return Report {
                url: base.to_string(),
                passed,
                attempts,
                duration_ms: start.elapsed().as_millis() as u64,
                checks,
            };
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}
