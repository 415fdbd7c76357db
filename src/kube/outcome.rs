//! What a Kubernetes deploy or rollback did, as `--output json` prints it
//! and the webhook announces it.

use serde::Serialize;

use crate::record::{Action, Conclusion, Phase};
use crate::smoke;

/// The revision that serves again after a failure.
#[derive(Debug, Serialize)]
pub struct Restored {
    pub revision: u64,
    pub version: String,
    /// Its rollout finished and its smoke tests passed.
    pub verified: bool,
    /// From the undo to the restored revision's rollout finishing.
    pub ms: u64,
}

/// What a deploy or rollback did.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub environment: String,
    pub action: Action,
    /// Succeeded, rolled back, failed or interrupted.
    pub result: Conclusion,
    pub version: String,
    pub image: String,
    pub context: String,
    pub server_version: String,
    pub namespace: String,
    /// The revision serving now.
    pub revision: Option<u64>,
    /// The revision that served before.
    pub previous_revision: Option<u64>,
    pub objects: Vec<String>,
    /// Fields another manager had taken, taken back by this apply.
    pub conflicts: Vec<String>,
    /// The pods' failures and warning events seen during the rollout.
    pub problems: Vec<String>,
    pub smoke: Option<smoke::Report>,
    pub restored: Option<Restored>,
    /// Why it failed, if it did.
    pub cause: Option<String>,
    pub phases: Vec<Phase>,
    pub duration_ms: u64,
    pub exit_code: i32,
    /// The plan a deploy carried out (what `--dry-run` prints under `plan`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<super::plan::Plan>,
    /// `deploy.webhook`: delivered or not; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notified: Option<bool>,
}
