//! The smoke suite: what must answer before a release takes traffic, and what
//! `shipit smoke ENV` checks afterwards - the health and readiness paths,
//! then the service's own `[[smoke.checks]]`. Retried with backoff up to a
//! deadline; reported for people, as JSON and as JUnit XML.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Loaded;
use crate::config::model::SmokeCheck;
use crate::http;

/// What the suite asks: the health and readiness paths (`app.*_path`), then
/// the configured checks.
#[derive(Debug, Clone)]
pub struct Paths {
    pub health: String,
    pub ready: String,
    /// Each configured check, with its latency limit.
    pub checks: Vec<(SmokeCheck, Option<Duration>)>,
}

impl Paths {
    pub fn of(loaded: &Loaded) -> Paths {
        let config = &loaded.config;
        Paths {
            health: config.app.health_path.clone(),
            ready: config.app.readiness_path.clone(),
            checks: config
                .smoke
                .checks
                .iter()
                .cloned()
                .zip(loaded.typed.smoke_max_latency.iter().copied())
                .collect(),
        }
    }
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
    /// A suite that could not run: `target` could not be reached at all.
    pub fn unreached(target: &str, why: &str, took: Duration) -> Report {
        let ms = took.as_millis() as u64;
        Report {
            url: target.to_string(),
            passed: false,
            attempts: 1,
            duration_ms: ms,
            checks: vec![Check {
                name: format!("reach {target}"),
                passed: false,
                detail: why.to_string(),
                duration_ms: ms,
            }],
        }
    }

    pub fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.passed).collect()
    }

    /// How many checks failed, against what, after how long.
    fn failed_head(&self, failed: usize) -> String {
        format!(
            "{failed} of {} checks failed against {} after {} attempt(s) in {} ms",
            self.checks.len(),
            self.url,
            self.attempts,
            self.duration_ms,
        )
    }

    /// The summary without what the service answered (for records that
    /// leave this machine): how many and which checks failed, not their bodies.
    pub fn brief(&self) -> String {
        let failed = self.failures();
        if failed.is_empty() {
            return self.summary();
        }
        let names: Vec<&str> = failed.iter().map(|c| c.name.as_str()).collect();
        format!("{}: {}", self.failed_head(failed.len()), names.join(", "))
    }

    /// Each failing check and what it got, one per line (each line begins
    /// with a newline): the part of `summary` `brief` leaves out.
    pub fn failed_checks(&self) -> String {
        self.failures()
            .iter()
            .map(|c| format!("\n  - {}: {}", c.name, c.detail))
            .collect()
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
                "{}:{}",
                self.failed_head(failed.len()),
                self.failed_checks()
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
        crate::secrets::resolve(reference).map_err(|e| format!("smoke.ca ({reference}): {e}"))?;
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
    for (check, limit) in &paths.checks {
        checks.push(timed(check.name.clone(), || {
            run_check(base, route, check, *limit)
        }));
    }
    checks
}

/// One configured check: the request, then every expectation on its answer.
fn run_check(
    base: &str,
    route: &http::Route,
    check: &SmokeCheck,
    max_latency: Option<Duration>,
) -> Result<(), String> {
    let headers: Vec<(&str, &str)> = check
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let started = Instant::now();
    let r = http::request_via(
        route,
        &format!("{base}{}", check.path),
        &check.method,
        &headers,
        check.body.as_bytes(),
        REQUEST_TIMEOUT,
    )?;
    let took = started.elapsed();
    let excerpt = || -> String { r.text().chars().take(200).collect() };
    if i64::from(r.status) != check.status {
        return Err(format!(
            "expected status {}, got {}: {}",
            check.status,
            r.status,
            excerpt()
        ));
    }
    if let Some(limit) = max_latency
        && took > limit
    {
        return Err(format!(
            "answered in {} ms, over the {} limit",
            took.as_millis(),
            check.max_latency
        ));
    }
    let text = r.text();
    for wanted in &check.contains {
        if !text.contains(wanted.as_str()) {
            return Err(format!(
                "the body does not contain {wanted:?}: {}",
                excerpt()
            ));
        }
    }
    if !check.regex.is_empty() {
        let re = regex_lite::Regex::new(&check.regex).map_err(|e| e.to_string())?;
        if !re.is_match(&text) {
            return Err(format!(
                "the body does not match /{}/: {}",
                check.regex,
                excerpt()
            ));
        }
    }
    if !check.json.is_empty() {
        let body: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("the body is not JSON ({e}): {}", excerpt()))?;
        for (pointer, expected) in &check.json {
            match body.pointer(pointer) {
                None => return Err(format!("no value at {pointer:?} in {}", excerpt())),
                Some(got) if !same(got, expected) => {
                    return Err(format!("{pointer}: expected {expected}, got {got}"));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// JSON equality, with numbers compared as numbers (`42` and `42.0` agree,
/// and floating-point results within 1e-9).
fn same(got: &serde_json::Value, expected: &serde_json::Value) -> bool {
    match (got.as_f64(), expected.as_f64()) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9,
        _ => got == expected,
    }
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

#[cfg(test)]
mod tests {
    use super::same;
    use serde_json::json;

    #[test]
    fn numbers_compare_as_numbers_everything_else_exactly() {
        assert!(same(&json!(42.0), &json!(42)));
        assert!(same(&json!(0.1 + 0.2), &json!(0.3)));
        assert!(!same(&json!(41), &json!(42)));
        assert!(same(&json!("sqrt"), &json!("sqrt")));
        assert!(!same(&json!("42"), &json!(42)));
        assert!(same(&json!([1, {"a": true}]), &json!([1, {"a": true}])));
        assert!(!same(&json!(null), &json!(false)));
    }
}
