//! A failed step of a deploy or rollback on one host: which step, why, and
//! what people are shown (the failing container's last lines, what the
//! service answered), kept apart from what leaves the machine (the history
//! and the webhook carry only `brief`).

use super::{gateway, replicas};

/// A failed step: which, why, and the failing container's last lines.
pub(super) struct Failure {
    pub(super) phase: &'static str,
    pub(super) reason: String,
    pub(super) container: Option<String>,
    /// What the service answered (the failing smoke checks), for people.
    pub(super) detail: String,
    /// The failing container's last log lines, for people.
    pub(super) logs: String,
}

impl From<replicas::Unhealthy> for Failure {
    fn from(u: replicas::Unhealthy) -> Failure {
        Failure {
            phase: "health",
            reason: u.reason,
            container: Some(u.container),
            detail: String::new(),
            logs: u.logs,
        }
    }
}

impl Failure {
    pub(super) fn new(phase: &'static str, reason: impl Into<String>) -> Failure {
        Failure {
            phase,
            reason: reason.into(),
            container: None,
            detail: String::new(),
            logs: String::new(),
        }
    }

    /// Which step failed, for which container, and why: what the history
    /// and the webhook carry (they leave this machine: no log line, no body).
    pub(super) fn brief(&self) -> String {
        format!(
            "{} failed{}: {}",
            self.phase,
            self.container
                .as_ref()
                .map(|c| format!(" for {c}"))
                .unwrap_or_default(),
            self.reason,
        )
    }

    /// The brief, with what the service answered and its last log lines: the
    /// diagnosis, for the terminal and the run's own JSON.
    pub(super) fn text(&self) -> String {
        format!(
            "{}{}{}",
            self.brief(),
            self.detail,
            gateway::tail(&self.logs)
        )
    }
}
