//! What the deploy tests share: the images, a site per test (removed on
//! drop), a bounded load through the gateway, a webhook receiver.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::docker::{self, docker, free_port};
use crate::harness::{Project, Run, repo};

/// The calculator image (prebuilt mode) and the offline gateway image, made once per run.
pub(super) fn images() -> &'static (String, String) {
    static IMAGES: OnceLock<(String, String)> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let gateway = Command::new("bash")
            .arg(repo().join(".ci/gateway-image"))
            .output()
            .expect("run .ci/gateway-image");
        assert!(
            gateway.status.success(),
            "{}",
            String::from_utf8_lossy(&gateway.stderr)
        );
        let gateway = String::from_utf8_lossy(&gateway.stdout)
            .lines()
            .last()
            .and_then(|l| l.split(':').take(2).collect::<Vec<_>>().join(":").into())
            .unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_shipit"))
            .arg("-C")
            .arg(repo())
            .args([
                "build",
                "development",
                "--mode",
                "prebuilt",
                "--set",
                "image.repository=shipit-test/deploy-base",
                "--output",
                "json",
            ])
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        (report["image"].as_str().unwrap().to_string(), gateway)
    })
}

/// A Dockerfile tail for a release that never gets healthy: its health check
/// asks a port nothing listens on.
pub(super) const SICK: &str = r#"HEALTHCHECK --interval=1s CMD ["/calculator", "healthcheck", "--url", "http://127.0.0.1:1/health"]"#;

/// One application in the `staging` environment (blue-green, 2 replicas),
/// with its own name and gateway port; everything removed on drop.
pub(super) struct Site {
    pub(super) project: Project,
    pub(super) app: String,
    pub(super) port: u16,
    pub(super) repository: String,
}

impl Site {
    pub(super) fn new(test: &str) -> Option<Site> {
        if !docker::engine() {
            return None;
        }
        images();
        let app = format!("t{}-{test}", std::process::id());
        Some(Site {
            project: Project::from_repo(),
            repository: format!("127.0.0.1:5000/shipit-test/{app}"),
            app,
            port: free_port(),
        })
    }

    /// Tags the base image as `version` (or builds a variant from a Dockerfile tail).
    pub(super) fn image(&self, version: &str, dockerfile_tail: &str) -> String {
        let (base, _) = images();
        let reference = format!("{}:{version}", self.repository);
        let mut child = Command::new("docker")
            .args(["build", "-q", "-t", &reference, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(
                format!("FROM {base}\nLABEL test.version={version}\n{dockerfile_tail}\n")
                    .as_bytes(),
            )
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        reference
    }

    pub(super) fn sets(&self) -> Vec<String> {
        let (_, gateway) = images();
        [
            format!("app.name={}", self.app),
            format!("gateway.image={gateway}"),
            format!("gateway.port={}", self.port),
            "gateway.rate_limit=10000r/s".into(),
            "gateway.burst=10000".into(),
            "app.version_source=config".into(),
            "app.version=0.0.0".into(),
            "deploy.health_timeout=20s".into(),
            "deploy.smoke_timeout=3s".into(),
            "deploy.drain_timeout=3s".into(),
            format!("image.repository=shipit-test/{}", self.app),
        ]
        .into_iter()
        .flat_map(|s| ["--set".to_string(), s])
        .collect()
    }

    pub(super) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipit"));
        // After the subcommand (clap keeps only one place's `--set`s); a key
        // that `args` sets itself is left to `args`.
        let own: Vec<&str> = args
            .iter()
            .filter_map(|a| a.split_once('=').map(|(k, _)| k))
            .collect();
        let mut sets = Vec::new();
        for pair in self.sets().chunks(2) {
            if !own.iter().any(|k| pair[1].starts_with(&format!("{k}="))) {
                sets.extend_from_slice(pair);
            }
        }
        cmd.arg("-C").arg(self.project.path()).args(args).args(sets);
        for (name, _) in std::env::vars() {
            if name.starts_with("SHIPIT") || name == "STAGING_WEBHOOK_URL" {
                cmd.env_remove(name);
            }
        }
        cmd.env("NO_COLOR", "1");
        cmd
    }

    pub(super) fn shipit(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = self
            .command(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub(super) fn deploy(&self, version: &str, image: &str, extra: &[&str]) -> Run {
        let set = format!("app.version={version}");
        let mut args = vec!["deploy", "staging", "--image", image, "--set", &set];
        args.extend_from_slice(extra);
        self.shipit(&args, &[])
    }

    pub(super) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The release the gateway answers with (`X-Shipit-Release`).
    pub(super) fn serving(&self) -> Option<String> {
        shipit::http::request(
            &format!("{}/health", self.url()),
            "GET",
            &[],
            b"",
            Duration::from_secs(2),
        )
        .ok()
        .and_then(|r| r.header("X-Shipit-Release").map(String::from))
    }

    pub(super) fn status(&self) -> serde_json::Value {
        let run = self
            .shipit(
                &["status", "staging", "--output", "json", "--last", "50"],
                &[],
            )
            .success();
        serde_json::from_str(&run.stdout).unwrap()
    }

    pub(super) fn containers(&self) -> Vec<String> {
        let filter = format!("label=dev.shipit.app={}", self.app);
        let (_, out) = docker(&[
            "ps",
            "-a",
            "--filter",
            &filter,
            "--format",
            "{{.Names}} {{.State}}",
        ]);
        let mut names: Vec<String> = out.lines().map(String::from).collect();
        names.sort();
        names
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let filter = format!("label=dev.shipit.app={}", self.app);
        let (_, ids) = docker(&["ps", "-aq", "--filter", &filter]);
        for id in ids.lines() {
            docker(&["rm", "-f", id]);
        }
        docker(&["network", "rm", &format!("shipit-{}-staging", self.app)]);
        docker(&[
            "volume",
            "rm",
            &format!("shipit-{}-staging-state", self.app),
        ]);
        docker(&[
            "volume",
            "rm",
            &format!("shipit-{}-staging-gateway", self.app),
        ]);
        docker::remove_repository(&self.repository);
    }
}

/// A bounded load through the gateway: about 300 requests per second on
/// fresh connections, each checked for a 200 with the right answer; it stops
/// by itself after two minutes.
pub(super) struct Load {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<(u64, Vec<String>)>>,
}

impl Load {
    pub(super) fn start(url: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..2)
            .map(|_| {
                let stop = stop.clone();
                let url = format!("{url}/calculate");
                std::thread::spawn(move || {
                    let start = Instant::now();
                    let (mut ok, mut failures) = (0u64, Vec::new());
                    while !stop.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(120)
                    {
                        let sent = Instant::now();
                        match shipit::http::request(
                            &url,
                            "POST",
                            &[("Content-Type", "application/json")],
                            br#"{"operation":"multiply","operands":[6,7]}"#,
                            Duration::from_secs(5),
                        ) {
                            Ok(r)
                                if r.status == 200
                                    && r.json().is_some_and(|v| v["result"] == 42) =>
                            {
                                ok += 1
                            }
                            Ok(r) => failures.push(format!("{}: {}", r.status, r.text())),
                            Err(e) => failures.push(e),
                        }
                        std::thread::sleep(Duration::from_millis(6).saturating_sub(sent.elapsed()));
                    }
                    (ok, failures)
                })
            })
            .collect();
        Load { stop, handles }
    }

    pub(super) fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let mut ok = 0;
        let mut failures = Vec::new();
        for h in self.handles {
            let (o, f) = h.join().unwrap();
            ok += o;
            failures.extend(f);
        }
        (ok, failures)
    }
}

#[track_caller]
pub(super) fn no_failures(load: Load, during: &str) -> u64 {
    let (ok, failures) = load.finish();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during {during}: {:?}",
        failures.len(),
        ok as usize + failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        ok > 50,
        "the load hardly ran during {during}: {ok} requests"
    );
    ok
}

/// A small webhook receiver: every POST body, answered 200.
pub(super) fn receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/t0ken", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut data = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&data);
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if data.len() >= end + 4 + length {
                        if let Ok(v) = serde_json::from_slice(&data[end + 4..end + 4 + length]) {
                            sink.lock().unwrap().push(v);
                        }
                        break;
                    }
                }
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, got)
}

pub(super) fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The gateway configuration as the engine holds it.
pub(super) fn gateway_conf(site: &Site) -> String {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("nginx.conf");
    let source = format!(
        "{}-staging-gateway:/etc/shipit-gateway/nginx.conf",
        site.app
    );
    let (ok, _) = docker(&["cp", &source, target.to_str().unwrap()]);
    if ok {
        std::fs::read_to_string(target).unwrap_or_default()
    } else {
        String::new()
    }
}
