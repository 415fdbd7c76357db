//! SIGTERM with requests in flight: readiness turns 503, they complete, exit 0.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use calculator::client;

struct Service {
    child: Child,
    addr: String,
}

fn start(env: &[(&str, &str)]) -> Service {
    let mut child = Command::new(env!("CARGO_BIN_EXE_calculator"))
        .arg("serve")
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start calculator");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a first log line");
    let first: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(first["msg"], "listening", "{line}");
    let addr = first["address"].as_str().unwrap().to_string();
    std::thread::spawn(move || while rx.recv().is_ok() {});
    Service { child, addr }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, limit: Duration) -> (i32, Duration) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code().unwrap_or(-1), start.elapsed());
        }
        assert!(start.elapsed() < limit, "still running after {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const BODY: &[u8] = br#"{"operation":"power","operands":[2,16]}"#;

/// Opens a request and sends all but the last bytes of its body: it is in flight.
fn half_sent(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST /calculate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        BODY.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&BODY[..10]).unwrap();
    stream
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_0() {
    let mut service = start(&[
        ("SHUTDOWN_DELAY_SECONDS", "1"),
        ("SHUTDOWN_GRACE_SECONDS", "8"),
    ]);
    let mut in_flight = half_sent(&service.addr);
    std::thread::sleep(Duration::from_millis(100));
    sigterm(&service.child);
    std::thread::sleep(Duration::from_millis(200));

    let ready = client::request(
        &service.addr,
        "GET",
        "/ready",
        &[],
        b"",
        Duration::from_secs(2),
    )
    .expect("still serving during the delay");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(ready.json().unwrap()["status"], "draining");
    let health = client::request(
        &service.addr,
        "GET",
        "/health",
        &[],
        b"",
        Duration::from_secs(2),
    )
    .unwrap();
    assert_eq!(health.status, 200, "liveness stays healthy while draining");

    std::thread::sleep(Duration::from_millis(1200));
    assert!(
        TcpStream::connect(&service.addr).is_err(),
        "the listener closes after the delay"
    );
    in_flight.write_all(&BODY[10..]).unwrap();
    let response = client::read_response(&mut in_flight).unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json().unwrap()["result"], 65536);

    let (code, _) = wait_exit(&mut service.child, Duration::from_secs(5));
    assert_eq!(code, 0);
}

#[test]
fn a_stuck_request_does_not_hold_the_process_past_the_grace_period() {
    let mut service = start(&[("SHUTDOWN_GRACE_SECONDS", "1")]);
    let _stuck = half_sent(&service.addr);
    std::thread::sleep(Duration::from_millis(100));
    sigterm(&service.child);
    let (code, elapsed) = wait_exit(&mut service.child, Duration::from_secs(5));
    assert_eq!(code, 0);
    assert!(
        elapsed >= Duration::from_millis(800) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
}

#[test]
fn healthcheck_exit_codes() {
    let mut service = start(&[]);
    let url = format!("http://{}/health", service.addr);
    let ok = Command::new(env!("CARGO_BIN_EXE_calculator"))
        .args(["healthcheck", "--url", &url])
        .status()
        .unwrap();
    assert!(ok.success());
    sigterm(&service.child);
    wait_exit(&mut service.child, Duration::from_secs(5));
    let down = Command::new(env!("CARGO_BIN_EXE_calculator"))
        .args(["healthcheck", "--url", &url, "--timeout", "1"])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).starts_with("unhealthy: "));
}

/// Sends one keepalive POST on `stream` and reads exactly its answer (by
/// its Content-Length), leaving the connection open.
fn post_keepalive(stream: &mut TcpStream) -> client::Response {
    let head = format!(
        "POST /calculate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        BODY.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(BODY).unwrap();
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = std::io::Read::read(stream, &mut byte).unwrap();
        assert_eq!(n, 1, "the connection closed before the answer's head");
        raw.push(byte[0]);
    }
    let length: usize = String::from_utf8_lossy(&raw)
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("a Content-Length");
    let mut body = vec![0u8; length];
    std::io::Read::read_exact(stream, &mut body).unwrap();
    raw.extend(body);
    client::parse_response(&raw).unwrap()
}

#[test]
fn draining_answers_close_keepalive_connections_so_clients_reconnect() {
    let mut service = start(&[
        ("SHUTDOWN_DELAY_SECONDS", "2"),
        ("SHUTDOWN_GRACE_SECONDS", "8"),
    ]);
    let mut stream = TcpStream::connect(&service.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let before = post_keepalive(&mut stream);
    assert_eq!(before.status, 200);
    assert_eq!(
        before.header("connection"),
        None,
        "kept alive while serving"
    );

    sigterm(&service.child);
    std::thread::sleep(Duration::from_millis(300));
    // The same connection, during the shutdown delay: answered in full, told
    // to close, and closed by the service once the answer is out.
    let during = post_keepalive(&mut stream);
    assert_eq!(during.status, 200, "{}", during.text());
    assert_eq!(during.json().unwrap()["result"], 65536);
    assert_eq!(
        during
            .header("connection")
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("close")
    );
    let mut rest = Vec::new();
    let read = std::io::Read::read_to_end(&mut stream, &mut rest);
    assert!(
        matches!(read, Ok(0)),
        "the service closes the connection after that answer: {read:?} {rest:?}"
    );
    let (code, _) = wait_exit(&mut service.child, Duration::from_secs(8));
    assert_eq!(code, 0);
}
