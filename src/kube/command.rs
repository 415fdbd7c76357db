//! `shipit exec` and `shipit run` on Kubernetes. `exec` is `kubectl exec`
//! into a running pod of the app. `run` makes a Pod from the live
//! Deployment's pod template (its image digest, environment, Secret
//! volumes, security context; no probes, never restarted, labelled so no
//! Service selects it), shows its output, and deletes it afterwards
//! whatever happens. The command's exit code is shipit's.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Target;
use super::kubectl::text;
use super::logs::running_pods;
use crate::cancel::Cancel;
use crate::error::Error;
use crate::output::Output;
use crate::target::{CommandRequest, exited};

/// The label `shipit run`'s pods carry (and `prune` finds them by).
pub const RUN_LABEL: &str = "shipit.dev/run";

fn failed(e: impl std::fmt::Display) -> Error {
    Error::Deploy {
        message: e.to_string(),
    }
}

pub fn exec(out: &Output, target: &Target, request: &CommandRequest) -> Result<(), Error> {
    let pods = running_pods(&target.kubectl, &target.app)?;
    let pod = match &request.replica {
        None => pods
            .first()
            .map(|(_, p)| p.clone())
            .ok_or_else(|| Error::Deploy {
                message: format!("no pod of {} is running: deploy first", target.app),
            })?,
        Some(asked) => pods
            .iter()
            .enumerate()
            .find(|(i, (_, p))| p == asked || (i + 1).to_string() == *asked)
            .map(|(_, (_, p))| p.clone())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "--replica {asked}: not a running pod of {} (running: {})",
                    target.app,
                    pods.iter()
                        .enumerate()
                        .map(|(i, (_, p))| format!("{} ({p})", i + 1))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?,
    };
    out.detail(&format!("exec in pod {pod}"));
    let mut args = vec!["exec".to_string()];
    args.extend(flags(request.interactive));
    args.extend([pod, "--".into()]);
    args.extend(request.command.iter().cloned());
    Session::start()?.attached(target, &args)
}

/// `-i`, and `-t` when this process has a terminal.
fn flags(interactive: bool) -> Vec<String> {
    let mut flags = Vec::new();
    if interactive {
        flags.push("-i".to_string());
        if crate::terminal::wanted(true) {
            flags.push("-t".to_string());
        }
    }
    flags
}

/// The runtime kubectl's attached calls run on, and the signal handlers,
/// installed once at the start of a command: a signal at any point of it
/// asks for the clean stop (the run's pod deleted).
struct Session {
    runtime: tokio::runtime::Runtime,
    cancel: Cancel,
}

impl Session {
    fn start() -> Result<Session, Error> {
        let runtime = crate::target::runtime()?;
        // The handlers run on the runtime's workers from here on.
        let cancel = runtime.block_on(async { Cancel::install() });
        Ok(Session { runtime, cancel })
    }

    /// `Err` with the signal's exit code once a signal arrived.
    fn check(&self) -> Result<(), Error> {
        match self.cancel.signal() {
            0 => Ok(()),
            signal => Err(Error::Exited { code: 128 + signal }),
        }
    }

    /// Runs kubectl with this process's input and output; its exit code.
    fn attached(&self, target: &Target, args: &[String]) -> Result<(), Error> {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        self.runtime.block_on(async {
            let mut child = target
                .kubectl
                .attached(&argv)
                .spawn()
                .map_err(|e| failed(format!("cannot start {}: {e}", target.kubectl.program)))?;
            loop {
                tokio::select! {
                    status = child.wait() => {
                        let status = status.map_err(failed)?;
                        return exited(status.code().map(i64::from).unwrap_or(1));
                    }
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {
                        if self.cancel.is_set() {
                            let _ = child.kill().await;
                            return self.check();
                        }
                    }
                }
            }
        })
    }
}

pub fn run(out: &Output, target: &Target, request: &CommandRequest) -> Result<(), Error> {
    let session = Session::start()?;
    let kubectl = &target.kubectl;
    let deployment = kubectl
        .get(&format!("deployment/{}", target.app))
        .map_err(failed)?
        .ok_or_else(|| Error::Deploy {
            message: format!(
                "deployment/{} is not in namespace {}: deploy first",
                target.app, kubectl.namespace
            ),
        })?;
    let name = format!(
        "{}-run-{}-{}",
        target.app,
        std::process::id(),
        crate::clock::now()
    );
    let pod = pod(&deployment, &name, &target.app, request);
    let image = text(&pod, "/spec/containers/0/image").to_string();
    out.status("running", &format!("pod {name} ({image})"));
    let manifest = serde_json::to_vec(&pod).unwrap_or_default();
    session.check()?;
    kubectl
        .run(&["create", "-f", "-"], Some(&manifest))
        .map_err(failed)?;
    // From here on the pod is deleted whatever happens.
    let result = run_created(target, &name, request, &session);
    let deleted = kubectl.run(
        &["delete", "pod", &name, "--ignore-not-found", "--wait=false"],
        None,
    );
    match (&result, deleted) {
        (Err(Error::Exited { code }), Ok(_)) if *code > 128 => {
            out.warn(&format!("interrupted: pod {name} was deleted"));
        }
        (_, Err(e)) => out.warn(&format!(
            "pod {name} could not be deleted ({e}): `shipit prune` deletes it"
        )),
        _ => {}
    }
    result
}

/// The Deployment's pod template as a Pod that runs `request.command` once.
fn pod(deployment: &Value, name: &str, app: &str, request: &CommandRequest) -> Value {
    let mut spec = one_off(
        &deployment["spec"]["template"]["spec"],
        &request.command,
        request.image.as_deref(),
    );
    if request.interactive
        && let Some(first) = spec["containers"].get_mut(0)
    {
        first["stdin"] = json!(true);
        first["stdinOnce"] = json!(true);
        first["tty"] = json!(crate::terminal::wanted(true));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            // Not the app's own name label: no Service sends it traffic.
            "labels": {
                "app.kubernetes.io/part-of": app,
                "app.kubernetes.io/managed-by": "shipit",
                RUN_LABEL: app,
            },
        },
        "spec": spec,
    })
}

/// A pod template's spec that runs `command` once: never restarted, no
/// probes or hooks, its first container's command replaced (and its image,
/// when given); everything else (environment, Secret volumes, security
/// context, service account) as the template has it.
pub(super) fn one_off(template: &Value, command: &[String], image: Option<&str>) -> Value {
    let mut spec = template.clone();
    spec["restartPolicy"] = json!("Never");
    if let Some(containers) = spec["containers"].as_array_mut()
        && let Some(first) = containers.first_mut()
    {
        first["command"] = json!(command);
        first["args"] = json!([]);
        if let Some(image) = image {
            first["image"] = json!(image);
        }
        if let Some(object) = first.as_object_mut() {
            for probe in [
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
                "lifecycle",
            ] {
                object.remove(probe);
            }
        }
    }
    spec
}

/// Why a pod waits for good (its image cannot be pulled, its
/// configuration is wrong): `REASON: message`.
pub(super) fn cannot_start(pod: &Value) -> Option<String> {
    let waiting = text(pod, "/status/containerStatuses/0/state/waiting/reason");
    matches!(
        waiting,
        "ErrImagePull" | "ImagePullBackOff" | "CreateContainerConfigError" | "InvalidImageName"
    )
    .then(|| {
        format!(
            "{waiting}: {}",
            text(pod, "/status/containerStatuses/0/state/waiting/message")
        )
    })
}

/// The run's pod as the cluster has it now.
fn live_pod(target: &Target, name: &str) -> Result<Value, Error> {
    target
        .kubectl
        .get(&format!("pod/{name}"))
        .map_err(failed)?
        .ok_or_else(|| failed(format!("pod {name} disappeared")))
}

/// Waits for the pod to start, shows its output (or attaches to it), and
/// returns its exit code as shipit's.
fn run_created(
    target: &Target,
    name: &str,
    request: &CommandRequest,
    session: &Session,
) -> Result<(), Error> {
    let started = Instant::now();
    let limit = target.progress_deadline.max(Duration::from_secs(60));
    loop {
        session.check()?;
        let pod = live_pod(target, name)?;
        let phase = text(&pod, "/status/phase");
        if matches!(phase, "Running" | "Succeeded" | "Failed") {
            break;
        }
        if let Some(why) = cannot_start(&pod) {
            return Err(failed(format!("pod {name} cannot start: {why}")));
        }
        if started.elapsed() > limit {
            return Err(failed(format!(
                "pod {name} did not start within {} s (phase {phase})",
                limit.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut args: Vec<String> = if request.interactive {
        let mut args = vec!["attach".to_string()];
        args.extend(flags(true));
        args.push(name.to_string());
        args
    } else {
        vec!["logs".into(), "--follow".into(), name.into()]
    };
    args.push(format!("--pod-running-timeout={}s", limit.as_secs()));
    let shown = session.attached(target, &args);
    if let Err(Error::Exited { code }) = shown
        && code > 128
    {
        return shown;
    }
    // The exit code is the pod's, not kubectl's.
    let ended = Instant::now();
    loop {
        session.check()?;
        let pod = live_pod(target, name)?;
        let terminated = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
        if let Some(code) = terminated["exitCode"].as_i64() {
            return exited(code);
        }
        if ended.elapsed() > Duration::from_secs(60) {
            return Err(failed(format!(
                "pod {name}'s output ended, and it has not finished 60 s later"
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
