//! Any service, not only the calculator, on the real engine: a Python
//! service from the Dockerfile shipit renders for it (built offline on the
//! base `shipit image python` makes), a service with its own Dockerfile, and
//! a prebuilt image. Each is deployed, smoke-tested by the checks in its own
//! configuration, and redeployed under load with 0 failed requests.

use std::process::Command;

use super::support::{Loads, Probe, images, no_failures_in};
use crate::docker::{self, docker, free_port};
use crate::harness::{Project, Run};

/// The service: health, a greeting, an echo; stdlib only (nothing to
/// install, so it builds offline). `VARIANT` changes what it answers.
const APP: &str = r#"import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VARIANT = "VARIANT_HERE"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            self.answer(200, {"status": "ok"})
        elif self.path == "/greeting":
            if VARIANT == "broken":
                self.answer(503, {"error": "no greeting today"})
            else:
                self.answer(200, {"greeting": "hello", "variant": VARIANT})
        else:
            self.answer(404, {"error": "not found"})

    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/echo":
            self.answer(404, {"error": "not found"})
        elif VARIANT == "broken":
            self.answer(200, {"got": "something"})
        else:
            self.answer(200, {"echo": json.loads(data)})

    def log_message(self, *args):
        pass


# A service that takes a while before it listens (SLOW_START seconds).
time.sleep(float(os.environ.get("SLOW_START", "0")))


class Server(ThreadingHTTPServer):
    # A real server's listen backlog (socketserver's default is 5).
    request_queue_size = 128


server = Server(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler)
server.daemon_threads = True
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever()
"#;

pub(super) const CHECKS: &str = r#"
[[smoke.checks]]
name = "GET /greeting says hello"
path = "/greeting"
json = { "/greeting" = "hello" }
max_latency = "2s"

[[smoke.checks]]
name = "POST /echo answers what it got"
method = "POST"
path = "/echo"
headers = { "Content-Type" = "application/json" }
body = '{"n": 7}'
json = { "/echo/n" = 7 }
"#;

const ECHO: Probe = Probe {
    path: "/echo",
    body: r#"{"n": 7}"#,
    expect: r#""n": 7"#,
};

/// These tests take turns: each removes, at its end, the untagged builder
/// stages its builds left on the Python base, which another one's build in
/// progress must not lose.
pub(super) static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The offline Python base: `shipit image python`, as a user runs it.
fn python_base() -> String {
    offline_base("python")
}

/// `shipit image KIND` (python, node, go), as a user runs it: the image's name.
pub(super) fn offline_base(kind: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_shipit"))
        .args(["image", kind])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A throw-away project of one service on this engine, removed on drop.
pub(super) struct Service {
    pub(super) project: Project,
    pub(super) app: String,
    port: u16,
    pub(super) sets: Vec<String>,
}

impl Service {
    /// `init` in a project holding `files`, then the test's settings and the checks.
    pub(super) fn new(test: &str, files: &[(&str, String)], init: &[&str]) -> Service {
        let app = format!("s{}-{test}", std::process::id());
        let project = Project::empty();
        for (path, text) in files {
            project.write(path, text);
        }
        let mut args = vec!["init", "--name", &app];
        args.extend_from_slice(init);
        project.shipit(&args).success();
        let base = project.read("environments/base.toml");
        project.write("environments/base.toml", &format!("{base}{CHECKS}"));
        let (_, gateway) = images();
        let port = free_port();
        let sets = [
            format!("deploy.gateway_image={gateway}"),
            format!("gateway.port={port}"),
            format!("smoke.url=http://127.0.0.1:{port}"),
            "gateway.rate_limit=10000r/s".into(),
            "gateway.burst=10000".into(),
            "replicas=2".into(),
            "deploy.health_timeout=30s".into(),
            "deploy.smoke_timeout=5s".into(),
            "deploy.drain_timeout=3s".into(),
        ]
        .to_vec();
        Service {
            project,
            app,
            port,
            sets,
        }
    }

    /// Builds with shipit's Dockerfile on `base` (builder and runtime).
    fn on_base(&mut self, base: &str) {
        self.sets.push(format!("image.builder={base}"));
        self.sets.push(format!("image.runtime={base}"));
    }

    /// `shipit build development` of `version`.
    pub(super) fn build(&self, version: &str) {
        let set = format!("app.version={version}");
        self.shipit(&["build", "development", "--set", &set])
            .success();
    }

    pub(super) fn shipit(&self, args: &[&str]) -> Run {
        self.shipit_env(args, &[])
    }

    /// `shipit` with the test's settings and these environment variables.
    pub(super) fn shipit_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        for set in &self.sets {
            all.push("--set".into());
            all.push(set.clone());
        }
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        self.project.shipit_env(&all, env)
    }

    pub(super) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(super) fn serving(&self) -> Option<String> {
        shipit::http::request(
            &format!("{}/health", self.url()),
            "GET",
            &[],
            b"",
            std::time::Duration::from_secs(2),
        )
        .ok()
        .and_then(|r| r.header("X-Shipit-Release").map(String::from))
    }

    /// Deploys, and checks the release serves the greeting of `variant`.
    pub(super) fn deploy(&self, version: &str, extra: &[&str]) -> Run {
        let set = format!("app.version={version}");
        let mut args = vec!["deploy", "development", "--set", &set];
        args.extend_from_slice(extra);
        self.shipit(&args)
    }

    pub(super) fn greeting(&self) -> String {
        shipit::http::request(
            &format!("{}/greeting", self.url()),
            "GET",
            &[],
            b"",
            std::time::Duration::from_secs(2),
        )
        .map(|r| r.text())
        .unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let filter = format!("label=dev.shipit.app={}", self.app);
        let (_, ids) = docker(&["ps", "-aq", "--filter", &filter]);
        for id in ids.lines() {
            docker(&["rm", "-f", "-v", id]);
        }
        docker(&["network", "rm", &format!("shipit-{}-development", self.app)]);
        for volume in ["state", "gateway"] {
            docker(&[
                "volume",
                "rm",
                &format!("shipit-{}-development-{volume}", self.app),
            ]);
        }
        docker::remove_repository(&format!("127.0.0.1:5000/{}", self.app));
    }
}

fn app(variant: &str) -> String {
    APP.replace("VARIANT_HERE", variant)
}

#[test]
fn docker_a_python_service_built_offline_deploys_and_a_failing_check_rolls_back() {
    if !docker::engine() {
        return;
    }
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let base = python_base();
    // The builder stages the classic builder leaves untagged, removed at the end.
    let _leftovers = docker::Leftovers(base.clone());
    let mut service = Service::new(
        "py",
        &[("app.py", app("v1")), ("requirements.txt", "\n".into())],
        &[],
    );
    service.on_base(&base);
    let dockerfile = service.project.read("environments/base.toml");
    assert!(dockerfile.contains("kind = \"python\""), "{dockerfile}");

    // v1: built from the Dockerfile shipit renders, with nothing pulled.
    service.build("1.0.0");
    let run = service.deploy("1.0.0", &[]).success();
    assert!(run.stderr.contains("smoke passed"), "{}", run.stderr);
    assert!(service.greeting().contains("\"variant\": \"v1\""));
    service.shipit(&["render", "development", "-q"]).success();
    let image = service.project.read("generated/development/Dockerfile");
    assert!(image.contains("USER 10001:10001"), "{image}");

    // v2 under load: keepalive (paced and not) and new connections, POST.
    service.project.write("app.py", &app("v2"));
    service.build("2.0.0");
    let url = service.url();
    let loads = Loads::start_probe(&url, &url, shipit::http::Route::default(), ECHO);
    let run = service.deploy("2.0.0", &[]);
    let counts = no_failures_in(loads, "the Python service's redeploy");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(service.greeting().contains("\"variant\": \"v2\""));
    eprintln!("requests during the redeploy: {counts:?}");

    // v3 fails its configured checks: rolled back, each failure named with what it got.
    service.project.write("app.py", &app("broken"));
    service.build("3.0.0");
    let run = service.deploy("3.0.0", &[]).code(1);
    assert!(
        run.stderr
            .contains("GET /greeting says hello: expected status 200, got 503"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("POST /echo answers what it got: no value at \"/echo/n\""),
        "{}",
        run.stderr
    );
    assert_eq!(service.serving().as_deref(), Some("2"));
    assert!(service.greeting().contains("\"variant\": \"v2\""));
}

#[test]
fn docker_a_service_with_its_own_dockerfile_redeploys_with_zero_failed_requests() {
    if !docker::engine() {
        return;
    }
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let base = python_base();
    // The builder stages the classic builder leaves untagged, removed at the end.
    let _leftovers = docker::Leftovers(base.clone());
    let dockerfile = format!(
        "FROM {base}\nWORKDIR /srv\nCOPY app.py /srv/app.py\nUSER 10001:10001\nEXPOSE 8080\nCMD [\"python3\", \"/srv/app.py\"]\n"
    );
    let service = Service::new(
        "own",
        &[("Dockerfile", dockerfile), ("app.py", app("v1"))],
        &[],
    );
    let config = service.project.read("environments/base.toml");
    assert!(config.contains("kind = \"dockerfile\""), "{config}");
    service.build("1.0.0");
    service.deploy("1.0.0", &[]).success();
    service.project.write("app.py", &app("v2"));
    service.build("2.0.0");
    let url = service.url();
    let loads = Loads::start_probe(&url, &url, shipit::http::Route::default(), ECHO);
    let run = service.deploy("2.0.0", &[]);
    no_failures_in(loads, "the own-Dockerfile service's redeploy");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(service.greeting().contains("\"variant\": \"v2\""));
    // The image has no HEALTHCHECK: the gateway's HTTP check gated it.
    let (_, health) = docker(&[
        "inspect",
        "-f",
        "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}",
        &format!("{}-development-r2-1", service.app),
    ]);
    assert_eq!(health, "none");
}

#[test]
fn docker_an_image_built_elsewhere_deploys_by_reference_with_zero_failed_requests() {
    if !docker::engine() {
        return;
    }
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let base = python_base();
    // The builder stages the classic builder leaves untagged, removed at the end.
    let _leftovers = docker::Leftovers(base.clone());
    // Two versions of an image "another pipeline" built.
    let reference = format!("shipit-test/prebuilt-{}", std::process::id());
    let _cleanup = Cleanup(reference.clone());
    for variant in ["v1", "v2"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.py"), app(variant)).unwrap();
        std::fs::write(
            dir.path().join("Dockerfile"),
            format!(
                "FROM {base}\nCOPY app.py /srv/app.py\nUSER 10001:10001\nENV SLOW_START={}\nCMD [\"python3\", \"/srv/app.py\"]\n",
                // v2 listens only after 5 s, with no HEALTHCHECK: the gateway's
                // check must wait for it, not call it failed.
                if variant == "v2" { 5 } else { 0 }
            ),
        )
        .unwrap();
        let (ok, text) = docker(&[
            "build",
            "-q",
            "-t",
            &format!("{reference}:{variant}"),
            dir.path().to_str().unwrap(),
        ]);
        assert!(ok, "{text}");
    }
    let v1 = format!("{reference}:v1");
    let service = Service::new("img", &[], &["--kind", "image", "--image", &v1]);
    let build = service.shipit(&["build", "development"]).success();
    assert!(
        build.stderr.contains("nothing to build"),
        "{}",
        build.stderr
    );
    service.deploy("1.0.0", &[]).success();
    assert!(service.greeting().contains("\"variant\": \"v1\""));
    let url = service.url();
    let loads = Loads::start_probe(&url, &url, shipit::http::Route::default(), ECHO);
    let v2 = format!("build.image={reference}:v2");
    let run = service.deploy("2.0.0", &["--set", &v2]);
    no_failures_in(loads, "the prebuilt image's redeploy");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(service.greeting().contains("\"variant\": \"v2\""));
}

pub(super) struct Cleanup(pub(super) String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        docker::remove_repository(&self.0);
    }
}

/// A Node.js service from the Dockerfile shipit renders (`npm ci` from its
/// lockfile), on the base `shipit image node` makes: built offline, healthy
/// by the health check shipit renders for node, deployed and smoke-tested.
#[test]
fn docker_a_node_service_built_offline_deploys() {
    if !docker::engine() {
        return;
    }
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_shipit"))
        .args(["image", "node"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let _leftovers = docker::Leftovers(base.clone());
    let server = r#"const http = require('http');
const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => {
    res.setHeader('Content-Type', 'application/json');
    if (req.url === '/greeting') return res.end(JSON.stringify({ greeting: 'hello' }));
    if (req.url === '/echo') return res.end(JSON.stringify({ echo: JSON.parse(body || '{}') }));
    res.end(JSON.stringify({ status: 'ok' }));
  });
});
server.listen(Number(process.env.PORT || 8080), '0.0.0.0');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
"#;
    let mut service = Service::new(
        "node",
        &[
            ("server.js", server.to_string()),
            (
                "package.json",
                r#"{"name": "web", "version": "1.0.0", "scripts": {"start": "node server.js"}}"#.into(),
            ),
            (
                "package-lock.json",
                r#"{"name": "web", "version": "1.0.0", "lockfileVersion": 3, "requires": true, "packages": {"": {"name": "web", "version": "1.0.0"}}}"#.into(),
            ),
        ],
        &[],
    );
    service.on_base(&base);
    let config = service.project.read("environments/base.toml");
    assert!(config.contains("kind = \"node\""), "{config}");
    service.build("1.0.0");
    let run = service.deploy("1.0.0", &[]).success();
    assert!(run.stderr.contains("smoke passed"), "{}", run.stderr);
    assert!(service.greeting().contains("\"greeting\":\"hello\""));
    let (_, health) = docker(&[
        "inspect",
        "-f",
        "{{.State.Health.Status}} {{.Config.User}}",
        &format!("{}-development-r1-1", service.app),
    ]);
    assert_eq!(health, "healthy 10001:10001");
}
