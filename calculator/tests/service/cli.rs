//! `calculator calc` and `calculator batch` in every format.

use std::process::{Command, Output};

/// The binary, its state file and config kept out of the user's home.
fn calculator(args: &[&str]) -> Output {
    let home = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("calculator-cli-home");
    Command::new(env!("CARGO_BIN_EXE_calculator"))
        .args(args)
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env_remove("LOG_LEVEL")
        .output()
        .expect("run calculator")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn calc_in_every_format() {
    let number = calculator(&["calc", "add", "5", "3"]);
    assert!(number.status.success());
    assert_eq!(stdout(&number), "8\n");
    assert_eq!(stdout(&calculator(&["calc", "subtract", "5", "-3"])), "8\n");
    assert_eq!(stdout(&calculator(&["calc", "divide", "1", "4"])), "0.25\n");
    let json = calculator(&["calc", "sqrt", "16", "--format", "json"]);
    assert_eq!(
        stdout(&json),
        "{\"operation\":\"sqrt\",\"operands\":[16],\"result\":4}\n"
    );
    let table = calculator(&["calc", "power", "2", "8", "--format", "table"]);
    assert_eq!(
        stdout(&table),
        "OPERATION  OPERANDS  RESULT\npower      2 8       256\n"
    );
}

#[test]
fn calc_errors_are_clear_and_exit_non_zero() {
    let cases: &[(&[&str], &str)] = &[
        (&["calc", "divide", "1", "0"], "error: division by zero"),
        (
            &["calc", "sqrt", "-1"],
            "error: square root of a negative number",
        ),
        (
            &["calc", "modulo", "1", "2"],
            "error: unknown operation \"modulo\"",
        ),
        (&["calc", "add", "1"], "error: add takes 2 operands, got 1"),
        (&["calc", "add", "1", "x"], "error: \"x\" is not a number"),
        (
            &["calc", "add", "inf", "1"],
            "error: operand 1 is not a finite number",
        ),
        (
            &["calc", "power", "10", "400"],
            "error: the result of power is not a finite number",
        ),
    ];
    for (args, message) in cases {
        let output = calculator(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).starts_with(message),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

const BATCH: &str =
    "# a batch\nadd 5 3\n\nsqrt 16\ndivide 1 0\nmultiply 2.5 4 # trailing\nfrobnicate 1\n";

#[test]
fn batch_in_every_format_reports_bad_lines_and_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ops.txt");
    std::fs::write(&input, BATCH).unwrap();
    let input = input.to_str().unwrap();

    let table = calculator(&["batch", input]);
    assert_eq!(
        table.status.code(),
        Some(1),
        "a failed line makes the exit code non-zero"
    );
    assert_eq!(
        stdout(&table),
        "LINE  INPUT           RESULT  ERROR\n2     add 5 3         8\n4     sqrt 16         4\n5     divide 1 0              division by zero\n6     multiply 2.5 4  10\n7     frobnicate 1            unknown operation \"frobnicate\"; valid: add, subtract, multiply, divide, power, sqrt, sin, cos, tan, log\n"
    );
    let err = stderr(&table);
    assert!(
        err.contains(&format!("{input}:5: division by zero")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{input}:7: unknown operation")),
        "{err}"
    );
    assert!(err.contains("3 line(s) computed, 2 failed"), "{err}");

    let csv_path = dir.path().join("out.csv");
    let csv = calculator(&[
        "batch",
        input,
        "--format",
        "csv",
        "-o",
        csv_path.to_str().unwrap(),
    ]);
    assert_eq!(csv.status.code(), Some(1));
    assert_eq!(stdout(&csv), "", "with -o nothing goes to stdout");
    let text = std::fs::read_to_string(&csv_path).unwrap();
    assert!(text.starts_with("line,operation,operands,result,error\n2,add,5 3,8,\n4,sqrt,16,4,\n5,divide,1 0,,division by zero\n6,multiply,2.5 4,10,\n7,,,,\"unknown operation"), "{text}");

    let json = calculator(&["batch", input, "--format", "json"]);
    let parsed: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(parsed.as_array().unwrap().len(), 5);
    assert_eq!(parsed[0]["line"], 2);
    assert_eq!(parsed[0]["result"], 8.0);
    assert_eq!(parsed[2]["error"], "division by zero");
}

#[test]
fn batch_of_good_lines_exits_0_and_a_missing_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ok.txt");
    std::fs::write(&input, "add 1 2\nlog 1\n").unwrap();
    let ok = calculator(&["batch", input.to_str().unwrap(), "--format", "csv"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(
        stdout(&ok),
        "line,operation,operands,result,error\n1,add,1 2,3,\n2,log,1,0,\n"
    );
    let missing = calculator(&["batch", "/no/such/file"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).starts_with("error: cannot read /no/such/file"));
}
