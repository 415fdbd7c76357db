//! `shipit deploy ENV --dry-run` on Docker hosts: the plan, printed for
//! people or as JSON, changing nothing. The JSON keeps the fields it has
//! always had at its top level and carries the plan itself under `plan`,
//! the value a real run reports under the same key.

use serde::Serialize;

use crate::deploy::Settings;
use crate::deploy::lock::LockInfo;
use crate::deploy::plan::Plan;
use crate::error::Error;
use crate::output::Output;

#[derive(Serialize)]
struct Single<'a> {
    environment: &'a str,
    version: &'a str,
    image: &'a str,
    image_present: bool,
    strategy: &'static str,
    replicas: usize,
    gateway_image: &'a str,
    gateway_url: &'a str,
    /// The gateway's certificate as it would be installed (TLS environments).
    certificate: Option<CertificateNow>,
    serving_release: Option<u64>,
    serving_version: Option<String>,
    no_op: bool,
    lock: Option<LockInfo>,
    problems: &'a [String],
    plan: &'a Plan,
}

/// The certificate with what only today knows: days left, warnings.
#[derive(Serialize)]
struct CertificateNow {
    subject: String,
    names: Vec<String>,
    days_left: i64,
    warnings: Vec<String>,
}

fn certificate(settings: &Settings) -> Result<Option<CertificateNow>, Error> {
    Ok(settings
        .load_tls()?
        .map(|(material, warnings)| CertificateNow {
            days_left: material.days_left(crate::clock::now()),
            subject: material.subject.clone(),
            names: material.names.clone(),
            warnings,
        }))
}

/// One engine (`DOCKER_HOST`): its plan.
pub(super) fn single(out: &Output, settings: &Settings, plan: &Plan) -> Result<(), Error> {
    let Some(host) = plan.hosts.first() else {
        return Err(Error::Deploy {
            message: "the plan has no host".into(),
        });
    };
    let report = Single {
        environment: &plan.subject.environment,
        version: &plan.subject.version,
        image: &plan.subject.image,
        image_present: host.image_present,
        strategy: plan.strategy,
        replicas: plan.replicas,
        gateway_image: &plan.gateway_image,
        gateway_url: &host.gateway_url,
        certificate: certificate(settings)?,
        serving_release: host.serving_release,
        serving_version: host.serving_version.clone(),
        no_op: plan.no_op,
        lock: host.lock.clone(),
        problems: &host.repairs,
        plan,
    };
    if out.is_json() {
        out.json(&report);
        return stopped(&plan.problems);
    }
    out.status(
        "plan",
        &format!(
            "deploy {} {} ({}), {}, {} replica(s), gateway {}",
            report.environment,
            report.version,
            report.image,
            report.strategy,
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
    steps(out, plan, "");
    if let Some(l) = &report.lock {
        out.warn(&format!("locked: {}", l.describe()));
    }
    for p in report.problems {
        out.warn(&format!("{p} (the deploy repairs it)"));
    }
    for p in &plan.problems {
        out.warn(p);
    }
    out.status("dry run", "nothing was changed");
    stopped(&plan.problems)
}

/// What a dry run's exit code says: the deploy would stop at its preflight.
fn stopped(problems: &[String]) -> Result<(), Error> {
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

/// Nothing to do (`where_`: " on every host"), or the steps the run takes.
fn steps(out: &Output, plan: &Plan, where_: &str) {
    if plan.no_op {
        out.status(
            "unchanged",
            &format!("this version and image already serve{where_}: the deploy would do nothing"),
        );
    } else {
        for role in &plan.roles {
            out.detail(&format!(
                "role {}: {} replica(s){}, runs {}",
                role.name,
                role.replicas,
                where_.replace(" on every host", " per host"),
                role.cmd.join(" ")
            ));
        }
        out.detail(&format!("steps: {}", plan.steps.join(", ")));
    }
}

#[derive(Serialize)]
struct HostRow<'a> {
    host: &'a str,
    gateway_url: &'a str,
    serving_release: Option<u64>,
    serving_version: &'a Option<String>,
    lock: &'a Option<LockInfo>,
}

/// Several hosts: what serves where, and every problem the preflight would
/// stop at (exit 1 when there is one).
pub(super) fn fleet(out: &Output, settings: &Settings, plan: &Plan) -> Result<(), Error> {
    let rows: Vec<HostRow<'_>> = plan
        .hosts
        .iter()
        .map(|h| HostRow {
            host: &h.host,
            gateway_url: &h.gateway_url,
            serving_release: h.serving_release,
            serving_version: &h.serving_version,
            lock: &h.lock,
        })
        .collect();
    let problems = &plan.problems;
    if out.is_json() {
        out.json(&serde_json::json!({
            "environment": plan.subject.environment,
            "version": plan.subject.version,
            "image": plan.subject.image,
            "transfer": settings.transfer,
            "replicas_per_host": plan.replicas,
            "hosts": rows,
            "problems": problems,
            "plan": plan,
        }));
    } else {
        out.status(
            "plan",
            &format!(
                "deploy {} {} ({}) to {} host(s), {} replica(s) each, images by {:?}",
                plan.subject.environment,
                plan.subject.version,
                plan.subject.image,
                settings.hosts.len(),
                plan.replicas,
                settings.transfer
            ),
        );
        for r in &rows {
            out.status(
                "host",
                &format!(
                    "{}: serving {} at {}",
                    r.host,
                    match (&r.serving_release, r.serving_version) {
                        (Some(n), Some(v)) => format!("release {n} ({v})"),
                        _ => "nothing yet".into(),
                    },
                    r.gateway_url
                ),
            );
        }
        steps(out, plan, " on every host");
        for p in problems {
            out.warn(p);
        }
        out.status("dry run", "nothing was changed");
    }
    stopped(problems)
}
