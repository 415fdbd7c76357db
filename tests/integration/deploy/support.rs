//! What the deploy tests share: the images, a site per test (removed on
//! drop), bounded loads through the gateway (wrk on keepalive connections,
//! paced and unpaced, and a client opening a connection per request), a
//! webhook receiver.

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
pub(crate) fn images() -> &'static (String, String) {
    static IMAGES: OnceLock<(String, String)> = OnceLock::new();
    IMAGES.get_or_init(|| {
        // The documented offline command, as a user runs it.
        let gateway = Command::new(env!("CARGO_BIN_EXE_shipit"))
            .args(["image", "gateway"])
            .env("NO_COLOR", "1")
            .output()
            .expect("run shipit image gateway");
        assert!(
            gateway.status.success(),
            "{}",
            String::from_utf8_lossy(&gateway.stderr)
        );
        let gateway = String::from_utf8_lossy(&gateway.stdout).trim().to_string();
        assert_eq!(gateway, "shipit-offline/haproxy:2.6.12-bookworm");
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
    pub(super) environment: String,
    /// More `--set key=value` pairs, for every command.
    pub(super) extra: Vec<String>,
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
            environment: "staging".into(),
            extra: Vec::new(),
        })
    }

    /// Tags the base image as `version` (or builds a variant from a Dockerfile tail).
    pub(super) fn image(&self, version: &str, dockerfile_tail: &str) -> String {
        let (base, _) = images();
        let reference = format!("{}:{version}", self.repository);
        docker::build_variant(&reference, base, version, dockerfile_tail);
        reference
    }

    pub(super) fn sets(&self) -> Vec<String> {
        let (_, gateway) = images();
        [
            format!("app.name={}", self.app),
            format!("deploy.gateway_image={gateway}"),
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
        .chain(self.extra.iter().cloned())
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
        // Before a `--`: what follows it is a command's, not shipit's.
        let (own_args, command) = match args.iter().position(|a| *a == "--") {
            Some(i) => args.split_at(i),
            None => (args, &[][..]),
        };
        cmd.arg("-C")
            .arg(self.project.path())
            .args(own_args)
            .args(sets)
            .args(command);
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
        let mut args = vec!["deploy", &self.environment, "--image", image, "--set", &set];
        args.extend_from_slice(extra);
        self.shipit(&args, &[])
    }

    /// Deploys twice: `--dry-run --output json`, then for real with
    /// `--output json`. The real run must report under `plan` the very plan
    /// the dry run printed, and its phases must be the plan's steps, in order.
    /// Returns the real run and its JSON.
    pub(super) fn deploy_as_planned(
        &self,
        version: &str,
        image: &str,
        extra: &[&str],
    ) -> (Run, serde_json::Value) {
        let mut args = extra.to_vec();
        args.extend(["--dry-run", "--output", "json"]);
        let dry = self.deploy(version, image, &args).success();
        let dry: serde_json::Value = serde_json::from_str(&dry.stdout).unwrap();
        let mut args = extra.to_vec();
        args.extend(["--output", "json"]);
        let run = self.deploy(version, image, &args).success();
        let real: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_plan_carried_out(&dry["plan"], &real);
        (run, real)
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
                &[
                    "status",
                    &self.environment,
                    "--output",
                    "json",
                    "--last",
                    "50",
                ],
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
            docker(&["rm", "-f", "-v", id]);
        }
        let env = &self.environment;
        docker(&["network", "rm", &format!("shipit-{}-{env}", self.app)]);
        docker(&["volume", "rm", &format!("shipit-{}-{env}-state", self.app)]);
        docker(&[
            "volume",
            "rm",
            &format!("shipit-{}-{env}-gateway", self.app),
        ]);
        docker::remove_repository(&self.repository);
    }
}

/// The request a load sends, and a text every good answer contains.
#[derive(Debug, Clone, Copy)]
pub(super) struct Probe {
    pub(super) path: &'static str,
    pub(super) body: &'static str,
    pub(super) expect: &'static str,
}

/// The calculator's: 6 x 7.
pub(super) const CALCULATE: Probe = Probe {
    path: "/calculate",
    body: r#"{"operation":"multiply","operands":[6,7]}"#,
    expect: r#""result":42"#,
};

/// A bounded load through the gateway: about 300 requests per second on
/// fresh connections, each checked for a 200 with the right answer; it stops
/// by itself after two minutes.
pub(super) struct Load {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<(u64, Vec<String>)>>,
}

impl Load {
    pub(super) fn start(url: &str) -> Load {
        Load::start_via(url, shipit::http::Route::default())
    }

    pub(super) fn start_via(url: &str, route: shipit::http::Route) -> Load {
        Load::start_probe(url, route, CALCULATE)
    }

    pub(super) fn start_probe(url: &str, route: shipit::http::Route, probe: Probe) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..2)
            .map(|_| {
                let stop = stop.clone();
                let route = route.clone();
                let url = format!("{url}{}", probe.path);
                std::thread::spawn(move || {
                    let start = Instant::now();
                    let (mut ok, mut failures) = (0u64, Vec::new());
                    while !stop.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(120)
                    {
                        let sent = Instant::now();
                        match shipit::http::request_via(
                            &route,
                            &url,
                            "POST",
                            &[("Content-Type", "application/json")],
                            probe.body.as_bytes(),
                            Duration::from_secs(5),
                        ) {
                            Ok(r) if r.status == 200 && r.text().contains(probe.expect) => ok += 1,
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

/// wrk POSTing on 4 keepalive connections until `finish` (SIGINT makes it
/// stop and report), paced (5 ms between a connection's requests) or not.
pub(super) struct Wrk {
    child: std::process::Child,
    what: &'static str,
    _script: tempfile::NamedTempFile,
}

/// What wrk counted.
#[derive(Debug)]
pub(super) struct WrkReport {
    pub(super) requests: u64,
    pub(super) socket_errors: u64,
    pub(super) non_2xx: u64,
    pub(super) rps: f64,
    pub(super) p99_ms: f64,
    pub(super) text: String,
}

impl Wrk {
    pub(super) fn start(url: &str, paced: bool) -> Wrk {
        Wrk::start_probe(url, paced, CALCULATE)
    }

    pub(super) fn start_probe(url: &str, paced: bool, probe: Probe) -> Wrk {
        let mut script = tempfile::NamedTempFile::new().unwrap();
        write!(
            script,
            "wrk.method = \"POST\"\nwrk.body = '{}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n{}",
            probe.body,
            if paced { "function delay() return 5 end\n" } else { "" }
        )
        .unwrap();
        let child = Command::new("wrk")
            .args(["-t1", "-c4", "-d120s", "--timeout", "5s", "--latency", "-s"])
            .arg(script.path())
            .arg(format!("{url}{}", probe.path))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wrk (Debian's wrk: bash .ci/install-tools)");
        Wrk {
            child,
            what: if paced { "wrk paced" } else { "wrk unpaced" },
            _script: script,
        }
    }

    pub(super) fn finish(self) -> WrkReport {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let out = self.child.wait_with_output().unwrap();
        parse_wrk(&String::from_utf8_lossy(&out.stdout))
    }
}

pub(super) fn parse_wrk(text: &str) -> WrkReport {
    let number = |prefix: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.trim_end_matches(',').parse().ok())
    };
    let socket_errors = text
        .lines()
        .find(|l| l.trim().starts_with("Socket errors:"))
        .map(|l| {
            l.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    let p99_ms = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| {
            let v = v.trim();
            if let Some(ms) = v.strip_suffix("ms") {
                ms.parse().unwrap_or(f64::NAN)
            } else if let Some(us) = v.strip_suffix("us") {
                us.parse::<f64>().map_or(f64::NAN, |u| u / 1000.0)
            } else if let Some(s) = v.strip_suffix('s') {
                s.parse::<f64>().map_or(f64::NAN, |s| s * 1000.0)
            } else {
                f64::NAN
            }
        })
        .unwrap_or(f64::NAN);
    WrkReport {
        requests: text
            .lines()
            .find(|l| l.contains("requests in"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        socket_errors,
        non_2xx: number("Non-2xx or 3xx responses:").unwrap_or(0.0) as u64,
        rps: number("Requests/sec:").unwrap_or(0.0),
        p99_ms,
        text: text.to_string(),
    }
}

/// The three loads at once: wrk unpaced and paced on keepalive
/// connections, and a client opening a new connection per request.
///
/// One test's loads run at a time: unpaced wrk takes whatever CPU it gets,
/// and two of them beside each other on this 2-core machine (load average
/// 15 in CI) pushed a Python replica's answers past wrk's 5 s timeout. The
/// other tests still run beside a measurement.
pub(crate) struct Loads {
    unpaced: Wrk,
    paced: Wrk,
    fresh: Load,
    _turn: std::sync::MutexGuard<'static, ()>,
}

static MEASURING: Mutex<()> = Mutex::new(());

impl Loads {
    pub(crate) fn start(url: &str) -> Loads {
        Loads::start_via(url, url, shipit::http::Route::default())
    }

    /// wrk at `wrk_url`, the new-connection client at `url` along `route`.
    pub(super) fn start_via(wrk_url: &str, url: &str, route: shipit::http::Route) -> Loads {
        Loads::start_probe(wrk_url, url, route, CALCULATE)
    }

    pub(super) fn start_probe(
        wrk_url: &str,
        url: &str,
        route: shipit::http::Route,
        probe: Probe,
    ) -> Loads {
        let turn = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
        let loads = Loads {
            _turn: turn,
            unpaced: Wrk::start_probe(wrk_url, false, probe),
            paced: Wrk::start_probe(wrk_url, true, probe),
            fresh: Load::start_probe(url, route, probe),
        };
        std::thread::sleep(Duration::from_millis(500));
        loads
    }
}

/// Every load saw only 2xx answers and no socket error; the request counts.
#[track_caller]
pub(crate) fn no_failures_in(loads: Loads, during: &str) -> Vec<(&'static str, u64)> {
    let fresh = no_failures(loads.fresh, during);
    let mut counts = vec![("new connection per request", fresh)];
    for wrk in [loads.unpaced, loads.paced] {
        let what = wrk.what;
        let report = wrk.finish();
        assert!(
            report.socket_errors == 0 && report.non_2xx == 0 && report.requests > 100,
            "{what} during {during}: {} socket errors, {} non-2xx of {} requests\n{}",
            report.socket_errors,
            report.non_2xx,
            report.requests,
            report.text
        );
        counts.push((what, report.requests));
    }
    counts
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
pub(crate) fn receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
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
    let target = dir.path().join("haproxy.cfg");
    let source = format!(
        "{}-{}-gateway:/etc/shipit-gateway/haproxy.cfg",
        site.app, site.environment
    );
    let (ok, _) = docker(&["cp", &source, target.to_str().unwrap()]);
    if ok {
        std::fs::read_to_string(target).unwrap_or_default()
    } else {
        String::new()
    }
}

/// The plan a real run reports is the one its dry run printed, and the
/// phases it went through are that plan's steps, in order. The outcome is
/// the record every target shares: what the run was, how it ended, its
/// phases and exit code at the top, whatever the target.
pub(crate) fn assert_plan_carried_out(dry: &serde_json::Value, outcome: &serde_json::Value) {
    let real = &outcome["plan"];
    assert!(dry.is_object(), "the dry run printed no plan: {dry}");
    assert_eq!(
        dry, real,
        "the real run did not carry out the dry run's plan"
    );
    for key in ["action", "environment", "version", "image"] {
        assert!(outcome[key].is_string(), "no {key} in {outcome}");
        assert_eq!(outcome[key], real[key], "{key} differs from the plan's");
    }
    assert!(outcome["result"].is_string(), "{outcome}");
    assert!(outcome["duration_ms"].is_u64(), "{outcome}");
    assert_eq!(outcome["exit_code"], 0, "{outcome}");
    let names: Vec<&str> = outcome["phases"]
        .as_array()
        .unwrap_or_else(|| panic!("no phases: {outcome}"))
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let steps: Vec<&str> = real["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(names, steps, "the run's phases are not the plan's steps");
}
