//! The deploy benchmark (`.ci/bench-deploy`, in `just bench`).

use std::time::Instant;

use super::support::{Load, Site};

/// `just bench` (`.ci/bench-deploy`): one blue-green deploy's timeline,
/// shipit's own overhead, and failed requests during 10 consecutive deploys
/// and rollbacks under load. Run with `--ignored --nocapture`.
#[test]
#[ignore = "a benchmark: run by .ci/bench-deploy"]
fn bench_deploy_timeline_overhead_and_failed_requests() {
    let Some(site) = Site::new("bench") else {
        return;
    };
    let versions: Vec<(String, String)> = (1..=6)
        .map(|i| {
            let v = format!("{i}.0.0");
            let image = site.image(&v, "");
            (v, image)
        })
        .collect();
    // BENCH_SHUTDOWN_DELAY: the replicas' SHUTDOWN_DELAY_SECONDS (shipit's default is 1).
    let delay = std::env::var("BENCH_SHUTDOWN_DELAY")
        .ok()
        .map(|d| format!("env.SHUTDOWN_DELAY_SECONDS={d}"));
    let extra: Vec<&str> = match &delay {
        Some(set) => vec!["--set", set.as_str()],
        None => Vec::new(),
    };
    let deploy = |version: &str, image: &str, json: bool| {
        let mut args = extra.clone();
        if json {
            args.extend(["--output", "json"]);
        }
        site.deploy(version, image, &args)
    };
    deploy(&versions[0].0, &versions[0].1, false).success();

    let load = Load::start(&site.url());
    let started = Instant::now();
    let mut deploys: Vec<serde_json::Value> = Vec::new();
    let mut rollbacks: Vec<serde_json::Value> = Vec::new();
    for (version, image) in &versions[1..] {
        let run = deploy(version, image, true).success();
        deploys.push(serde_json::from_str(&run.stdout).unwrap());
        let mut args = vec!["rollback", "staging", "--output", "json"];
        args.extend(extra.iter());
        let run = site.shipit(&args, &[]).success();
        rollbacks.push(serde_json::from_str(&run.stdout).unwrap());
    }
    let seconds = started.elapsed().as_secs_f64();
    let (ok, failures) = load.finish();

    let phase = |v: &serde_json::Value, name: &str| -> u64 {
        v["entry"]["phases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"] == name)
            .map(|p| p["ms"].as_u64().unwrap())
            .sum()
    };
    let median = |mut xs: Vec<u64>| {
        xs.sort_unstable();
        xs[xs.len() / 2]
    };
    println!(
        "\n## shipit deploy (blue-green, 2 replicas of the calculator, local engine; SHUTDOWN_DELAY_SECONDS={})\n",
        std::env::var("BENCH_SHUTDOWN_DELAY").unwrap_or_else(|_| "1".into())
    );
    println!(
        "Median of {} deploys, each from a running release to a new one:\n",
        deploys.len()
    );
    println!("| phase | median ms | what happens |");
    println!("|---|---:|---|");
    let names = [
        ("preflight", "images present, secrets resolved"),
        ("lock", "the lock container created"),
        (
            "inspect",
            "history, gateway config and containers read; repair check",
        ),
        ("start", "engine: create and start 2 containers"),
        ("health", "engine: first health checks pass (interval 1 s)"),
        ("smoke", "14 smoke checks through the candidate route"),
        (
            "switch",
            "new servers added live, health-checked by the gateway, old ones drained; verified",
        ),
        (
            "drain",
            "engine: old replicas stopped (the app's 1 s shutdown delay)",
        ),
        (
            "cleanup",
            "releases beyond keep_releases removed, history appended",
        ),
    ];
    for (name, what) in names {
        println!(
            "| {name} | {} | {what} |",
            median(deploys.iter().map(|d| phase(d, name)).collect())
        );
    }
    let total = median(
        deploys
            .iter()
            .map(|d| d["entry"]["duration_ms"].as_u64().unwrap())
            .collect(),
    );
    let overhead: Vec<u64> = deploys
        .iter()
        .map(|d| {
            d["entry"]["duration_ms"].as_u64().unwrap() - phase(d, "start") - phase(d, "health")
        })
        .collect();
    let overhead_without_drain: Vec<u64> = deploys
        .iter()
        .map(|d| {
            d["entry"]["duration_ms"].as_u64().unwrap()
                - phase(d, "start")
                - phase(d, "health")
                - phase(d, "drain")
        })
        .collect();
    println!("| **total** | {total} | |");
    println!(
        "\nshipit overhead (total - start - health): median {} ms, max {} ms",
        median(overhead.clone()),
        overhead.iter().max().unwrap()
    );
    println!(
        "shipit overhead excluding the drain too (total - start - health - drain): median {} ms, max {} ms",
        median(overhead_without_drain.clone()),
        overhead_without_drain.iter().max().unwrap()
    );
    let rollback_total = median(
        rollbacks
            .iter()
            .map(|d| d["entry"]["duration_ms"].as_u64().unwrap())
            .collect(),
    );
    println!(
        "rollback (start kept release, health, smoke, switch, drain): median {rollback_total} ms"
    );
    println!(
        "\n## under load: {} consecutive deploys and rollbacks in {seconds:.1} s\n\n{} requests through the gateway ({:.0}/s, fresh connection each), failed: {}",
        deploys.len() + rollbacks.len(),
        ok as usize + failures.len(),
        (ok as usize + failures.len()) as f64 / seconds,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{:?}",
        &failures[..failures.len().min(5)]
    );
}

/// `just bench` (`.ci/bench-deploy`): requests per second and p99 through
/// the gateway, plain and TLS, against the same load sent directly to the
/// one replica, in one run (ratios); then failed requests per switch with
/// wrk on keepalive connections (paced and unpaced) and a new-connection
/// client running through 3 deploys and 3 rollbacks.
#[test]
#[ignore = "a benchmark: run by .ci/bench-deploy"]
fn bench_gateway_throughput_and_failed_requests_per_switch() {
    use super::support::{Loads, no_failures_in, parse_wrk};
    use crate::certs::Pki;
    use crate::docker::{docker, free_port};

    let Some(mut site) = Site::new("gwbench") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("bench");
    let leaf = pki.leaf(&["calculator.test"], -1, 90);
    let (chain, key, root) = pki.write(dir.path(), &leaf, "bench");
    let tls_port = free_port();
    site.extra = vec![
        "replicas=1".into(),
        "gateway.rate_limit=100000r/s".into(),
        "gateway.tls.enabled=true".into(),
        "gateway.tls.redirect_http=false".into(),
        format!("gateway.tls.port={tls_port}"),
        r#"gateway.server_names=["calculator.test"]"#.into(),
        format!("gateway.tls.certificate_from=file:{}", chain.display()),
        format!("gateway.tls.key_from=file:{}", key.display()),
        format!("smoke.ca=file:{}", root.display()),
    ];
    let versions: Vec<(String, String)> = (1..=5)
        .map(|i| {
            let v = format!("{i}.0.0");
            let image = site.image(&v, "");
            (v, image)
        })
        .collect();
    site.deploy(&versions[0].0, &versions[0].1, &[]).success();
    let replica = format!("{}-staging-r1-1", site.app);
    let (_, ip) = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &replica,
    ]);
    let direct = format!("http://{}:8080", ip.trim());
    let (_, gateway_ip) = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &format!("{}-staging-gateway", site.app),
    ]);
    let gateway_ip = gateway_ip.trim().to_string();
    // The gateway's published ports on loopback go through the engine's
    // userland proxy; its own address is the path other machines take.
    let targets = [
        ("directly to the replica", direct.clone()),
        (
            "through the gateway (HTTP, its address)",
            format!("http://{gateway_ip}:8080"),
        ),
        (
            "through the gateway (HTTPS, its address)",
            format!("https://{gateway_ip}:8443"),
        ),
        (
            "through the gateway (HTTP, published port on 127.0.0.1)",
            site.url(),
        ),
        (
            "through the gateway (HTTPS, published port on 127.0.0.1)",
            format!("https://127.0.0.1:{tls_port}"),
        ),
    ];
    let script = dir.path().join("post.lua");
    std::fs::write(
        &script,
        "wrk.method = \"POST\"\nwrk.body = '{\"operation\":\"multiply\",\"operands\":[6,7]}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
    )
    .unwrap();
    // Two rounds, interleaved, so drift on a noisy machine hits every target alike.
    let measure = |targets: &[(&str, String)]| {
        let mut results: Vec<Vec<(f64, f64)>> = vec![Vec::new(); targets.len()];
        for _round in 0..2 {
            for (i, (_, url)) in targets.iter().enumerate() {
                let out = std::process::Command::new("wrk")
                    .args(["-t1", "-c10", "-d5s", "--latency", "-s"])
                    .arg(&script)
                    .arg(format!("{url}/calculate"))
                    .output()
                    .unwrap();
                let report = parse_wrk(&String::from_utf8_lossy(&out.stdout));
                assert_eq!(
                    (report.socket_errors, report.non_2xx),
                    (0, 0),
                    "{}",
                    report.text
                );
                results[i].push((report.rps, report.p99_ms));
            }
        }
        let best = |rs: &Vec<(f64, f64)>| {
            let rps = rs.iter().map(|r| r.0).fold(0.0, f64::max);
            let p99 = rs.iter().map(|r| r.1).fold(f64::INFINITY, f64::min);
            (rps, p99)
        };
        let (direct_rps, direct_p99) = best(&results[0]);
        for (i, (what, _)) in targets.iter().enumerate() {
            let (rps, p99) = best(&results[i]);
            println!(
                "| {what} | {rps:.0} | {p99:.2} | {:.2}x | {:.2}x |",
                rps / direct_rps,
                p99 / direct_p99
            );
        }
    };
    println!("\n## the deploy gateway (HAProxy 2.6, runtime API) vs one replica directly\n");
    println!(
        "wrk -t1 -c10 -d5s, POST /calculate on keepalive connections, best of 2 interleaved rounds; one replica with its 0.5 CPU limit; the gateway writes an access log line per request (gateway.log_sample = 1, through the engine's log driver).\n"
    );
    println!("| target | req/s | p99 ms | req/s vs direct | p99 vs direct |");
    println!("|---|---:|---:|---:|---:|");
    measure(&targets);

    // Failed requests per switch, keepalive load running throughout.
    let https = format!("https://calculator.test:{tls_port}");
    let route = shipit::http::Route {
        connect: Some(format!("127.0.0.1:{tls_port}")),
        headers: Vec::new(),
        tls: Some(shipit::http::trusting(pki.root_pem.as_bytes()).unwrap()),
    };
    let mut switches = 0;
    let mut lines = Vec::new();
    for (label, wrk_url, url, route) in [
        (
            "HTTP",
            site.url(),
            site.url(),
            shipit::http::Route::default(),
        ),
        (
            "HTTPS",
            format!("https://127.0.0.1:{tls_port}"),
            https.clone(),
            route.clone(),
        ),
    ] {
        let loads = Loads::start_via(&wrk_url, &url, route);
        let started = std::time::Instant::now();
        let mut here = 0;
        let pick: Vec<&(String, String)> = if label == "HTTP" {
            versions[1..3].iter().collect()
        } else {
            versions[3..4].iter().collect()
        };
        for (version, image) in pick {
            site.deploy(version, image, &[]).success();
            site.shipit(&["rollback", "staging"], &[]).success();
            here += 2;
        }
        let seconds = started.elapsed().as_secs_f64();
        let counts = no_failures_in(loads, &format!("{here} switches over {label}"));
        switches += here;
        lines.push(format!(
            "| {label} | {here} | {seconds:.1} | {} | 0 |",
            counts
                .iter()
                .map(|(what, n)| format!("{what}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    println!(
        "\n## failed requests per switch ({switches} switches: deploys and rollbacks, blue-green)\n"
    );
    println!("| gateway | switches | seconds | requests (each load) | failed |");
    println!("|---|---:|---:|---|---:|");
    for line in lines {
        println!("{line}");
    }
    println!("\nfailed requests per switch: 0 (every load asserted 0 socket errors and 0 non-2xx)");

    // The same, with the access log sampled (every error kept): a deploy
    // with gateway.log_sample = 100 (the gateway reloads) and the new replica.
    site.extra.push("gateway.log_sample=100".into());
    site.deploy(&versions[4].0, &versions[4].1, &[]).success();
    let (_, running) = docker(&[
        "ps",
        "--filter",
        &format!("name={}-staging-r", site.app),
        "--format",
        "{{.Names}}",
    ]);
    let replica = running.lines().next().unwrap().trim().to_string();
    let (_, ip) = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &replica,
    ]);
    let mut sampled = targets.clone();
    sampled[0].1 = format!("http://{}:8080", ip.trim());
    println!(
        "\n## the same with gateway.log_sample = 100 (1 in 100 answers below 400 logged, every error)\n"
    );
    println!("| target | req/s | p99 ms | req/s vs direct | p99 vs direct |");
    println!("|---|---:|---:|---:|---:|");
    measure(&sampled);
}

/// `just bench` (`.ci/bench-deploy`): how soon a deploy whose new replicas
/// die at start (an unknown subcommand, exit 2, restarted by their policy)
/// fails, measured from the engine's first `die` event of the release's
/// replicas to shipit's exit (the failed replicas removed, the previous
/// release still serving), with `health_timeout = 60s`: gated by the image's
/// HEALTHCHECK and by the gateway's check alone. Target: within 2 s.
#[test]
#[ignore = "a benchmark: run by .ci/bench-deploy"]
fn bench_a_release_that_dies_at_start_fails_within_2_s() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{SystemTime, UNIX_EPOCH};

    let Some(site) = Site::new("diebench") else {
        return;
    };
    let v1 = site.image("1.0.0", "");
    site.deploy("1.0.0", &v1, &[]).success();
    const ROUNDS: usize = 3;
    let gates = [
        ("the image's HEALTHCHECK", r#"CMD ["no-such-command"]"#),
        (
            "the gateway's check (HEALTHCHECK NONE)",
            "HEALTHCHECK NONE\nCMD [\"no-such-command\"]",
        ),
    ];
    let mut version = 1;
    println!(
        "\n## a release that dies at start (deploy.health_timeout = 60 s; median of {ROUNDS})\n"
    );
    println!("| gated by | exit to shipit's exit, median ms | max ms | whole deploy, median ms |");
    println!("|---|---:|---:|---:|");
    for (gate, tail) in gates {
        let mut after_exit = Vec::new();
        let mut whole = Vec::new();
        for _ in 0..ROUNDS {
            version += 1;
            let v = format!("{version}.0.0");
            let image = site.image(&v, tail);
            let mut events = Command::new("docker")
                .args([
                    "events",
                    "--filter",
                    "type=container",
                    "--filter",
                    "event=die",
                    "--filter",
                    &format!("image={image}"),
                    "--format",
                    "{{.TimeNano}}",
                ])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let died = Arc::new(Mutex::new(Vec::<u128>::new()));
            let reader = {
                let died = died.clone();
                let out = events.stdout.take().unwrap();
                std::thread::spawn(move || {
                    for line in BufReader::new(out).lines().map_while(Result::ok) {
                        if let Ok(ns) = line.trim().parse() {
                            died.lock().unwrap().push(ns);
                        }
                    }
                })
            };
            // `docker events` subscribes before it prints anything: give it
            // a moment so the first exit is not missed.
            std::thread::sleep(std::time::Duration::from_millis(500));
            let started = Instant::now();
            let run = site
                .deploy(&v, &image, &["--set", "deploy.health_timeout=60s"])
                .code(1);
            let ended = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            whole.push(started.elapsed().as_millis());
            assert!(run.stderr.contains("exited"), "{}", run.stderr);
            events.kill().unwrap();
            events.wait().unwrap();
            reader.join().unwrap();
            let first = *died
                .lock()
                .unwrap()
                .iter()
                .min()
                .expect("the engine reported no exit of the release's replicas");
            after_exit.push((ended - first) / 1_000_000);
        }
        let median = |xs: &mut Vec<u128>| {
            xs.sort_unstable();
            xs[xs.len() / 2]
        };
        let max = *after_exit.iter().max().unwrap();
        println!(
            "| {gate} | {} | {max} | {} |",
            median(&mut after_exit),
            median(&mut whole)
        );
    }
    assert_eq!(site.serving().as_deref(), Some("1"));
}
