//! `deploy.target = "kubernetes"` on the real test cluster (.ci/k8s-cluster:
//! kube-apiserver, controller-manager, scheduler, kubelet on this engine and
//! kube-proxy, v1.20.2). `.ci/test` starts it and sets SHIPIT_TEST_KUBECONFIG;
//! without it these tests fail loudly unless SHIPIT_SKIP_K8S=1.
//!
//! Each test has its own app, namespace, registry (the kubelet pulls by
//! digest from it, on loopback) and Service address (kube-proxy routes it
//! to the pods: the smoke tests' URL). They run one at a time.

use crate::deploy::support::{Loads, no_failures_in};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::deploy::support::images;
use crate::docker::{self, Registry, docker};
use crate::harness::{Project, Run};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn kubeconfig() -> Option<String> {
    if std::env::var_os("SHIPIT_SKIP_K8S").is_some_and(|v| v == "1") {
        eprintln!("SHIPIT_SKIP_K8S=1: skipping a test that needs the Kubernetes test cluster");
        return None;
    }
    let path = std::env::var("SHIPIT_TEST_KUBECONFIG").unwrap_or_default();
    assert!(
        !path.is_empty() && std::path::Path::new(&path).exists(),
        "this test needs the Kubernetes test cluster: `bash .ci/k8s-cluster/up.sh` and SHIPIT_TEST_KUBECONFIG=/tmp/shipit-k8s/kubeconfig (`.ci/test` does both), or SHIPIT_SKIP_K8S=1 to skip it"
    );
    Some(path)
}

/// One application in its own namespace on the test cluster, removed on drop.
struct App {
    project: Project,
    kubeconfig: String,
    name: String,
    namespace: String,
    address: String,
    registry: Registry,
    repository: String,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl App {
    fn new(test: &str, octet: u8) -> Option<App> {
        let kubeconfig = kubeconfig()?;
        if !docker::engine() {
            return None;
        }
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        images();
        let name = format!("k{}-{test}", std::process::id() % 100_000);
        let namespace = format!("{name}-ns");
        let address = format!("10.0.0.{octet}");
        let registry = Registry::start();
        let repository = format!("shipit-test/{name}");
        let project = Project::from_repo();
        project.write(
            "environments/cluster.toml",
            &format!(
                r#"# The test cluster: Kubernetes 1.20, a Service address kube-proxy routes.
replicas = 2

[app]
name = "{name}"
version_source = "config"
version = "1.0.0"

[env]
ENVIRONMENT = "cluster"

[image]
registry = "{registry}"
repository = "{repository}"

[deploy]
target = "kubernetes"
strategy = "rolling"
health_timeout = "20s"
smoke_timeout = "8s"

[kubernetes]
namespace = "{namespace}"
version = "1.20"
cluster_ip = "{address}"

[kubernetes.ingress]
host = "{name}.example.test"

[kubernetes.pdb]
enabled = true
min_available = 1

[smoke]
url = "http://{address}"
timeout = "8s"

[[smoke.checks]]
name = "GET / names the environment"
path = "/"
json = {{ "/environment" = "cluster" }}
"#,
                registry = registry.address,
            ),
        );
        let app = App {
            project,
            kubeconfig,
            name,
            namespace,
            address,
            registry,
            repository,
            _turn: turn,
        };
        Some(app)
    }

    fn kubectl(&self, args: &[&str]) -> (bool, String) {
        let output = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("kubectl");
        (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    }

    /// kubectl in the test's namespace.
    fn in_namespace(&self, args: &[&str]) -> (bool, String) {
        let mut all = args.to_vec();
        all.extend(["-n", &self.namespace]);
        self.kubectl(&all)
    }

    /// kubectl in the test's namespace, which must succeed: its output.
    #[track_caller]
    fn must(&self, args: &[&str]) -> String {
        let (ok, text) = self.in_namespace(args);
        assert!(ok, "kubectl {args:?}: {text}");
        text
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let text = self.must(&all);
        serde_json::from_str(text.trim_start_matches(|c| c != '{')).unwrap()
    }

    /// The namespace, as an administrator makes it: from the rendered file.
    fn create_namespace(&self) {
        self.shipit(&["render", "cluster"]).success();
        let file = self
            .project
            .path()
            .join("generated/cluster/k8s/cluster/namespace.yaml");
        let (ok, text) = self.kubectl(&["apply", "--server-side", "-f", file.to_str().unwrap()]);
        assert!(ok, "{text}");
    }

    /// The calculator image as `version`, pushed; `tail` adds Dockerfile lines.
    fn push(&self, version: &str, tail: &str) -> String {
        let (base, _) = images();
        let reference = format!("{}/{}:{version}", self.registry.address, self.repository);
        docker::build_variant(&reference, base, version, tail);
        let (ok, text) = docker(&["push", &reference]);
        assert!(ok, "{text}");
        reference
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipit"));
        cmd.arg("-C").arg(self.project.path()).args(args);
        for (name, _) in std::env::vars() {
            if name.starts_with("SHIPIT") {
                cmd.env_remove(name);
            }
        }
        cmd.env("KUBECONFIG", &self.kubeconfig).env("NO_COLOR", "1");
        cmd
    }

    fn shipit(&self, args: &[&str]) -> Run {
        Self::finished(self.command(args))
    }

    fn finished(mut command: Command) -> Run {
        let output = command.output().unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn deploy(&self, version: &str, extra: &[&str]) -> Run {
        let set = format!("app.version={version}");
        let mut args = vec!["deploy", "cluster", "--set", &set, "--output", "json"];
        args.extend_from_slice(extra);
        self.shipit(&args)
    }

    /// `deploy` (as `deploy` does) with a webhook to a receiver here: the run,
    /// and what the webhook heard.
    fn deploy_heard(&self, version: &str, extra: &[&str]) -> (Run, Arc<Mutex<Vec<Value>>>) {
        let (hook, got) = crate::deploy::support::receiver();
        let set = format!("app.version={version}");
        let mut args = vec!["deploy", "cluster", "--set", &set, "--output", "json"];
        args.extend(["--set", "deploy.webhook=env:KUBE_HOOK"]);
        args.extend_from_slice(extra);
        let mut command = self.command(&args);
        command.env("KUBE_HOOK", &hook);
        (Self::finished(command), got)
    }

    /// An app whose 2.0.0 serves (3.0.0 pushed beside it, for the test to break).
    fn serving_v2(test: &str, octet: u8) -> Option<App> {
        let app = App::new(test, octet)?;
        app.create_namespace();
        app.push("2.0.0", "");
        app.push("3.0.0", "");
        outcome(&app.deploy("2.0.0", &[]).success());
        Some(app)
    }

    /// The version the Service answers with, through kube-proxy.
    fn serving(&self) -> Vec<String> {
        let pods = self.json(&[
            "get",
            "pods",
            "-l",
            &format!("app.kubernetes.io/name={}", self.name),
        ]);
        let mut versions: Vec<String> = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| {
                p["metadata"]["annotations"]["shipit.dev/version"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        versions.sort();
        versions.dedup();
        versions
    }

    fn answers(&self) -> Value {
        let r = shipit::http::request(
            &format!("http://{}/", self.address),
            "GET",
            &[],
            b"",
            Duration::from_secs(3),
        )
        .expect("the Service answers");
        assert_eq!(r.status, 200);
        r.json().unwrap()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.kubectl(&[
            "delete",
            "namespace",
            &self.namespace,
            "--wait=true",
            "--timeout=90s",
        ]);
        // The kubelet removes its exited containers only at its next garbage
        // collection: they would hold the test's images.
        let (_, ids) = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=io.kubernetes.pod.namespace={}", self.namespace),
        ]);
        for id in ids.lines().filter(|l| !l.is_empty()) {
            docker(&["rm", "-f", "-v", id]);
        }
        crate::docker::remove_repository(&format!("{}/{}", self.registry.address, self.repository));
    }
}

fn outcome(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {}\nstderr {}", run.stdout, run.stderr))
}

#[test]
fn deploys_gate_history_rollback_and_a_hand_made_undo() {
    let Some(app) = App::new("life", 51) else {
        return;
    };
    app.push("1.0.0", "");
    app.push("2.0.0", "");

    // Preflight: every problem at once, and nothing is created.
    let refused = app
        .deploy("1.0.0", &["--set", "kubernetes.version=1.30"])
        .code(1);
    for expected in [
        "the server is Kubernetes v1.20.2, but the manifests are rendered for 1.30",
        &format!("namespace {}:", app.namespace),
        "nothing was changed",
    ] {
        assert!(
            refused.stderr.contains(expected),
            "{expected}: {}",
            refused.stderr
        );
    }
    app.create_namespace();
    let (found, _) = app.in_namespace(&["get", "deployment", &app.name]);
    assert!(!found);

    // A dry run shows the server's diff and changes nothing.
    let plan = app
        .shipit(&["deploy", "cluster", "--dry-run", "--output", "json"])
        .success();
    let plan = outcome(&plan);
    assert!(
        plan["diff"].as_str().unwrap().contains("kind: Deployment"),
        "{plan}"
    );
    assert!(
        plan["image"].as_str().unwrap().contains(":1.0.0@sha256:"),
        "{plan}"
    );
    assert_eq!(plan["serving_revision"], Value::Null);
    let (found, _) = app.in_namespace(&["get", "deployment", &app.name]);
    assert!(!found, "a dry run created the Deployment");

    // v1, then v2: gated and smoke-tested. v1 carries out the dry run's plan.
    let v1 = outcome(&app.deploy("1.0.0", &[]).success());
    crate::deploy::support::assert_plan_carried_out(&plan["plan"], &v1);
    assert_eq!(
        (v1["result"].as_str(), v1["revision"].as_u64()),
        (Some("succeeded"), Some(1))
    );
    assert!(v1["smoke"]["passed"].as_bool().unwrap());
    // kubernetes.smoke = "new-pods" (the default): the suite went to a pod
    // of the new revision, and no replaced pod was waited for.
    assert!(
        v1["smoke"]["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("pod/{}-", app.name)),
        "{v1}"
    );
    assert!(
        !v1["phases"].to_string().contains("old pods stopped"),
        "{v1}"
    );
    assert_eq!(app.serving(), ["1.0.0"]);
    assert_eq!(app.answers()["environment"], "cluster");
    // The rollout under keepalive load through the Service (wrk paced and
    // unpaced, POST, and a new connection per request): no request fails.
    // v2 is smoke-tested through the Service (kubernetes.smoke = "url").
    let loads = Loads::start(&format!("http://{}", app.address));
    let v2 = outcome(
        &app.deploy("2.0.0", &["--set", "kubernetes.smoke=url"])
            .success(),
    );
    no_failures_in(loads, "the rollout 1.0.0 -> 2.0.0 through the Service");
    assert_eq!(
        (v2["revision"].as_u64(), v2["previous_revision"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(app.serving(), ["2.0.0"]);
    // The smoke tests ran once v1's containers had stopped (they keep
    // answering through their shutdown delay): none a route could reach.
    let pods = app.json(&[
        "get",
        "pods",
        "-l",
        &format!("app.kubernetes.io/name={}", app.name),
    ]);
    assert!(
        pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| !p["metadata"]["deletionTimestamp"].is_null())
            .all(|p| !p["status"].to_string().contains("\"running\"")),
        "{pods}"
    );
    assert!(
        v2["phases"].to_string().contains("old pods stopped"),
        "{v2}"
    );
    assert_eq!(
        v2["smoke"]["url"].as_str(),
        Some(format!("http://{}", app.address).as_str())
    );
    // The image is pinned by the digest the registry gave.
    let d = app.json(&["get", "deployment", &app.name]);
    let image = d["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    assert!(image.contains(":2.0.0@sha256:"), "{image}");
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 20);

    // Status and history.
    let status = outcome(
        &app.shipit(&["status", "cluster", "--output", "json"])
            .success(),
    );
    assert_eq!(status["rollout"], "complete");
    assert_eq!(status["version"], "2.0.0");
    let revisions: Vec<(u64, String, bool)> = status["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["revision"].as_u64().unwrap(),
                r["version"].as_str().unwrap().to_string(),
                r["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        revisions,
        [(2, "2.0.0".into(), true), (1, "1.0.0".into(), false)]
    );
    assert!(
        status["revisions"][0]["deployed_by"]
            .as_str()
            .unwrap()
            .contains('@')
    );
    let serving_pods = status["pods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["terminating"] == false)
        .count();
    assert_eq!(serving_pods, 2, "{status}");
    let human = app.shipit(&["status", "cluster"]).success();
    assert!(
        human.stderr.contains("revision 2, version 2.0.0"),
        "{}",
        human.stderr
    );

    // `kubectl rollout undo` by hand: kubectl now owns the template's
    // fields; the next deploy takes them back and says so.
    let deployment = format!("deployment/{}", app.name);
    app.must(&["rollout", "undo", &deployment]);
    app.must(&["rollout", "status", &deployment, "--timeout=60s"]);
    assert_eq!(app.serving(), ["1.0.0"]);
    let again = app.deploy("2.0.0", &[]).success();
    let again_json = outcome(&again);
    let conflicts = again_json["conflicts"].as_array().unwrap();
    assert!(
        conflicts
            .iter()
            .any(|c| c.as_str().unwrap().contains("kubectl")),
        "{again_json}"
    );
    assert!(
        again
            .stderr
            .contains("taking back a field another manager set"),
        "{}",
        again.stderr
    );
    assert_eq!(app.serving(), ["2.0.0"]);

    // rollback --to a version: the same gate, an undo under the same load.
    let loads = Loads::start(&format!("http://{}", app.address));
    let back = outcome(
        &app.shipit(&["rollback", "cluster", "--to", "1.0.0", "--output", "json"])
            .success(),
    );
    no_failures_in(loads, "the undo 2.0.0 -> 1.0.0 through the Service");
    assert_eq!(
        (back["action"].as_str(), back["version"].as_str()),
        (Some("rollback"), Some("1.0.0"))
    );
    assert_eq!(app.serving(), ["1.0.0"]);
    let unknown = app
        .shipit(&["rollback", "cluster", "--to", "9.9.9"])
        .code(1);
    assert!(
        unknown.stderr.contains("no kept revision is version 9.9.9"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn a_v3_that_cannot_be_pulled_fails_at_once_and_v2_is_restored() {
    let Some(app) = App::serving_v2("pull", 52) else {
        return;
    };
    // A digest the registry does not have: every pull fails.
    let missing = format!("image.digest=sha256:{}", "0".repeat(64));
    // The same deploy moves the Ingress to another host: put back too.
    let (failed, got) = app.deploy_heard(
        "3.0.0",
        &[
            "--set",
            &missing,
            "--set",
            "deploy.health_timeout=300s",
            "--set",
            "kubernetes.ingress.host=moved.example.test",
        ],
    );
    let failed = failed.code(1);
    let o = outcome(&failed);
    assert_eq!(o["result"], "rolled-back", "{o}");
    let ingress = app.json(&["get", "ingress", &app.name]);
    assert_eq!(
        ingress["spec"]["rules"][0]["host"],
        format!("{}.example.test", app.name),
        "{ingress}"
    );
    assert!(
        o["reverted"]
            .to_string()
            .contains(&format!("Ingress/{} restored", app.name)),
        "{o}"
    );
    assert_eq!(o["not_reverted"], serde_json::json!([]), "{o}");
    // Not waited out to the progress deadline (300 s): an image that cannot
    // be pulled is a definite failure.
    let cause = o["cause"].as_str().unwrap();
    assert!(
        cause.contains("of the new revision cannot start:") && cause.contains("ImagePull"),
        "{o}"
    );
    assert!(!cause.contains("progress deadline"), "{o}");
    let problems = o["problems"].to_string();
    assert!(
        problems.contains("ErrImagePull") || problems.contains("ImagePullBackOff"),
        "{problems}"
    );
    assert!(
        failed.stderr.contains("ImagePull"),
        "reported as it happened: {}",
        failed.stderr
    );
    assert_eq!(o["restored"]["version"], "2.0.0");
    assert_eq!(o["restored"]["verified"], true);
    // The webhook heard what happened (and the URL, which carries a token, is in no output).
    assert_eq!(o["notified"], true, "{o}");
    let messages = got.lock().unwrap().clone();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["event"], "deploy.rolled-back");
    assert_eq!(messages[0]["restored"]["version"], "2.0.0");
    assert!(!failed.stdout.contains("t0ken") && !failed.stderr.contains("t0ken"));
    assert_eq!(app.serving(), ["2.0.0"]);
    assert_eq!(app.answers()["environment"], "cluster");

    // A pod that cannot be scheduled yet is not a definite failure (a node
    // may come): it gets the whole progress deadline. (Here it never will:
    // it asks for 64 CPUs.)
    let started = Instant::now();
    let slow = app
        .deploy(
            "3.0.0",
            &[
                "--set",
                "resources.requests.cpu=64",
                "--set",
                "resources.limits.cpu=64",
                "--set",
                "deploy.health_timeout=15s",
            ],
        )
        .code(1);
    let took = started.elapsed();
    let o = outcome(&slow);
    assert_eq!(o["result"], "rolled-back", "{o}");
    assert!(
        o["cause"].as_str().unwrap().contains("progress deadline"),
        "{o}"
    );
    assert!(took >= Duration::from_secs(15), "{took:?}");
    assert_eq!(app.serving(), ["2.0.0"]);
}

#[test]
fn a_healthy_v3_that_fails_its_smoke_tests_is_undone() {
    let Some(app) = App::new("smoke", 53) else {
        return;
    };
    app.create_namespace();
    app.push("2.0.0", "");
    app.push("3.0.0", "");
    // Ready and healthy, but its settings name the wrong environment: the
    // undo must restore v2's settings too (each revision has its own ConfigMap).
    let broken = ["--set", "env.ENVIRONMENT=broken"];
    // A first deploy that fails: nothing served before, and it says what it left.
    let first = app.deploy("3.0.0", &broken).code(1);
    let o = outcome(&first);
    assert_eq!(
        (o["result"].as_str(), &o["restored"]),
        (Some("failed"), &Value::Null),
        "{o}"
    );
    assert!(
        o["cause"]
            .as_str()
            .unwrap()
            .contains("nothing served before this first deploy"),
        "{o}"
    );
    // v2's replaced pods keep answering for 30 s after they are deleted.
    outcome(
        &app.deploy("2.0.0", &["--set", "deploy.shutdown_delay=30s"])
            .success(),
    );
    let (failed, got) = app.deploy_heard("3.0.0", &broken);
    let failed = failed.code(1);
    let o = outcome(&failed);
    assert_eq!(o["result"], "rolled-back", "{o}");
    // The smoke suite went to a v3 pod while v2 pods the rollout had
    // replaced were still running and answering (their shutdown delay):
    // they could not pass it for v3.
    let pods = app.json(&[
        "get",
        "pods",
        "-l",
        &format!("app.kubernetes.io/name={}", app.name),
    ]);
    let items = pods["items"].as_array().unwrap();
    let hash = |p: &Value| {
        p["metadata"]["labels"]["pod-template-hash"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let deleted = |p: &Value| !p["metadata"]["deletionTimestamp"].is_null();
    let mut v2_hash: Vec<String> = items.iter().filter(|p| !deleted(p)).map(hash).collect();
    v2_hash.sort();
    v2_hash.dedup();
    assert_eq!(v2_hash.len(), 1, "{pods}");
    let smoked = o["smoke"]["url"].as_str().unwrap();
    assert!(
        smoked.starts_with(&format!("pod/{}-", app.name)) && !smoked.contains(&v2_hash[0]),
        "{smoked}: {pods}"
    );
    assert!(
        items.iter().any(|p| deleted(p)
            && hash(p) == v2_hash[0]
            && p["status"]["containerStatuses"][0]["state"]["running"].is_object()),
        "no replaced v2 pod was still running: {pods}"
    );
    assert!(!o["phases"].to_string().contains("old pods stopped"), "{o}");
    // What the service answered is in the run's own JSON, not in the webhook.
    assert!(o["smoke"].to_string().contains("broken"), "{o}");
    let messages = got.lock().unwrap().clone();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        !messages[0].to_string().contains("broken"),
        "the webhook got an answer's body: {}",
        messages[0]
    );
    assert!(
        o["cause"]
            .as_str()
            .unwrap()
            .contains("failed its smoke tests"),
        "{o}"
    );
    assert!(
        o["smoke"]
            .to_string()
            .contains("GET / names the environment"),
        "{o}"
    );
    assert_eq!(o["restored"]["version"], "2.0.0");
    assert_eq!(app.serving(), ["2.0.0"]);
    assert_eq!(app.answers()["environment"], "cluster");

    // A release whose container dies at start (an unknown subcommand: the
    // Deployment's args follow the entrypoint) fails as soon as its pod has
    // exited, not at its progress deadline (300 s).
    app.push("4.0.0", r#"ENTRYPOINT ["/calculator", "no-such-command"]"#);
    let started = std::time::Instant::now();
    let crashed = app
        .deploy("4.0.0", &["--set", "deploy.health_timeout=300s"])
        .code(1);
    let took = started.elapsed();
    let o = outcome(&crashed);
    assert_eq!(o["result"], "rolled-back", "{o}");
    let cause = o["cause"].as_str().unwrap();
    assert!(
        cause.contains("of the new revision exited with code 2")
            || cause.contains("of the new revision cannot start: CrashLoopBackOff"),
        "{o}"
    );
    assert!(!cause.contains("progress deadline"), "{o}");
    assert!(took < std::time::Duration::from_secs(150), "{took:?}");
    assert_eq!(o["restored"]["version"], "2.0.0");
    assert_eq!(app.serving(), ["2.0.0"]);
}

/// Reads `child`'s stderr until the deploy says it waits for the rollout:
/// the rest of it, and what was read.
fn until_rollout(
    child: &mut std::process::Child,
) -> (BufReader<std::process::ChildStderr>, String) {
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no rollout line: {seen}"
        );
        seen.push_str(&line);
        if line.contains("rollout") {
            return (stderr, seen);
        }
    }
}

#[test]
fn sigint_during_a_rollout_undoes_it_and_exits_130() {
    let Some(app) = App::serving_v2("sigint", 54) else {
        return;
    };
    let mut child = app
        .command(&["deploy", "cluster", "--set", "app.version=3.0.0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut stderr, seen) = until_rollout(&mut child);
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    assert!(rest.contains("interrupted by SIGINT"), "{rest}");
    assert!(rest.contains("serves again"), "{rest}");
    assert_eq!(app.serving(), ["2.0.0"]);
}

#[test]
fn a_held_lease_refuses_a_second_deploy_and_lock_wait_waits() {
    let Some(app) = App::new("lease", 55) else {
        return;
    };
    app.create_namespace();
    app.push("1.0.0", "");
    let now = shipit::clock::rfc3339(shipit::clock::now()).replace('Z', ".000000Z");
    let lease = format!(
        r#"{{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{{"name":"{}-shipit-deploy","namespace":"{}"}},"spec":{{"holderIdentity":"alice@ci-runner pid 7 `shipit deploy cluster`","leaseDurationSeconds":3600,"acquireTime":"{now}","renewTime":"{now}"}}}}"#,
        app.name, app.namespace
    );
    let file = app.project.path().join("lease.json");
    std::fs::write(&file, &lease).unwrap();
    let (ok, text) = app.kubectl(&["create", "-f", file.to_str().unwrap()]);
    assert!(ok, "{text}");

    let refused = app.deploy("1.0.0", &[]).code(1);
    assert!(
        refused.stderr.contains("another deploy is running"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("alice@ci-runner"),
        "{}",
        refused.stderr
    );
    let shown = outcome(
        &app.shipit(&["lock", "show", "cluster", "--output", "json"])
            .success(),
    );
    assert!(
        shown["lock"]["holder"]
            .as_str()
            .unwrap()
            .starts_with("alice@ci-runner")
    );
    let (found, _) = app.in_namespace(&["get", "deployment", &app.name]);
    assert!(!found, "a refused deploy changed the cluster");
    // A person cannot release a Lease that is still renewed without --force.
    let kept = app.shipit(&["lock", "release", "cluster"]).code(1);
    assert!(
        kept.stderr.contains("still renewing") && kept.stderr.contains("--force"),
        "{}",
        kept.stderr
    );

    // --lock-wait: the deploy waits until the holder lets go.
    let start = Instant::now();
    let waiting = app
        .command(&["deploy", "cluster", "--lock-wait", "90s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let lease_name = format!("{}-shipit-deploy", app.name);
    app.must(&["delete", "lease", &lease_name]);
    let out = waiting.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(start.elapsed() >= Duration::from_secs(4));
    assert_eq!(app.serving(), ["1.0.0"]);
    // Released at the end.
    let (held, _) = app.in_namespace(&["get", "lease", &lease_name]);
    assert!(!held, "the deploy left its Lease behind");

    // A holder whose clock is ten minutes behind: its renewTime looks old,
    // but it renews (its resourceVersion moves). It is not taken over.
    let old = shipit::clock::rfc3339(shipit::clock::now() - 600).replace('Z', ".000000Z");
    std::fs::write(&file, lease.replace(&now, &old).replace("3600", "5")).unwrap();
    let (ok, text) = app.kubectl(&["create", "-f", file.to_str().unwrap()]);
    assert!(ok, "{text}");
    let renewing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let skewed = {
        let (renewing, kubeconfig, namespace, lease_name) = (
            renewing.clone(),
            app.kubeconfig.clone(),
            app.namespace.clone(),
            lease_name.clone(),
        );
        std::thread::spawn(move || {
            let mut n = 0;
            while renewing.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                let behind = shipit::clock::rfc3339(shipit::clock::now() - 600)
                    .replace('Z', &format!(".{n:06}Z"));
                let patch = format!(r#"{{"spec":{{"renewTime":"{behind}"}}}}"#);
                let _ = Command::new("kubectl")
                    .args(["-n", &namespace, "patch", "lease", &lease_name])
                    .args(["--type=merge", "-p", &patch])
                    .env("KUBECONFIG", &kubeconfig)
                    .output();
                std::thread::sleep(Duration::from_millis(1500));
            }
        })
    };
    let refused = app.deploy("1.0.0", &[]).code(1);
    assert!(
        refused.stderr.contains("another deploy is running"),
        "a renewing holder was taken over: {}",
        refused.stderr
    );
    // It stops renewing (killed): watched unrenewed for its 5 s, taken over.
    renewing.store(false, std::sync::atomic::Ordering::SeqCst);
    skewed.join().unwrap();
    let taken = app.deploy("1.0.0", &[]).success();
    assert!(
        taken.stderr.contains("took over a stale deploy lock"),
        "{}",
        taken.stderr
    );
}

#[test]
fn a_deploy_that_loses_its_lease_stops_and_undoes_its_rollout() {
    let Some(app) = App::serving_v2("lost", 58) else {
        return;
    };
    // A v3 whose pods cannot be scheduled (64 CPUs asked): not a definite
    // failure, so the rollout waits for its 60 s deadline.
    let start = Instant::now();
    let mut child = app
        .command(&[
            "deploy",
            "cluster",
            "--set",
            "app.version=3.0.0",
            "--set",
            "resources.requests.cpu=64",
            "--set",
            "resources.limits.cpu=64",
            "--set",
            "deploy.health_timeout=60s",
            "--output",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut stderr, seen) = until_rollout(&mut child);
    // Another holder takes the Lease (as a taker would after a lapse).
    let lease_name = format!("{}-shipit-deploy", app.name);
    app.must(&[
        "patch",
        "lease",
        &lease_name,
        "--type=merge",
        "-p",
        r#"{"spec":{"holderIdentity":"mallory@elsewhere pid 1 `shipit deploy cluster`"}}"#,
    ]);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let output = child.wait_with_output().unwrap();
    let o: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{seen}{rest}");
    assert!(
        o["cause"]
            .as_str()
            .unwrap()
            .contains("no longer holds the deploy lock"),
        "{o}"
    );
    assert_eq!(o["result"], "interrupted", "{o}");
    assert!(
        start.elapsed() < Duration::from_secs(45),
        "stopped by the lost lock, not the deadline: {:?}",
        start.elapsed()
    );
    assert_eq!(app.serving(), ["2.0.0"]);
    // The Lease it lost is not its own: it is left to its holder.
    let holder = app.json(&["get", "lease", &lease_name]);
    assert!(
        holder["spec"]["holderIdentity"]
            .as_str()
            .unwrap()
            .starts_with("mallory@"),
        "{holder}"
    );
}

#[test]
fn every_environment_rendered_for_1_20_passes_the_servers_dry_run() {
    let Some(kubeconfig) = kubeconfig() else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::from_repo();
    let run = |args: &[&str]| {
        let output = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .unwrap();
        (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    };
    for env in ["development", "staging", "production"] {
        project
            .shipit(&["render", env, "--set", "kubernetes.version=1.20"])
            .success();
        let dir = project.path().join(format!("generated/{env}/k8s"));
        let kustomization = std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap();
        assert!(kustomization.contains("# rendered for Kubernetes 1.20"));
        let namespace = dir.join("cluster/namespace.yaml");
        // The namespace for real (the dry-run of namespaced objects needs it), then every object.
        let (ok, text) = run(&["apply", "--server-side", "-f", namespace.to_str().unwrap()]);
        assert!(ok, "{env}: {text}");
        let (ok, text) = run(&[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=shipit",
            "-k",
            dir.to_str().unwrap(),
        ]);
        let _ = run(&["delete", "-f", namespace.to_str().unwrap(), "--wait=false"]);
        assert!(ok, "{env}: the server refused: {text}");
        // Every object the kustomization lists was accepted.
        let listed = kustomization
            .lines()
            .filter(|l| l.trim_start().starts_with("- "))
            .count();
        let accepted = text
            .lines()
            .filter(|l| l.contains("serverside-applied (server dry run)"))
            .count();
        assert_eq!(accepted, listed, "{env}: {text}");
        assert!(
            text.contains("deployment.apps/calculator serverside-applied"),
            "{env}: {text}"
        );
    }
}

/// `[secrets]` needs its Secret in the namespace. The preflight checks that it
/// exists through the server's table (name, type, count), never reading its
/// values: kubectl is run through a wrapper that records every call.
#[test]
fn the_secret_is_checked_without_reading_its_values() {
    let Some(app) = App::new("vault", 57) else {
        return;
    };
    app.create_namespace();
    app.push("1.0.0", "");
    let calls = app.project.path().join("kubectl-calls");
    let wrapper = app.project.path().join("kubectl-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec kubectl \"$@\"\n",
            calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let kubectl = format!("kubernetes.kubectl={}", wrapper.display());
    let args = [
        "deploy",
        "cluster",
        "--dry-run",
        "--output",
        "json",
        "--set",
        "secrets.API_TOKEN=env:API_TOKEN",
        "--set",
        &kubectl,
    ];
    let secret = format!("{}-secrets", app.name);
    // Missing: the preflight says so, naming it.
    let missing = app.shipit(&args).code(1);
    assert!(
        missing
            .stderr
            .contains(&format!("Secret {secret} is missing")),
        "{}",
        missing.stderr
    );
    // There: the dry run passes, and no call asked for the Secret's fields.
    let (made, why) = app.in_namespace(&[
        "create",
        "secret",
        "generic",
        &secret,
        "--from-literal=API_TOKEN=t0ken-value",
    ]);
    assert!(made, "{why}");
    app.shipit(&args).success();
    let calls = std::fs::read_to_string(&calls).unwrap();
    let secret_calls: Vec<&str> = calls.lines().filter(|l| l.contains("secret/")).collect();
    assert!(!secret_calls.is_empty(), "{calls}");
    for call in secret_calls {
        let words: Vec<&str> = call.split_whitespace().collect();
        assert!(
            !words
                .iter()
                .any(|w| *w == "-o" || w.starts_with("-o=") || w.starts_with("--output")),
            "a call that reads the Secret's fields: {call}"
        );
    }
}

/// Issue 23 item 11: an API server that completes TLS and then says nothing
/// (here `openssl s_server`, one connection at a time: later handshakes hang
/// too) ends the deploy within the kubectl call limit (60 s a call, the
/// preflight's calls side by side) instead of holding it.
#[test]
fn an_api_server_gone_silent_ends_the_deploy_within_the_request_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=silent", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{made:?}");
    let port = crate::docker::free_port();
    let mut server = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
        ])
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "s_server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: silent\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: silent\n  context: {{cluster: silent, user: silent}}\ncurrent-context: silent\nusers:\n- name: silent\n  user: {{token: t}}\n"
        ),
    )
    .unwrap();
    let project = Project::from_repo();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_shipit"))
        .arg("-C")
        .arg(project.path())
        .args([
            "deploy",
            "staging",
            "--dry-run",
            "--set",
            "deploy.target=kubernetes",
            "--set",
            "deploy.strategy=rolling",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let took = started.elapsed();
    let _ = server.kill();
    let _ = server.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(took < Duration::from_secs(80), "{took:?}: {stderr}");
    assert!(
        stderr.contains("cannot reach the API server of context silent"),
        "{stderr}"
    );
}

/// Issue 25 on the cluster: `logs` merges the app's pods' lines (node and
/// pod named), `exec` runs in a pod with its exit code, `run` makes a pod
/// from the live template (its env and Secret) and deletes it afterwards,
/// `prune` deletes what a killed run left.
#[test]
fn logs_exec_and_run_on_the_cluster() {
    let Some(app) = App::new("ops", 59) else {
        return;
    };
    app.create_namespace();
    let reference = format!("{}/{}:1.0.0", app.registry.address, app.repository);
    crate::deploy::day2::build_shell_image(&reference, "1.0.0");
    let (ok, text) = docker(&["push", &reference]);
    assert!(ok, "{text}");
    let secret = format!("{}-secrets", app.name);
    app.must(&[
        "create",
        "secret",
        "generic",
        &secret,
        "--from-literal=API_TOKEN=tok-cluster-7d1",
    ]);
    let with_secret = ["--set", "secrets.API_TOKEN=env:API_TOKEN"];
    let shipit = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(with_secret);
        app.shipit(&all)
    };
    outcome(&app.deploy("1.0.0", &with_secret).success());
    for i in 0..8 {
        let _ = shipit::http::request(
            &format!("http://{}/mark-pod-{i}", app.address),
            "GET",
            &[],
            b"",
            Duration::from_secs(3),
        );
    }

    // logs: both pods, each line with its node and pod, in time order.
    let run = shipit(&["logs", "cluster", "--output", "json"]).success();
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let pods: std::collections::BTreeSet<&str> =
        lines.iter().filter_map(|l| l["replica"].as_str()).collect();
    assert_eq!(pods.len(), 2, "{}\n{}", run.stdout, run.stderr);
    assert!(pods.iter().all(|p| p.starts_with(&app.name)), "{pods:?}");
    assert!(
        lines
            .iter()
            .all(|l| !l["host"].as_str().unwrap().is_empty())
    );
    let times: Vec<i64> = lines
        .iter()
        .map(|l| shipit::clock::parse_rfc3339(l["time"].as_str().unwrap()).unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let run = shipit(&[
        "logs",
        "cluster",
        "--grep",
        "mark-pod-[0-9]",
        "--output",
        "json",
    ])
    .success();
    assert_eq!(run.stdout.lines().count(), 8, "{}", run.stdout);
    let run = shipit(&["logs", "cluster", "--gateway"]).code(2);
    assert!(run.stderr.contains("no shipit gateway"), "{}", run.stderr);

    // exec: in the pod asked for, its exit code shipit's.
    let second = pods.iter().nth(1).unwrap().to_string();
    let run = shipit(&[
        "exec",
        "cluster",
        "--replica",
        "2",
        "--",
        "/bin/sh",
        "-c",
        "echo on $HOSTNAME; exit 4",
    ])
    .code(4);
    assert_eq!(run.stdout.trim(), format!("on {second}"), "{}", run.stderr);

    // run: a pod of the live template, with its env and Secret; deleted.
    let script =
        "echo env=$ENVIRONMENT; [ \"$API_TOKEN\" = tok-cluster-7d1 ] && echo secret-ok; exit 6";
    let mut command = app.command(&[
        "run",
        "cluster",
        "--set",
        "secrets.API_TOKEN=env:API_TOKEN",
        "--",
        "/bin/sh",
        "-c",
        script,
    ]);
    command.env("API_TOKEN", "unused-here");
    let run = App::finished(command).code(6);
    assert!(
        run.stdout.contains("env=cluster"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout.contains("secret-ok"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    let selector = format!("shipit.dev/run={}", app.name);
    let left = |app: &App| {
        app.must(&[
            "get",
            "pods",
            "-l",
            &selector,
            "--no-headers",
            "--ignore-not-found",
        ])
        .lines()
        .filter(|l| !l.contains("Terminating"))
        .count()
    };
    assert_eq!(left(&app), 0);
    // SIGTERM while the run's pod works: deleted, exit 143.
    let mut command = app.command(&[
        "run",
        "cluster",
        "--set",
        "secrets.API_TOKEN=env:API_TOKEN",
        "--",
        "/calculator",
        "serve",
    ]);
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !app
        .must(&["get", "pods", "-l", &selector, "--no-headers"])
        .contains("Running")
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run's pod did not start"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("was deleted"), "{stderr}");
    assert_eq!(left(&app), 0);
    // A run pod that finished without its shipit (killed outright): prune.
    let orphan = format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{0}-run-orphan","labels":{{"shipit.dev/run":"{0}"}}}},"spec":{{"restartPolicy":"Never","containers":[{{"name":"x","image":"{1}","command":["/bin/sh","-c","exit 0"]}}]}}}}"#,
        app.name, reference
    );
    let file = app.project.path().join("orphan.json");
    std::fs::write(&file, orphan).unwrap();
    app.must(&["create", "-f", file.to_str().unwrap()]);
    let start = Instant::now();
    while !app
        .must(&[
            "get",
            "pod",
            &format!("{}-run-orphan", app.name),
            "-o",
            "jsonpath={.status.phase}",
        ])
        .contains("Succeeded")
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the orphan did not finish"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let run = shipit(&["prune", "cluster", "--output", "json"]).success();
    let pruned: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        pruned["pods"],
        serde_json::json!([format!("{}-run-orphan", app.name)]),
        "{pruned}"
    );
    assert_eq!(left(&app), 0);

    // A release command: a Job from the new pod template (its new ConfigMap
    // and the Secret), run and shown before the Deployment changes, deleted.
    let revision = |app: &App| {
        app.json(&["get", "deployment", &app.name, "-o", "json"])["metadata"]["annotations"]
            ["deployment.kubernetes.io/revision"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let jobs = |app: &App| {
        let selector = format!("shipit.dev/release-command={}", app.name);
        let start = Instant::now();
        loop {
            let left = app.must(&[
                "get",
                "jobs",
                "-l",
                &selector,
                "--no-headers",
                "--ignore-not-found",
            ]);
            if left.trim().is_empty() || start.elapsed() > Duration::from_secs(30) {
                return left.lines().count();
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    let first = revision(&app);
    for version in ["1.0.1", "1.0.2"] {
        let reference = format!("{}/{}:{version}", app.registry.address, app.repository);
        crate::deploy::day2::build_shell_image(&reference, version);
        let (ok, text) = docker(&["push", &reference]);
        assert!(ok, "{text}");
    }
    let migrate = r#"deploy.release_command=["/bin/sh", "-c", "echo migrating to $RELEASE_MARK; [ \"$API_TOKEN\" = tok-cluster-7d1 ] && echo secret-ok"]"#;
    let run = shipit(&[
        "deploy",
        "cluster",
        "--set",
        "app.version=1.0.1",
        "--set",
        "env.RELEASE_MARK=second",
        "--set",
        migrate,
    ])
    .success();
    let text = format!("{}{}", run.stdout, run.stderr);
    let migrated = text
        .find("| migrating to second")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(text.contains("| secret-ok"), "{text}");
    assert!(
        migrated < text.find("waiting for deployment/").unwrap(),
        "the release command ran after the rollout began:\n{text}"
    );
    assert_eq!(revision(&app), first + 1);
    assert_eq!(jobs(&app), 0);
    let run = shipit(&[
        "deploy",
        "cluster",
        "--dry-run",
        "--set",
        "app.version=1.0.2",
        "--set",
        migrate,
        "--output",
        "json",
    ])
    .success();
    let plan: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(plan["plan"]["steps"][2], "release", "{plan}");
    // A release command that fails: the Deployment untouched, 1.0.1 serving.
    let run = shipit(&[
        "deploy",
        "cluster",
        "--set",
        "app.version=1.0.2",
        "--set",
        "env.RELEASE_MARK=third",
        "--set",
        r#"deploy.release_command=["/bin/sh", "-c", "echo migration 3 breaks; exit 3"]"#,
    ]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(text.contains("| migration 3 breaks"), "{text}");
    assert!(
        text.contains("the release command exited with code 3")
            && text.contains("the Deployment was not changed"),
        "{text}"
    );
    assert_eq!(revision(&app), first + 1);
    let image = app.json(&["get", "deployment", &app.name, "-o", "json"])["spec"]["template"]
        ["metadata"]["annotations"]["shipit.dev/version"]
        .clone();
    assert_eq!(image, "1.0.1");
    assert_eq!(jobs(&app), 0);
    // Release command Jobs a shipit killed outright left: prune deletes the
    // finished one, not one still running (a deploy's).
    // (The image's shell has no `sleep`: the calculator serves until deleted.)
    for (suffix, script) in [("done", "exit 0"), ("busy", "exec /calculator serve")] {
        let job = format!(
            r#"{{"apiVersion":"batch/v1","kind":"Job","metadata":{{"name":"{0}-release-{suffix}","labels":{{"shipit.dev/release-command":"{0}"}}}},"spec":{{"backoffLimit":0,"template":{{"spec":{{"restartPolicy":"Never","containers":[{{"name":"x","image":"{1}","command":["/bin/sh","-c","{script}"]}}]}}}}}}}}"#,
            app.name, reference
        );
        let file = app.project.path().join(format!("{suffix}.json"));
        std::fs::write(&file, job).unwrap();
        app.must(&["create", "-f", file.to_str().unwrap()]);
    }
    let done = format!("{}-release-done", app.name);
    let start = Instant::now();
    while app.must(&["get", "job", &done, "-o", "jsonpath={.status.succeeded}"]) != "1" {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the job did not finish"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let run = shipit(&["prune", "cluster", "--output", "json"]).success();
    let pruned: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(pruned["jobs"], serde_json::json!([done]), "{pruned}");
    assert_eq!(jobs(&app), 1);
}

/// `[roles.NAME]` on the cluster: a Deployment `APP-ROLE` from the same pod
/// template, its own command, not behind the Service; gated with the web
/// Deployment, put back with it when it fails, moved with it by a rollback,
/// shown by `status` and `logs --role`, deleted once no longer declared.
#[test]
fn roles_are_deployments_gated_undone_and_rolled_back_with_the_service() {
    let Some(app) = App::new("roles", 60) else {
        return;
    };
    app.create_namespace();
    let first = format!("{}/{}:1.0.3", app.registry.address, app.repository);
    crate::deploy::day2::build_shell_image(&first, "1.0.3");
    for version in ["1.0.3", "1.0.4", "1.0.5"] {
        let reference = format!("{}/{}:{version}", app.registry.address, app.repository);
        let (ok, text) = docker(&["tag", &first, &reference]);
        assert!(ok, "{text}");
        let (ok, text) = docker(&["push", &reference]);
        assert!(ok, "{text}");
    }
    let config = app.project.read("environments/cluster.toml");
    let with_worker = |cmd: &str| {
        app.project.write(
            "environments/cluster.toml",
            &format!("{config}\n[roles.worker]\ncmd = {cmd}\n"),
        );
    };
    // (The image's shell has no `sleep`: the calculator serves until stopped.)
    with_worker(r#"["/bin/sh", "-c", "echo worker up at $RELEASE_MARK; exec /calculator serve"]"#);
    let worker = format!("{}-worker", app.name);
    let version_of = |deployment: &str| {
        app.json(&["get", "deployment", deployment])["spec"]["template"]["metadata"]["annotations"]
            ["shipit.dev/version"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    for version in ["1.0.3", "1.0.4"] {
        let mark = format!("env.RELEASE_MARK={version}");
        let report = outcome(&app.deploy(version, &["--set", &mark]).success());
        assert_eq!(version_of(&app.name), version);
        assert_eq!(version_of(&worker), version);
        // The plan names the role and its step, and the run follows it.
        assert_eq!(
            report["plan"]["roles"],
            serde_json::json!([worker]),
            "{report}"
        );
        let phases: Vec<&Value> = report["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["name"])
            .collect();
        let steps: Vec<&Value> = report["plan"]["steps"].as_array().unwrap().iter().collect();
        assert_eq!(phases, steps, "{report}");
        assert!(steps.contains(&&Value::from("roles")), "{report}");
    }
    let d = app.json(&["get", "deployment", &worker]);
    assert_eq!(d["status"]["availableReplicas"], 1, "{d}");
    assert_eq!(
        d["spec"]["minReadySeconds"], 3,
        "no healthcheck: 3 x health_interval"
    );
    let container = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["command"][0], "/bin/sh", "{container}");
    assert!(container["ports"].is_null() && container["readinessProbe"].is_null());
    // The Service reaches the web pods only.
    let endpoints = app.json(&["get", "endpoints", &app.name]);
    let addresses = endpoints["subsets"][0]["addresses"].as_array().unwrap();
    assert_eq!(addresses.len(), 2, "{endpoints}");
    assert!(
        addresses.iter().all(|a| !a["targetRef"]["name"]
            .as_str()
            .unwrap()
            .starts_with(&worker)),
        "{endpoints}"
    );

    let run = app
        .shipit(&["status", "cluster", "--output", "json"])
        .success();
    let status: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(status["roles"][0]["role"], "worker", "{status}");
    assert_eq!(status["roles"][0]["version"], "1.0.4", "{status}");
    assert_eq!(status["roles"][0]["rollout"], "complete", "{status}");
    let roles: Vec<&str> = status["pods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["terminating"] == false)
        .map(|p| p["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles.iter().filter(|r| **r == "worker").count(),
        1,
        "{status}"
    );
    assert_eq!(roles.iter().filter(|r| **r == "web").count(), 2, "{status}");
    let run = app
        .shipit(&["logs", "cluster", "--role", "worker"])
        .success();
    assert!(run.stdout.contains("worker up at 1.0.4"), "{}", run.stdout);
    assert!(!run.stdout.contains("worker up at 1.0.3"), "{}", run.stdout);

    // A worker that cannot run: the deploy fails, the service and the
    // worker both go back to 1.0.4.
    with_worker(r#"["/bin/sh", "-c", "echo worker breaks; exit 4"]"#);
    let run = app.deploy("1.0.5", &[]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(
        text.contains(&format!("role deployment/{worker}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("Deployment/{worker} back to revision")),
        "{text}"
    );
    assert_eq!(version_of(&app.name), "1.0.4");
    assert_eq!(version_of(&worker), "1.0.4");
    let start = Instant::now();
    while app.json(&["get", "deployment", &worker])["status"]["availableReplicas"] != 1
        || app.json(&["get", "deployment", &worker])["status"]["updatedReplicas"] != 1
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the worker did not come back"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // A rollback moves the worker with the service.
    with_worker(r#"["/bin/sh", "-c", "echo worker up at $RELEASE_MARK; exec /calculator serve"]"#);
    outcome(
        &app.shipit(&["rollback", "cluster", "--to", "1.0.3", "--output", "json"])
            .success(),
    );
    assert_eq!(version_of(&app.name), "1.0.3");
    assert_eq!(version_of(&worker), "1.0.3");
    let run = app
        .shipit(&["logs", "cluster", "--role", "worker"])
        .success();
    assert!(run.stdout.contains("worker up at 1.0.3"), "{}", run.stdout);

    // A role no longer declared goes once a deploy succeeds.
    app.project.write("environments/cluster.toml", &config);
    let run = app
        .shipit(&["deploy", "cluster", "--set", "app.version=1.0.4"])
        .success();
    assert!(
        run.stderr.contains(&format!(
            "deployment/{worker} (its role is no longer declared)"
        )),
        "{}",
        run.stderr
    );
    let (_, text) = app.in_namespace(&["get", "deployment", &worker]);
    assert!(text.contains("NotFound"), "{text}");
}
