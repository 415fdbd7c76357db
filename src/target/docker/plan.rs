//! `shipit deploy ENV --dry-run` on Docker hosts: what would be deployed
//! where, and every problem the deploy would stop at, changing nothing.

use serde::Serialize;

use crate::config::model::Strategy;
use crate::deploy::run::Options;
use crate::deploy::{Settings, gateway, lock, status};
use crate::engine::Engine;
use crate::error::Error;
use crate::output::Output;

#[derive(Serialize)]
struct DeployPlan<'a> {
    environment: &'a str,
    version: &'a str,
    image: String,
    image_present: bool,
    strategy: &'static str,
    replicas: usize,
    gateway_image: &'a str,
    gateway_url: String,
    /// The gateway's certificate as it would be installed (TLS environments).
    certificate: Option<CertificatePlan>,
    serving_release: Option<u64>,
    serving_version: Option<String>,
    no_op: bool,
    lock: Option<lock::LockInfo>,
    problems: Vec<String>,
}

#[derive(Serialize)]
struct CertificatePlan {
    subject: String,
    names: Vec<String>,
    days_left: i64,
    warnings: Vec<String>,
}

pub(super) async fn single(
    out: &Output,
    engine: &Engine,
    settings: &Settings,
    options: &Options,
) -> Result<(), Error> {
    let image = options.image_ref(settings);
    let image_id = engine.image_id(&image).await;
    // The same checks the deploy makes before it changes anything.
    let certificate = settings
        .load_tls()?
        .map(|(material, warnings)| CertificatePlan {
            days_left: material.days_left(crate::clock::now()),
            subject: material.subject.clone(),
            names: material.names.clone(),
            warnings,
        });
    let now = status::status(engine, settings, 0).await?;
    let strategy = match options.strategy.unwrap_or(settings.strategy) {
        Strategy::BlueGreen => "blue-green",
        Strategy::Rolling => "rolling",
        Strategy::Canary => "canary",
    };
    let serving_image = now.replicas.first().map(|r| r.name.clone());
    let mut no_op = false;
    if let (Some(version), Some(name), Some(id)) = (&now.version, &serving_image, &image_id)
        && version == &settings.version
        && engine
            .container(name)
            .await?
            .is_some_and(|c| &c.image == id)
    {
        no_op = true;
    }
    let report = DeployPlan {
        environment: &settings.site.environment,
        version: &settings.version,
        image_present: image_id.is_some(),
        image,
        strategy,
        replicas: settings.replicas,
        gateway_image: &settings.gateway_image,
        gateway_url: gateway::url(engine, settings),
        certificate,
        serving_release: now.release,
        serving_version: now.version.clone(),
        no_op,
        lock: now.lock.clone(),
        problems: now.problems.clone(),
    };
    if out.is_json() {
        out.json(&report);
    } else {
        out.status(
            "plan",
            &format!(
                "deploy {} {} ({}), {strategy}, {} replica(s), gateway {}",
                report.environment,
                report.version,
                report.image,
                report.replicas,
                report.gateway_url
            ),
        );
        if let Some(c) = &report.certificate {
            out.status(
                "tls",
                &format!(
                    "certificate {} for {}: valid, {} day(s) left",
                    c.subject,
                    c.names.join(", "),
                    c.days_left
                ),
            );
            for w in &c.warnings {
                out.warn(w);
            }
        }
        match (&report.serving_release, &report.serving_version) {
            (Some(r), Some(v)) => out.status("serving", &format!("release {r} ({v})")),
            _ => out.status("serving", "nothing yet: this is the first release"),
        }
        if !report.image_present {
            out.warn(&format!(
                "{} is not on the engine: it would be pulled (or build it first)",
                report.image
            ));
        }
        if no_op {
            out.status(
                "unchanged",
                "this version and image already serve: the deploy would do nothing",
            );
        }
        if let Some(l) = &report.lock {
            out.warn(&format!("locked: {}", l.describe()));
        }
        for p in &report.problems {
            out.warn(&format!("{p} (the deploy repairs it)"));
        }
        out.status("dry run", "nothing was changed");
    }
    Ok(())
}

#[derive(Serialize)]
struct HostPlan {
    host: String,
    gateway_url: String,
    serving_release: Option<u64>,
    serving_version: Option<String>,
    lock: Option<lock::LockInfo>,
}

/// `shipit deploy ENV --dry-run` across hosts: what serves where, and every
/// problem the preflight would stop at (exit 1 when there is one).
pub(super) async fn fleet(
    out: &Output,
    settings: &Settings,
    options: &Options,
) -> Result<(), Error> {
    let image = options.image_ref(settings);
    let (problems, hosts) = crate::deploy::fleet::check(settings, options).await?;
    let mut rows = Vec::new();
    for h in &hosts {
        let s = status::status(&h.engine, settings, 0).await?;
        rows.push(HostPlan {
            host: h.name.clone(),
            gateway_url: gateway::url(&h.engine, settings),
            serving_release: s.release,
            serving_version: s.version,
            lock: s.lock,
        });
    }
    if out.is_json() {
        out.json(&serde_json::json!({
            "environment": settings.site.environment,
            "version": settings.version,
            "image": image,
            "transfer": settings.transfer,
            "replicas_per_host": settings.replicas,
            "hosts": rows,
            "problems": problems,
        }));
    } else {
        out.status(
            "plan",
            &format!(
                "deploy {} {} ({image}) to {} host(s), {} replica(s) each, images by {:?}",
                settings.site.environment,
                settings.version,
                settings.hosts.len(),
                settings.replicas,
                settings.transfer
            ),
        );
        for r in &rows {
            out.status(
                "host",
                &format!(
                    "{}: serving {} at {}",
                    r.host,
                    match (&r.serving_release, &r.serving_version) {
                        (Some(n), Some(v)) => format!("release {n} ({v})"),
                        _ => "nothing yet".into(),
                    },
                    r.gateway_url
                ),
            );
        }
        for p in &problems {
            out.warn(p);
        }
        out.status("dry run", "nothing was changed");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Reported {
            code: 1,
            message: format!(
                "the deploy would stop at preflight: {} problem(s)",
                problems.len()
            ),
        })
    }
}
