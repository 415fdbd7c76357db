//! Server-side apply with the field manager `shipit`: a dry-run of every
//! object first (nothing is applied if any is refused), then the apply.
//! Fields another manager took - `kubectl rollout undo` or `kubectl edit` by
//! hand - are taken back, and named.

use super::kubectl::{Failed, Kubectl};
use crate::process::Program;

pub const FIELD_MANAGER: &str = "--field-manager=shipit";

/// What the dry-run found.
#[derive(Debug, Default)]
pub struct Checked {
    /// `conflict with "MANAGER" using API: .field` lines: fields the apply takes back.
    pub conflicts: Vec<String>,
}

fn args(dry_run: bool, force: bool) -> Vec<&'static str> {
    let mut a = vec![
        "apply",
        "--server-side",
        FIELD_MANAGER,
        "-f",
        "-",
        "-o",
        "name",
    ];
    if force {
        a.push("--force-conflicts");
    }
    if dry_run {
        a.push("--dry-run=server");
    }
    a
}

/// The conflict lines of a refused apply, if that is why it was refused.
pub fn conflicts(message: &str) -> Vec<String> {
    // One conflict: `conflict with "M" using apps/v1: .field`; several:
    // `conflicts with "M" using apps/v1:` then one `- .field` line each.
    let mut out = Vec::new();
    let mut manager = String::new();
    for line in message.lines().map(str::trim) {
        let at = line
            .find("conflict with")
            .or_else(|| line.find("conflicts with"));
        if let Some(i) = at {
            let part = line[i..].replacen("conflicts with", "conflict with", 1);
            match part.strip_suffix(':') {
                Some(head) => manager = head.to_string(),
                None => out.push(part.trim_end_matches('.').to_string()),
            }
        } else if let Some(field) = line.strip_prefix("- ")
            && !manager.is_empty()
        {
            out.push(format!("{manager}: {field}"));
        }
    }
    out
}

/// The server's dry-run of every object. Conflicts alone are not a refusal.
pub fn check(kubectl: &Kubectl, list: &[u8]) -> Result<Checked, Failed> {
    match kubectl.run(&args(true, false), Some(list)) {
        Ok(_) => Ok(Checked::default()),
        Err(e) => {
            let found = conflicts(&e.message);
            if found.is_empty() {
                return Err(e);
            }
            kubectl.run(&args(true, true), Some(list))?;
            Ok(Checked { conflicts: found })
        }
    }
}

/// The apply itself (after `check`).
pub fn apply(kubectl: &Kubectl, list: &[u8], checked: &Checked) -> Result<(), Failed> {
    kubectl
        .run(&args(false, !checked.conflicts.is_empty()), Some(list))
        .map(|_| ())
}

/// `kubectl diff --server-side`: what the apply would change (exit 1 means
/// "differences", not failure).
pub fn diff(kubectl: &Kubectl, list: &[u8]) -> Result<String, Failed> {
    let mut argv = vec![format!(
        "--request-timeout={}",
        super::kubectl::REQUEST_LIMIT
    )];
    if let Some(c) = &kubectl.context {
        argv.push(format!("--context={c}"));
    }
    argv.extend([
        format!("--namespace={}", kubectl.namespace),
        "diff".into(),
        "--server-side".into(),
        FIELD_MANAGER.into(),
        "--force-conflicts".into(),
        "-f".into(),
        "-".into(),
    ]);
    let output = Program::new(&kubectl.program, &argv)
        .timeout(super::kubectl::CALL_LIMIT)
        .stdin(list)
        .output()
        .map_err(|e| Failed {
            command: format!("{} diff", kubectl.program),
            message: e.message,
        })?;
    // kubectl diff exits 1 when there are differences.
    match output.status.code() {
        Some(0) | Some(1) => Ok(output.stdout),
        _ => Err(Failed {
            command: format!("{} diff", kubectl.program),
            message: output.stderr.trim().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_lines_are_read_from_kubectl() {
        let message = "error: Apply failed with 1 conflict: conflict with \"kubectl.1.33\" using apps/v1: .spec.template.spec.containers[name=\"web\"].env[name=\"VERSION\"].value\nPlease review the fields above--they currently have other managers.";
        assert_eq!(
            conflicts(message),
            vec![
                "conflict with \"kubectl.1.33\" using apps/v1: .spec.template.spec.containers[name=\"web\"].env[name=\"VERSION\"].value"
            ]
        );
        assert!(conflicts("error: namespaces \"x\" not found").is_empty());
        let several = "error: Apply failed with 2 conflicts: conflicts with \"kubectl-rollout\" using apps/v1:\n- .spec.template.metadata.annotations.a\n- .spec.template.spec.containers[name=\"web\"].image\nPlease review";
        assert_eq!(
            conflicts(several),
            vec![
                "conflict with \"kubectl-rollout\" using apps/v1: .spec.template.metadata.annotations.a",
                "conflict with \"kubectl-rollout\" using apps/v1: .spec.template.spec.containers[name=\"web\"].image"
            ]
        );
    }
}
