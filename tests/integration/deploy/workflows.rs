//! The rendered `release.yml` and `deploy.yml`, run step by step as a runner
//! runs them (`runner.rs`), from a checkout of this repository, against real
//! hosts (`.ci/test-hosts`: one over ssh, one over tcp with TLS) and a real
//! registry with TLS and credentials. The secrets are what a user stores in
//! GitHub: an ssh key and known_hosts, Docker TLS certificates, registry
//! credentials, a webhook URL.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::hosts::{DIR, TestHosts, serving};
use super::runner::Runner;
use super::support::{Site, receiver, wait_for};
use crate::docker::{Registry, docker, remove_repository};
use crate::harness::repo;

const REGISTRY: &str = "10.231.0.1:5000";
const USER: &str = "ci-user";

/// `git` in `dir`, as a CI bot; its output.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "ci")
        .env("GIT_AUTHOR_EMAIL", "ci@example.com")
        .env("GIT_COMMITTER_NAME", "ci")
        .env("GIT_COMMITTER_EMAIL", "ci@example.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// This repository's tracked files, copied as a checkout, in a new repository.
fn checkout(into: &Path) {
    for file in git(&repo(), &["ls-files", "-z"]).split('\0') {
        let source = repo().join(file);
        if file.is_empty() || !source.is_file() {
            continue;
        }
        let target = into.join(file);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&source, &target).unwrap();
    }
    git(into, &["init", "-q", "-b", "main"]);
}

/// Commits everything in `dir`; the commit's id.
fn commit(dir: &Path) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "release"]);
    git(dir, &["rev-parse", "HEAD"])
}

fn replace(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn workflow(workspace: &Path, name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(workspace.join(".github/workflows").join(name)).unwrap();
    yaml_serde::from_str(&text).unwrap()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The tags the registry holds for `repository` (empty when it has none).
fn registry_tags(repository: &str, password: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "--cacert", &format!("{DIR}/certs/ca.pem"), "-u"])
        .arg(format!("{USER}:{password}"))
        .arg(format!("https://{REGISTRY}/v2/{repository}/tags/list"))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes the release images the workflow built on this engine.
struct Built(String);

impl Drop for Built {
    fn drop(&mut self) {
        remove_repository(&self.0);
    }
}

#[test]
fn the_release_and_deploy_workflows_run_as_written_against_real_hosts() {
    let Some(site) = Site::new("wf") else {
        return;
    };
    let Some(_hosts) = TestHosts::up(2) else {
        return;
    };
    let password = format!("pw-{}", std::process::id());
    let htpasswd = site.project.path().join("htpasswd");
    let made = Command::new("htpasswd")
        .args(["-Bbc"])
        .arg(&htpasswd)
        .args([USER, &password])
        .output()
        .expect("htpasswd (Debian package apache2-utils)");
    assert!(made.status.success(), "{made:?}");
    let _registry = Registry::serve(
        REGISTRY,
        &format!(
            "auth:\n  htpasswd:\n    realm: shipit-test\n    path: {}\n",
            htpasswd.display()
        ),
        &format!(
            "  tls:\n    certificate: {DIR}/certs/registry.pem\n    key: {DIR}/certs/registry-key.pem\n"
        ),
    );
    let repository = format!("shipit-test/{}", site.app);
    let _built = Built(format!("{REGISTRY}/{repository}"));

    // The repository as checked out, configured for these hosts and this registry.
    let work = tempfile::tempdir().unwrap();
    let ws = work.path();
    checkout(ws);
    let base = ws.join("environments/base.toml");
    replace(
        &base,
        "name = \"calculator\"",
        &format!("name = \"{}\"", site.app),
    );
    replace(
        &base,
        "registry = \"127.0.0.1:5000\"",
        &format!("registry = \"{REGISTRY}\""),
    );
    replace(
        &base,
        "repository = \"shipit/calculator\"",
        &format!("repository = \"{repository}\""),
    );
    replace(
        &base,
        "deploy_environments = [\"staging\", \"production\"]",
        "deploy_environments = [\"staging\"]\nbuild_mode = \"prebuilt\"",
    );
    let staging = ws.join("environments/staging.toml");
    replace(
        &staging,
        "strategy = \"blue-green\"",
        "strategy = \"blue-green\"\nhealth_timeout = \"30s\"\nsmoke_timeout = \"5s\"\ndrain_timeout = \"3s\"",
    );
    replace(
        &staging,
        "registry = \"ghcr.io\"",
        &format!("registry = \"{REGISTRY}\""),
    );
    replace(
        &staging,
        "repository = \"shipit-dev/calculator\"",
        &format!("repository = \"{repository}\""),
    );
    replace(&staging, "port = 8081", &format!("port = {}", site.port));
    replace(
        &staging,
        "localhost:8081",
        &format!("localhost:{}", site.port),
    );
    let mut text = std::fs::read_to_string(&staging).unwrap();
    text.push_str("\n[[deploy.hosts]]\nengine = \"ssh://root@10.231.1.2\"\n\n[[deploy.hosts]]\nengine = \"tcp://10.231.2.2:2376\"\n");
    std::fs::write(&staging, text).unwrap();
    let shipit = env!("CARGO_BIN_EXE_shipit");
    // The user renders and commits the workflows; the runner checks that commit out.
    let rendered = Command::new(shipit)
        .arg("-C")
        .arg(ws)
        .args(["render", "ci"])
        .output()
        .unwrap();
    assert!(rendered.status.success(), "{rendered:?}");
    let sha = commit(ws);
    let plan = Command::new(shipit)
        .arg("-C")
        .arg(ws)
        .args(["build", "staging", "--dry-run", "--output", "json"])
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let version = plan["version"].as_str().unwrap().to_string();
    let image = format!("{REGISTRY}/{repository}:{version}");

    let (webhook, notices) = receiver();
    let which = Command::new("sh")
        .args(["-c", "command -v cargo"])
        .output()
        .unwrap();
    let cargo = String::from_utf8_lossy(&which.stdout).trim().to_string();
    let cargo_bin = Path::new(&cargo).parent().unwrap().display().to_string();
    let context = |ref_name: &str, known_hosts: &str| -> BTreeMap<String, String> {
        [
            ("github.actor", "ci-bot".to_string()),
            ("github.ref_name", ref_name.to_string()),
            ("github.sha", sha.clone()),
            ("secrets.SHIPIT_REGISTRY_USERNAME", USER.into()),
            ("secrets.SHIPIT_REGISTRY_PASSWORD", password.clone()),
            (
                "secrets.SHIPIT_SSH_PRIVATE_KEY",
                read(&format!("{DIR}/id_ed25519")),
            ),
            ("secrets.SHIPIT_SSH_KNOWN_HOSTS", known_hosts.to_string()),
            (
                "secrets.SHIPIT_DOCKER_TLS_CA",
                read(&format!("{DIR}/certs/ca.pem")),
            ),
            (
                "secrets.SHIPIT_DOCKER_TLS_CERT",
                read(&format!("{DIR}/certs/cert.pem")),
            ),
            (
                "secrets.SHIPIT_DOCKER_TLS_KEY",
                read(&format!("{DIR}/certs/key.pem")),
            ),
            ("secrets.STAGING_WEBHOOK_URL", webhook.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    };
    let runner = |ref_name: &str, known_hosts: &str| {
        let mut r = Runner::new(ws, context(ref_name, known_hosts));
        for (k, v) in [
            ("CI", "true".to_string()),
            ("GITHUB_ACTIONS", "true".into()),
            ("GITHUB_WORKSPACE", ws.display().to_string()),
            ("GITHUB_REPOSITORY", "shipit-dev/Shipit".into()),
            ("GITHUB_REF_NAME", ref_name.into()),
            ("GITHUB_SHA", sha.clone()),
            ("NO_COLOR", "1".into()),
            // What rust-cache restores: the crates already compiled.
            (
                "CARGO_TARGET_DIR",
                repo().join("target").display().to_string(),
            ),
        ] {
            r.base_env.insert(k.into(), v);
        }
        // The test's toolchain stands in for the rustup step (no network
        // here), and the test's shipit for the step that compiles it.
        r.path.push(cargo_bin.clone());
        r.path
            .push(Path::new(shipit).parent().unwrap().display().to_string());
        r
    };
    let host_key = |i: usize| {
        let key = read(&format!("{DIR}/h{i}/host_key.pub"));
        let mut fields = key.split_whitespace();
        format!(
            "10.231.1.2 {} {}\n",
            fields.next().unwrap(),
            fields.next().unwrap()
        )
    };
    let release = workflow(ws, "release.yml");
    let deploy = workflow(ws, "deploy.yml");
    // The release calls the deploy once its image is pushed (no
    // `workflow_run`), and hands it by name every secret the deploy reads.
    let call = &release["jobs"]["deploy"];
    assert_eq!(call["uses"], "$/.github/workflows/deploy.yml", "{call}");
    assert_eq!(call["needs"], serde_json::json!(["image"]), "{call}");
    assert!(deploy["on"]["workflow_run"].is_null(), "{}", deploy["on"]);
    let text = std::fs::read_to_string(ws.join(".github/workflows/deploy.yml")).unwrap();
    let mut read: Vec<&str> = text
        .split("secrets.")
        .skip(1)
        .map(|rest| {
            rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .unwrap()
        })
        .filter(|name| *name != "GITHUB_TOKEN")
        .collect();
    read.sort();
    read.dedup();
    assert!(!read.is_empty());
    for name in read {
        assert_eq!(
            call["secrets"][name],
            format!("${{{{ secrets.{name} }}}}"),
            "the release does not pass {name} to the deploy"
        );
        assert!(
            deploy["on"]["workflow_call"]["secrets"][name].is_object(),
            "deploy.yml does not declare {name}"
        );
    }

    // A tag that does not name the version: refused before anything is pushed.
    let mut r = runner("v9.9.9", &host_key(1));
    let job = r.run_job(&release, "image", &["rust-toolchain", "install-shipit"]);
    assert_eq!(
        job.named("the tag names the version").outcome,
        "failure",
        "{}",
        job.log()
    );
    assert_eq!(
        job.named("build and push").outcome,
        "skipped",
        "{}",
        job.log()
    );
    assert!(
        !registry_tags(&repository, &password).contains(&version),
        "a refused release pushed nothing"
    );

    // The release: built on the runner, pushed with the credentials from secrets.
    let tag = format!("v{version}");
    let mut r = runner(&tag, &host_key(1));
    let job = r.run_job(&release, "image", &["rust-toolchain", "install-shipit"]);
    assert!(job.succeeded(), "{}", job.log());
    assert!(
        registry_tags(&repository, &password).contains(&format!("\"{version}\"")),
        "{}",
        job.log()
    );
    let (_, built_id) = docker(&["image", "inspect", "--format", "{{.Id}}", &image]);

    // The deploy: each host pulls the release (and gets the gateway streamed).
    let mut r = runner(&tag, &host_key(1));
    let job = r.run_job(&deploy, "staging", &["rust-toolchain", "install-shipit"]);
    assert!(job.succeeded(), "{}", job.log());
    let deployed = &job.step("deploy").output;
    assert_eq!(deployed.matches("pulled").count(), 2, "{deployed}");
    assert_eq!(job.step("smoke").outcome, "success");
    assert_eq!(job.named("roll back").outcome, "skipped", "{}", job.log());
    for i in [1, 2] {
        assert_eq!(serving(i, site.port).as_deref(), Some("1"), "host {i}");
        let id = TestHosts::docker(i, &["image", "inspect", "--format", "{{.Id}}", &image]);
        assert_eq!(
            id.trim(),
            built_id,
            "host {i} runs the image the release built"
        );
    }
    wait_for("the deploy notice", || {
        notices
            .lock()
            .unwrap()
            .iter()
            .any(|n| n["event"] == "deploy.succeeded")
    });
    assert!(ws.join("smoke-staging.xml").is_file());
    // Host access is gone with the job, and no key was ever on disk.
    assert_eq!(job.named("remove the host access").outcome, "success");
    let agent = r.env.get("SSH_AGENT_PID").expect("the agent's pid").clone();
    let alive = Command::new("kill").args(["-0", &agent]).status().unwrap();
    let state = Command::new("ps")
        .args(["-o", "stat=", "-p", &agent])
        .output()
        .unwrap();
    let state = String::from_utf8_lossy(&state.stdout).trim().to_string();
    assert!(
        !alive.success() || state.starts_with('Z'),
        "the ssh agent outlived the job ({state}): {}",
        job.named("remove the host access").output
    );
    let tls = r
        .env
        .get("DOCKER_CERT_PATH")
        .expect("DOCKER_CERT_PATH")
        .clone();
    assert!(
        tls.starts_with("/dev/shm/") && !Path::new(&tls).exists(),
        "{tls}"
    );
    let ssh_files: Vec<String> = std::fs::read_dir(&r.ssh_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(ssh_files, ["known_hosts"]);

    // A deploy that fails before it serves (a host key that is not the
    // host's): nothing switches, and no step rolls back.
    let mut r = runner(&tag, &host_key(2));
    let job = r.run_job(&deploy, "staging", &["rust-toolchain", "install-shipit"]);
    assert_eq!(job.step("deploy").outcome, "failure", "{}", job.log());
    assert!(
        job.step("deploy").output.contains("known_hosts"),
        "{}",
        job.log()
    );
    assert_eq!(job.step("smoke").outcome, "skipped");
    assert_eq!(job.named("roll back").outcome, "skipped", "{}", job.log());
    for i in [1, 2] {
        assert_eq!(serving(i, site.port).as_deref(), Some("1"), "host {i}");
    }
}
