//! Every endpoint and every error status, against the real server.

use calculator::settings::Settings;
use serde_json::json;

use crate::server::TestServer;

#[test]
fn index_health_and_ready() {
    let server = TestServer::start();
    let index = server.get("/");
    assert_eq!(index.status, 200);
    let body = index.json().unwrap();
    assert_eq!(body["service"], "calculator");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["environment"], "development");
    assert!(body["revision"].is_string());

    let health = server.get("/health").json().unwrap();
    assert_eq!(
        (health["status"].as_str(), health["service"].as_str()),
        (Some("healthy"), Some("calculator"))
    );
    let ready = server.get("/ready");
    assert_eq!(
        (ready.status, ready.json().unwrap()["status"].as_str()),
        (200, Some("ready"))
    );
}

#[test]
fn calculate_answers_every_operation() {
    let server = TestServer::start();
    let cases = [
        ("add", json!([5, 3]), json!(8)),
        ("subtract", json!([5, 3]), json!(2)),
        ("multiply", json!([2.5, 4]), json!(10)),
        ("divide", json!([1, 4]), json!(0.25)),
        ("power", json!([2, 10]), json!(1024)),
        ("sqrt", json!([16]), json!(4)),
        ("sin", json!([0]), json!(0)),
        ("cos", json!([0]), json!(1)),
        ("tan", json!([0]), json!(0)),
        ("log", json!([1]), json!(0)),
    ];
    for (operation, operands, expected) in cases {
        let body = json!({ "operation": operation, "operands": operands }).to_string();
        let response = server.post_json("/calculate", &body);
        assert_eq!(response.status, 200, "{operation}: {}", response.text());
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(
            response.json().unwrap(),
            json!({ "operation": operation, "operands": operands, "result": expected }),
            "{operation}"
        );
    }
    assert_eq!(
        server
            .post_json("/calculate", r#"{"operation":"add","operands":[5,3]}"#)
            .text(),
        r#"{"operation":"add","operands":[5,3],"result":8}"#
    );
}

#[test]
fn bad_input_gets_a_json_error_with_the_right_status() {
    let server = TestServer::start();
    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<(&'a str, &'a str)>,
        Vec<u8>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/calculate",
            vec![("Content-Type", "application/json")],
            br#"{"operation":"modulo","operands":[1,2]}"#.to_vec(),
            400,
            "unknown operation \"modulo\"",
        ),
        (
            "POST",
            "/calculate",
            vec![("Content-Type", "application/json")],
            br#"{"operation":"divide","operands":[1,0]}"#.to_vec(),
            400,
            "division by zero",
        ),
        (
            "POST",
            "/calculate",
            vec![("Content-Type", "application/json")],
            br#"{"operation":"sqrt","operands":[-4]}"#.to_vec(),
            400,
            "square root of a negative number",
        ),
        (
            "POST",
            "/calculate",
            vec![("Content-Type", "application/json")],
            br#"{"operation":"log","operands":[0]}"#.to_vec(),
            400,
            "logarithm of a number that is not positive",
        ),
        (
            "POST",
            "/calculate",
            vec![("Content-Type", "application/json")],
            br#"{"operation":"multiply","operands":[1e308,10]}"#.to_vec(),
            400,
            "not a finite number",
        ),
        (
            "POST",
            "/calculate",
            vec![("Content-Type", "application/json")],
            br#"{"operation":"add","operands":[1]}"#.to_vec(),
            400,
            "add takes 2 operands, got 1",
        ),
        (
            "POST",
            "/calculate",
            vec![("Content-Type", "application/json")],
            br#"{"operation":"add","operands":[1e999,1]}"#.to_vec(),
            400,
            "invalid JSON body",
        ),
        (
            "POST",
            "/calculate",
            vec![("Content-Type", "application/json")],
            br#"{"operation":"add","operands":["1",2]}"#.to_vec(),
            400,
            "invalid JSON body",
        ),
        (
            "POST",
            "/calculate",
            vec![("Content-Type", "application/json")],
            br#"{"operation":"add","operands":[1,2],"x":1}"#.to_vec(),
            400,
            "unknown field",
        ),
        (
            "POST",
            "/calculate",
            vec![("Content-Type", "application/json")],
            b"{not json".to_vec(),
            400,
            "invalid JSON body",
        ),
        (
            "POST",
            "/calculate",
            vec![("Content-Type", "text/plain")],
            br#"{"operation":"add","operands":[1,2]}"#.to_vec(),
            415,
            "Content-Type: application/json",
        ),
        (
            "POST",
            "/calculate",
            vec![],
            br#"{"operation":"add","operands":[1,2]}"#.to_vec(),
            415,
            "Content-Type: application/json",
        ),
        (
            "POST",
            "/calculate",
            vec![("Content-Type", "application/json")],
            vec![b' '; 16 * 1024 + 1],
            413,
            "larger than 16384 bytes",
        ),
        (
            "GET",
            "/nowhere",
            vec![],
            vec![],
            404,
            "no route for /nowhere",
        ),
        (
            "GET",
            "/calculate",
            vec![],
            vec![],
            405,
            "GET is not allowed on /calculate; allowed: POST",
        ),
        (
            "DELETE",
            "/memory",
            vec![],
            vec![],
            405,
            "allowed: GET, HEAD",
        ),
        (
            "GET",
            "/history?limit=0",
            vec![],
            vec![],
            400,
            "limit must be a whole number",
        ),
        (
            "GET",
            "/history?limit=abc",
            vec![],
            vec![],
            400,
            "limit must be a whole number",
        ),
        (
            "POST",
            "/memory/store",
            vec![("Content-Type", "application/json")],
            br#"{"value":"x"}"#.to_vec(),
            400,
            "invalid JSON body",
        ),
    ];
    for (method, path, headers, body, status, needle) in cases {
        let response = server.request(method, path, &headers, &body);
        let text = response.text();
        assert_eq!(
            response.status,
            status,
            "{method} {path} {}: {text}",
            String::from_utf8_lossy(&body[..body.len().min(60)])
        );
        let json = response
            .json()
            .unwrap_or_else(|| panic!("{method} {path}: not JSON: {text}"));
        assert_eq!(json["code"], status, "{text}");
        assert!(
            json["error"].as_str().unwrap().contains(needle),
            "{method} {path}: {text}"
        );
    }
    assert_eq!(
        server
            .request("GET", "/calculate", &[], b"")
            .header("allow"),
        Some("POST")
    );
}

#[test]
fn an_oversized_chunked_body_is_refused_without_a_content_length() {
    let server = TestServer::start();
    let mut raw = Vec::new();
    raw.extend_from_slice(b"POST /calculate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    for _ in 0..20 {
        raw.extend_from_slice(b"400\r\n");
        raw.extend_from_slice(&[b' '; 0x400]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
    stream.write_all(&raw).unwrap();
    let response = calculator::client::read_response(&mut stream).unwrap();
    assert_eq!(response.status, 413, "{}", response.text());
}

#[test]
fn history_is_newest_first_limited_and_bounded() {
    let server = TestServer::with(Settings {
        history_limit: 5,
        ..Settings::default()
    });
    for i in 0..8 {
        server.post_json(
            "/calculate",
            &format!(r#"{{"operation":"add","operands":[{i},1]}}"#),
        );
    }
    server.post_json("/calculate", r#"{"operation":"divide","operands":[1,0]}"#);
    let all = server.get("/history").json().unwrap();
    assert_eq!(all["count"], 5, "{all}");
    let results: Vec<i64> = all["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["result"].as_i64().unwrap())
        .collect();
    assert_eq!(
        results,
        [8, 7, 6, 5, 4],
        "failed calculations are not history"
    );
    let two = server.get("/history?limit=2").json().unwrap();
    assert_eq!(two["count"], 2);
    assert_eq!(two["history"][0]["operation"], "add");
    assert!(
        two["history"][0]["timestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let many = server.get("/history?limit=1000").json().unwrap();
    assert_eq!(many["count"], 5);
}

#[test]
fn stats_and_memory() {
    let server = TestServer::start();
    server.post_json("/calculate", r#"{"operation":"add","operands":[1,1]}"#);
    server.post_json("/calculate", r#"{"operation":"add","operands":[2,2]}"#);
    server.post_json("/calculate", r#"{"operation":"sqrt","operands":[9]}"#);
    server.post_json("/calculate", r#"{"operation":"sqrt","operands":[-9]}"#);
    let stats = server.get("/stats").json().unwrap();
    assert_eq!(stats["calculations"], 3);
    assert_eq!(stats["errors"], 1);
    assert_eq!(stats["by_operation"], json!({ "add": 2, "sqrt": 1 }));

    assert_eq!(server.get("/memory").json().unwrap(), json!({ "value": 0 }));
    let stored = server.post_json("/memory/store", r#"{"value":42.5}"#);
    assert_eq!(
        (stored.status, stored.json().unwrap()),
        (200, json!({ "value": 42.5, "stored": true }))
    );
    assert_eq!(
        server.get("/memory").json().unwrap(),
        json!({ "value": 42.5 })
    );
    let added = server.post_json("/memory/add", r#"{"value":-2.5}"#);
    assert_eq!(
        (added.status, added.json().unwrap()),
        (200, json!({ "value": 40, "stored": true }))
    );
    assert_eq!(
        server
            .post_json("/memory/add", r#"{"value":1.7e308}"#)
            .status,
        200
    );
    let overflow = server.post_json("/memory/add", r#"{"value":1.7e308}"#);
    assert_eq!(overflow.status, 400, "a sum that is not finite is refused");
    assert_eq!(
        server.get("/memory").json().unwrap(),
        json!({ "value": 1.7e308 + 40.0 }),
        "and the memory is unchanged"
    );
    assert_eq!(
        server
            .request("POST", "/memory/clear", &[], b"")
            .json()
            .unwrap(),
        json!({ "value": 0, "cleared": true })
    );
    assert_eq!(server.get("/memory").json().unwrap(), json!({ "value": 0 }));
}

#[test]
fn request_ids_are_echoed_or_made_and_every_request_is_logged() {
    let server = TestServer::start();
    let echoed = server.request("GET", "/health", &[("X-Request-Id", "trace-abc-123")], b"");
    assert_eq!(echoed.header("x-request-id"), Some("trace-abc-123"));
    let made = server.get("/nowhere");
    let id = made
        .header("x-request-id")
        .expect("a request id on a 404")
        .to_string();
    assert!(id.len() >= 16 && id != "trace-abc-123", "{id}");
    let hostile = server.request("GET", "/health", &[("X-Request-Id", &"x".repeat(500))], b"");
    assert_ne!(
        hostile.header("x-request-id"),
        Some("x".repeat(500).as_str()),
        "an oversized id is replaced"
    );

    let lines = server.log_lines();
    let requests: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["msg"] == "request").collect();
    assert_eq!(requests.len(), 3, "{lines:?}");
    assert_eq!(requests[0]["request_id"], "trace-abc-123");
    assert_eq!(requests[0]["route"], "/health");
    assert_eq!(requests[1]["request_id"].as_str(), Some(id.as_str()));
    assert_eq!(
        (
            requests[1]["status"].as_u64(),
            requests[1]["method"].as_str()
        ),
        (Some(404), Some("GET"))
    );
    assert!(requests[1]["latency_ms"].as_f64().is_some());
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

#[test]
fn metrics_count_requests_operations_and_durations() {
    let server = TestServer::start();
    for _ in 0..7 {
        server.post_json("/calculate", r#"{"operation":"multiply","operands":[6,7]}"#);
    }
    server.post_json("/calculate", r#"{"operation":"divide","operands":[1,0]}"#);
    server.get("/nowhere");
    let response = server.get("/metrics");
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text();
    assert_eq!(
        metric(
            &text,
            r#"http_requests_total{method="POST",route="/calculate",status="200"}"#
        ),
        Some(7.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            r#"http_requests_total{method="POST",route="/calculate",status="400"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            r#"http_requests_total{method="GET",route="unmatched",status="404"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            r#"calculator_operations_total{operation="multiply",outcome="success"}"#
        ),
        Some(7.0)
    );
    assert_eq!(
        metric(
            &text,
            r#"calculator_operations_total{operation="divide",outcome="error"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            r#"http_request_duration_seconds_count{route="/calculate"}"#
        ),
        Some(8.0)
    );
    assert_eq!(
        metric(&text, r#"http_requests_in_flight"#),
        Some(1.0),
        "the /metrics request itself is in flight"
    );
    assert!(
        text.contains(&format!(
            "calculator_build_info{{version=\"{}\"",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"));
}

#[test]
fn unknown_paths_do_not_grow_the_metrics() {
    let server = TestServer::start();
    for i in 0..300 {
        server.request(
            if i % 2 == 0 { "GET" } else { "BREW" },
            &format!("/random/{i}"),
            &[],
            b"",
        );
    }
    let text = server.get("/metrics").text();
    let series = text
        .lines()
        .filter(|l| l.starts_with("http_requests_total"))
        .count();
    assert!(series <= 3, "unbounded label values:\n{text}");
}
