//! A Deployment's revisions - its ReplicaSets - with what shipit annotated
//! on each: the history `status` shows and `rollback --to` chooses from.

use serde::Serialize;
use serde_json::Value;

use super::kubectl::{Kubectl, int, text};
use super::manifests;
use crate::error::Error;

#[derive(Debug, Clone, Serialize)]
pub struct Revision {
    pub revision: u64,
    pub replicaset: String,
    pub version: String,
    pub image: String,
    pub deployed_by: String,
    pub deployed_at: String,
    /// Pods of this revision now, and how many are ready.
    pub replicas: i64,
    pub ready: i64,
    /// The revision the Deployment is at.
    pub current: bool,
}

/// The Deployment's revision number (`deployment.kubernetes.io/revision`).
pub fn of(deployment: &Value) -> Option<u64> {
    text(
        deployment,
        "/metadata/annotations/deployment.kubernetes.io~1revision",
    )
    .parse()
    .ok()
}

/// Newest first.
pub fn list(kubectl: &Kubectl, app: &str) -> Result<Vec<Revision>, Error> {
    let failed = |e: super::kubectl::Failed| Error::Deploy {
        message: format!("cannot list the revisions: {e}"),
    };
    let current = kubectl
        .get(&format!("deployment/{app}"))
        .map_err(failed)?
        .as_ref()
        .and_then(of);
    let sets = kubectl
        .json(
            &[
                "get",
                "replicasets",
                "-l",
                &format!("app.kubernetes.io/name={app}"),
                "-o",
                "json",
            ],
            None,
        )
        .map_err(failed)?;
    let mut out: Vec<Revision> = sets["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|rs| {
            rs["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|o| {
                    o.iter()
                        .any(|r| r["kind"] == "Deployment" && r["name"] == app)
                })
        })
        .filter_map(|rs| {
            let revision = of(rs)?;
            let a = |key: &str| {
                rs["spec"]["template"]["metadata"]["annotations"][key]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            };
            Some(Revision {
                revision,
                replicaset: text(rs, "/metadata/name").to_string(),
                version: a(manifests::VERSION),
                image: a(manifests::IMAGE),
                deployed_by: a(manifests::DEPLOYED_BY),
                deployed_at: a(manifests::DEPLOYED_AT),
                replicas: int(rs, "/status/replicas"),
                ready: int(rs, "/status/readyReplicas"),
                current: Some(revision) == current,
            })
        })
        .collect();
    out.sort_by_key(|r| std::cmp::Reverse(r.revision));
    Ok(out)
}

/// The revision `rollback` returns to: the newest one of `version`, else
/// the newest before the current one.
pub fn target<'a>(
    revisions: &'a [Revision],
    version: Option<&str>,
) -> Result<&'a Revision, String> {
    let current = revisions.iter().find(|r| r.current);
    let candidates = || revisions.iter().filter(|r| !r.current);
    match version {
        Some(v) => {
            if current.is_some_and(|c| c.version == v) {
                return Err(format!("{v} is already the serving revision"));
            }
            candidates().find(|r| r.version == v).ok_or_else(|| {
                let kept: Vec<_> = candidates()
                    .map(|r| format!("{} (revision {})", r.version, r.revision))
                    .collect();
                format!(
                    "no kept revision is version {v}; kept: {}",
                    if kept.is_empty() {
                        "none".into()
                    } else {
                        kept.join(", ")
                    }
                )
            })
        }
        None => {
            let below = current.map_or(u64::MAX, |c| c.revision);
            candidates()
                .find(|r| r.revision < below)
                .ok_or_else(|| "no earlier revision is kept to roll back to".into())
        }
    }
}

/// `kubectl rollout undo --to-revision=N`.
pub fn undo(kubectl: &Kubectl, app: &str, revision: u64) -> Result<(), Error> {
    kubectl
        .run(
            &[
                "rollout",
                "undo",
                &format!("deployment/{app}"),
                &format!("--to-revision={revision}"),
            ],
            None,
        )
        .map(|_| ())
        .map_err(|e| Error::Deploy {
            message: format!("cannot undo to revision {revision}: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(revision: u64, version: &str, current: bool) -> Revision {
        Revision {
            revision,
            replicaset: format!("web-{revision}"),
            version: version.into(),
            image: String::new(),
            deployed_by: String::new(),
            deployed_at: String::new(),
            replicas: 0,
            ready: 0,
            current,
        }
    }

    #[test]
    fn rollback_targets() {
        let r = [
            rev(5, "1.2.0", true),
            rev(4, "1.1.0", false),
            rev(2, "1.0.0", false),
        ];
        assert_eq!(target(&r, None).unwrap().revision, 4);
        assert_eq!(target(&r, Some("1.0.0")).unwrap().revision, 2);
        assert!(target(&r, Some("1.2.0")).unwrap_err().contains("already"));
        assert_eq!(
            target(&r, Some("0.9.0")).unwrap_err(),
            "no kept revision is version 0.9.0; kept: 1.1.0 (revision 4), 1.0.0 (revision 2)"
        );
        assert!(target(&r[..1], None).is_err());
    }
}
