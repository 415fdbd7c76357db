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
    let text = args.timeout.clone().unwrap_or_else(|| {
        if c.smoke.timeout.is_empty() {
            c.deploy.smoke_timeout.clone()
        } else {
            c.smoke.timeout.clone()
        }
    });
    let deadline: Duration = rules::parse_duration(&text).ok_or_else(|| {
        Error::Usage(format!("--timeout {text}: expected a duration such as 30s"))
    })?;
    let paths = Paths {
        health: c.app.health_path.clone(),
        ready: c.app.readiness_path.clone(),
        metrics: c.app.metrics_path.clone(),
    };
    ctx.out.status(
        "smoke",
        &format!("{} at {url} (retrying up to {text})", args.environment),
    );
    let route = crate::http::Route {
        connect: args.connect.clone(),
        headers: Vec::new(),
        tls: smoke::trust(&c.smoke.ca).map_err(Error::Usage)?,
    };
    let report = smoke::run(&url, &route, &paths, deadline, &|| false);
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
