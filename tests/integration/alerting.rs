//! Alerts leave the compose stack: the rendered compose file's Prometheus and
//! Alertmanager, run by docker-compose on the engine (Debian's builds of both,
//! FROM scratch), fire the rendered rules at a receiver outside the stack.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::docker::{self, docker};
use crate::harness::Project;

/// A request the receiver was sent: its headers (lowercase names) and body.
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

/// An HTTP receiver on every address of this machine: each request is
/// answered 200 and passed on.
fn receiver() -> (u16, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            let mut length = 0;
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some((name, value)) = line.trim_end().split_once(':') {
                    let (name, value) = (name.to_ascii_lowercase(), value.trim().to_string());
                    if name == "content-length" {
                        length = value.parse().unwrap_or(0);
                    }
                    headers.push((name, value));
                }
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let mut stream = stream;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let body = String::from_utf8_lossy(&body).into_owned();
            if tx.send(Received { headers, body }).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

/// An image of one of this machine's binaries (the libraries it links, and
/// `extra` files),
/// FROM scratch, with `data` owned by nobody (65534) as the official images
/// have it; removed on drop.
struct BinaryImage(String);

impl BinaryImage {
    fn build(reference: &str, binary: &str, data: &str, extra: &[&str]) -> BinaryImage {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        let ldd = Command::new("ldd").arg(binary).output().unwrap();
        let mut files: Vec<String> = std::iter::once(binary)
            .chain(extra.iter().copied())
            .map(String::from)
            .collect();
        files.extend(
            String::from_utf8_lossy(&ldd.stdout)
                .split_whitespace()
                .filter(|w| w.starts_with('/'))
                .map(String::from),
        );
        for file in &files {
            let target = root.join(file.trim_start_matches('/'));
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(file, &target).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::write(
            dir.path().join("Dockerfile"),
            format!(
                "FROM scratch\nCOPY rootfs/ /\nCOPY --chown=65534:65534 data/ {data}/\nENTRYPOINT [\"{binary}\"]\n"
            ),
        )
        .unwrap();
        let (ok, out) = docker(&[
            "build",
            "-q",
            "-t",
            reference,
            &dir.path().display().to_string(),
        ]);
        assert!(ok, "building {reference}: {out}");
        BinaryImage(reference.to_string())
    }
}

impl Drop for BinaryImage {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.0]);
    }
}

/// A compose project brought down with its volumes on drop.
struct Stack<'a> {
    dir: &'a Path,
    name: String,
    env: Vec<(&'static str, String)>,
}

impl Stack<'_> {
    fn compose(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker-compose")
            .args(["-p", &self.name, "-f", "docker-compose.yml"])
            .args(args)
            .current_dir(self.dir)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("docker-compose (just install-tools)")
    }
}

impl Drop for Stack<'_> {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v", "-t", "1"]);
    }
}

/// The address of the engine's default bridge (`docker0`) on this machine: a
/// container on any bridge network reaches this machine there.
fn host_address() -> String {
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "docker0"])
        .output()
        .expect("ip (iproute2)");
    let text = String::from_utf8_lossy(&out.stdout);
    let address = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("no IPv4 address on docker0: {text}"));
    address.to_string()
}

/// Prometheus, with neither a replica of the service nor the gateway up,
/// fires `GatewayFailing` and `NoReplicaUp` (one that fires before Prometheus
/// has found the Alertmanager is sent a minute later: its resend delay); the
/// stack's Alertmanager (internal network to Prometheus, egress network
/// out) POSTs it to the webhook with the bearer token from the compose
/// secret, which no container's configuration shows.
#[test]
fn the_stacks_alertmanager_sends_the_rules_alerts_out_with_its_token_from_a_secret() {
    if !docker::engine() {
        return;
    }
    for binary in ["/usr/bin/prometheus", "/usr/bin/prometheus-alertmanager"] {
        assert!(
            Path::new(binary).exists(),
            "{binary} missing: run .ci/install-tools"
        );
    }
    let id = std::process::id();
    let prometheus = BinaryImage::build(
        &format!("shipit-test/prometheus:t{id}"),
        "/usr/bin/prometheus",
        "/prometheus",
        &[],
    );
    let alertmanager = BinaryImage::build(
        &format!("shipit-test/alertmanager:t{id}"),
        "/usr/bin/prometheus-alertmanager",
        "/alertmanager",
        // Debian's build reads its notification templates from disk.
        &[
            "/usr/share/prometheus/alertmanager/default.tmpl",
            "/usr/share/prometheus/alertmanager/email.tmpl",
        ],
    );
    let (port, received) = receiver();
    let token = format!(
        "alert-token-{id}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    // The token file as an operator keeps it: readable by the Alertmanager's user only.
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("alert-token");
    std::fs::write(&token_file, &token).unwrap();
    std::os::unix::fs::chown(&token_file, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o400),
    )
    .unwrap();
    std::fs::set_permissions(
        secrets.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let project = Project::from_repo();
    let set = |key: &str, value: String| ["--set".to_string(), format!("{key}={value}")];
    let mut args = vec!["render".to_string(), "staging".to_string()];
    for pair in [
        set("monitoring.prometheus", "true".into()),
        set("monitoring.prometheus_image", prometheus.0.clone()),
        set("monitoring.alertmanager.image", alertmanager.0.clone()),
        set(
            "monitoring.alertmanager.webhook_url",
            format!("http://{}:{port}/alerts", host_address()),
        ),
        set(
            "monitoring.alertmanager.webhook_token",
            format!("file:{}", token_file.display()),
        ),
        set("monitoring.alertmanager.group_wait", "1s".into()),
        set("monitoring.scrape_interval", "1s".into()),
        set("monitoring.alerts.instance_down_for", "2s".into()),
    ] {
        args.extend(pair);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    project.shipit(&args).success();
    let stack = Stack {
        dir: &project.path().join("generated/staging"),
        name: format!("t-alerts-{id}"),
        env: vec![("STAGING_WEBHOOK_URL", "x".into())],
    };
    let up = stack.compose(&["up", "-d", "prometheus", "alertmanager"]);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );

    let deadline = Instant::now() + Duration::from_secs(90);
    let alert = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(r)
                if ["NoReplicaUp", "GatewayFailing"]
                    .iter()
                    .any(|name| r.body.contains(&format!("\"alertname\":\"{name}\""))) =>
            {
                break r;
            }
            Ok(_) => continue,
            Err(_) => {
                let logs = stack.compose(&["logs", "--no-color", "alertmanager", "prometheus"]);
                panic!(
                    "no alert of the rules reached the receiver in 90 s:\n{}",
                    String::from_utf8_lossy(&logs.stdout)
                );
            }
        }
    };
    assert!(
        alert
            .headers
            .iter()
            .any(|(k, v)| k == "authorization" && *v == format!("Bearer {token}")),
        "{:?}",
        alert.headers
    );
    assert!(
        alert.body.contains("\"environment\":\"staging\""),
        "{}",
        alert.body
    );
    // The token is a file under /run/secrets: in no container's configuration.
    let ps = stack.compose(&["ps", "-q"]);
    for container in String::from_utf8_lossy(&ps.stdout).split_whitespace() {
        let (ok, inspect) = docker(&["inspect", container]);
        assert!(ok, "{inspect}");
        assert!(
            !inspect.contains(&token),
            "the token is in docker inspect of {container}"
        );
    }
}
