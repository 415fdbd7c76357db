//! `shipit deploy ENV` and `shipit rollback ENV` on Kubernetes: preflight,
//! lock, dry-run, apply (or undo), gate, smoke - and on any failure or
//! signal, undo to the revision that served before, wait for it and verify it.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::gate::{Gate, Verdict};
pub use super::outcome::{Detail, Outcome, Restored};
use super::preflight::{self, Preflight};
use super::revisions::{self, Revision};
use super::{Target, apply, lease, manifests};
use crate::cancel::Cancel;
use crate::config::Loaded;
use crate::config::model::KubeSmoke;
use crate::error::Error;
use crate::output::Output;
use crate::record::{Action, Conclusion, Subject, Timeline};
use crate::smoke;

/// What a failed run goes back to: the revision that served before (and the
/// Deployment's generation then), and the other objects as they were.
pub(super) struct Undo {
    pub(super) before: Option<u64>,
    pub(super) generation: Option<i64>,
    pub(super) snapshot: Option<super::restore::Snapshot>,
    /// The roles' Deployments as they were.
    pub(super) roles: Vec<super::roles::Before>,
}

/// The preflight, and the objects it was made for.
pub struct Planned {
    pub preflight: Preflight,
    pub objects: Vec<Value>,
    pub list: Vec<u8>,
    pub image: String,
}

/// Everything checked before anything changes (every problem at once).
pub fn plan(
    target: &Target,
    loaded: &Loaded,
    digest: Result<String, String>,
    stamp: &manifests::Stamp,
) -> Result<Planned, Error> {
    let pinned = digest.clone().unwrap_or_default();
    let objects = manifests::objects(loaded, &pinned, stamp)?;
    let mut preflight = preflight::check(
        &target.kubectl,
        target.configured_context,
        &preflight::Wanted {
            app: &target.app,
            version: &target.k8s_version,
            minor: target.k8s_minor,
            objects: &objects,
            secret: target.secret.clone(),
            digest,
            release_command: !target.release_command.is_empty(),
            port_forward: target.smoke_route == KubeSmoke::NewPods,
        },
    );
    if target.smoke_route == KubeSmoke::Url && target.smoke_url.is_empty() {
        preflight.problems.push(
            "smoke.url is empty: a Kubernetes deploy is smoke-tested where its users reach it (the Ingress host, or a Service address)".into(),
        );
    }
    let mut pinned_loaded = loaded.clone();
    pinned_loaded.config.image.digest = pinned;
    Ok(Planned {
        list: manifests::list(&objects),
        image: manifests::image_reference(&pinned_loaded),
        objects,
        preflight,
    })
}

pub fn refuse(preflight: &Preflight) -> Result<(), Error> {
    if preflight.problems.is_empty() {
        return Ok(());
    }
    Err(Error::Deploy {
        message: format!(
            "the preflight found {} problem(s); nothing was changed:\n{}",
            preflight.problems.len(),
            preflight
                .problems
                .iter()
                .map(|p| format!("  - {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    })
}

/// The change a run makes.
pub enum Change<'a> {
    /// Apply these objects (a deploy).
    Apply(&'a Planned),
    /// Return to this revision (a rollback).
    Undo(&'a Revision),
}

pub struct Run<'a> {
    pub target: &'a Target,
    pub out: &'a Output,
    pub cancel: &'a Cancel,
    pub lock_wait: Duration,
}

impl Run<'_> {
    /// Locks, changes, gates and smoke-tests; undoes on failure or signal;
    /// then the webhook.
    pub fn run(&self, change: Change<'_>, preflight: &Preflight) -> Outcome {
        let mut outcome = self.change(change, preflight);
        let out = self.out;
        outcome.notified = super::notify::announce(self.target, &outcome, &|w| out.warn(w));
        outcome
    }

    fn change(&self, change: Change<'_>, preflight: &Preflight) -> Outcome {
        let t = self.target;
        let k = &t.kubectl;
        let mut timeline = Timeline::new();
        timeline.push("preflight", preflight.ms);
        let before = preflight.deployment.as_ref().and_then(revisions::of);
        let before_generation = preflight
            .deployment
            .as_ref()
            .map(|d| super::kubectl::int(d, "/metadata/generation"));
        let (action, version, image) = match &change {
            Change::Apply(p) => (Action::Deploy, t.version.clone(), p.image.clone()),
            Change::Undo(r) => (Action::Rollback, r.version.clone(), r.image.clone()),
        };
        let mut outcome = Outcome {
            subject: Subject {
                action,
                environment: t.environment.clone(),
                version,
                image,
            },
            result: Conclusion::Failed,
            cause: None,
            phases: Vec::new(),
            duration_ms: 0,
            exit_code: 1,
            detail: Detail {
                cluster: preflight.cluster.clone(),
                revision: before,
                previous_revision: before,
                objects: match &change {
                    Change::Apply(p) => manifests::names(&p.objects),
                    Change::Undo(_) => Vec::new(),
                },
                conflicts: Vec::new(),
                problems: Vec::new(),
                smoke: None,
                restored: None,
                reverted: Vec::new(),
                not_reverted: Vec::new(),
            },
            plan: None,
            notified: None,
        };
        let finish = |mut outcome: Outcome, timeline: Timeline| {
            outcome.duration_ms = timeline.total_ms() + preflight.ms;
            outcome.phases = timeline.phases;
            outcome
        };
        let interrupted = |outcome: &mut Outcome, cancel: &Cancel| {
            outcome.result = Conclusion::Interrupted;
            outcome.exit_code = cancel.exit_code();
            outcome.cause = Some(cancel.cause());
        };

        let cancelled = || self.cancel.is_set();
        let command = format!("shipit {action} {}", t.environment);
        // The server's dry-run needs no lock: it runs while the Lease is taken.
        let (locked, early_check) = std::thread::scope(|s| {
            let check = match &change {
                Change::Apply(p) => Some(s.spawn(|| apply::check(k, &p.list))),
                Change::Undo(_) => None,
            };
            let waited = Instant::now();
            let locked = lease::acquire(k, &t.app, &command, self.lock_wait, self.cancel);
            let checked = check.map(|c| c.join().expect("dry-run"));
            // After waiting for another deploy, the cluster may have changed: check again.
            let checked = match (&change, waited.elapsed() > Duration::from_secs(2)) {
                (Change::Apply(p), true) if locked.is_ok() => Some(apply::check(k, &p.list)),
                _ => checked,
            };
            (locked, checked)
        });
        let guard = match locked {
            Ok(g) => {
                if let Some(h) = &g.took_over {
                    self.out
                        .warn(&format!("took over a stale deploy lock: {}", h.describe()));
                }
                g
            }
            Err(e) => {
                outcome.cause = Some(e.to_string());
                return finish(outcome, timeline);
            }
        };
        timeline.mark("lock and dry-run");
        if cancelled() {
            interrupted(&mut outcome, self.cancel);
            outcome.cause = Some(format!(
                "{} before anything changed",
                outcome.cause.clone().unwrap_or_default()
            ));
            return finish(outcome, timeline);
        }

        let mut spinner = self.out.spinner("checking the change with the server");
        // What a failure goes back to: the revision that served, and what
        // the apply changes besides the Deployment, as it was.
        let roles_before = match super::roles::existing(k, &t.app) {
            Ok(r) => r,
            Err(e) => {
                drop(spinner);
                outcome.cause = Some(format!(
                    "cannot read the roles' Deployments; nothing was changed: {e}"
                ));
                return finish(outcome, timeline);
            }
        };
        let mut undo = Undo {
            before,
            generation: before_generation,
            snapshot: None,
            roles: roles_before.clone(),
        };
        // The role Deployments this run gates after the service's.
        let mut roles: Vec<String> = Vec::new();
        match &change {
            Change::Apply(p) => {
                // Before anything is applied: the server's dry-run, and the
                // objects as they are (a failure puts them back).
                let ready = early_check
                    .expect("a deploy's dry-run")
                    .map_err(|e| {
                        format!("the server refused the manifests; nothing was applied:\n{}", e.message)
                    })
                    .and_then(|checked| {
                        super::restore::take(k, &p.objects)
                            .map(|taken| (checked, taken))
                            .map_err(|e| format!("cannot read the objects the deploy would change (to put them back on a failure); nothing was applied: {}", e.message))
                    });
                let (checked, taken) = match ready {
                    Ok(both) => both,
                    Err(cause) => {
                        drop(spinner);
                        outcome.cause = Some(cause);
                        return finish(outcome, timeline);
                    }
                };
                undo.snapshot = Some(taken);
                for c in &checked.conflicts {
                    self.out.warn(&format!(
                        "taking back a field another manager set (a `kubectl rollout undo` or edit by hand?): {c}"
                    ));
                }
                outcome.detail.conflicts = checked.conflicts.clone();
                drop(spinner.take());
                if let Err(cause) = self.release(p, &checked) {
                    outcome.cause = Some(cause);
                    if cancelled() {
                        interrupted(&mut outcome, self.cancel);
                    }
                    timeline.mark("release");
                    return self.fail(outcome, timeline, &undo);
                }
                if !t.release_command.is_empty() {
                    timeline.mark("release");
                }
                spinner = self.out.spinner("applying");
                roles = super::roles::declared(&p.objects);
                if let Err(e) = apply::apply(k, &p.list, &checked) {
                    drop(spinner);
                    outcome.cause = Some(format!("the apply failed: {}", e.message));
                    // Some objects may have been applied: put the Deployment back.
                    return self.fail(outcome, timeline, &undo);
                }
                timeline.mark("apply");
            }
            Change::Undo(r) => {
                if let Err(e) = revisions::undo(k, &t.app, r.revision) {
                    drop(spinner);
                    outcome.cause = Some(e.to_string());
                    return finish(outcome, timeline);
                }
                // Each role to the revision the same deploy made.
                for role in &roles_before {
                    match super::roles::matching(k, &role.name, &r.deployed_at) {
                        Some(n) if Some(n) == role.revision => roles.push(role.name.clone()),
                        Some(n) => match revisions::undo(k, &role.name, n) {
                            Ok(()) => roles.push(role.name.clone()),
                            Err(e) => {
                                drop(spinner);
                                outcome.cause = Some(format!("deployment/{}: {e}", role.name));
                                return self.fail(outcome, timeline, &undo);
                            }
                        },
                        None => self.out.warn(&format!(
                            "deployment/{} has no revision from {}'s deploy (the role came later): left as it is",
                            role.name, r.version
                        )),
                    }
                }
                timeline.mark("undo");
            }
        }
        drop(spinner);

        self.out.status(
            "rollout",
            &format!(
                "waiting for deployment/{} (progress deadline {} s)",
                t.app,
                t.progress_deadline.as_secs()
            ),
        );
        let watched = self.gate(crate::clock::now() - 2, &cancelled);
        outcome.detail.problems = watched.problems.clone();
        timeline.mark("rollout");
        match watched.verdict {
            Verdict::Ready { revision, replicas } => {
                outcome.detail.revision = revision.parse().ok();
                self.out.status(
                    "ready",
                    &format!("revision {revision}: {replicas} replica(s) updated and available"),
                );
            }
            Verdict::Interrupted => {
                interrupted(&mut outcome, self.cancel);
                return self.fail(outcome, timeline, &undo);
            }
            Verdict::Failed { reason } => {
                outcome.cause = Some(reason);
                return self.fail(outcome, timeline, &undo);
            }
        }
        // Every role's Deployment, rolled out alongside: all or none.
        for name in &roles {
            let watched = self.gate_named(name, crate::clock::now() - 2, &cancelled);
            outcome.detail.problems.extend(watched.problems.clone());
            match watched.verdict {
                Verdict::Ready { revision, replicas } => self.out.status(
                    "ready",
                    &format!(
                        "deployment/{name} revision {revision}: {replicas} replica(s) updated and available"
                    ),
                ),
                Verdict::Interrupted => {
                    interrupted(&mut outcome, self.cancel);
                    return self.fail(outcome, timeline, &undo);
                }
                Verdict::Failed { reason } => {
                    outcome.cause = Some(format!("role deployment/{name}: {reason}"));
                    return self.fail(outcome, timeline, &undo);
                }
            }
        }
        if !roles.is_empty() {
            timeline.mark("roles");
        }

        if t.smoke_route == KubeSmoke::Url {
            self.settle(&cancelled);
            timeline.mark("old pods stopped");
        }
        let report = self.smoke(&cancelled);
        timeline.mark("smoke");
        let passed = report.passed;
        let summary = report.summary();
        outcome.detail.smoke = Some(report);
        if cancelled() {
            interrupted(&mut outcome, self.cancel);
            return self.fail(outcome, timeline, &undo);
        }
        if !passed {
            outcome.cause = Some(format!(
                "the release is ready but failed its smoke tests: {summary}"
            ));
            return self.fail(outcome, timeline, &undo);
        }
        outcome.result = Conclusion::Succeeded;
        outcome.exit_code = 0;
        // Roles the configuration no longer declares stop with the release
        // that had them.
        if matches!(change, Change::Apply(_)) {
            for gone in super::roles::undeclared(&roles_before, &roles) {
                match super::roles::delete(k, &gone) {
                    Ok(()) => self.out.status(
                        "removed",
                        &format!("deployment/{gone} (its role is no longer declared)"),
                    ),
                    Err(e) => self.out.warn(&format!(
                        "deployment/{gone}: its role is no longer declared, but it could not be deleted: {e}"
                    )),
                }
            }
        }
        // The old ConfigMaps go while the Lease is released.
        std::thread::scope(|s| {
            s.spawn(|| self.prune_configs());
            drop(guard);
        });
        finish(outcome, timeline)
    }

    /// `deploy.release_command` (every deploy makes a new revision: its pod
    /// template carries who deployed, and when): the other
    /// objects applied first (the Job's pod needs its ConfigMap, service
    /// account and network policies), then the Job run from the new pod
    /// template. Why it failed, if it did; the Deployment is untouched.
    fn release(&self, planned: &Planned, checked: &apply::Checked) -> Result<(), String> {
        let (t, k) = (self.target, &self.target.kubectl);
        if t.release_command.is_empty() {
            return Ok(());
        }
        let Some(deployment) = super::release_task::deployment(&planned.objects, &t.app) else {
            return Ok(());
        };
        // Not the Deployments: neither the service's nor a role's runs
        // before its release command.
        let others: Vec<Value> = planned
            .objects
            .iter()
            .filter(|o| o["kind"] != "Deployment")
            .cloned()
            .collect();
        apply::apply(k, &manifests::list(&others), checked).map_err(|e| {
            format!(
                "the objects besides the Deployment could not be applied before the release command: {}",
                e.message
            )
        })?;
        let took = super::release_task::run(t, deployment, self.out, self.cancel)?;
        self.out.status(
            "released",
            &format!(
                "the release command succeeded in {:.1} s",
                took.as_secs_f64()
            ),
        );
        Ok(())
    }

    /// Deletes the ConfigMaps no kept revision refers to (best effort: a
    /// leftover is only clutter, never what a revision runs with).
    fn prune_configs(&self) {
        let (k, app) = (&self.target.kubectl, &self.target.app);
        let selector = format!("app.kubernetes.io/part-of={app}");
        let (Ok(maps), Ok(sets)) = (
            k.json(&["get", "configmaps", "-l", &selector, "-o", "json"], None),
            k.json(&["get", "replicasets", "-l", &selector, "-o", "json"], None),
        ) else {
            return;
        };
        let stale = manifests::stale_configs(&maps, &sets, app);
        if stale.is_empty() {
            return;
        }
        let mut args = vec!["delete", "configmap", "--wait=false"];
        args.extend(stale.iter().map(String::as_str));
        if let Err(e) = k.run(&args, None) {
            self.out
                .warn(&format!("could not remove old revisions' ConfigMaps: {e}"));
        }
    }

    pub(super) fn gate(&self, since: i64, cancelled: &dyn Fn() -> bool) -> super::gate::Watched {
        self.gate_named(&self.target.app, since, cancelled)
    }

    /// The rollout gate on Deployment `name` (the service's or a role's).
    pub(super) fn gate_named(
        &self,
        name: &str,
        since: i64,
        cancelled: &dyn Fn() -> bool,
    ) -> super::gate::Watched {
        let out = self.out;
        Gate {
            kubectl: &self.target.kubectl,
            app: name,
            since,
            deadline: self.target.progress_deadline,
            cancelled,
            report: &|p: &str| out.warn(p),
        }
        .wait()
    }

    /// Waits for the replaced pods to stop, so that the smoke tests reach
    /// only the revision now ready.
    pub(super) fn settle(&self, cancelled: &dyn Fn() -> bool) {
        let spinner = self.out.spinner("waiting for the replaced pods to stop");
        let left = super::gate::wait_stopped(&self.target.kubectl, &self.target.app, cancelled);
        drop(spinner);
        if !left.is_empty() && !cancelled() {
            self.out.warn(&format!(
                "still stopping after their deletion deadline: {}; the smoke tests may reach them",
                left.join(", ")
            ));
        }
    }

    /// The smoke suite, where `kubernetes.smoke` says: a ready pod of the
    /// current revision (`new-pods`), or `smoke.url`.
    pub(super) fn smoke(&self, cancelled: &dyn Fn() -> bool) -> smoke::Report {
        let t = self.target;
        if t.smoke_route == KubeSmoke::NewPods {
            return self.smoke_new_pod(cancelled);
        }
        let route = crate::http::Route {
            tls: smoke::trust(&t.smoke_ca).ok().flatten(),
            ..Default::default()
        };
        self.out.status(
            "smoke",
            &format!("{} (up to {} s)", t.smoke_url, t.smoke_timeout.as_secs()),
        );
        smoke::run(&t.smoke_url, &route, &t.paths, t.smoke_timeout, cancelled)
    }

    /// The smoke suite against one ready pod of the revision that just
    /// became ready, through `kubectl port-forward`: no replaced pod can
    /// answer for it, so none is waited for.
    fn smoke_new_pod(&self, cancelled: &dyn Fn() -> bool) -> smoke::Report {
        let t = self.target;
        let start = Instant::now();
        let forward = super::candidate::ready_pod(&t.kubectl, &t.app)
            .and_then(|pod| super::candidate::open(&t.kubectl, &pod, t.port));
        let forward = match forward {
            Ok(f) => f,
            Err(e) => {
                return smoke::Report::unreached(
                    &format!("pod of deployment/{}", t.app),
                    &e,
                    start.elapsed(),
                );
            }
        };
        self.out.status(
            "smoke",
            &format!(
                "pod/{} of the new revision, port {} (kubectl port-forward, up to {} s)",
                forward.pod,
                t.port,
                t.smoke_timeout.as_secs()
            ),
        );
        let route = crate::http::Route::default();
        let deadline = t.smoke_timeout.saturating_sub(start.elapsed());
        let mut report = smoke::run(&forward.url, &route, &t.paths, deadline, cancelled);
        report.url = format!("pod/{}:{}", forward.pod, t.port);
        report.duration_ms = start.elapsed().as_millis() as u64;
        report
    }
}
