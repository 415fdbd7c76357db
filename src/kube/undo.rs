//! A Kubernetes deploy that failed, or was stopped: the other objects it
//! changed put back, the Deployment undone to the revision that served
//! before, waited for and verified; the outcome says what serves.

use std::time::Instant;

use super::deploy::{Outcome, Restored, Run, Undo};
use super::gate::Verdict;
use super::revisions;
use crate::record::{Conclusion, Timeline};

impl Run<'_> {
    /// Undoes to `before` if this run made a new revision, waits for it and
    /// verifies it; the outcome says what serves.
    pub(super) fn fail(
        &self,
        mut outcome: Outcome,
        mut timeline: Timeline,
        undo: &Undo,
    ) -> Outcome {
        let (before, before_generation) = (undo.before, undo.generation);
        let t = self.target;
        let k = &t.kubectl;
        // Every other object the apply changed goes back first.
        let put_back = match undo.snapshot.as_ref().filter(|_| before.is_some()) {
            Some(s) => super::restore::restore(k, s),
            None => Default::default(),
        };
        for done in &put_back.done {
            self.out.status("restored", done);
        }
        for failed in &put_back.failed {
            self.out.warn(&format!("not put back: {failed}"));
        }
        let others = if put_back.done.is_empty() && put_back.failed.is_empty() {
            String::new()
        } else {
            format!(
                "\nthe other objects it changed: {}{}",
                if put_back.done.is_empty() {
                    "none put back".to_string()
                } else {
                    put_back.done.join(", ")
                },
                if put_back.failed.is_empty() {
                    String::new()
                } else {
                    format!("; NOT put back: {}", put_back.failed.join("; "))
                }
            )
        };
        let (roles_done, roles_failed) = super::roles::put_back(k, &t.app, &undo.roles);
        for done in &roles_done {
            self.out.status("restored", done);
        }
        for failed in &roles_failed {
            self.out.warn(&format!("not put back: {failed}"));
        }
        let others = if roles_done.is_empty() && roles_failed.is_empty() {
            others
        } else {
            format!(
                "{others}\nthe roles: {}{}",
                if roles_done.is_empty() {
                    "none put back".to_string()
                } else {
                    roles_done.join(", ")
                },
                if roles_failed.is_empty() {
                    String::new()
                } else {
                    format!("; NOT put back: {}", roles_failed.join("; "))
                }
            )
        };
        outcome.detail.reverted = put_back.done;
        outcome.detail.reverted.extend(roles_done);
        outcome.detail.not_reverted = put_back.failed;
        outcome.detail.not_reverted.extend(roles_failed);
        let now = k.get(&format!("deployment/{}", t.app)).ok().flatten();
        let changed = match (&now, before_generation) {
            (Some(d), Some(g)) => super::kubectl::int(d, "/metadata/generation") != g,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let cause = outcome.cause.clone().unwrap_or_default();
        self.out.error(&cause);
        let finish = |mut outcome: Outcome, timeline: Timeline| {
            let preflight_ms = timeline.phases.first().map_or(0, |p| p.ms);
            outcome.duration_ms = timeline.total_ms() + preflight_ms;
            outcome.phases = timeline.phases;
            outcome
        };
        let Some(previous) = before.filter(|_| changed) else {
            if before.is_none() && changed {
                outcome.cause = Some(format!(
                    "{cause}\nnothing served before this first deploy: deployment/{} is left as applied, not ready ({}); fix the cause and deploy again, or remove it: kubectl delete -k generated/{}/k8s",
                    t.app, k.namespace, t.environment
                ));
            } else if before.is_none() {
                outcome.cause = Some(format!(
                    "{cause}\nnothing served before this first deploy, and deployment/{} was not created",
                    t.app
                ));
            } else {
                outcome.cause = Some(if others.is_empty() {
                    format!(
                        "{cause}\nnothing was changed: the revision that served before still serves"
                    )
                } else {
                    format!(
                        "{cause}\nthe Deployment was not changed: the revision that served before still serves{others}"
                    )
                });
            }
            return finish(outcome, timeline);
        };
        self.out.status(
            "undo",
            &format!("returning deployment/{} to revision {previous}", t.app),
        );
        let start = Instant::now();
        let never = || false;
        let restored = revisions::undo(k, &t.app, previous)
            .map(|_| self.gate(crate::clock::now() - 2, &never));
        let (ready, revision, note) = match restored {
            Ok(w) => match w.verdict {
                Verdict::Ready { revision, .. } => {
                    (true, revision.parse().unwrap_or(previous), String::new())
                }
                Verdict::Failed { reason } => (false, previous, reason),
                Verdict::Interrupted => (false, previous, "interrupted".into()),
            },
            Err(e) => (false, previous, e.to_string()),
        };
        let ms = start.elapsed().as_millis() as u64;
        timeline.mark("undo");
        let version = revisions::list(k, &t.app)
            .ok()
            .and_then(|r| r.into_iter().find(|r| r.current).map(|r| r.version))
            .unwrap_or_default();
        let verified = ready && {
            if self.target.smoke_route == crate::config::model::KubeSmoke::Url {
                self.settle(&never);
            }
            let report = self.smoke(&never);
            timeline.mark("verify");
            report.passed
        };
        outcome.detail.revision = Some(revision);
        outcome.detail.restored = Some(Restored {
            revision,
            version: version.clone(),
            verified,
            ms,
        });
        if verified {
            if outcome.result == Conclusion::Failed {
                outcome.result = Conclusion::RolledBack;
            }
            self.out.status(
                "restored",
                &format!(
                    "revision {revision} ({version}) serves again, ready and smoke-tested ({ms} ms)"
                ),
            );
            outcome.cause = Some(format!(
                "{cause}\nrolled back: revision {revision} ({version}) serves again, ready and smoke-tested{others}"
            ));
        } else {
            outcome.cause = Some(format!(
                "{cause}\nTHE UNDO DID NOT VERIFY: deployment/{} was returned to revision {previous} but {}; check `shipit status {}`{others}",
                t.app,
                if note.is_empty() {
                    "its smoke tests failed".to_string()
                } else {
                    note
                },
                t.environment
            ));
        }
        finish(outcome, timeline)
    }
}
