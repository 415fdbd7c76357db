//! The Kubernetes target (`deploy.target = "kubernetes"`): `deploy`,
//! `rollback`, `status` and `lock` over kubectl and the rendered manifests.

use std::time::Duration;

use super::accessory::AccessoryRequest;
use super::logs::LogsRequest;
use super::{
    CommandRequest, DeployRequest, LockAction, MaintenanceRequest, PruneRequest, RollbackRequest,
    no_hosts, runtime,
};
use crate::cancel::Cancel;
use crate::config::Loaded;
use crate::config::model::KubeSmoke;
use crate::error::Error;
use crate::kube::deploy::{self as kdeploy, Change, Outcome, Run};
use crate::kube::plan::Plan;
use crate::kube::{Target, lease, manifests, revisions, status};
use crate::output::Output;

/// A cluster, a namespace and the environment's manifests.
pub struct Kubernetes {
    loaded: Loaded,
    target: Target,
}

impl Kubernetes {
    pub fn new(loaded: &Loaded) -> Result<Kubernetes, Error> {
        Ok(Kubernetes {
            target: Target::new(loaded)?,
            loaded: loaded.clone(),
        })
    }
}

impl super::Target for Kubernetes {
    fn deploy(&self, out: &Output, request: &DeployRequest) -> Result<(), Error> {
        deploy(out, request, &self.loaded, &self.target)
    }

    fn rollback(&self, out: &Output, request: &RollbackRequest) -> Result<(), Error> {
        rollback(out, request, &self.target)
    }

    fn status(&self, out: &Output, last: usize, host: Option<&str>) -> Result<(), Error> {
        no_hosts(host)?;
        status(out, &self.target, last)
    }

    fn lock(&self, out: &Output, action: LockAction, host: Option<&str>) -> Result<(), Error> {
        no_hosts(host)?;
        lock(out, &self.target, action)
    }

    fn logs(&self, out: &Output, request: &LogsRequest) -> Result<(), Error> {
        no_hosts(request.host.as_deref())?;
        if request.gateway {
            return Err(Error::Usage(
                "--gateway: a Kubernetes environment has no shipit gateway (its Ingress controller's logs are the cluster's)".into(),
            ));
        }
        crate::kube::logs::logs(out, &self.target, request)
    }

    fn exec(&self, out: &Output, request: &CommandRequest) -> Result<(), Error> {
        no_hosts(request.host.as_deref())?;
        crate::kube::command::exec(out, &self.target, request)
    }

    fn run(&self, out: &Output, request: &CommandRequest) -> Result<(), Error> {
        no_hosts(request.host.as_deref())?;
        crate::kube::command::run(out, &self.target, request)
    }

    fn prune(&self, out: &Output, request: &PruneRequest) -> Result<(), Error> {
        no_hosts(request.host.as_deref())?;
        crate::kube::prune::prune(out, &self.target, request)
    }

    fn maintenance(&self, _: &Output, _: &MaintenanceRequest) -> Result<(), Error> {
        Err(Error::Usage(
            "maintenance mode is the shipit gateway's, and a Kubernetes environment has none: point the Ingress at a maintenance responder instead (README: \"Maintenance on Kubernetes\"); nothing was changed".into(),
        ))
    }

    fn accessory(&self, _: &Output, _: &AccessoryRequest) -> Result<(), Error> {
        Err(Error::Usage(
            "shipit runs accessories on Docker hosts only: on Kubernetes, run the database as a StatefulSet with a PersistentVolumeClaim and a headless Service (its chart or operator), and back it up with its own tools (README: \"Accessories and release commands on Kubernetes\"); nothing was changed".into(),
        ))
    }
}

/// `image.digest`, a reference pinned by digest, or the registry's answer
/// (asked by the local engine, with the push credentials).
fn digest(loaded: &Loaded) -> Result<Result<String, String>, Error> {
    let c = &loaded.config;
    if !c.image.digest.is_empty() {
        return Ok(Ok(c.image.digest.clone()));
    }
    let reference = loaded.image_ref();
    if let Some((_, d)) = reference.split_once('@') {
        return Ok(Ok(d.to_string()));
    }
    let registry = c.image.registry.clone();
    runtime()?.block_on(async move {
        let engine = match crate::engine::Engine::connect().await {
            Ok(e) => e,
            Err(e) => {
                return Ok(Err(format!(
                    "the image {reference} has no digest: set image.digest (shipit build --push prints it), or give shipit a Docker engine to ask the registry ({e})"
                )));
            }
        };
        let credentials = crate::build::credentials::for_reference(&reference, &registry);
        Ok(engine
            .registry_digest(&reference, credentials)
            .await
            .map_err(|e| {
                format!(
                    "the registry has no {reference} ({e}): push it first (shipit build {} --push), or set image.digest",
                    loaded.environment.clone().unwrap_or_default()
                )
            }))
    })
}

fn stamp() -> manifests::Stamp {
    manifests::Stamp {
        by: crate::identity::who().0,
        at: crate::clock::now(),
    }
}

fn deploy(
    out: &Output,
    args: &DeployRequest,
    loaded: &Loaded,
    target: &Target,
) -> Result<(), Error> {
    if args.image.is_some() || args.strategy.is_some() {
        return Err(Error::Usage(
            "--image and --strategy are for Docker hosts: a Kubernetes deploy applies the rendered manifests (rolling, pinned by digest)".into(),
        ));
    }
    let spinner = out.spinner("preflight: context, server, namespace, permissions, image digest");
    let start = std::time::Instant::now();
    let digest = digest(loaded)?;
    let mut planned = kdeploy::plan(target, loaded, digest, &stamp())?;
    planned.preflight.ms = start.elapsed().as_millis() as u64;
    drop(spinner);
    let p = &planned.preflight;
    for w in &p.warnings {
        out.warn(w);
    }
    // What is deployed where, for the plan and the deploy's first line.
    let what = format!(
        "{} {} ({}) to {} in {} (Kubernetes {})",
        target.environment,
        target.version,
        planned.image,
        p.cluster.context,
        p.cluster.namespace,
        p.cluster.server_version
    );
    let plan = Plan::of(target, &planned);
    if args.dry_run {
        kdeploy::refuse(p)?;
        let checked = crate::kube::apply::check(&target.kubectl, &planned.list).map_err(|e| {
            Error::Deploy {
                message: format!("the server refused the manifests:\n{}", e.message),
            }
        })?;
        let diff = crate::kube::apply::diff(&target.kubectl, &planned.list).map_err(|e| {
            Error::Deploy {
                message: e.to_string(),
            }
        })?;
        let lock = lease::read(&target.kubectl, &target.app)?;
        if out.is_json() {
            out.json(&serde_json::json!({
                "environment": target.environment,
                "version": target.version,
                "image": planned.image,
                "context": p.cluster.context,
                "server_version": p.cluster.server_version,
                "namespace": p.cluster.namespace,
                "serving_revision": p.deployment.as_ref().and_then(revisions::of),
                "objects": manifests::names(&planned.objects),
                "conflicts": checked.conflicts,
                "lock": lock,
                "diff": diff,
                "plan": plan,
            }));
        } else {
            out.status("plan", &format!("deploy {what}"));
            match p.deployment.as_ref().and_then(revisions::of) {
                Some(r) => out.status("serving", &format!("revision {r}")),
                None => out.status("serving", "nothing yet: this is the first deploy"),
            }
            if !target.release_command.is_empty() {
                out.status(
                    "release",
                    &format!(
                        "{} as a Job from the new pod template before the Deployment is applied",
                        target.release_command.join(" ")
                    ),
                );
            }
            for c in &checked.conflicts {
                out.warn(&format!("the apply would take back {c}"));
            }
            if let Some(l) = &lock {
                out.warn(&format!("locked: {}", l.describe()));
            }
            out.data(&diff);
            out.status(
                "dry run",
                "the server accepted every object; nothing was changed",
            );
        }
        return Ok(());
    }
    kdeploy::refuse(p)?;
    out.status("deploy", &what);
    execute(
        out,
        args.lock_wait,
        target,
        Change::Apply(&planned),
        p,
        Some(plan),
    )
}

/// Runs the change with SIGINT and SIGTERM caught (they undo it), then reports.
fn execute(
    out: &Output,
    lock_wait: Duration,
    target: &Target,
    change: Change<'_>,
    preflight: &crate::kube::preflight::Preflight,
    plan: Option<Plan>,
) -> Result<(), Error> {
    let outcome = runtime()?.block_on(async {
        let cancel = Cancel::install();
        tokio::task::block_in_place(|| {
            Run {
                target,
                out,
                cancel: &cancel,
                lock_wait,
            }
            .run(change, preflight)
        })
    });
    report(out, Outcome { plan, ..outcome })
}

fn rollback(out: &Output, args: &RollbackRequest, target: &Target) -> Result<(), Error> {
    let p = crate::kube::preflight::check(
        &target.kubectl,
        target.configured_context,
        &crate::kube::preflight::Wanted {
            app: &target.app,
            version: &target.k8s_version,
            minor: target.k8s_minor,
            objects: &[],
            secret: None,
            digest: Ok(String::new()),
            release_command: false,
            port_forward: target.smoke_route == KubeSmoke::NewPods,
        },
    );
    kdeploy::refuse(&p)?;
    let list = revisions::list(&target.kubectl, &target.app)?;
    let to = revisions::target(&list, args.to.as_deref()).map_err(|e| Error::Deploy {
        message: format!("cannot roll {} back: {e}", target.environment),
    })?;
    out.status(
        "rollback",
        &format!(
            "{} to revision {} ({}, deployed {} by {})",
            target.environment, to.revision, to.version, to.deployed_at, to.deployed_by
        ),
    );
    execute(out, args.lock_wait, target, Change::Undo(to), &p, None)
}

fn report(out: &Output, outcome: Outcome) -> Result<(), Error> {
    if outcome.exit_code == 0 {
        out.status(
            "deployed",
            &format!(
                "{} {} serves as revision {}",
                outcome.subject.environment,
                outcome.subject.version,
                outcome
                    .detail
                    .revision
                    .map(|r| r.to_string())
                    .unwrap_or_default()
            ),
        );
    }
    super::report(out, outcome, |_| {})
}

fn status(out: &Output, target: &Target, last: usize) -> Result<(), Error> {
    let s = status::status(target, last)?;
    if out.is_json() {
        out.json(&s);
        return Ok(());
    }
    if !s.deployed {
        out.status(
            "serving",
            &format!("{}: nothing is deployed in {}", s.environment, s.namespace),
        );
    } else {
        out.status(
            "serving",
            &format!(
                "{}: revision {}, version {} ({} of {} updated, {} available; rollout {})",
                s.environment,
                s.revision.map(|r| r.to_string()).unwrap_or_default(),
                s.version.clone().unwrap_or_default(),
                s.updated,
                s.replicas,
                s.available,
                s.rollout
            ),
        );
    }
    for c in &s.conditions {
        out.status("condition", c);
    }
    for r in &s.roles {
        out.status(
            "role",
            &format!(
                "{}: deployment/{} revision {}, version {} ({} of {} updated, {} available; rollout {})",
                r.role,
                r.deployment,
                r.revision.map(|r| r.to_string()).unwrap_or_default(),
                r.version,
                r.updated,
                r.replicas,
                r.available,
                r.rollout
            ),
        );
    }
    for p in &s.pods {
        out.status(
            "pod",
            &format!(
                "{} [{}] {}{} {}{} restarts {} ({})",
                p.name,
                p.role,
                p.phase,
                if p.terminating { " terminating" } else { "" },
                if p.ready { "ready" } else { "not ready" },
                if p.waiting.is_empty() {
                    String::new()
                } else {
                    format!(" {}", p.waiting)
                },
                p.restarts,
                p.version
            ),
        );
    }
    for r in &s.revisions {
        out.status(
            if r.current { "current" } else { "revision" },
            &format!(
                "{} {} {} by {} at {} ({} of {} ready)",
                r.revision, r.version, r.image, r.deployed_by, r.deployed_at, r.ready, r.replicas
            ),
        );
    }
    for e in &s.events {
        out.status(
            "event",
            &format!(
                "{} {} {} {}: {}",
                e.at, e.kind, e.reason, e.object, e.message
            ),
        );
    }
    if let Some(l) = &s.lock {
        out.warn(&format!("locked: {}", l.describe()));
    }
    Ok(())
}

fn lock(out: &Output, target: &Target, action: LockAction) -> Result<(), Error> {
    let release = matches!(action, LockAction::Release { .. });
    if action == (LockAction::Release { force: false })
        && let Some(h) = lease::read(&target.kubectl, &target.app)?
        && !h.stale
    {
        return Err(Error::Deploy {
            message: format!(
                "{} is locked by a deploy that is still renewing its Lease: {}\nreleasing it would let another deploy run beside it; wait for it, or, if you know it is dead, `shipit lock release {} --force`",
                target.environment,
                h.describe(),
                target.environment
            ),
        });
    }
    let held = if release {
        lease::release(&target.kubectl, &target.app)?
    } else {
        lease::read(&target.kubectl, &target.app)?
    };
    if out.is_json() {
        let key = if release { "released" } else { "lock" };
        out.json(&serde_json::json!({ "environment": target.environment, key: held }));
        return Ok(());
    }
    match (held, release) {
        (Some(h), true) => out.status("released", &h.describe()),
        (Some(h), false) => out.status("locked", &h.describe()),
        (None, _) => out.status("unlocked", &format!("{} is not locked", target.environment)),
    }
    Ok(())
}
