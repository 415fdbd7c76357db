//! The review's findings where behaviour matters, on real parts: a compose
//! build on the engine (what reaches the build context), a replica stopped
//! under load with the rendered shutdown settings, and nginx itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::deploy::support::images;
use crate::docker::{self, docker, free_port};
use crate::harness::Project;

/// `docker compose build` of the rendered compose file, in a repository with
/// the things a context must never carry: the context that reached the
/// builder is listed by a Dockerfile that copies it whole.
#[test]
fn a_compose_build_sends_no_git_target_env_or_keys() {
    if !docker::engine() {
        return;
    }
    let project = Project::from_repo();
    project.shipit(&["render", "--all", "-q"]).success();
    for (path, text) in [
        ("src/main.rs", "fn main() {}\n"),
        ("Cargo.lock", "# lock\n"),
        (".git/HEAD", "ref: refs/heads/main\n"),
        (".git/config", "[core]\n"),
        ("target/release/big", "build output\n"),
        ("calculator/target/debug/x", "build output\n"),
        (".env", "TOKEN=secret\n"),
        (".env.production", "TOKEN=secret\n"),
        ("deploy/tls.pem", "-----BEGIN PRIVATE KEY-----\n"),
        ("deploy/id.key", "key\n"),
        ("ctx-list.Dockerfile", "FROM scratch\nCOPY . /ctx/\n"),
    ] {
        project.write(path, text);
    }
    let tag = format!("shipit-test/review-context:{}", std::process::id());
    project.write(
        "generated/staging/ctx.override.yml",
        &format!(
            "services:\n  calculator:\n    image: \"{tag}\"\n    build:\n      dockerfile: ctx-list.Dockerfile\n"
        ),
    );
    let _image = Image(tag.clone());
    let out = Command::new("docker-compose")
        .args([
            "-f",
            "docker-compose.yml",
            "-f",
            "ctx.override.yml",
            "build",
            "calculator",
        ])
        .current_dir(project.path().join("generated/staging"))
        .env("STAGING_WEBHOOK_URL", "x")
        .output()
        .expect("docker-compose (just install-tools)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = context_of(&tag);
    for kept in ["ctx/Cargo.toml", "ctx/src/main.rs", "ctx/Cargo.lock"] {
        assert!(
            listing.iter().any(|p| p == kept),
            "{kept} is missing: {listing:?}"
        );
    }
    for path in &listing {
        for banned in [
            "ctx/.git",
            "ctx/target",
            "ctx/calculator/target",
            "ctx/.env",
            "ctx/generated",
        ] {
            assert!(
                !path.starts_with(banned),
                "{path} reached the build context"
            );
        }
        assert!(
            !path.ends_with(".pem") && !path.ends_with(".key"),
            "{path} reached the build context"
        );
    }
}

struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.0]);
    }
}

/// The files of an image, by exporting a container made from it.
fn context_of(image: &str) -> Vec<String> {
    let name = format!("shipit-review-ctx-{}", std::process::id());
    let (ok, text) = docker(&["create", "--name", &name, image, "none"]);
    assert!(ok, "{text}");
    let export = Command::new("sh")
        .arg("-c")
        .arg(format!("docker export {name} | tar -t"))
        .output()
        .unwrap();
    let _ = docker(&["rm", "-f", "-v", &name]);
    String::from_utf8_lossy(&export.stdout)
        .lines()
        .filter(|l| l.starts_with("ctx/"))
        .map(|l| l.trim_end_matches('/').to_string())
        .collect()
}

/// What one client saw: when each request started, and whether it succeeded.
type Seen = Arc<Mutex<Vec<(Instant, bool)>>>;

const BODY: &str = r#"{"operation":"multiply","operands":[6,7]}"#;

/// One POST on `stream`: whether it was answered right, and whether the
/// server asked to close the connection (`Connection: close`: a draining
/// replica does), as every HTTP client honours.
fn post(stream: &mut TcpStream, keepalive: bool) -> std::io::Result<(bool, bool)> {
    let connection = if keepalive { "keep-alive" } else { "close" };
    write!(
        stream,
        "POST /calculate HTTP/1.1\r\nHost: review\r\nContent-Type: application/json\r\nConnection: {connection}\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    )?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    let mut length = 0usize;
    let mut close = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok((false, true));
        }
        if line.to_ascii_lowercase().trim_end() == "connection: close" {
            close = true;
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let ok = status.starts_with("HTTP/1.1 200") && String::from_utf8_lossy(&body).contains("42");
    Ok((ok, close))
}

/// A client posting in a loop until `stop`: on one keepalive connection
/// (reconnecting after an error or when the server closes it), or on a new
/// connection per request.
fn client(address: String, keepalive: bool, stop: Arc<AtomicBool>, seen: Seen) {
    let mut stream: Option<TcpStream> = None;
    while !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        if stream.is_none() {
            stream = TcpStream::connect(&address).ok();
            if let Some(s) = &stream {
                s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            }
        }
        let (ok, close) = match stream.as_mut() {
            Some(s) => post(s, keepalive).unwrap_or((false, true)),
            None => (false, true),
        };
        if !ok || close || !keepalive {
            stream = None;
        }
        seen.lock().unwrap().push((start, ok));
        std::thread::sleep(Duration::from_millis(if ok { 20 } else { 100 }));
    }
}

/// The replica, run with the environment and stop grace of the rendered
/// compose file, gets SIGTERM under load: it must keep answering, on
/// keepalive and on new connections, POST included, for the delay the
/// gateway and the endpoints need; then finish by itself before the platform
/// would kill it. With the delay set to 0 the same load fails at once.
#[test]
fn a_stopping_replica_serves_through_the_rendered_delay_then_exits_in_its_grace() {
    if !docker::engine() {
        return;
    }
    let project = Project::from_repo();
    project.shipit(&["render", "staging", "-q"]).success();
    let compose: yaml_serde::Value =
        yaml_serde::from_str(&project.read("generated/staging/docker-compose.yml")).unwrap();
    let service = &compose["services"]["calculator"];
    let mut environment: Vec<(String, String)> = service["environment"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().into(), v.as_str().unwrap().into()))
        .filter(|(k, _): &(String, String)| !k.contains("WEBHOOK"))
        .collect();
    let stop_grace: u64 = service["stop_grace_period"]
        .as_str()
        .unwrap()
        .trim_end_matches('s')
        .parse()
        .unwrap();
    let delay: u64 = environment
        .iter()
        .find(|(k, _)| k == "SHUTDOWN_DELAY_SECONDS")
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert!(delay >= 2, "a delay of {delay}s");

    let rendered = stop_under_load(&environment, stop_grace);
    let window = Duration::from_secs(delay) - Duration::from_millis(500);
    for (kind, seen) in [
        ("keepalive", &rendered.keepalive),
        ("new connections", &rendered.fresh),
    ] {
        let during: Vec<bool> = seen
            .iter()
            .filter(|(t, _)| *t >= rendered.signal && *t < rendered.signal + window)
            .map(|(_, ok)| *ok)
            .collect();
        assert!(
            during.len() >= 10,
            "{kind}: only {} requests in the delay",
            during.len()
        );
        let failed = during.iter().filter(|ok| !**ok).count();
        assert_eq!(
            failed,
            0,
            "{kind}: {failed} of {} failed within the delay",
            during.len()
        );
    }
    assert!(
        rendered.ready_after_signal == Some(503),
        "{:?}",
        rendered.ready_after_signal
    );
    assert_eq!(rendered.exit_code, 0, "killed, not stopped by itself");
    assert!(
        rendered.stop_took < Duration::from_secs(stop_grace),
        "the replica took {:?} of a {stop_grace}s grace",
        rendered.stop_took
    );

    // The finding itself: without the delay, new connections fail at once.
    for (k, v) in &mut environment {
        if k == "SHUTDOWN_DELAY_SECONDS" {
            *v = "0".into();
        }
    }
    let bare = stop_under_load(&environment, stop_grace);
    let refused = bare
        .fresh
        .iter()
        .filter(|(t, ok)| *t >= bare.signal + Duration::from_millis(500) && !ok)
        .count();
    assert!(refused > 0, "without a delay every request still succeeded");
}

struct Stopped {
    signal: Instant,
    keepalive: Vec<(Instant, bool)>,
    fresh: Vec<(Instant, bool)>,
    ready_after_signal: Option<u16>,
    exit_code: i64,
    stop_took: Duration,
}

fn stop_under_load(environment: &[(String, String)], stop_grace: u64) -> Stopped {
    let (base, _) = images();
    let port = free_port();
    let name = format!("shipit-review-stop-{}-{port}", std::process::id());
    let _container = Container(name.clone());
    let mut args: Vec<String> = vec![
        "run".into(),
        "-d".into(),
        "--name".into(),
        name.clone(),
        "-p".into(),
        format!("127.0.0.1:{port}:8080"),
    ];
    for (k, v) in environment {
        args.push("-e".into());
        args.push(format!("{k}={v}"));
    }
    args.push(base.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, text) = docker(&args);
    assert!(ok, "{text}");
    let address = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&address, "/health").is_none_or(|s| s != 200) {
        assert!(Instant::now() < deadline, "{name} never answered /health");
        std::thread::sleep(Duration::from_millis(100));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let keepalive: Seen = Arc::default();
    let fresh: Seen = Arc::default();
    let clients: Vec<_> = [(true, keepalive.clone()), (false, fresh.clone())]
        .into_iter()
        .map(|(k, seen)| {
            let (address, stop) = (address.clone(), stop.clone());
            std::thread::spawn(move || client(address, k, stop, seen))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let signal = Instant::now();
    let stopper = {
        let name = name.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let _ = docker(&["stop", "-t", &stop_grace.to_string(), &name]);
            started.elapsed()
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let ready_after_signal = get(&address, "/ready");
    let stop_took = stopper.join().unwrap();
    // Keep asking for a while after the signal, however soon the replica went.
    std::thread::sleep((signal + Duration::from_secs(2)).saturating_duration_since(Instant::now()));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let (_, code) = docker(&["inspect", "-f", "{{.State.ExitCode}}", &name]);
    let keepalive = keepalive.lock().unwrap().clone();
    let fresh = fresh.lock().unwrap().clone();
    Stopped {
        signal,
        keepalive,
        fresh,
        ready_after_signal,
        exit_code: code.parse().unwrap_or(-1),
        stop_took,
    }
}

fn get(address: &str, path: &str) -> Option<u16> {
    calculator::client::request(address, "GET", path, &[], b"", Duration::from_secs(2))
        .ok()
        .map(|r| r.status)
}

struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.0]);
    }
}

/// Debian's nginx on a rendered nginx.conf, in its own network and mount
/// namespaces (its own 8080 and 8443, `calculator` resolving to loopback,
/// the configuration and a throw-away certificate where the file says).
pub struct Nginx {
    holder: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start(conf: &str) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        std::fs::write(d.join("nginx.conf"), conf).unwrap();
        std::fs::write(d.join("hosts"), "127.0.0.1 localhost calculator\n").unwrap();
        let cert = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=calculator.example.com",
                "-keyout",
            ])
            .arg(d.join("tls.key"))
            .arg("-out")
            .arg(d.join("tls.crt"))
            .output()
            .unwrap();
        assert!(cert.status.success(), "{cert:?}");
        let holder = Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--propagation",
                "private",
                "sleep",
                "infinity",
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare");
        std::thread::sleep(Duration::from_millis(200));
        let setup = format!(
            "set -e
ip link set lo up
mount -t tmpfs tmpfs /etc/nginx && mkdir -p /etc/nginx/tls
cp {d}/nginx.conf /etc/nginx/nginx.conf && cp {d}/tls.crt {d}/tls.key /etc/nginx/tls/
mount --bind {d}/hosts /etc/hosts
mount -t tmpfs tmpfs /tmp
nginx -c /etc/nginx/nginx.conf >/dev/null 2>&1",
            d = d.display()
        );
        let nginx = Nginx { holder, _dir: dir };
        let out = nginx.inside(&setup);
        assert!(out.status.success(), "nginx did not start: {out:?}");
        nginx
    }

    fn inside(&self, script: &str) -> std::process::Output {
        Command::new("nsenter")
            .args([
                "-t",
                &self.holder.id().to_string(),
                "-n",
                "-m",
                "sh",
                "-c",
                script,
            ])
            .output()
            .unwrap()
    }

    /// The raw answer (status line and headers) to GET `path` with `Host: host`; empty when nginx closed without one.
    pub fn http(&self, host: &str, path: &str) -> String {
        let out = self.inside(&format!(
            "curl -sS -i --max-time 5 -H 'Host: {host}' 'http://127.0.0.1:8080{path}' || true"
        ));
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Whether a TLS 1.2 handshake with `cipher` for `name` (SNI) succeeds.
    pub fn tls(&self, name: &str, cipher: &str) -> bool {
        self.inside(&format!(
            "openssl s_client -connect 127.0.0.1:8443 -servername {name} -tls1_2 -cipher {cipher} </dev/null >/dev/null 2>&1"
        ))
        .status
        .success()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Killing the namespace's holder ends nginx with it: no other
        // process holds that network namespace, but nginx's master does the
        // mount namespace, so stop it first.
        let _ = self.inside("[ -f /tmp/nginx.pid ] && kill $(cat /tmp/nginx.pid)");
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
