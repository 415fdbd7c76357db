//! The gateway image is one build of pinned Debian packages: `shipit image
//! gateway` makes it from exactly `deploy.gateway_packages` (refusing
//! others), labels it with every package it holds and says its id; a deploy
//! refuses a gateway image under the configured name that holds others.

use std::process::Command;

use super::support::{Site, images};
use crate::docker::{self, docker};
use crate::harness::Run;

fn image_gateway(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_shipit"))
        .arg("-C")
        .arg(crate::harness::repo())
        .args(["image", "gateway"])
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run shipit image gateway");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `dpkg-query`'s version of an installed package.
fn installed(package: &str) -> String {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", package])
        .output()
        .expect("dpkg-query");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn label(reference: &str, name: &str) -> String {
    let (_, value) = docker(&[
        "image",
        "inspect",
        "--format",
        &format!("{{{{index .Config.Labels \"{name}\"}}}}"),
        reference,
    ]);
    value
}

fn id(reference: &str) -> String {
    docker(&["image", "inspect", "--format", "{{.Id}}", reference]).1
}

#[test]
fn the_gateway_image_is_made_from_the_pinned_packages_only_and_says_what_it_holds() {
    if !docker::engine() {
        return;
    }
    let repository = format!("shipit-test/gw-{}", std::process::id());
    let reference = format!("{repository}:2.6.12-bookworm");
    let (haproxy, socat) = (installed("haproxy"), installed("socat"));

    // Another version pinned than the one installed: refused, nothing made.
    let other = format!("deploy.gateway_packages.haproxy={haproxy}.1");
    let run = image_gateway(&["production", "--tag", &reference, "--set", &other]).code(2);
    assert!(
        run.stderr.contains(&format!(
            "haproxy {haproxy} is installed here, and deploy.gateway_packages.haproxy pins {haproxy}.1"
        )),
        "{}",
        run.stderr
    );
    assert!(!docker(&["image", "inspect", &reference]).0);
    // A tag that names another HAProxy than the one inside: refused.
    let run = image_gateway(&["--tag", &format!("{repository}:2.8.5-bookworm")]).code(2);
    assert!(
        run.stderr
            .contains("the tag 2.8.5-bookworm names HAProxy 2.8.5, and the HAProxy here is 2.6.12"),
        "{}",
        run.stderr
    );

    // Made: labelled with the pins and every package whose files it holds,
    // and the id it reports is the engine's.
    let run = image_gateway(&["production", "--tag", &reference, "--output", "json"]).success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["made"], true, "{report}");
    let made = id(&reference);
    assert_eq!(report["id"].as_str(), Some(made.as_str()), "{report}");
    assert_eq!(
        label(&reference, "dev.shipit.gateway.pinned"),
        format!("haproxy={haproxy} socat={socat}")
    );
    let packages = label(&reference, "dev.shipit.gateway.packages");
    for package in ["haproxy", "socat", "libc6", "libssl3"] {
        let held = format!("{package}={}", installed(package));
        assert!(
            packages.split(' ').any(|p| p == held),
            "{held} in {packages}"
        );
    }

    // The same packages give the same image; a different image under the
    // name (here the calculator's) is replaced, not reported present.
    let run = image_gateway(&["production", "--tag", &reference, "--force"]).success();
    assert!(run.stderr.contains(&made), "{}", run.stderr);
    assert_eq!(id(&reference), made, "made twice, the same id");
    let (base, _) = images();
    docker(&["tag", base, &reference]);
    let run = image_gateway(&["production", "--tag", &reference]).success();
    assert!(run.stderr.contains("made"), "{}", run.stderr);
    assert_eq!(id(&reference), made);
    let run = image_gateway(&["production", "--tag", &reference]).success();
    assert!(run.stderr.contains("present"), "{}", run.stderr);

    docker::remove_repository(&repository);
}

#[test]
fn a_deploy_refuses_a_gateway_image_that_holds_other_packages() {
    let Some(site) = Site::new("gw-pins") else {
        return;
    };
    let (base, gateway) = images();
    let other = format!("shipit-test/{}-gw:2.6.12-bookworm", site.app);
    // The real gateway, labelled as made from another HAProxy build.
    docker::build_variant(
        &other,
        gateway,
        "gw",
        "LABEL dev.shipit.gateway.pinned=\"haproxy=2.6.12-1+deb12u3 socat=1.7.4.4-2\"",
    );
    let v1 = site.image("1.0.0", "");
    let set = format!("deploy.gateway_image={other}");
    let run = site.deploy("1.0.0", &v1, &["--set", &set]).code(1);
    let pins = format!(
        "haproxy={} socat={}",
        installed("haproxy"),
        installed("socat")
    );
    assert!(
        run.stderr.contains(&format!(
            "holds haproxy=2.6.12-1+deb12u3 socat=1.7.4.4-2, and deploy.gateway_packages pins {pins}"
        )),
        "{}",
        run.stderr
    );
    assert!(site.containers().is_empty(), "{:?}", site.containers());
    // An image under the name that shipit did not make: refused too.
    docker(&["rmi", "-f", &other]);
    docker(&["tag", base, &other]);
    let run = site.deploy("1.0.0", &v1, &["--set", &set]).code(1);
    assert!(
        run.stderr.contains("no record of its packages"),
        "{}",
        run.stderr
    );
    assert!(site.containers().is_empty(), "{:?}", site.containers());
    docker(&["rmi", "-f", &other]);
}
