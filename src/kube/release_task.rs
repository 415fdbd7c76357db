//! `deploy.release_command` on Kubernetes: a Job made from the new
//! release's pod template (its image digest, ConfigMap, Secret, service
//! account and security context; no probes, never restarted, labelled so
//! no Service selects it), run after the server's dry-run and before the
//! Deployment is applied. Its output is shown as it comes; it must succeed
//! within `deploy.release_timeout`; it is deleted afterwards whatever
//! happens. A failure stops the deploy with the Deployment untouched (what
//! the command changed, in a database, stays).

use std::io::BufRead;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Target;
use super::kubectl::{Kubectl, int, text};
use crate::cancel::Cancel;
use crate::output::Output;

/// The label a release command's Job and pod carry.
pub const RELEASE_LABEL: &str = "shipit.dev/release-command";

/// The Deployment among the rendered objects.
pub fn deployment<'a>(objects: &'a [Value], app: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == app)
}

/// The Job that runs `command` once from `deployment`'s pod template.
pub fn job(
    deployment: &Value,
    name: &str,
    app: &str,
    command: &[String],
    limit: Duration,
) -> Value {
    let spec = super::command::one_off(&deployment["spec"]["template"]["spec"], command, None);
    let labels = json!({
        "app.kubernetes.io/part-of": app,
        "app.kubernetes.io/managed-by": "shipit",
        RELEASE_LABEL: app,
    });
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": limit.as_secs().max(1),
            "template": {"metadata": {"labels": labels}, "spec": spec},
        },
    })
}

/// Runs the release command as a Job from `deployment` (the new one, its
/// other objects applied already); how long it took, or why it failed.
pub fn run(
    target: &Target,
    deployment: &Value,
    out: &Output,
    cancel: &Cancel,
) -> Result<Duration, String> {
    let k = &target.kubectl;
    // A Job's name is its pods' `job-name` label: at most 63 characters.
    let app: String = target.app.chars().take(40).collect();
    let name = format!("{app}-release-{}", crate::clock::now());
    let manifest = job(
        deployment,
        &name,
        &target.app,
        &target.release_command,
        target.release_timeout,
    );
    let image = text(&manifest, "/spec/template/spec/containers/0/image").to_string();
    out.status(
        "release",
        &format!(
            "running {} as job/{name} ({image})",
            target.release_command.join(" ")
        ),
    );
    let start = Instant::now();
    k.run(
        &["create", "-f", "-"],
        Some(&serde_json::to_vec(&manifest).unwrap_or_default()),
    )
    .map_err(|e| format!("the release command could not start: {}", e.message))?;
    // From here on the Job (and its pod) is deleted whatever happens.
    let result = watch(target, &name, out, cancel);
    if let Err(e) = k.run(
        &["delete", "job", &name, "--ignore-not-found", "--wait=false"],
        None,
    ) {
        out.warn(&format!(
            "job/{name} could not be deleted ({e}): `shipit prune {}` deletes it",
            target.environment
        ));
    }
    result.map(|()| start.elapsed())
}

/// The Job's pod started, its output shown, its end read.
fn watch(target: &Target, name: &str, out: &Output, cancel: &Cancel) -> Result<(), String> {
    let k = &target.kubectl;
    let limit = target.release_timeout;
    let start = Instant::now();
    let timed_out = || {
        format!(
            "the release command did not finish within {} s (deploy.release_timeout) and was stopped",
            limit.as_secs()
        )
    };
    let selector = format!("job-name={name}");
    // Until its pod runs (or has run): what keeps it from starting is said.
    let pod = loop {
        if cancel.is_set() {
            return Err(format!(
                "the release command was interrupted ({})",
                cancel.cause()
            ));
        }
        let pods = k
            .json(&["get", "pods", "-l", &selector, "-o", "json"], None)
            .map_err(|e| format!("cannot read the release command's pod: {}", e.message))?;
        if let Some(pod) = pods["items"].get(0) {
            let phase = text(pod, "/status/phase");
            if matches!(phase, "Running" | "Succeeded" | "Failed") {
                break text(pod, "/metadata/name").to_string();
            }
            if let Some(why) = super::command::cannot_start(pod) {
                return Err(format!("the release command cannot start: {why}"));
            }
        } else if let Some(why) = refused(k, name) {
            return Err(why);
        }
        if start.elapsed() > limit {
            return Err(timed_out());
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    show(k, &pod, out, cancel, limit.saturating_sub(start.elapsed()));
    if cancel.is_set() {
        return Err(format!(
            "the release command was interrupted ({})",
            cancel.cause()
        ));
    }
    // The end is the Job's: succeeded, or failed with its pod's exit code.
    loop {
        let job = k
            .get(&format!("job/{name}"))
            .ok()
            .flatten()
            .unwrap_or_default();
        if int(&job, "/status/succeeded") > 0 {
            return Ok(());
        }
        if let Some(condition) = failed(&job) {
            if condition["reason"] == "DeadlineExceeded" {
                return Err(timed_out());
            }
            let pod = k
                .get(&format!("pod/{pod}"))
                .ok()
                .flatten()
                .unwrap_or_default();
            let code = &pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"];
            return Err(match code.as_i64() {
                Some(code) => format!("the release command exited with code {code}"),
                None => format!(
                    "the release command failed: {}",
                    text(condition, "/message")
                ),
            });
        }
        if start.elapsed() > limit + Duration::from_secs(30) || cancel.is_set() {
            return Err(timed_out());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A Job's `Failed` condition, once it has one.
pub fn failed(job: &Value) -> Option<&Value> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Failed" && c["status"] == "True")
}

/// Why the Job made no pod (a quota, an admission policy), once it says so.
fn refused(k: &Kubectl, name: &str) -> Option<String> {
    let job = k.get(&format!("job/{name}")).ok().flatten()?;
    failed(&job).map(|c| {
        format!(
            "the release command could not start: {}: {}",
            text(c, "/reason"),
            text(c, "/message")
        )
    })
}

/// Follows the pod's output as `|` lines until it ends, the time is up,
/// or a signal came.
fn show(k: &Kubectl, pod: &str, out: &Output, cancel: &Cancel, left: Duration) {
    let argv = k.argv(&["logs", "--follow", pod], true);
    let child = std::process::Command::new(&k.program)
        .args(&argv)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return;
    };
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let start = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => out.status("|", line.trim_end()),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if cancel.is_set() || start.elapsed() > left {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_runs_the_command_once_from_the_new_template_without_probes() {
        let deployment = json!({
            "kind": "Deployment",
            "metadata": {"name": "shop"},
            "spec": {"template": {"metadata": {"labels": {"app.kubernetes.io/name": "shop"}}, "spec": {
                "serviceAccountName": "shop",
                "restartPolicy": "Always",
                "containers": [{
                    "name": "shop",
                    "image": "r/shop@sha256:ab",
                    "args": ["serve"],
                    "envFrom": [{"configMapRef": {"name": "shop-config-1f"}}],
                    "readinessProbe": {"httpGet": {"path": "/ready"}},
                    "livenessProbe": {"httpGet": {"path": "/health"}},
                    "lifecycle": {"preStop": {}},
                }],
            }}},
        });
        let command = vec!["python3".to_string(), "migrate.py".to_string()];
        let job = job(
            &deployment,
            "shop-release-1",
            "shop",
            &command,
            Duration::from_secs(600),
        );
        assert_eq!(job["spec"]["backoffLimit"], 0);
        assert_eq!(job["spec"]["activeDeadlineSeconds"], 600);
        let pod = &job["spec"]["template"];
        // No Service selects it: not the app's name label.
        assert_eq!(
            pod["metadata"]["labels"].get("app.kubernetes.io/name"),
            None
        );
        assert_eq!(pod["metadata"]["labels"][RELEASE_LABEL], "shop");
        assert_eq!(pod["spec"]["restartPolicy"], "Never");
        assert_eq!(pod["spec"]["serviceAccountName"], "shop");
        let container = &pod["spec"]["containers"][0];
        assert_eq!(container["command"], json!(["python3", "migrate.py"]));
        assert_eq!(container["args"], json!([]));
        assert_eq!(container["image"], "r/shop@sha256:ab");
        assert_eq!(
            container["envFrom"][0]["configMapRef"]["name"],
            "shop-config-1f"
        );
        for gone in ["readinessProbe", "livenessProbe", "lifecycle"] {
            assert_eq!(container.get(gone), None, "{gone}");
        }
        assert_eq!(
            super::deployment(std::slice::from_ref(&deployment), "shop"),
            Some(&deployment)
        );
        assert_eq!(
            super::deployment(std::slice::from_ref(&deployment), "other"),
            None
        );
    }
}
