//! The record of what a run did, the same for every target: the phases it
//! went through (a timeline), what it was (`Action`) and how it ended
//! (`Conclusion`). Both enums serialise as the strings `history.jsonl` and
//! `--output json` have always carried, so existing histories still read.

use std::fmt;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One step of a run and how long it took.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Phase {
    pub name: String,
    pub ms: u64,
}

/// A run's phases for people: `1200 ms in all: lock 3 ms, health 900 ms, ...`.
pub fn summary(phases: &[Phase], total_ms: u64) -> String {
    let phases = phases
        .iter()
        .map(|p| format!("{} {} ms", p.name, p.ms))
        .collect::<Vec<_>>()
        .join(", ");
    format!("{total_ms} ms in all: {phases}")
}

/// What a run is about, the same for every target: what it does, to which
/// environment, which version and image.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Subject {
    pub action: Action,
    pub environment: String,
    pub version: String,
    /// The image (on Kubernetes, pinned by digest).
    pub image: String,
}

/// What a deploy or rollback did, the same for every target: what it was
/// about, how it ended and why, its phases, and the exit code it maps to;
/// `detail` is what the target adds (Docker: the history entry and each
/// host; Kubernetes: the revisions and objects), flattened beside it.
#[derive(Debug, Serialize)]
pub struct Outcome<D, P> {
    #[serde(flatten)]
    pub subject: Subject,
    pub result: Conclusion,
    /// Why it failed, if it did.
    pub cause: Option<String>,
    pub phases: Vec<Phase>,
    pub duration_ms: u64,
    pub exit_code: i32,
    #[serde(flatten)]
    pub detail: D,
    /// The plan a deploy carried out (what `--dry-run` prints under `plan`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<P>,
    /// `deploy.webhook`: delivered or not; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notified: Option<bool>,
}

impl<D, P> Outcome<D, P> {
    /// `timeline`'s line for people: the phases and the whole run.
    pub fn summary(&self) -> String {
        summary(&self.phases, self.duration_ms)
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Deploy,
    Rollback,
    Repair,
    LockRelease,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Conclusion {
    Succeeded,
    RolledBack,
    Failed,
    NoOp,
    Interrupted,
    Repaired,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deploy => "deploy",
            Action::Rollback => "rollback",
            Action::Repair => "repair",
            Action::LockRelease => "lock-release",
        }
    }
}

impl Conclusion {
    pub fn as_str(self) -> &'static str {
        match self {
            Conclusion::Succeeded => "succeeded",
            Conclusion::RolledBack => "rolled-back",
            Conclusion::Failed => "failed",
            Conclusion::NoOp => "no-op",
            Conclusion::Interrupted => "interrupted",
            Conclusion::Repaired => "repaired",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Conclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The phases of one run, each timed from the end of the one before.
pub struct Timeline {
    start: Instant,
    last: Instant,
    pub phases: Vec<Phase>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new()
    }
}

impl Timeline {
    pub fn new() -> Timeline {
        let now = Instant::now();
        Timeline {
            start: now,
            last: now,
            phases: Vec::new(),
        }
    }

    /// Ends the phase `name` now.
    pub fn mark(&mut self, name: &str) {
        let now = Instant::now();
        self.phases.push(Phase {
            name: name.into(),
            ms: (now - self.last).as_millis() as u64,
        });
        self.last = now;
    }

    /// Records a phase measured elsewhere (`ms` long, ending now).
    pub fn push(&mut self, name: &str, ms: u64) {
        self.phases.push(Phase {
            name: name.into(),
            ms,
        });
        self.last = Instant::now();
    }

    pub fn total_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each value serialises as its string, reads back from it, and
    /// `as_str` names it the same.
    fn round_trip<T>(pairs: &[(T, &str)], as_str: fn(T) -> &'static str)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug + Copy,
    {
        for &(value, text) in pairs {
            assert_eq!(
                serde_json::to_string(&value).unwrap(),
                format!("\"{text}\"")
            );
            assert_eq!(as_str(value), text);
            let back: T = serde_json::from_str(&format!("\"{text}\"")).unwrap();
            assert_eq!(back, value);
        }
    }

    #[test]
    fn enums_read_and_write_the_history_strings() {
        round_trip(
            &[
                (Action::Deploy, "deploy"),
                (Action::Rollback, "rollback"),
                (Action::Repair, "repair"),
                (Action::LockRelease, "lock-release"),
            ],
            Action::as_str,
        );
        round_trip(
            &[
                (Conclusion::Succeeded, "succeeded"),
                (Conclusion::RolledBack, "rolled-back"),
                (Conclusion::Failed, "failed"),
                (Conclusion::NoOp, "no-op"),
                (Conclusion::Interrupted, "interrupted"),
                (Conclusion::Repaired, "repaired"),
            ],
            Conclusion::as_str,
        );
    }

    #[test]
    fn a_timeline_names_its_phases_in_order() {
        let mut t = Timeline::new();
        t.mark("preflight");
        t.push("switch", 7);
        t.mark("drain");
        let names: Vec<&str> = t.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["preflight", "switch", "drain"]);
        assert_eq!(t.phases[1].ms, 7);
    }
}
