//! `shipit deploy | rollback | status | smoke | lock` against the real engine:
//! real containers, a real HAProxy gateway, real HTTP(S), and loads running
//! through the gateway while releases change (wrk on keepalive connections,
//! paced and unpaced, and new connections), counting every failed request.

mod accessories;
mod bench;
pub(crate) mod day2;
mod gateway_image;
mod go_service;
mod hosts;
mod registries;
mod runner;
mod secrets;
mod services;
pub(crate) mod support;
mod tls;
mod workflows;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{
    Load, Loads, SICK, Site, gateway_conf, no_failures, no_failures_in, receiver, wait_for,
};

use crate::docker::free_port;

#[test]
fn docker_deploy_v1_v2_rollback_and_rolling_with_zero_failed_requests() {
    let Some(site) = Site::new("zero") else {
        return;
    };
    let v1 = site.image("1.0.0", "");
    let v2 = site.image("2.0.0", "");
    let v3 = site.image("3.0.0", "");

    // The first release, as planned: the plan it printed is the plan it ran.
    let (_, first) = site.deploy_as_planned("1.0.0", &v1, &[]);
    assert_eq!(first["plan"]["strategy"], "blue-green");
    assert_eq!(
        first["plan"]["hosts"][0]["serving_release"],
        serde_json::Value::Null
    );
    assert_eq!(first["entry"]["result"], "succeeded");
    assert_eq!(first["entry"]["release"], 1);
    assert_eq!(site.serving().as_deref(), Some("1"));

    // Blue-green under load.
    let loads = Loads::start(&site.url());
    let run = site.deploy("2.0.0", &v2, &[]).success();
    assert!(
        run.stderr.contains("switched the gateway serves release 2"),
        "{}",
        run.stderr
    );
    no_failures_in(loads, "the blue-green deploy of 2.0.0");
    assert_eq!(site.serving().as_deref(), Some("2"));

    // The same version again is a reported no-op, as planned.
    let (run, again) = site.deploy_as_planned("2.0.0", &v2, &[]);
    assert_eq!(again["plan"]["no_op"], true);
    assert_eq!(again["entry"]["result"], "no-op");
    assert!(
        run.stderr.contains("already serves 2.0.0"),
        "{}",
        run.stderr
    );

    // Rollback under load: release 1 is started again, health-gated, switched to.
    let loads = Loads::start(&site.url());
    let run = site.shipit(&["rollback", "staging"], &[]).success();
    assert!(
        run.stderr.contains("release 1 serves again"),
        "{}",
        run.stderr
    );
    no_failures_in(loads, "the rollback to 1.0.0");
    assert_eq!(site.serving().as_deref(), Some("1"));

    // Rolling, under load: replicas replaced one at a time.
    let loads = Loads::start(&site.url());
    let (run, rolled) = site.deploy_as_planned("3.0.0", &v3, &["--strategy", "rolling"]);
    assert_eq!(rolled["plan"]["strategy"], "rolling");
    assert!(run.stderr.contains("takes traffic (2/2)"), "{}", run.stderr);
    no_failures_in(loads, "the rolling deploy of 3.0.0");
    assert_eq!(site.serving().as_deref(), Some("3"));

    // Rollback --to a named version.
    let loads = Loads::start(&site.url());
    let run = site
        .shipit(&["rollback", "staging", "--to", "2.0.0"], &[])
        .success();
    assert!(
        run.stderr.contains("to release 2 (2.0.0)"),
        "{}",
        run.stderr
    );
    no_failures_in(loads, "the rollback to 2.0.0");
    let run = site
        .shipit(&["rollback", "staging", "--to", "9.9.9"], &[])
        .code(1);
    assert!(
        run.stderr.contains("no kept release of version 9.9.9"),
        "{}",
        run.stderr
    );

    // Status: the serving release, healthy replicas, kept releases, history.
    let status = site.status();
    assert_eq!(status["release"], 2);
    assert_eq!(status["version"], "2.0.0");
    assert_eq!(status["problems"], serde_json::json!([]), "{status}");
    assert!(status["lock"].is_null());
    let replicas = status["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 2);
    assert!(
        replicas
            .iter()
            .all(|r| r["health"] == "healthy" && r["state"] == "running"),
        "{status}"
    );
    assert!(
        replicas
            .iter()
            .all(|r| r["uptime_seconds"].as_i64().is_some())
    );
    let kept: Vec<u64> = status["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k[0].as_u64().unwrap())
        .collect();
    assert_eq!(kept, [3, 1]);
    assert_eq!(status["gateway"]["state"], "running");
    let history = status["history"].as_array().unwrap();
    let summary: Vec<String> = history
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["action"].as_str().unwrap(),
                e["version"].as_str().unwrap_or("-"),
                e["result"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "deploy 1.0.0 succeeded",
            "deploy 2.0.0 succeeded",
            "deploy 2.0.0 no-op",
            "rollback 1.0.0 succeeded",
            "deploy 3.0.0 succeeded",
            "rollback 2.0.0 succeeded",
        ]
    );
    let deploy2 = &history[1];
    let phases: Vec<&str> = deploy2["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        [
            "preflight",
            "lock",
            "inspect",
            "start",
            "health",
            "smoke",
            "switch",
            "drain",
            "cleanup"
        ]
    );
    assert_eq!(deploy2["previous_version"], "1.0.0");
    assert_eq!(deploy2["strategy"], "blue-green");
    assert!(deploy2["who"].as_str().unwrap().contains('@'));
    assert!(deploy2["duration_ms"].as_u64().unwrap() > 0);

    // Containers: the serving release runs, the kept ones are stopped, nothing else.
    let containers = site.containers();
    let running: Vec<&String> = containers
        .iter()
        .filter(|c| c.ends_with(" running"))
        .collect();
    assert_eq!(running.len(), 3, "{containers:?}"); // 2 replicas + gateway

    // A change of the gateway itself (its rate limit), under load: checked by
    // haproxy -c, then a graceful reload that cuts no connection.
    let loads = Loads::start(&site.url());
    let run = site
        .deploy("2.0.0", &v2, &["--set", "gateway.rate_limit=9000r/s"])
        .success();
    assert!(
        run.stderr
            .contains("the gateway's configuration was reloaded gracefully"),
        "{}",
        run.stderr
    );
    no_failures_in(
        loads,
        "a graceful reload of the gateway's own configuration",
    );
    assert!(
        gateway_conf(&site).contains("gt 100000 "),
        "{}",
        gateway_conf(&site)
    );
    assert_eq!(site.serving().as_deref(), Some("2"));
}

#[test]
fn docker_a_release_that_dies_at_start_fails_at_once_not_at_its_health_timeout() {
    let Some(site) = Site::new("crash") else {
        return;
    };
    let v1 = site.image("1.0.0", "");
    site.shipit(
        &[
            "deploy",
            "staging",
            "--image",
            &v1,
            "--set",
            "app.version=1.0.0",
        ],
        &[],
    )
    .success();
    let load = Load::start(&site.url());
    // Exits at once (an unknown command), restarted by its policy: with the
    // image's HEALTHCHECK (the engine's gate) and without one (the
    // gateway's check, which saw only "Layer4 connection problem").
    for (version, tail) in [
        ("2.0.0", r#"CMD ["no-such-command"]"#),
        ("3.0.0", "HEALTHCHECK NONE\nCMD [\"no-such-command\"]"),
    ] {
        let image = site.image(version, tail);
        let started = Instant::now();
        let run = site
            .shipit(
                &[
                    "deploy",
                    "staging",
                    "--image",
                    &image,
                    "--set",
                    &format!("app.version={version}"),
                    "--set",
                    "deploy.health_timeout=300s",
                ],
                &[],
            )
            .code(1);
        let took = started.elapsed();
        assert!(run.stderr.contains("health failed for"), "{}", run.stderr);
        assert!(
            run.stderr.contains("exited with code 2")
                || run.stderr.contains("exited and the engine restarted it"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("within 300 s"), "{}", run.stderr);
        assert!(run.stderr.contains("last log lines:"), "{}", run.stderr);
        assert!(
            run.stderr.contains("no-such-command"),
            "the replica's own words: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("release 1 (1.0.0) keeps serving"),
            "{}",
            run.stderr
        );
        assert!(took < Duration::from_secs(120), "{version}: {took:?}");
    }
    no_failures(load, "two releases that died at start");
    assert_eq!(site.serving().as_deref(), Some("1"));
}

#[test]
fn docker_broken_releases_are_rolled_back_while_v1_keeps_serving_and_the_webhook_hears() {
    let Some(site) = Site::new("broken") else {
        return;
    };
    let v1 = site.image("1.0.0", "");
    // Never healthy: its health check asks a port nothing listens on.
    let sick = site.image("2.0.0", SICK);
    // Healthy, but serving on the wrong port: the smoke tests fail.
    let astray = site.image(
        "3.0.0",
        "CMD [\"serve\", \"--port\", \"8089\"]\nHEALTHCHECK --interval=1s CMD [\"/calculator\", \"healthcheck\", \"--port\", \"8089\"]",
    );
    let (hook, got) = receiver();
    let env = [("STAGING_WEBHOOK_URL", hook.as_str())];
    site.shipit(
        &[
            "deploy",
            "staging",
            "--image",
            &v1,
            "--set",
            "app.version=1.0.0",
        ],
        &env,
    )
    .success();

    let load = Load::start(&site.url());
    let run = site.shipit(
        &[
            "deploy",
            "staging",
            "--image",
            &sick,
            "--set",
            "app.version=2.0.0",
            "--set",
            "deploy.health_timeout=4s",
        ],
        &env,
    );
    let run = run.code(1);
    assert!(
        run.stderr
            .contains("failed and was rolled back: health failed for"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("was not healthy within 4 s"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("last log lines:"), "{}", run.stderr);
    assert!(
        run.stderr.contains("listening"),
        "the failing container's log lines: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("release 1 (1.0.0) keeps serving"),
        "{}",
        run.stderr
    );
    assert_eq!(site.serving().as_deref(), Some("1"));
    // The diagnosis stays on this machine: the history keeps the reason, not
    // the container's log lines.
    let reason = last_reason(&site);
    assert!(reason.contains("was not healthy within 4 s"), "{reason}");
    assert!(
        !reason.contains("last log lines") && !reason.contains("listening"),
        "{reason}"
    );

    let run = site
        .shipit(
            &[
                "deploy",
                "staging",
                "--image",
                &astray,
                "--set",
                "app.version=3.0.0",
            ],
            &env,
        )
        .code(1);
    // The engine calls it healthy; the gateway cannot reach it: caught by the
    // gateway's own health check, with HAProxy's reason, before any smoke test.
    assert!(run.stderr.contains("health failed for"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the gateway's health check (GET /health) fails for"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Layer4"), "{}", run.stderr);
    assert!(
        run.stderr.contains("release 1 (1.0.0) keeps serving"),
        "{}",
        run.stderr
    );

    // Healthy from the engine and the gateway, but failing a smoke check
    // through the candidate route (its readiness path answers 404).
    let v31 = site.image("3.1.0", "");
    let run = site
        .shipit(
            &[
                "deploy",
                "staging",
                "--image",
                &v31,
                "--set",
                "app.version=3.1.0",
                "--set",
                "app.readiness_path=/not-ready",
            ],
            &env,
        )
        .code(1);
    assert!(run.stderr.contains("smoke failed for"), "{}", run.stderr);
    assert!(run.stderr.contains("GET /not-ready"), "{}", run.stderr);
    // What the service answered is shown here, and kept out of the history.
    assert!(run.stderr.contains("got 404"), "{}", run.stderr);
    let reason = last_reason(&site);
    assert!(reason.contains("GET /not-ready"), "{reason}");
    assert!(!reason.contains("got 404"), "{reason}");
    assert!(
        run.stderr.contains("release 1 (1.0.0) keeps serving"),
        "{}",
        run.stderr
    );
    no_failures(load, "three failed deploys");
    assert_eq!(site.serving().as_deref(), Some("1"));

    // Nothing of the failed releases is left.
    let containers = site.containers();
    assert!(
        containers
            .iter()
            .all(|c| !c.contains("-r2-") && !c.contains("-r3-") && !c.contains("-r4-")),
        "{containers:?}"
    );
    let status = site.status();
    assert_eq!(status["problems"], serde_json::json!([]), "{status}");
    let results: Vec<&str> = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        ["succeeded", "rolled-back", "rolled-back", "rolled-back"]
    );

    // A rollback with nothing kept to go back to says so.
    let run = site.shipit(&["rollback", "staging"], &[]).code(1);
    assert!(
        run.stderr.contains("no previous release is kept"),
        "{}",
        run.stderr
    );

    // The webhook heard all four, with the reason; its URL is in no output.
    let events: Vec<String> = got
        .lock()
        .unwrap()
        .iter()
        .map(|v| v["event"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        events,
        [
            "deploy.succeeded",
            "deploy.rolled-back",
            "deploy.rolled-back",
            "deploy.rolled-back"
        ]
    );
    let failed = got.lock().unwrap()[1].clone();
    assert_eq!(failed["environment"], "staging");
    assert_eq!(failed["version"], "2.0.0");
    assert!(
        failed["reason"].as_str().unwrap().contains("not healthy"),
        "{failed}"
    );
    assert!(
        !failed["reason"]
            .as_str()
            .unwrap()
            .contains("last log lines"),
        "the webhook got the container's log lines: {failed}"
    );
    assert!(!run.stderr.contains("t0ken"));

    // A webhook that cannot be reached never fails a deploy.
    let dead = format!("http://127.0.0.1:{}/hook", free_port());
    let v4 = site.image("4.0.0", "");
    let run = site
        .shipit(
            &[
                "deploy",
                "staging",
                "--image",
                &v4,
                "--set",
                "app.version=4.0.0",
            ],
            &[("STAGING_WEBHOOK_URL", dead.as_str())],
        )
        .success();
    assert!(
        run.stderr.contains("the webhook was not delivered"),
        "{}",
        run.stderr
    );
    assert_eq!(site.serving().as_deref(), Some("5"));
}

#[test]
fn docker_the_lock_a_signal_and_a_killed_deploy_leave_a_consistent_state() {
    let Some(site) = Site::new("lk") else { return };
    let v1 = site.image("1.0.0", "");
    let v2 = site.image("2.0.0", "");
    let sick = site.image("9.0.0", SICK);
    site.deploy("1.0.0", &v1, &[]).success();
    let slow = |site: &Site| slow_deploy(site, &sick, Stdio::piped());
    fn replica_started<'a>(site: &'a Site, release: &str) -> impl FnMut() -> bool + 'a {
        let needle = format!("-r{release}-");
        move || site.containers().iter().any(|c| c.contains(&needle))
    }

    // A second deploy while one runs is refused, naming the holder.
    let load = Load::start(&site.url());
    let first = slow(&site);
    wait_for(
        "the first deploy to start its release",
        replica_started(&site, "2"),
    );
    let run = site.deploy("2.0.0", &v2, &[]).code(1);
    assert!(
        run.stderr
            .contains("staging is locked by another deploy: held by"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("pid {}", first.id())),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("`shipit deploy staging`"),
        "{}",
        run.stderr
    );
    let start = Instant::now();
    let run = site.deploy("2.0.0", &v2, &["--lock-wait", "1s"]).code(1);
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert!(run.stderr.contains("--lock-wait"), "{}", run.stderr);

    // SIGINT: the deploy rolls back and exits 130.
    Command::new("kill")
        .args(["-INT", &first.id().to_string()])
        .status()
        .unwrap();
    let output = first.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted by signal 2"), "{stderr}");
    assert!(
        stderr.contains("release 1 (1.0.0) keeps serving"),
        "{stderr}"
    );
    assert_eq!(site.serving().as_deref(), Some("1"));
    assert!(
        site.containers()
            .iter()
            .all(|c| !c.contains("-r2-") && !c.contains("staging-lock")),
        "{:?}",
        site.containers()
    );

    // SIGKILL: nothing can clean up. The lock is stale, the release half-started.
    let mut second = slow(&site);
    wait_for(
        "the second deploy to start its release",
        replica_started(&site, "3"),
    );
    let pid = second.id();
    second.kill().unwrap();
    second.wait().unwrap();
    no_failures(load, "a refused, an interrupted and a killed deploy");
    assert_eq!(site.serving().as_deref(), Some("1"));

    let status = site.status();
    let problems = status["problems"].to_string();
    assert!(
        problems.contains("left by an interrupted deploy"),
        "{status}"
    );
    assert!(
        problems.contains("a stale lock is left by a killed deploy"),
        "{status}"
    );
    assert_eq!(status["lock"]["pid"], pid);
    assert_eq!(status["lock"]["stale"], true);
    let run = site.shipit(&["lock", "show", "staging"], &[]).success();
    assert!(run.stderr.contains("STALE"), "{}", run.stderr);

    // The next deploy is refused while the lock stands, and says how to release it.
    let run = site.deploy("2.0.0", &v2, &[]).code(1);
    assert!(
        run.stderr.contains("STALE") && run.stderr.contains("shipit lock release staging"),
        "{}",
        run.stderr
    );
    let run = site.shipit(&["lock", "release", "staging"], &[]).success();
    assert!(run.stderr.contains(&format!("pid {pid}")), "{}", run.stderr);

    // ... then repairs what the killed one left, and deploys.
    let run = site.deploy("2.0.0", &v2, &[]).success();
    assert!(run.stderr.contains("repaired"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("left by an interrupted deploy of release 3"),
        "{}",
        run.stderr
    );
    assert_eq!(site.serving().as_deref(), Some("4"));
    let status = site.status();
    assert_eq!(status["problems"], serde_json::json!([]), "{status}");
    let history: Vec<String> = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["result"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            "deploy succeeded",
            "deploy interrupted",
            "lock-release succeeded",
            "deploy interrupted",
            "deploy succeeded"
        ]
    );
}

#[test]
fn docker_a_rolling_deploy_killed_between_releases_is_repaired() {
    let Some(site) = Site::new("half") else {
        return;
    };
    let v1 = site.image("1.0.0", "");
    let v2 = site.image("2.0.0", "");
    site.deploy("1.0.0", &v1, &[]).success();
    let load = Load::start(&site.url());
    let mut child = site
        .command(&[
            "deploy",
            "staging",
            "--image",
            &v2,
            "--set",
            "app.version=2.0.0",
            "--strategy",
            "rolling",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed the moment the gateway serves one replica of each release.
    let new = format!("{}-staging-r2-1", site.app);
    let old = format!("{}-staging-r1-2", site.app);
    wait_for("the gateway to serve both releases", || {
        let conf = gateway_conf(&site);
        conf.contains(&new) && conf.contains(&old)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let status = site.status();
    assert!(
        status["problems"]
            .to_string()
            .contains("the gateway is between releases"),
        "{status}"
    );

    site.shipit(&["lock", "release", "staging"], &[]).success();
    let run = site.deploy("1.0.0", &v1, &[]).success();
    assert!(
        run.stderr.contains("release 1 serves again"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("left by an interrupted deploy of release 2"),
        "{}",
        run.stderr
    );
    // Release 1 is whole again, so deploying it is the no-op it should be.
    assert!(
        run.stderr.contains("already serves 1.0.0"),
        "{}",
        run.stderr
    );
    no_failures(load, "a rolling deploy killed half-way, and its repair");
    assert_eq!(site.serving().as_deref(), Some("1"));
    let conf = gateway_conf(&site);
    assert!(!conf.contains("-r2-"), "{conf}");
    let status = site.status();
    assert_eq!(status["problems"], serde_json::json!([]), "{status}");
    assert_eq!(status["replicas"].as_array().unwrap().len(), 2, "{status}");
}

#[test]
fn docker_faults_engine_image_port_and_a_rejected_gateway_config() {
    let Some(site) = Site::new("faults") else {
        return;
    };
    let v1 = site.image("1.0.0", "");

    // No engine.
    let run = site.shipit(
        &[
            "deploy",
            "staging",
            "--image",
            &v1,
            "--set",
            "app.version=1.0.0",
        ],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    let run = run.code(1);
    assert!(
        run.stderr
            .contains("cannot reach the Docker engine at unix:///nonexistent/docker.sock"),
        "{}",
        run.stderr
    );

    // An image that is not there.
    let missing = format!("{}:0.0.404", site.repository);
    let run = site.deploy("0.0.404", &missing, &[]).code(1);
    assert!(
        run.stderr
            .contains("is not on the engine and could not be pulled"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("shipit build staging"),
        "{}",
        run.stderr
    );
    assert!(site.containers().is_empty(), "{:?}", site.containers());

    // The gateway's port is taken: nothing is left running.
    let holder = TcpListener::bind(("0.0.0.0", site.port)).unwrap();
    let run = site.deploy("1.0.0", &v1, &[]).code(1);
    assert!(
        run.stderr
            .contains("a port the gateway publishes is already taken"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("the gateway could not be prepared, so nothing else was changed"),
        "{}",
        run.stderr
    );
    assert!(
        site.containers()
            .iter()
            .all(|c| !c.contains("-r1-") && !c.contains("gateway")),
        "{:?}",
        site.containers()
    );
    drop(holder);
    // Refused before a release number was taken: the next deploy is release 1.
    site.deploy("1.0.0", &v1, &[]).success();
    assert_eq!(site.serving().as_deref(), Some("1"));

    // A configuration HAProxy rejects is never installed.
    let mut set = site.sets();
    set.retain(|s| s != "--set");
    set.retain(|s| s != "app.version=0.0.0");
    set.push("app.version=1.0.0".into());
    let overrides = shipit::config::Overrides {
        set,
        env: Vec::new(),
    };
    let loaded = shipit::config::load(site.project.path(), Some("staging"), &overrides).unwrap();
    let settings = shipit::deploy::Settings::new(&loaded).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let result = runtime.block_on(async {
        let engine = shipit::engine::Engine::connect().await.unwrap();
        let serving = format!("{}-staging-r1-1", site.app);
        let good = shipit::deploy::gateway::config(&settings, &[serving]).unwrap();
        let broken = good.replace(
            "balance roundrobin",
            "balance roundrobin\n    no_such_keyword on",
        );
        shipit::deploy::gateway::reconfigure(&engine, &settings, &broken, 1).await
    });
    let why = result.unwrap_err();
    assert!(
        why.contains("HAProxy rejected the new gateway configuration"),
        "{why}"
    );
    assert!(why.contains("no_such_keyword"), "{why}");
    assert!(gateway_conf(&site).contains("balance roundrobin\n"));
    assert!(!gateway_conf(&site).contains("no_such_keyword"));
    assert_eq!(site.serving().as_deref(), Some("1"));
    let status = site.status();
    assert_eq!(status["problems"], serde_json::json!([]), "{status}");
}

#[test]
fn docker_smoke_reports_for_people_json_and_junit() {
    let Some(site) = Site::new("smoke") else {
        return;
    };
    let v1 = site.image("1.0.0", "");
    let run = site
        .deploy("1.0.0", &v1, &["--dry-run", "--output", "json"])
        .success();
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        (plan["serving_release"].clone(), plan["no_op"].clone()),
        (serde_json::Value::Null, false.into())
    );
    assert!(
        site.containers().is_empty(),
        "a dry run changes nothing: {:?}",
        site.containers()
    );
    site.deploy("1.0.0", &v1, &[]).success();
    let run = site
        .deploy("1.0.0", &v1, &["--dry-run", "--output", "json"])
        .success();
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        (plan["serving_release"].clone(), plan["no_op"].clone()),
        (1.into(), true.into())
    );
    let junit = site.project.path().join("smoke.xml");
    let run = site
        .shipit(
            &[
                "smoke",
                "staging",
                "--url",
                &site.url(),
                "--junit",
                junit.to_str().unwrap(),
                "--output",
                "json",
            ],
            &[],
        )
        .success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["passed"], true);
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for op in [
        "add", "subtract", "multiply", "divide", "power", "sqrt", "sin", "cos", "tan", "log",
    ] {
        assert!(
            names
                .iter()
                .any(|n| n.contains(&format!("/calculate {op} "))),
            "{names:?}"
        );
    }
    assert!(names.iter().any(|n| n.contains("malformed JSON = 400")));
    assert!(names.iter().any(|n| n.contains("http_requests_total")));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(&format!("tests=\"{}\" failures=\"0\"", names.len())),
        "{xml}"
    );

    // Against something that is not the calculator: non-zero, each failure named.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let run = site
        .shipit(
            &[
                "smoke",
                "staging",
                "--url",
                &dead,
                "--timeout",
                "1s",
                "--junit",
                junit.to_str().unwrap(),
            ],
            &[],
        )
        .code(1);
    assert!(run.stderr.contains("smoke tests failed"), "{}", run.stderr);
    assert!(run.stderr.contains("cannot connect"), "{}", run.stderr);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<failure message="), "{xml}");
}

/// The reason the newest history entry records.
fn last_reason(site: &Site) -> String {
    let status = site.status();
    let history = status["history"].as_array().cloned().unwrap_or_default();
    history
        .last()
        .and_then(|e| e["reason"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A tcp:// engine without TLS is refused: the deploy would send secrets and
/// the gateway's key in the clear. Allowed only when said explicitly, and then
/// warned about on every run. (The local engine is reached over plain TCP
/// through socat; the rollback finds nothing deployed, so nothing changes.)
#[test]
fn docker_a_plain_tcp_engine_is_refused_unless_allowed_and_then_warned() {
    if !crate::docker::engine() {
        return;
    }
    let project = crate::harness::Project::from_repo();
    let port = free_port();
    let mut socat = Command::new("socat")
        .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"))
        .arg("UNIX-CONNECT:/var/run/docker.sock")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socat (installed by .ci/install-tools)");
    let engine = format!("tcp://127.0.0.1:{port}");
    wait_for("socat to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });

    // DOCKER_HOST: refused before a byte is sent, then allowed by the variable.
    let plain = [("DOCKER_HOST", engine.as_str())];
    for args in [&["deploy", "staging"][..], &["rollback", "staging"][..]] {
        let run = project.shipit_env(args, &plain).code(1);
        assert!(
            run.stderr.contains("refusing to talk plain HTTP"),
            "{}",
            run.stderr
        );
    }
    let allowed = [
        ("DOCKER_HOST", engine.as_str()),
        ("SHIPIT_ALLOW_PLAIN_TCP", "1"),
    ];
    let run = project
        .shipit_env(&["rollback", "staging"], &allowed)
        .code(1);
    assert!(
        run.stderr.contains("plain HTTP, without TLS"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("nothing was ever deployed"),
        "{}",
        run.stderr
    );

    // deploy.hosts: refused unless the host says insecure = true.
    let staging = project.read("environments/staging.toml");
    let host = format!("\n[[deploy.hosts]]\nengine = \"{engine}\"\naddress = \"127.0.0.1\"\n");
    project.write("environments/staging.toml", &format!("{staging}{host}"));
    let run = project.shipit(&["rollback", "staging"]).code(1);
    assert!(
        run.stderr.contains("refusing to talk plain HTTP"),
        "{}",
        run.stderr
    );
    project.write(
        "environments/staging.toml",
        &format!("{staging}{host}insecure = true\n"),
    );
    let run = project.shipit(&["rollback", "staging"]).code(1);
    assert!(
        run.stderr.contains("plain HTTP, without TLS"),
        "{}",
        run.stderr
    );
    let _ = socat.kill();
    let _ = socat.wait();
}

/// A deploy of `sick` (never healthy) that holds the lock for up to a
/// minute, running in the background.
fn slow_deploy(site: &Site, sick: &str, stderr: Stdio) -> std::process::Child {
    site.command(&[
        "deploy",
        "staging",
        "--image",
        sick,
        "--set",
        "app.version=9.0.0",
        "--set",
        "deploy.health_timeout=60s",
    ])
    .stdout(Stdio::null())
    .stderr(stderr)
    .spawn()
    .unwrap()
}

/// The replicas of `release` the engine holds, running or not.
fn replicas_of_release(site: &Site, release: u64) -> usize {
    let (_, out) = crate::docker::docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=dev.shipit.app={}", site.app),
        "--filter",
        "label=dev.shipit.role=replica",
        "--filter",
        &format!("label=dev.shipit.release={release}"),
        "--format",
        "{{.Names}}",
    ]);
    out.lines().count()
}

#[test]
fn docker_history_entries_are_files_written_once_and_damage_removes_no_release() {
    let Some(site) = Site::new("hist") else {
        return;
    };
    let v1 = site.image("1.0.0", "");
    let v2 = site.image("2.0.0", "");
    let v3 = site.image("3.0.0", "");
    site.deploy("1.0.0", &v1, &[]).success();
    site.deploy("2.0.0", &v2, &[]).success();
    let state = format!("shipit-{}-staging-state", site.app);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy");
    let (ok, _) = crate::docker::docker(&[
        "cp",
        &format!("{state}:/state/history.d"),
        copy.to_str().unwrap(),
    ]);
    assert!(ok);
    let mut files: Vec<String> = std::fs::read_dir(&copy)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["00000001.json", "00000002.json"]);
    let first = std::fs::read_to_string(copy.join("00000001.json")).unwrap();
    assert!(first.contains("\"release\":1"), "{first}");

    // What a write cut off leaves: both entries torn (the records of the
    // kept release 1 and the serving release 2), and a history from an
    // older shipit with one good line and a torn one.
    let put = |name: &str, text: &str| {
        let file = dir.path().join(name.replace('/', "_"));
        std::fs::write(&file, text).unwrap();
        let (ok, out) = crate::docker::docker(&[
            "cp",
            file.to_str().unwrap(),
            &format!("{state}:/state/{name}"),
        ]);
        assert!(ok, "{out}");
    };
    put("history.d/00000001.json", &first[..first.len() / 2]);
    put("history.d/00000002.json", "");
    put(
        "history.jsonl",
        "{\"action\":\"lock-release\",\"result\":\"succeeded\",\"release\":null,\"version\":null,\"image\":null,\"image_id\":null,\"previous_release\":null,\"previous_version\":null,\"strategy\":null,\"who\":\"old@host\",\"started\":\"2026-01-01T00:00:00Z\",\"duration_ms\":1,\"reason\":null}\n{\"action\":\"dep",
    );
    let status = site.status();
    let problems = status["problems"].to_string();
    assert!(
        problems.contains("3 unreadable entries")
            && problems.contains("history.d/00000001.json")
            && problems.contains("history.jsonl line 2"),
        "{status}"
    );
    assert_eq!(status["history"][0]["who"], "old@host", "{status}");

    // The next deploy cannot tell whether releases 1 and 2 served: it keeps
    // both (a damaged history never removes a release), and says why.
    let run = site.deploy("3.0.0", &v3, &[]).success();
    assert!(run.stderr.contains("unreadable entr"), "{}", run.stderr);
    assert_eq!(site.serving().as_deref(), Some("3"));
    assert_eq!(replicas_of_release(&site, 1), 2, "release 1 was removed");
    assert_eq!(replicas_of_release(&site, 2), 2, "release 2 was removed");

    // New entries are new files (the repair that recorded the serving
    // release 2 again, then the deploy); the damaged ones are as they were.
    let again = dir.path().join("again");
    crate::docker::docker(&[
        "cp",
        &format!("{state}:/state/history.d"),
        again.to_str().unwrap(),
    ]);
    let third = std::fs::read_to_string(again.join("00000003.json")).unwrap();
    assert!(
        third.contains("\"action\":\"repair\"") && third.contains("\"release\":2"),
        "{third}"
    );
    let fourth = std::fs::read_to_string(again.join("00000004.json")).unwrap();
    assert!(
        fourth.contains("\"action\":\"deploy\"") && fourth.contains("\"release\":3"),
        "{fourth}"
    );
    assert_eq!(
        std::fs::read_to_string(again.join("00000002.json")).unwrap(),
        ""
    );
}

/// `curl` through the gateway: the status and the body.
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn docker_the_gateway_holds_bodies_chunked_or_not_and_rates_as_nginx_does() {
    let Some(mut site) = Site::new("limits") else {
        return;
    };
    site.extra = vec![
        "gateway.rate_limit=20r/s".into(),
        "gateway.burst=40".into(),
        "gateway.body_size=16k".into(),
        // The access log keeps every error and (almost) no success.
        "gateway.log_sample=1000000".into(),
    ];
    let v1 = site.image("1.0.0", "");
    site.deploy("1.0.0", &v1, &[]).success();
    // An error answer of the service's own, for the access log (below).
    let lost = shipit::http::request(
        &format!("{}/no-such-path", site.url()),
        "GET",
        &[("X-Request-Id", "sampled-out-never")],
        b"",
        Duration::from_secs(2),
    )
    .unwrap();
    assert_eq!(lost.status, 404);
    let url = format!("{}/calculate", site.url());
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    std::fs::write(&big, format!("{{\"pad\":\"{}\"}}", "x".repeat(20_000))).unwrap();
    let big = format!("@{}", big.display());
    let json = ["-H", "Content-Type: application/json"];

    // Over gateway.body_size with a length, and without one (chunked): the
    // gateway answers 413 itself (its page, not the service's JSON).
    for chunked in [false, true] {
        let mut args = vec!["-X", "POST", "--data-binary", &big, &url];
        args.extend(json);
        if chunked {
            args.extend(["-H", "Transfer-Encoding: chunked"]);
        }
        let (code, body) = curl(&args);
        assert_eq!(code, 413, "chunked {chunked}: {body}");
        assert!(body.contains("<h1>413"), "chunked {chunked}: {body}");
    }
    // A small chunked body goes through to the service.
    let small = r#"{"operation":"add","operands":[1,2]}"#;
    let mut args = vec!["-X", "POST", "--data-binary", small, &url];
    args.extend(json);
    args.extend(["-H", "Transfer-Encoding: chunked"]);
    let (code, body) = curl(&args);
    assert_eq!(code, 200, "{body}");

    // 20r/s with a burst of 40, as nginx means it: 41 at once, then 20 a
    // second; never the window's whole 240 in one go.
    std::thread::sleep(Duration::from_millis(1100));
    let start = Instant::now();
    let mut admitted = 0u64;
    for _ in 0..150 {
        let r = shipit::http::request(
            &format!("{}/version", site.url()),
            "GET",
            &[],
            b"",
            Duration::from_secs(2),
        )
        .unwrap();
        if r.status != 429 {
            admitted += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    assert!(admitted >= 41, "{admitted} admitted: the burst is 40");
    let most = 41.0 + 20.0 * elapsed.ceil();
    assert!(
        admitted as f64 <= most,
        "{admitted} admitted in {elapsed:.2} s: nginx's bucket admits at most {most}"
    );

    // gateway.log_sample: the service's error answers (the 404 above) and
    // the gateway's own (413, 429) are all in the access log; of its 40-odd
    // successes, 1 in a million is.
    let (_, log) = crate::docker::docker(&[
        "logs",
        &format!("{}-{}-gateway", site.app, site.environment),
    ]);
    let count = |status: &str| {
        log.lines()
            .filter(|l| l.contains(&format!("\"status\":{status},")))
            .count()
    };
    assert_eq!(count("413"), 2, "{log}");
    assert!(count("429") >= 1, "{log}");
    assert!(
        log.contains("\"request_id\":\"sampled-out-never\""),
        "{log}"
    );
    assert!(count("200") <= 1, "{} logged: {log}", count("200"));
}

#[test]
fn docker_the_release_header_is_told_to_private_networks_and_shipit_only() {
    let Some(mut site) = Site::new("public") else {
        return;
    };
    // This machine is outside gateway.metrics_allow: it is "the public".
    site.extra = vec![r#"gateway.metrics_allow=["192.0.2.0/24"]"#.into()];
    let v1 = site.image("1.0.0", "");
    let v2 = site.image("2.0.0", "");
    // shipit's own checks still see which release answers (the deploys
    // verify it through the gateway before they succeed) ...
    site.deploy("1.0.0", &v1, &[]).success();
    site.deploy("2.0.0", &v2, &[]).success();
    assert_eq!(site.status()["release"], 2);
    // ... but the public is not told, whatever it sends.
    for headers in [vec![], vec![("X-Shipit-Probe", "0123456789abcdef")]] {
        let r = shipit::http::request(
            &format!("{}/health", site.url()),
            "GET",
            &headers,
            b"",
            Duration::from_secs(2),
        )
        .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("X-Shipit-Release"), None, "{headers:?}");
        assert!(r.header("X-Request-Id").is_some());
    }
}

#[test]
fn docker_a_lock_is_a_lease_kept_by_its_heartbeat_and_taken_over_once_it_stops() {
    let Some(mut site) = Site::new("lease") else {
        return;
    };
    site.extra = vec!["deploy.lock_lease=3s".into()];
    let v1 = site.image("1.0.0", "");
    let v2 = site.image("2.0.0", "");
    let sick = site.image("9.0.0", SICK);
    site.deploy("1.0.0", &v1, &[]).success();
    let mut holder = slow_deploy(&site, &sick, Stdio::null());
    let lock = || {
        let run = site
            .shipit(&["lock", "show", "staging", "--output", "json"], &[])
            .success();
        serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap()["lock"].clone()
    };
    wait_for("the slow deploy to hold the lock", || lock().is_object());

    // Held past its 3 s lease: its heartbeat keeps it (the engine's clock).
    std::thread::sleep(Duration::from_secs(5));
    let held = lock();
    assert_eq!(held["expired"], false, "{held}");
    assert_eq!(held["stale"], false, "{held}");
    assert_eq!(held["lease_seconds"], 3, "{held}");
    assert!(held["heartbeat_age"].as_i64().unwrap() <= 2, "{held}");
    // A person cannot release a live lock by mistake, only with --force.
    let refused = site.shipit(&["lock", "release", "staging"], &[]).code(1);
    assert!(
        refused.stderr.contains("still running") && refused.stderr.contains("--force"),
        "{}",
        refused.stderr
    );
    assert!(lock().is_object());

    // Killed: the heartbeat stops, and once the lease has run out the next
    // deploy takes the lock over, naming its old holder, and deploys.
    let pid = holder.id();
    holder.kill().unwrap();
    holder.wait().unwrap();
    wait_for("the lease to run out", || lock()["expired"] == true);
    let run = site.deploy("2.0.0", &v2, &[]).success();
    assert!(
        run.stderr
            .contains("taking over a lock whose lease ran out")
            && run.stderr.contains(&format!("pid {pid}")),
        "{}",
        run.stderr
    );
    assert_eq!(site.serving().as_deref(), Some("3"));
    assert!(lock().is_null(), "the deploy let go of the lock it took");
}
