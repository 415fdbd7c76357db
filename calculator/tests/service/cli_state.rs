//! `memory`, `history`, `stats` and `interactive` on a state file and
//! against a running server, in every format; `--precision`; the config
//! file; two processes writing at once.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::server::TestServer;

fn run(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_calculator"))
        .args(args)
        .arg("--state")
        .arg(state)
        .env("XDG_CONFIG_HOME", state.with_extension("config"))
        .env_remove("LOG_LEVEL")
        .output()
        .expect("run calculator")
}

#[track_caller]
fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The same commands through the state file and through a server give the
/// same output (timestamps aside).
#[test]
fn memory_history_and_stats_in_every_format_locally_and_against_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start();
    let url = format!("http://{}", server.addr);
    let local = dir.path().join("state.json");
    let places: [Vec<&str>; 2] = [vec![], vec!["--url", &url]];
    let mut seen: Vec<Vec<String>> = Vec::new();
    for extra in &places {
        let c = |args: &[&str]| {
            let mut all = args.to_vec();
            all.extend(extra.iter().copied());
            ok(run(&local, &all))
        };
        let mut outputs = Vec::new();
        assert_eq!(c(&["calc", "add", "5", "3"]), "8\n");
        assert_eq!(
            c(&["calc", "divide", "1", "3", "--precision", "4"]),
            "0.3333\n"
        );
        assert!(
            !run(&local, &[&["calc", "divide", "1", "0"][..], extra].concat())
                .status
                .success()
        );
        outputs.push(c(&["memory", "store", "2.5"]));
        outputs.push(c(&["memory", "add", "-1", "--format", "json"]));
        outputs.push(c(&["memory", "recall", "--format", "csv"]));
        outputs.push(c(&["memory", "clear", "--format", "json"]));
        outputs.push(c(&["memory", "recall"]));
        let history = c(&["history", "--format", "json"]);
        let json: serde_json::Value = serde_json::from_str(&history).unwrap();
        assert_eq!(json["count"], 2, "{json}");
        assert_eq!(json["history"][0]["operation"], "divide");
        assert_eq!(
            json["history"][0]["result"],
            1.0 / 3.0,
            "JSON keeps full precision"
        );
        assert_eq!(json["history"][1]["operands"], serde_json::json!([5, 3]));
        let table = c(&["history", "--limit", "1", "--precision", "3"]);
        assert!(
            table.starts_with("ID  OPERATION  OPERANDS  RESULT  TIME\n"),
            "{table}"
        );
        assert!(table.contains("divide     1 3       0.333"), "{table}");
        assert_eq!(table.lines().count(), 2, "{table}");
        let csv = c(&["history", "--format", "csv"]);
        assert!(
            csv.starts_with("id,operation,operands,result,timestamp\n"),
            "{csv}"
        );
        assert!(csv.contains(",divide,1 3,0.3333333333333333,"), "{csv}");
        outputs.push(c(&["stats"]));
        outputs.push(c(&["stats", "--format", "json"]));
        outputs.push(c(&["stats", "--format", "csv"]));
        seen.push(outputs);
    }
    assert_eq!(
        seen[0], seen[1],
        "the state file and the server answer alike"
    );
    let outputs = &seen[0];
    assert_eq!(outputs[0], "MEMORY\\n2.5\\n".replace("\\n", "\n"));
    assert_eq!(outputs[1], "{\"value\":1.5,\"stored\":true}\n");
    assert_eq!(outputs[2], "memory\n1.5\n");
    assert_eq!(outputs[3], "{\"value\":0,\"cleared\":true}\n");
    assert_eq!(
        outputs[6],
        "{\"calculations\":2,\"errors\":1,\"by_operation\":{\"add\":1,\"divide\":1}}\n"
    );
    assert_eq!(
        outputs[7],
        "name,count\ncalculations,2\nerrors,1\nadd,1\ndivide,1\n"
    );
    // The state file is JSON, written whole (no temporary file left).
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn two_processes_adding_to_memory_and_calculating_at_once_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let script = |state: &Path| {
        let bin = env!("CARGO_BIN_EXE_calculator");
        let state = state.display();
        format!(
            "for i in $(seq 40); do {bin} --state {state} memory add 1 >/dev/null && {bin} --state {state} calc add $i 1 >/dev/null || exit 1; done"
        )
    };
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new("sh")
                .arg("-c")
                .arg(script(&state))
                .env_remove("LOG_LEVEL")
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert_eq!(
        ok(run(&state, &["memory", "recall", "--format", "csv"])),
        "memory\n80\n"
    );
    let stats = ok(run(&state, &["stats", "--format", "json"]));
    assert!(stats.starts_with("{\"calculations\":80,"), "{stats}");
    let history = ok(run(&state, &["history", "--format", "json"]));
    let json: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(json["count"], 80);
    let mut ids: Vec<u64> = json["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 80, "every calculation has its own id");
}

#[test]
fn the_config_file_sets_defaults_flags_win_and_an_unknown_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = dir.path().join("calculator.toml");
    std::fs::write(&config, "precision = 3\nformat = \"csv\"\n").unwrap();
    let c = config.to_str().unwrap();
    assert_eq!(
        ok(run(
            &state,
            &["calc", "divide", "2", "3", "--config-file", c]
        )),
        "0.667\n"
    );
    assert_eq!(
        ok(run(
            &state,
            &[
                "calc",
                "divide",
                "2",
                "3",
                "--config-file",
                c,
                "--precision",
                "5"
            ]
        )),
        "0.66667\n"
    );
    assert_eq!(
        ok(run(&state, &["memory", "recall", "--config-file", c])),
        "memory\n0\n"
    );
    // The default location is read when it exists.
    let xdg = state.with_extension("config").join("calculator");
    std::fs::create_dir_all(&xdg).unwrap();
    std::fs::write(xdg.join("config.toml"), "precision = 2\n").unwrap();
    assert_eq!(ok(run(&state, &["calc", "divide", "2", "3"])), "0.67\n");

    std::fs::write(&config, "precision = 3\ncolor = \"red\"\n").unwrap();
    let bad = run(&state, &["stats", "--config-file", c]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("line 2, column 1"), "{err}");
    assert!(err.contains("unknown field `color`"), "{err}");
    let verbose = run(&state, &["calc", "add", "1", "2", "-vv"]);
    let said = String::from_utf8_lossy(&verbose.stderr);
    assert!(said.contains("debug: using the state file "), "{said}");
    let quiet = run(&state, &["calc", "add", "1", "2", "-q"]);
    assert!(quiet.stderr.is_empty());
    let low = run(&state, &["calc", "add", "1", "2", "--precision", "1"]);
    assert_eq!(low.status.code(), Some(2));
}

#[test]
fn interactive_reads_a_pipe_for_scripts_and_goes_on_after_errors() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_calculator"))
        .args(["interactive", "--precision", "4", "--state"])
        .arg(&state)
        .env_remove("LOG_LEVEL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"5 + 3\nsqrt 16\nm+\n1 / 0\nmr * 2\n2/3\nquit\n7 + 7\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a failed line fails the script");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "8\n4\nmemory: 4\n8\n0.6667\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "line 4: error: division by zero\n"
    );
    assert_eq!(ok(run(&state, &["memory", "recall"])), "MEMORY\n4\n");
}

/// On a pseudo-terminal (util-linux `script` gives the session one): the
/// prompt, line editing (a word typed, erased with Ctrl-U, retyped), errors
/// that do not end the session, and `quit`.
#[test]
fn interactive_on_a_terminal_prompts_edits_and_quits() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let command = format!(
        "{} interactive --state {}",
        env!("CARGO_BIN_EXE_calculator"),
        state.display()
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("LOG_LEVEL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    let mut stdin = child.stdin.take().unwrap();
    use std::io::Write as _;
    for keys in [
        &b"oops\x156 * 7\r"[..],
        b"sqrt -1\r",
        b"help\r",
        b"history\r",
        b"quit\r",
    ] {
        stdin.write_all(keys).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let out = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("calc> "), "{screen}");
    assert!(screen.contains("42\r\n"), "{screen}");
    assert!(
        screen.contains("error: square root of a negative number"),
        "{screen}"
    );
    assert!(screen.contains("m+ [X]"), "{screen}");
    assert!(
        !screen.contains("oops6"),
        "Ctrl-U erased the line: {screen}"
    );
    assert_eq!(
        ok(run(&state, &["stats", "--format", "csv"]))
            .lines()
            .nth(1),
        Some("calculations,1"),
        "only 6 * 7 was computed"
    );
}
