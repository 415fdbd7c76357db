//! `[[smoke.checks]]`: the suite is configuration. Run against the real
//! calculator (served in this process) through `shipit smoke`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::docker::free_port;
use crate::harness::Project;

/// The calculator on a loopback port, for the whole test run.
fn calculator() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let port = free_port();
        std::thread::spawn(move || {
            calculator::server::run(calculator::settings::Settings {
                host: "127.0.0.1".into(),
                port,
                log_level: calculator::settings::LogLevel::Error,
                ..Default::default()
            })
        });
        let address = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while calculator::client::request(
            &address,
            "GET",
            "/health",
            &[],
            b"",
            Duration::from_secs(1),
        )
        .is_err()
        {
            assert!(Instant::now() < deadline, "the calculator did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        format!("http://{address}")
    })
    .clone()
}

fn smoke(project: &Project, env: &str) -> (i32, serde_json::Value, String) {
    let url = calculator();
    let run = project.shipit(&[
        "smoke",
        env,
        "--url",
        &url,
        "--timeout",
        "1s",
        "--output",
        "json",
    ]);
    let report = serde_json::from_str(&run.stdout).unwrap_or(serde_json::Value::Null);
    (run.code, report, run.stderr)
}

fn names(report: &serde_json::Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_calculator_suite_is_the_configured_checks() {
    let project = Project::from_repo();
    let (code, report, stderr) = smoke(&project, "development");
    assert_eq!(code, 0, "{stderr}");
    let names = names(&report);
    assert_eq!(names[..2], ["GET /health", "GET /ready"]);
    assert_eq!(names.len(), 2 + 12, "{names:?}");
    assert!(names.contains(&"POST /calculate divide [1, 4] = 0.25".to_string()));
}

#[test]
fn every_kind_of_expectation_passes_and_fails_with_what_it_got() {
    let project = Project::minimal(
        r#"[[smoke.checks]]
name = "status"
method = "POST"
path = "/calculate"
headers = { "Content-Type" = "application/json" }
body = '{"operation":"multiply","operands":[6,7]}'
status = 201

[[smoke.checks]]
name = "json value"
method = "POST"
path = "/calculate"
headers = { "Content-Type" = "application/json" }
body = '{"operation":"multiply","operands":[6,7]}'
json = { "/result" = 41 }

[[smoke.checks]]
name = "json pointer missing"
method = "POST"
path = "/calculate"
headers = { "Content-Type" = "application/json" }
body = '{"operation":"add","operands":[1,1]}'
json = { "/answer" = 2 }

[[smoke.checks]]
name = "contains"
path = "/health"
contains = ["no such text"]

[[smoke.checks]]
name = "regex"
path = "/metrics"
regex = "(?m)^no_such_metric"

[[smoke.checks]]
name = "latency"
path = "/health"
max_latency = "1ms"
body = ""

[[smoke.checks]]
name = "all good"
method = "POST"
path = "/calculate"
headers = { "Content-Type" = "application/json" }
body = '{"operation":"sqrt","operands":[81]}'
contains = ["result"]
json = { "/result" = 9.0, "/operation" = "sqrt" }
regex = '"result":\s*9'
max_latency = "5s"
"#,
    );
    let (code, report, stderr) = smoke(&project, "test");
    assert_eq!(code, 1, "{stderr}");
    let detail = |name: &str| -> String {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no check {name}: {report}"))["detail"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        detail("status").starts_with("expected status 201, got 200: {"),
        "{}",
        detail("status")
    );
    assert_eq!(detail("json value"), "/result: expected 41, got 42");
    assert!(
        detail("json pointer missing").starts_with("no value at \"/answer\" in {"),
        "{}",
        detail("json pointer missing")
    );
    assert!(detail("contains").starts_with("the body does not contain \"no such text\""));
    assert!(detail("regex").starts_with("the body does not match /(?m)^no_such_metric/"));
    // 1 ms is tight but not impossible on loopback: only its form is asserted when it fails.
    let latency = detail("latency");
    assert!(
        latency.is_empty() || latency.contains("over the 1ms limit"),
        "{latency}"
    );
    assert_eq!(detail("all good"), "", "{report}");
    // The report for people names each failed check and what it got.
    assert!(
        stderr.contains("  - json value: /result: expected 41, got 42"),
        "{stderr}"
    );
}

#[test]
fn checks_are_validated_all_at_once_with_their_keys() {
    let project = Project::minimal(
        r#"[[smoke.checks]]
name = "a"
method = "FETCH"
path = "health"
status = 700

[[smoke.checks]]
name = "a"
path = "/x"
headers = { "Bad Header" = "v" }
json = { "result" = 1 }
regex = "(unclosed"
max_latency = "soon"
"#,
    );
    let run = project.shipit(&["validate", "test"]).code(2);
    for expected in [
        "\"FETCH\" is not an HTTP method (key `smoke.checks.0.method`)",
        "\"health\" is not a path (key `smoke.checks.0.path`)",
        "status = 700 is not an HTTP status (key `smoke.checks.0.status`)",
        "\"a\" names two checks (key `smoke.checks.1.name`)",
        "the header \"Bad Header\" is not a valid header (key `smoke.checks.1.headers`)",
        "\"result\" is not a JSON pointer (key `smoke.checks.1.json`)",
        "the regex does not compile",
        "\"soon\" is not a duration (key `smoke.checks.1.max_latency`)",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
    assert!(
        run.stderr.contains("8 configuration problems found"),
        "{}",
        run.stderr
    );
}
