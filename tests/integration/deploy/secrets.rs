//! Secrets reach a Docker deploy's replicas as files (issue 23 item 2):
//! `NAME_FILE` in the environment, the value in `/run/secrets` written
//! through the engine's archive API, so no value is in any container's
//! configuration, image, log or shipit's output; a rollback's replicas get
//! the values of the day, not those of their first deploy.

use super::support::Site;
use crate::docker::docker;
use crate::harness::Run;

const FIRST: &str = "tok-first-6c1f0e";
const ROTATED: &str = "tok-rotated-93ab27";

/// A replica's secret file: its text, mode and owner.
fn file_of(container: &str) -> (String, u32, u64) {
    let file = crate::docker::container_file(container, "/run/secrets/api-token");
    (String::from_utf8(file.bytes).unwrap(), file.mode, file.uid)
}

/// Every container, image and log of the site, and shipit's output: no value.
fn nowhere(site: &Site, runs: &[&Run]) {
    let filter = format!("label=dev.shipit.app={}", site.app);
    let (_, ids) = docker(&["ps", "-aq", "--filter", &filter]);
    assert!(!ids.is_empty());
    for id in ids.lines() {
        let (_, inspect) = docker(&["inspect", id]);
        let (_, image) = docker(&["inspect", "-f", "{{.Image}}", id]);
        let (_, history) = docker(&["history", "--no-trunc", image.trim()]);
        let (_, logs) = docker(&["logs", id]);
        for (what, text) in [
            ("inspect", &inspect),
            ("image history", &history),
            ("logs", &logs),
        ] {
            for value in [FIRST, ROTATED] {
                assert!(!text.contains(value), "a secret in {what} of {id}: {text}");
            }
        }
    }
    for run in runs {
        for value in [FIRST, ROTATED] {
            assert!(!run.stdout.contains(value) && !run.stderr.contains(value));
        }
    }
}

#[test]
fn docker_secrets_are_files_that_no_inspect_shows_and_a_rollback_gets_the_rotated_value() {
    let Some(mut site) = Site::new("secrets") else {
        return;
    };
    site.extra.push("secrets.API_TOKEN=env:API_TOKEN".into());
    let v1 = site.image("1.0.0", "");
    let v2 = site.image("2.0.0", "");
    let deploy = |version: &str, image: &str, token: &str| {
        let set = format!("app.version={version}");
        site.shipit(
            &["deploy", "staging", "--image", image, "--set", &set],
            &[("API_TOKEN", token)],
        )
    };
    let first = deploy("1.0.0", &v1, FIRST).success();
    let r1 = [site.app.as_str(), "staging-r1-1"].join("-");
    let (_, env) = docker(&["inspect", "-f", "{{json .Config.Env}}", &r1]);
    assert!(
        env.contains("\"API_TOKEN_FILE=/run/secrets/api-token\""),
        "{env}"
    );
    assert!(!env.contains("\"API_TOKEN="), "{env}");
    // The value alone, readable by the service's user (the image's) only.
    let (_, user) = docker(&["inspect", "-f", "{{.Config.User}}", &r1]);
    let uid: u64 = user.split(':').next().unwrap().parse().unwrap();
    assert_eq!(file_of(&r1), (FIRST.to_string(), 0o400, uid));

    // A rotation: release 2 reads the new value.
    let second = deploy("2.0.0", &v2, ROTATED).success();
    let r2 = [site.app.as_str(), "staging-r2-1"].join("-");
    assert_eq!(site.serving().as_deref(), Some("2"));
    assert_eq!(file_of(&r2).0, ROTATED);

    // A rollback without the secret changes nothing and says which is missing.
    let refused = site.shipit(&["rollback", "staging"], &[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("API_TOKEN"), "{}", refused.stderr);
    assert_eq!(site.serving().as_deref(), Some("2"));

    // The rollback's kept replicas of release 1 get today's value.
    let back = site
        .shipit(&["rollback", "staging"], &[("API_TOKEN", ROTATED)])
        .success();
    assert_eq!(site.serving().as_deref(), Some("1"));
    for index in 1..=2 {
        let replica = format!("{}-staging-r1-{index}", site.app);
        assert_eq!(
            file_of(&replica).0,
            ROTATED,
            "{replica} kept the first value"
        );
    }
    nowhere(&site, &[&first, &second, &refused, &back]);
}
