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
