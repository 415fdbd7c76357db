//! TLS at the deploy gateway, on the real engine: the production
//! environment as committed deploys with a throw-away CA and intermediate,
//! serves the chain, redirects plain HTTP to the configured name and port,
//! keeps the key readable only by the gateway's user, rotates a certificate
//! live under load, refuses bad material before any change, and never lets
//! the key's bytes out.

use std::io::Read;
use std::process::Command;
use std::time::Duration;

use super::support::{Loads, Site, no_failures_in};
use crate::certs::{Pki, key_body};
use crate::docker::{docker, free_port};

/// The certificate the gateway serves for `name` at `port`: its SHA-256 fingerprint.
fn served_fingerprint(port: u16, name: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{port} -servername {name} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn fingerprint(pem: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.pem");
    std::fs::write(&file, pem).unwrap();
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn docker_production_deploys_with_tls_rotates_live_and_never_leaks_the_key() {
    let Some(mut site) = Site::new("tls") else {
        return;
    };
    site.environment = "production".into();
    let tls_port = free_port();
    site.extra = vec![format!("gateway.tls.port={tls_port}"), "replicas=2".into()];
    let name = "calculator.example.com";
    let pki = Pki::new("shipit-test");
    let dir = tempfile::tempdir().unwrap();
    let leaf = pki.leaf(&[name], -1, 90);
    let (_, _, root) = pki.write(dir.path(), &leaf, "a");
    let chain_a = format!("{}{}", leaf.cert_pem, pki.intermediate_pem);
    let root = root.to_str().unwrap().to_string();
    // The committed production.toml reads both from the environment; the
    // throw-away root is trusted the way a private CA would be: SSL_CERT_FILE.
    let env = |chain: &str, key: &str| -> Vec<(String, String)> {
        vec![
            ("PRODUCTION_TLS_CERTIFICATE".into(), chain.into()),
            ("PRODUCTION_TLS_KEY".into(), key.into()),
            ("SSL_CERT_FILE".into(), root.clone()),
        ]
    };
    let run_with = |args: &[&str], env: &[(String, String)]| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        site.shipit(args, &env)
    };
    let v1 = site.image("1.0.0", "");
    let mut outputs = Vec::new();

    // The dry run makes the same checks first and shows what would be installed.
    let set = "app.version=1.0.0".to_string();
    let args = [
        "deploy",
        "production",
        "--image",
        &v1,
        "--set",
        &set,
        "--dry-run",
        "--output",
        "json",
    ];
    let run = run_with(&args, &env(&chain_a, &leaf.key_pem)).success();
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        plan["certificate"]["names"],
        serde_json::json!([name]),
        "{plan}"
    );
    assert!(
        plan["certificate"]["days_left"].as_i64().unwrap() >= 88,
        "{plan}"
    );
    outputs.push(run.stdout.clone() + &run.stderr);
    let run = run_with(&args, &env(&leaf.cert_pem, &leaf.key_pem)).code(2);
    assert!(
        run.stderr.contains("the chain is incomplete"),
        "{}",
        run.stderr
    );
    assert!(site.containers().is_empty(), "{:?}", site.containers());

    let deploy = |version: &str, extra: &[&str], env: &[(String, String)]| {
        let set = format!("app.version={version}");
        let mut args = vec!["deploy", "production", "--image", &v1, "--set", &set];
        args.extend_from_slice(extra);
        run_with(&args, env)
    };
    let run = deploy("1.0.0", &[], &env(&chain_a, &leaf.key_pem)).success();
    outputs.push(run.stdout.clone() + &run.stderr);

    // HTTPS serves the whole chain: a client trusting only the root verifies it.
    let route = shipit::http::Route {
        connect: Some(format!("127.0.0.1:{tls_port}")),
        headers: Vec::new(),
        tls: Some(shipit::http::trusting(pki.root_pem.as_bytes()).unwrap()),
    };
    let https = format!("https://{name}:{tls_port}");
    let r = shipit::http::request_via(
        &route,
        &format!("{https}/health"),
        "GET",
        &[],
        b"",
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Shipit-Release"), Some("1"));
    assert_eq!(
        r.header("Strict-Transport-Security"),
        Some("max-age=31536000; includeSubDomains")
    );
    assert!(r.header("X-Request-Id").is_some());
    // A client's own request id is the one forwarded, answered and logged.
    let r = shipit::http::request_via(
        &route,
        &format!("{https}/"),
        "GET",
        &[("X-Request-Id", "client-chosen-id-42")],
        b"",
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(r.header("X-Request-Id"), Some("client-chosen-id-42"));
    // Plain HTTP redirects to the configured name and HTTPS port, whatever Host says; no HSTS.
    let spoofed = shipit::http::Route {
        connect: Some(format!("127.0.0.1:{}", site.port)),
        ..Default::default()
    };
    let r = shipit::http::request_via(
        &spoofed,
        &format!("http://evil.example:{}/calculate?x=1", site.port),
        "GET",
        &[],
        b"",
        Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("Location"),
        Some(format!("https://{name}:{tls_port}/calculate?x=1").as_str())
    );
    assert_eq!(r.header("Strict-Transport-Security"), None);

    // TLS 1.2+ with forward-secret ciphers only.
    let handshake = |args: &str| -> bool {
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl s_client -connect 127.0.0.1:{tls_port} -servername {name} {args} </dev/null >/dev/null 2>&1"
            ))
            .status()
            .unwrap()
            .success()
    };
    assert!(handshake("-tls1_3"));
    assert!(handshake("-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256"));
    assert!(
        !handshake("-tls1_1 -cipher DEFAULT@SECLEVEL=0"),
        "TLS 1.1 is refused"
    );
    assert!(
        !handshake("-tls1_2 -cipher AES128-GCM-SHA256"),
        "no forward secrecy is refused"
    );

    // The key in the gateway's volume: the gateway's user only.
    let gateway = format!("{}-production-gateway", site.app);
    let file = crate::docker::container_file(&gateway, "/etc/shipit-gateway/tls/site.pem");
    let (mode, uid, gid) = (file.mode, file.uid, file.gid);
    assert_eq!((mode, uid, gid), (0o400, 101, 101));
    let status = site.status();
    let days = status["gateway"]["certificate_days_left"].as_i64().unwrap();
    assert!((88..=90).contains(&days), "{status}");

    // A new certificate, same release: rotated live under load; no replica restarts.
    let replicas = |site: &Site| -> Vec<String> {
        let (_, out) = docker(&[
            "ps",
            "--filter",
            &format!("label=dev.shipit.app={}", site.app),
            "--filter",
            "label=dev.shipit.role=replica",
            "--format",
            "{{.ID}} {{.Names}} {{.RunningFor}}",
        ]);
        let ids: Vec<String> = out
            .lines()
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect();
        ids.iter()
            .map(|id| docker(&["inspect", "-f", "{{.Id}} {{.State.StartedAt}}", id]).1)
            .collect()
    };
    let before = replicas(&site);
    let leaf_b = pki.leaf(&[name], -1, 120);
    let chain_b = format!("{}{}", leaf_b.cert_pem, pki.intermediate_pem);
    assert_eq!(
        served_fingerprint(tls_port, name),
        fingerprint(&leaf.cert_pem)
    );
    let loads = Loads::start_via(
        &format!("https://127.0.0.1:{tls_port}"),
        &https,
        route.clone(),
    );
    let run = deploy(
        "1.0.0",
        &["--output", "json"],
        &env(&chain_b, &leaf_b.key_pem),
    )
    .success();
    outputs.push(run.stdout.clone() + &run.stderr);
    assert!(
        run.stderr
            .contains("the gateway's certificate was rotated live"),
        "{}",
        run.stderr
    );
    let counts = no_failures_in(loads, "a live certificate rotation");
    eprintln!("requests during the rotation: {counts:?}");
    assert_eq!(
        served_fingerprint(tls_port, name),
        fingerprint(&leaf_b.cert_pem)
    );
    assert_eq!(replicas(&site), before, "no replica restarted");

    // Bad material is refused before anything changes; the old certificate serves on.
    let expired = pki.leaf(&[name], -60, -1);
    let run = deploy(
        "2.0.0",
        &[],
        &env(
            &format!("{}{}", expired.cert_pem, pki.intermediate_pem),
            &leaf.key_pem,
        ),
    )
    .code(2);
    outputs.push(run.stdout.clone() + &run.stderr);
    assert!(run.stderr.contains("expired on"), "{}", run.stderr);
    assert!(
        run.stderr.contains("does not belong to the certificate"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    assert_eq!(
        served_fingerprint(tls_port, name),
        fingerprint(&leaf_b.cert_pem)
    );
    let run = deploy("2.0.0", &[], &env(&leaf_b.cert_pem, &leaf_b.key_pem)).code(2);
    assert!(
        run.stderr.contains("the chain is incomplete"),
        "{}",
        run.stderr
    );
    outputs.push(run.stdout.clone() + &run.stderr);
    let run = run_with(&["status", "production"], &env(&chain_b, &leaf_b.key_pem)).success();
    outputs.push(run.stdout.clone() + &run.stderr);

    // The keys' bytes are nowhere: containers, images, logs, history, output.
    let mut haystack = String::new();
    let (_, ids) = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=dev.shipit.app={}", site.app),
    ]);
    for id in ids.lines() {
        haystack.push_str(&docker(&["inspect", id]).1);
        haystack.push_str(&docker(&["logs", id]).1);
    }
    let (_, gateway_logs) = docker(&["logs", &gateway]);
    assert!(
        gateway_logs.contains("\"status\":"),
        "the gateway logs requests: {gateway_logs}"
    );
    assert!(
        gateway_logs.contains("\"request_id\":\"client-chosen-id-42\""),
        "the gateway logs the request id the service saw: {gateway_logs}"
    );
    for image in [v1.as_str(), "shipit-offline/haproxy:2.6.12-bookworm"] {
        haystack.push_str(&docker(&["history", "--no-trunc", image]).1);
        haystack.push_str(&docker(&["image", "inspect", image]).1);
    }
    let state = format!("shipit-{}-production-state", site.app);
    let history_dir = dir.path().join("history.d");
    let (ok, _) = docker(&[
        "cp",
        &format!("{state}:/state/history.d"),
        history_dir.to_str().unwrap(),
    ]);
    assert!(ok);
    let mut entries = 0;
    for file in std::fs::read_dir(&history_dir).unwrap() {
        haystack.push_str(&std::fs::read_to_string(file.unwrap().path()).unwrap());
        entries += 1;
    }
    assert!(entries > 0, "no history entry to search");
    for out in &outputs {
        haystack.push_str(out);
    }
    for key in [&leaf.key_pem, &leaf_b.key_pem] {
        for line in key_body(key) {
            assert!(
                !haystack.contains(&line),
                "a line of the key was found outside the gateway's volume"
            );
        }
    }

    // TLS turned off: the gateway is recreated, and no key stays in its volume.
    let run = deploy(
        "1.0.0",
        &["--set", "gateway.tls.enabled=false"],
        &env(&chain_b, &leaf_b.key_pem),
    )
    .success();
    assert!(run.stderr.contains("was recreated"), "{}", run.stderr);
    outputs.push(run.stdout.clone() + &run.stderr);
    let left = Command::new("docker")
        .args([
            "cp",
            &format!("{gateway}:/etc/shipit-gateway/tls/site.pem"),
            "-",
        ])
        .output()
        .unwrap();
    let mut archive = tar::Archive::new(left.stdout.as_slice());
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).unwrap();
    assert!(bytes.is_empty(), "the key stayed in the gateway's volume");
}
