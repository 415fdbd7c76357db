//! Registry credentials are scoped to their registry (issue 23 item 1): two
//! real registries, each with its own user, and a deploy that must pull the
//! release from one and the gateway from the other.

use std::process::Command;

use super::support::{Site, images};
use crate::docker::{Registry, docker};

/// `docker --config DIR ARGS`, for the test's own logins and pushes.
fn docker_as(config: &std::path::Path, args: &[&str], input: &str) {
    crate::docker::docker_with_input(Some(config), args, input);
}

/// Tags removed on drop.
struct Tags(Vec<String>);

impl Drop for Tags {
    fn drop(&mut self) {
        for tag in &self.0 {
            docker(&["rmi", tag]);
        }
    }
}

#[test]
fn docker_each_registry_is_given_only_its_own_credentials() {
    let Some(site) = Site::new("creds") else {
        return;
    };
    // A is image.registry (alice, by SHIPIT_REGISTRY_*); B holds the gateway
    // image (bob, by Docker's config.json, which also holds a wrong login
    // for A that the environment's must win over).
    let a = Registry::with_users(&[("alice", "pw-a")]);
    let b = Registry::with_users(&[("bob", "pw-b")]);
    let (base, gateway) = images();
    let release = format!("{}/shipit-test/{}:1.0.0", a.address, site.app);
    let gateway_b = format!("{}/shipit-test/gateway-{}:1", b.address, site.app);
    let tags = Tags(vec![release.clone(), gateway_b.clone()]);
    let pusher = tempfile::tempdir().unwrap();
    docker_as(
        pusher.path(),
        &["login", &a.address, "-u", "alice", "--password-stdin"],
        "pw-a",
    );
    docker_as(
        pusher.path(),
        &["login", &b.address, "-u", "bob", "--password-stdin"],
        "pw-b",
    );
    for (from, to) in [(base, &release), (gateway, &gateway_b)] {
        assert!(docker(&["tag", from, to]).0);
        docker_as(pusher.path(), &["push", "-q", to], "");
        // Gone from the engine: the deploy must pull it.
        assert!(docker(&["rmi", to]).0);
    }
    let a_log_before_deploy = a.log().len();
    let b_log_before_deploy = b.log().len();

    let config = tempfile::tempdir().unwrap();
    // config.json's `auth`: base64 of user:password (coreutils' base64).
    let basic = |user: &str, password: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s '{user}:{password}' | base64 -w0"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    std::fs::write(
        config.path().join("config.json"),
        serde_json::json!({ "auths": {
            &a.address: { "auth": basic("mallory", "wrong") },
            &b.address: { "auth": basic("bob", "pw-b") },
        }})
        .to_string(),
    )
    .unwrap();
    let run = site.shipit(
        &[
            "deploy",
            &site.environment,
            "--image",
            &release,
            "--set",
            "app.version=1.0.0",
            "--set",
            &format!("image.registry={}", a.address),
            "--set",
            &format!("deploy.gateway_image={gateway_b}"),
            "--set",
            "deploy.transfer=pull",
        ],
        &[
            ("SHIPIT_REGISTRY_USERNAME", "alice"),
            ("SHIPIT_REGISTRY_PASSWORD", "pw-a"),
            ("DOCKER_CONFIG", config.path().to_str().unwrap()),
        ],
    );
    let (a_log, b_log) = (a.log(), b.log());
    let (a_log, b_log) = (&a_log[a_log_before_deploy..], &b_log[b_log_before_deploy..]);
    assert_eq!(run.code, 0, "{}\nA: {a_log}\nB: {b_log}", run.stderr);
    assert_eq!(site.serving().as_deref(), Some("1"));
    // Both were pulled, each from its own registry.
    assert!(docker(&["image", "inspect", &release]).0);
    assert!(docker(&["image", "inspect", &gateway_b]).0);
    assert!(a_log.contains("authorized request"), "{a_log}");
    assert!(b_log.contains("authorized request"), "{b_log}");
    for (log, others) in [(a_log, ["bob", "mallory"]), (b_log, ["alice", "mallory"])] {
        for other in others {
            assert!(
                !log.contains(other),
                "a registry was sent {other}'s login: {log}"
            );
        }
    }
    for secret in ["pw-a", "pw-b"] {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    }
    drop(site);
    drop(tags);
}
