//! `shipit validate`: located, actionable errors and exit code 2.

use crate::harness::Project;

#[test]
fn the_repository_environments_are_valid() {
    let run = Project::from_repo().shipit(&["validate"]).success();
    for env in ["development", "staging", "production"] {
        assert!(
            run.stderr.contains(&format!(
                "valid {env} (environments/base.toml + environments/{env}.toml)"
            )),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn malformed_toml_is_located_and_exits_2() {
    let project = Project::minimal("replicas = 2\n[gateway\nport = 1\n");
    let run = project.shipit(&["validate", "test"]).code(2);
    assert!(
        run.stderr.starts_with("error: invalid TOML: "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("  --> environments/test.toml:2:"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("2 | [gateway\n"), "{}", run.stderr);
    assert!(
        run.stderr.contains("error: environment test is invalid"),
        "{}",
        run.stderr
    );
}

#[test]
fn unknown_key_exact_message() {
    let project = Project::minimal("[gateway]\nrate_limt = \"5r/s\"\n");
    let run = project.shipit(&["validate", "test"]).code(2);
    let expected = "error: unknown key `rate_limt` in [gateway] (key `gateway.rate_limt`)
  --> environments/test.toml:2:1
  |
2 | rate_limt = \"5r/s\"
  | ^^^^^^^^^
  = help: did you mean `rate_limit`? valid keys here: body_size, burst, connect_timeout, image, log_sample, metrics_allow, port, rate_limit, read_timeout, send_timeout, server_names, tls
";
    assert!(run.stderr.starts_with(expected), "got:\n{}", run.stderr);
}

#[test]
fn bad_values_in_two_files_are_all_reported_at_once() {
    let project = Project::minimal("replicas = 0\n[gateway]\nrate_limit = \"fast\"\n");
    project.write(
        "environments/base.toml",
        "[app]\nname = \"calculator\"\nversion_source = \"config\"\nversion = \"1.0.0\"\nport = 99999\n",
    );
    let run = project.shipit(&["validate", "test"]).code(2);
    assert!(
        run.stderr.contains(
            "port 99999 is out of range (key `app.port`)\n  --> environments/base.toml:5:8"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("replicas = 0 leaves nothing running (key `replicas`)\n  --> environments/test.toml:1:12"), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "\"fast\" is not a rate (key `gateway.rate_limit`)\n  --> environments/test.toml:3:14"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("3 configuration problems found"),
        "{}",
        run.stderr
    );
}

#[test]
fn json_output_lists_problems_with_locations() {
    let project = Project::minimal("[secrets]\nDB_PASSWORD = \"hunter2\"\n");
    let run = project
        .shipit(&["--output", "json", "validate", "test"])
        .code(2);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("json on stdout");
    assert_eq!(report["valid"], false);
    let problem = &report["environments"][0]["problems"][0];
    assert_eq!(problem["file"], "environments/test.toml");
    assert_eq!(problem["line"], 2);
    assert_eq!(problem["column"], 15);
    assert_eq!(problem["key"], "secrets.DB_PASSWORD");
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .contains("is not given as a reference"),
        "{problem}"
    );
    assert!(
        !run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"),
        "a literal secret must not be echoed back"
    );
    let run = project
        .shipit(&[
            "validate",
            "test",
            "--set",
            "secrets.API_KEY=sk-live-123",
            "--set",
            "env.AUTH_TOKEN=tok-456",
        ])
        .code(2);
    for leaked in ["hunter2", "sk-live-123", "tok-456"] {
        assert!(
            !run.stderr.contains(leaked),
            "{leaked} echoed back:\n{}",
            run.stderr
        );
    }
    assert!(
        run.stderr
            .contains("  --> environments/test.toml:2:15 (line not shown: it may hold a secret)"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unknown_environment_names_the_known_ones() {
    let run = Project::from_repo().shipit(&["validate", "prod"]).code(2);
    assert!(
        run.stderr
            .contains("known environments: development, production, staging"),
        "{}",
        run.stderr
    );
}

#[test]
fn overrides_from_env_vars_and_set_are_validated_too() {
    let project = Project::from_repo();
    let run = project
        .shipit_env(
            &["validate", "staging", "--set", "image.tag=bad tag"],
            &[("SHIPIT__REPLICAS", "0")],
        )
        .code(2);
    assert!(
        run.stderr
            .contains("\"bad tag\" is not a valid tag (key `image.tag`)\n  --> --set image.tag\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("(key `replicas`)\n  --> environment variable SHIPIT__REPLICAS"),
        "{}",
        run.stderr
    );
    let run = project
        .shipit_env(
            &["validate", "staging", "--set", "image.tag=sha-abc1234"],
            &[],
        )
        .success();
    assert!(
        run.stderr
            .contains("image ghcr.io/shipit-dev/calculator:sha-abc1234"),
        "{}",
        run.stderr
    );
}

#[test]
fn completions_are_generated() {
    let run = Project::empty().shipit(&["completions", "bash"]).success();
    assert!(
        run.stdout.contains("_shipit()") && run.stdout.contains("render"),
        "{}",
        &run.stdout[..200.min(run.stdout.len())]
    );
}

#[test]
fn set_before_and_after_the_subcommand_both_apply() {
    let project = Project::from_repo();
    // clap alone would keep only the occurrences after the subcommand.
    let run = project
        .shipit(&[
            "--set",
            "replicas=0",
            "validate",
            "staging",
            "--set",
            "gateway.burst=3",
        ])
        .code(2);
    assert!(run.stderr.contains("replicas"), "{}", run.stderr);
    project
        .shipit(&[
            "--set=replicas=2",
            "validate",
            "staging",
            "--set",
            "gateway.burst=3",
        ])
        .success();
}

#[test]
fn a_webhook_url_must_be_a_secret_reference_and_is_never_echoed() {
    let project = Project::from_repo();
    let run = project
        .shipit(&[
            "validate",
            "staging",
            "--set",
            "deploy.webhook=https://hooks.example.com/T0KEN",
        ])
        .code(2);
    assert!(run.stderr.contains("deploy.webhook"), "{}", run.stderr);
    assert!(run.stderr.contains("env:NAME"), "{}", run.stderr);
    assert!(!run.stderr.contains("T0KEN"), "{}", run.stderr);
    project
        .shipit(&[
            "validate",
            "staging",
            "--set",
            "deploy.webhook=file:/run/secrets/hook",
        ])
        .success();
}
