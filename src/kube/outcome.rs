//! What a Kubernetes deploy or rollback did, as `--output json` prints it
//! and the webhook announces it: the record every target shares, with what
//! a cluster adds to it.

use serde::Serialize;

use crate::smoke;

pub type Outcome = crate::record::Outcome<Detail, super::plan::Plan>;

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

/// What a cluster adds to the record of a run.
#[derive(Debug, Serialize)]
pub struct Detail {
    #[serde(flatten)]
    pub cluster: super::preflight::Cluster,
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
    /// After a failure: the other objects the apply changed, put back
    /// (`Kind/name restored`, or deleted when this deploy created them).
    pub reverted: Vec<String>,
    /// ... and those that could not be (`Kind/name: why`).
    pub not_reverted: Vec<String>,
}
