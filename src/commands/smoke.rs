//! `shipit smoke ENV [--url URL]`: the calculator's smoke suite, retried up
//! to the environment's smoke timeout; JUnit XML for CI with `--junit`.

use std::path::PathBuf;
use std::time::Duration;

use super::Context;
use crate::config::{self, rules};
use crate::error::Error;
use crate::smoke::{self, Paths};

#[derive(Debug, Clone, Default)]
pub struct Args {
    pub environment: String,
    pub url: Option<String>,
    pub junit: Option<PathBuf>,
    pub timeout: Option<String>,
    /// Connect to this `host:port` instead of the URL's (SNI and Host stay the URL's).
    pub connect: Option<String>,
    /// One host of deploy.hosts (default: each in turn, when the environment has them).
    pub host: Option<String>,
}

pub fn run(ctx: &Context, args: &Args) -> Result<(), Error> {
    let loaded = config::load(&ctx.project, Some(&args.environment), &ctx.overrides)
        .map_err(Error::Config)?;
    let c = &loaded.config;
    let url = match &args.url {
        Some(url) => url.clone(),
        None if !c.smoke.url.is_empty() => c.smoke.url.clone(),
        None => format!("http://127.0.0.1:{}", c.gateway.port),
    };
    crate::http::parse_url(&url).map_err(|e| Error::Usage(format!("--url {url}: {e}")))?;
    let (deadline, text): (Duration, String) = match &args.timeout {
        Some(text) => (
            rules::parse_duration(text).ok_or_else(|| {
                Error::Usage(format!("--timeout {text}: expected a duration such as 30s"))
            })?,
            text.clone(),
        ),
        // As configured, for the message; the value was parsed at load.
        None => (
            loaded.typed.smoke_check_timeout,
            if c.smoke.timeout.is_empty() {
                c.deploy.smoke_timeout.clone()
            } else {
                c.smoke.timeout.clone()
            },
        ),
    };
    let paths = Paths::of(&loaded);
    let tls = smoke::trust(&c.smoke.ca).map_err(Error::Usage)?;
    // With deploy.hosts, each host's gateway in turn (the URL's name still
    // goes in Host and SNI); else where the URL (or --connect) says.
    let targets: Vec<(Option<String>, Option<String>)> =
        if c.deploy.hosts.is_empty() || args.url.is_some() || args.connect.is_some() {
            crate::target::no_hosts(args.host.as_deref()).or_else(|e| {
                if c.deploy.hosts.is_empty() {
                    Err(e)
                } else {
                    Ok(())
                }
            })?;
            vec![(None, args.connect.clone())]
        } else {
            let settings = crate::deploy::Settings::new(&loaded)?;
            let runtime = crate::target::runtime()?;
            runtime
                .block_on(crate::target::docker::smoke_targets(
                    &settings,
                    args.host.as_deref(),
                ))?
                .into_iter()
                .map(|(host, connect)| (Some(host), Some(connect)))
                .collect()
        };
    let mut reports = Vec::new();
    for (host, connect) in targets {
        ctx.out.status(
            "smoke",
            &format!(
                "{} at {url}{} (retrying up to {text})",
                args.environment,
                host.as_ref()
                    .map(|h| format!(" on {h}"))
                    .unwrap_or_default()
            ),
        );
        let route = crate::http::Route {
            connect,
            headers: Vec::new(),
            tls: tls.clone(),
        };
        reports.push((host, smoke::run(&url, &route, &paths, deadline, &|| false)));
    }
    if reports.len() > 1 {
        return several(ctx, args, reports);
    }
    let Some((_, report)) = reports.pop() else {
        return Ok(());
    };
    if let Some(path) = &args.junit {
        crate::render::write::write_atomic(
            path,
            report
                .junit(&format!("shipit smoke {}", args.environment))
                .as_bytes(),
        )?;
    }
    if ctx.out.is_json() {
        ctx.out.json(&report);
    } else {
        for check in &report.checks {
            ctx.out.detail(&format!(
                "{} {} ({} ms){}",
                if check.passed { "ok  " } else { "FAIL" },
                check.name,
                check.duration_ms,
                if check.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", check.detail)
                }
            ));
        }
    }
    if report.passed {
        ctx.out.status("passed", &report.summary());
        Ok(())
    } else {
        // Reported: with --output json the report above is the document.
        Err(Error::Reported {
            code: 1,
            message: format!("smoke tests failed: {}", report.summary()),
        })
    }
}

/// The suite's results on several hosts: one JUnit suite and one JSON entry per host.
fn several(
    ctx: &Context,
    args: &Args,
    reports: Vec<(Option<String>, smoke::Report)>,
) -> Result<(), Error> {
    if let Some(path) = &args.junit {
        let suites: String = reports
            .iter()
            .map(|(h, r)| {
                let xml = r.junit(&format!(
                    "shipit smoke {} on {}",
                    args.environment,
                    h.clone().unwrap_or_default()
                ));
                // One <testsuites> document: each host's <testsuite> element.
                xml.lines()
                    .filter(|l| !l.starts_with("<?xml") && !l.contains("testsuites"))
                    .map(|l| format!("{l}\n"))
                    .collect::<String>()
            })
            .collect();
        let doc = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n{suites}</testsuites>\n"
        );
        crate::render::write::write_atomic(path, doc.as_bytes())?;
    }
    let failed: Vec<String> = reports
        .iter()
        .filter(|(_, r)| !r.passed)
        .map(|(h, r)| format!("{}: {}", h.clone().unwrap_or_default(), r.summary()))
        .collect();
    if ctx.out.is_json() {
        let hosts: Vec<serde_json::Value> = reports
            .iter()
            .map(|(h, r)| serde_json::json!({ "host": h, "report": r }))
            .collect();
        ctx.out.json(&serde_json::json!({
            "environment": args.environment,
            "passed": failed.is_empty(),
            "hosts": hosts,
        }));
    }
    for (h, r) in &reports {
        let h = h.clone().unwrap_or_default();
        if r.passed {
            ctx.out.status("passed", &format!("{h}: {}", r.summary()));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Reported {
            code: 1,
            message: format!(
                "smoke tests failed on {} host(s):\n  {}",
                failed.len(),
                failed.join("\n  ")
            ),
        })
    }
}
