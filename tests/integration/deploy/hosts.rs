//! `shipit deploy` to several real Docker hosts, from outside them: four
//! engines in their own network namespaces (`.ci/test-hosts`), three over
//! ssh:// and one over tcp:// with TLS client certificates, the images
//! streamed from this engine (no registry). All hosts switch together or
//! none does, under load on every host's gateway, through faults.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use super::support::{Load, Site, Wrk, no_failures};

pub(super) const DIR: &str = "/tmp/shipit-test-hosts";

/// The hosts, brought down on drop. One set at a time: the tests that use
/// them take turns (the namespaces and the state directory are shared).
pub(super) struct TestHosts {
    count: usize,
    _turn: std::sync::MutexGuard<'static, ()>,
}

static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl TestHosts {
    /// `None` (with a note) when SHIPIT_SKIP_HOSTS=1; otherwise they must come up.
    pub(super) fn up(count: usize) -> Option<TestHosts> {
        if std::env::var_os("SHIPIT_SKIP_HOSTS").is_some_and(|v| v == "1") {
            eprintln!("SHIPIT_SKIP_HOSTS=1: skipping the test on several Docker hosts");
            return None;
        }
        let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let out = Command::new("bash")
            .arg(crate::harness::repo().join(".ci/test-hosts"))
            .args(["up", &count.to_string()])
            .output()
            .expect("bash .ci/test-hosts");
        assert!(
            out.status.success(),
            "the test hosts did not come up (root, openssh-server and iproute2 are needed; set SHIPIT_SKIP_HOSTS=1 to skip):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Some(TestHosts { count, _turn: turn })
    }

    fn script(&self, args: &[&str]) {
        let ok = Command::new("bash")
            .arg(crate::harness::repo().join(".ci/test-hosts"))
            .args(args)
            .status()
            .unwrap()
            .success();
        assert!(ok, "test-hosts {args:?}");
    }

    fn cut(&self, i: usize) {
        self.script(&["cut", &i.to_string()]);
    }

    fn mend(&self, i: usize) {
        self.script(&["mend", &i.to_string()]);
    }

    /// Host `i` drops every packet, both ways: no reset, no error, silence.
    fn silence(&self, i: usize) {
        self.script(&["silence", &i.to_string()]);
    }

    fn speak(&self, i: usize) {
        self.script(&["speak", &i.to_string()]);
    }

    pub(super) fn address(i: usize) -> String {
        format!("10.231.{i}.2")
    }

    /// `docker` on host `i`, through its own socket (the test's back door).
    pub(super) fn docker(i: usize, args: &[&str]) -> String {
        let out = Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{DIR}/h{i}/docker.sock"))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for TestHosts {
    fn drop(&mut self) {
        let _ = self.count;
        let _ = Command::new("bash")
            .arg(crate::harness::repo().join(".ci/test-hosts"))
            .arg("down")
            .status();
    }
}

/// Drops, on their way out of this namespace, the requests to host `i`'s
/// gateway that carry the candidate header: the smoke suite through that
/// host's candidate route fails, and nothing else does (health comes from the
/// engine, the load carries no such header). Removed on drop.
struct CandidateBlocked(Vec<String>);

impl CandidateBlocked {
    fn on(i: usize, port: u16) -> CandidateBlocked {
        let rule: Vec<String> = [
            "OUTPUT",
            "-d",
            &TestHosts::address(i),
            "-p",
            "tcp",
            "--dport",
            &port.to_string(),
            "-m",
            "string",
            "--string",
            "X-Shipit-Candidate",
            "--algo",
            "bm",
            "--icase",
            "-j",
            "DROP",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let ok = Command::new("iptables")
            .arg("-A")
            .args(&rule)
            .status()
            .expect("iptables")
            .success();
        assert!(ok, "iptables -A {rule:?}");
        CandidateBlocked(rule)
    }
}

impl Drop for CandidateBlocked {
    fn drop(&mut self) {
        let _ = Command::new("iptables").arg("-D").args(&self.0).status();
    }
}

/// The release host `i`'s gateway answers with.
pub(super) fn serving(i: usize, port: u16) -> Option<String> {
    shipit::http::request(
        &format!("http://{}:{port}/health", TestHosts::address(i)),
        "GET",
        &[],
        b"",
        Duration::from_secs(3),
    )
    .ok()
    .and_then(|r| r.header("X-Shipit-Release").map(String::from))
}

#[track_caller]
fn all_serve(hosts: &[usize], port: u16, release: &str, after: &str) {
    for &i in hosts {
        assert_eq!(
            serving(i, port).as_deref(),
            Some(release),
            "host {i} after {after}"
        );
    }
}

/// Keepalive load (paced wrk) on every listed host's gateway, and a client
/// opening a new connection per request on the first.
struct FleetLoad {
    wrks: Vec<(usize, Wrk)>,
    fresh: Load,
}

impl FleetLoad {
    fn start(hosts: &[usize], port: u16) -> FleetLoad {
        let url = |i: usize| format!("http://{}:{port}", TestHosts::address(i));
        let load = FleetLoad {
            wrks: hosts
                .iter()
                .map(|&i| (i, Wrk::start(&url(i), true)))
                .collect(),
            fresh: Load::start(&url(hosts[0])),
        };
        std::thread::sleep(Duration::from_millis(500));
        load
    }

    #[track_caller]
    fn no_failures(self, during: &str) {
        no_failures(self.fresh, during);
        for (i, wrk) in self.wrks {
            let r = wrk.finish();
            assert!(
                r.socket_errors == 0 && r.non_2xx == 0 && r.requests > 100,
                "host {i} during {during}: {} socket errors, {} non-2xx of {} requests\n{}",
                r.socket_errors,
                r.non_2xx,
                r.requests,
                r.text
            );
        }
    }
}

/// A deploy running in the background, its stderr lines readable as they come.
struct Running {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits until `count` lines containing `text` were printed.
    #[track_caller]
    fn wait_for(&mut self, text: &str, count: usize) {
        let start = Instant::now();
        while self.seen.iter().filter(|l| l.contains(text)).count() < count {
            match self.lines.recv_timeout(Duration::from_secs(1)) {
                Ok(line) => self.seen.push(line),
                Err(_) if start.elapsed() > Duration::from_secs(120) => {
                    panic!(
                        "no {count} line(s) with {text:?}:\n{}",
                        self.seen.join("\n")
                    )
                }
                Err(_) => {}
            }
        }
    }

    /// The exit code, stderr and stdout (a deploy's `--output json`).
    fn finish_with_stdout(mut self) -> (i32, String, String) {
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            std::io::Read::read_to_string(&mut out, &mut stdout).unwrap();
        }
        let (code, stderr) = self.finish();
        (code, stderr, stdout)
    }

    fn finish(mut self) -> (i32, String) {
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        (status.code().unwrap_or(-1), self.seen.join("\n"))
    }
}

#[test]
fn four_hosts_over_ssh_and_tls_switch_together_or_not_at_all() {
    let Some(mut site) = Site::new("fleet") else {
        return;
    };
    let Some(hosts) = TestHosts::up(4) else {
        return;
    };
    let env = site.project.read("environments/staging.toml");
    site.project.write(
        "environments/staging.toml",
        &format!(
            "{env}\n[[deploy.hosts]]\nengine = \"ssh://shipit-h1\"\naddress = \"10.231.1.2\"\n\n[[deploy.hosts]]\nengine = \"ssh://shipit-h2\"\naddress = \"10.231.2.2\"\n\n[[deploy.hosts]]\nengine = \"ssh://shipit-h3\"\naddress = \"10.231.3.2\"\n\n[[deploy.hosts]]\nengine = \"tcp://10.231.4.2:2376\"\ncert_path = \"{DIR}/certs\"\n"
        ),
    );
    site.extra.push("deploy.transfer=stream".into());
    site.extra.push("deploy.health_timeout=30s".into());
    let port = site.port;
    let all = [1, 2, 3, 4];
    let v1 = site.image("1.0.0", "");
    let v2 = site.image("2.0.0", "");
    let v3 = site.image("3.0.0", "");

    // v1, streamed to every host: no registry runs anywhere.
    // As planned: the plan it printed is the plan it ran, on all four hosts.
    let (run, report) = site.deploy_as_planned("1.0.0", &v1, &[]);
    assert_eq!(
        report["hosts"].as_array().map(Vec::len),
        Some(4),
        "{report}"
    );
    assert_eq!(
        report["plan"]["hosts"].as_array().map(Vec::len),
        Some(4),
        "{report}"
    );
    assert_eq!(
        run.stderr.matches("release image").count(),
        4,
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("streamed"), "{}", run.stderr);
    let id = report["entry"]["deploy_id"].as_str().unwrap().to_string();
    all_serve(&all, port, "1", "deploying v1");
    for i in all {
        let image = TestHosts::docker(i, &["image", "inspect", "--format", "{{.Id}}", &v1]);
        let (_, local) = crate::docker::docker(&["image", "inspect", "--format", "{{.Id}}", &v1]);
        assert_eq!(image.trim(), local, "host {i} runs the image as built");
    }

    // Two gateway builds under one name on the hosts, and none on this
    // machine to send them all: refused before any host changes.
    let (_, gateway) = super::support::images();
    let name = "shipit-test/gw-fleet:2.6.12-bookworm";
    for i in [1, 3, 4] {
        TestHosts::docker(i, &["tag", gateway, name]);
    }
    let built = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf 'FROM {gateway}\\nLABEL test.build=other\\n' | docker -H unix://{DIR}/h2/docker.sock build -q -t {name} -"
        ))
        .output()
        .unwrap();
    assert!(built.status.success(), "{built:?}");
    let other = TestHosts::docker(2, &["image", "inspect", "--format", "{{.Id}}", name]);
    let other = other.trim().trim_start_matches("sha256:");
    let set = format!("deploy.gateway_image={name}");
    let run = site.deploy("2.0.0", &v2, &["--set", &set]).code(1);
    assert!(
        run.stderr.contains(&format!(
            "the hosts hold different gateway images under {name}"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("ssh://shipit-h2 has {}", &other[..12])),
        "{}",
        run.stderr
    );
    all_serve(&all, port, "1", "a refused gateway image");
    for i in all {
        TestHosts::docker(i, &["rmi", name]);
    }

    // v2 under load on every gateway, then back.
    let load = FleetLoad::start(&all, port);
    let run = site.deploy("2.0.0", &v2, &[]).success();
    // v2 shares every layer with v1: only its own files are streamed.
    assert_eq!(
        run.stderr.matches("layers already on the host").count(),
        4,
        "{}",
        run.stderr
    );
    all_serve(&all, port, "2", "deploying v2");
    load.no_failures("deploying v2 to four hosts");
    let load = FleetLoad::start(&all, port);
    site.shipit(&["rollback", "staging"], &[]).success();
    all_serve(&all, port, "1", "the rollback");
    load.no_failures("rolling four hosts back");

    // Every host recorded the first deploy under one id.
    let status = site.status();
    for h in status["hosts"].as_array().unwrap() {
        let history = h["status"]["history"].as_array().unwrap();
        assert!(history.iter().any(|e| e["deploy_id"] == id.as_str()), "{h}");
    }

    // Fault: v3 crashes on host 3 only, under load: no host switches.
    let load = FleetLoad::start(&all, port);
    let stop = Arc::new(AtomicBool::new(false));
    let killer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let ids = TestHosts::docker(
                    3,
                    &["ps", "-q", "--filter", "label=dev.shipit.version=3.0.0"],
                );
                for id in ids.split_whitespace() {
                    TestHosts::docker(3, &["kill", id]);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let run = site.deploy("3.0.0", &v3, &[]).code(1);
    stop.store(true, Ordering::SeqCst);
    killer.join().unwrap();
    assert!(
        run.stderr.contains("ssh://shipit-h3") && run.stderr.contains("health"),
        "{}",
        run.stderr
    );
    all_serve(&all, port, "1", "v3 failing on one host");
    load.no_failures("v3 failing on one host");
    for i in all {
        let left = TestHosts::docker(
            i,
            &["ps", "-aq", "--filter", "label=dev.shipit.version=3.0.0"],
        );
        assert!(left.trim().is_empty(), "host {i} kept v3 containers");
    }

    // Fault: v3 healthy everywhere, but its smoke tests fail through host 2's
    // candidate route only: no host switches.
    let load = FleetLoad::start(&all, port);
    let blocked = CandidateBlocked::on(2, port);
    let run = site.deploy("3.0.0", &v3, &[]).code(1);
    drop(blocked);
    assert!(
        run.stderr.contains("ssh://shipit-h2 (smoke)")
            && run.stderr.contains("failed during staging")
            && run.stderr.contains("no host had switched to it"),
        "{}",
        run.stderr
    );
    all_serve(&all, port, "1", "v3 failing smoke on host 2");
    load.no_failures("v3 failing smoke on host 2");

    // Fault: a host unreachable at preflight: nothing changes anywhere.
    hosts.cut(2);
    let run = site.deploy("3.0.0", &v3, &[]).code(1);
    assert!(
        run.stderr.contains("ssh://shipit-h2")
            && run.stderr.contains("unreachable")
            && run.stderr.contains("nothing was changed"),
        "{}",
        run.stderr
    );
    all_serve(&[1, 3, 4], port, "1", "host 2 unreachable at preflight");
    hosts.mend(2);

    // Fault: SIGINT while staging.
    let load = FleetLoad::start(&all, port);
    let set = "app.version=3.0.0".to_string();
    let mut running =
        Running::start(site.command(&["deploy", "staging", "--image", &v3, "--set", &set]));
    running.wait_for("healthy", 1);
    let _ = Command::new("kill")
        .args(["-INT", &running.child.id().to_string()])
        .status();
    let (code, stderr) = running.finish();
    assert_eq!(code, 130, "{stderr}");
    all_serve(&all, port, "1", "SIGINT while staging");
    load.no_failures("SIGINT while staging");

    // Fault: a second deploy from another process, while the first one runs.
    let mut first =
        Running::start(site.command(&["deploy", "staging", "--image", &v3, "--set", &set]));
    first.wait_for("deploying", 1);
    let second = site.deploy("3.0.0", &v3, &[]).code(1);
    assert!(second.stderr.contains("locked"), "{}", second.stderr);
    let (code, stderr) = first.finish();
    assert_eq!(code, 0, "the deploy after the faults: {stderr}");
    let serving_now = |site: &Site| {
        let status = site.status();
        assert!(
            status["drift"].as_array().is_some_and(Vec::is_empty),
            "{status}"
        );
        status["hosts"][0]["status"]["release"].to_string()
    };
    let v3_release = serving_now(&site);
    all_serve(&all, port, &v3_release, "deploying v3 after the faults");

    // Fault: a host lost at the switch (its link cut the moment every host
    // has passed staging, as the switches start): the hosts that switched
    // are switched back.
    let load = FleetLoad::start(&[1, 2, 3], port);
    let set = "app.version=2.0.0".to_string();
    let mut running =
        Running::start(site.command(&["deploy", "staging", "--image", &v2, "--set", &set]));
    running.wait_for("passed through the gateway's candidate route", 4);
    hosts.cut(4);
    let (code, stderr) = running.finish();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("tcp://10.231.4.2:2376 (switch)")
            && stderr.contains("failed during switch")
            && stderr.contains("the hosts that had switched were switched back"),
        "{stderr}"
    );
    all_serve(&[1, 2, 3], port, &v3_release, "host 4 lost at the switch");
    load.no_failures("host 4 lost at the switch");
    hosts.mend(4);

    // The next deploy repairs whatever the lost host was left with, and succeeds.
    let run = site.deploy("2.0.0", &v2, &[]).success();
    let status = site.status();
    assert!(
        status["drift"].as_array().is_some_and(Vec::is_empty),
        "{status}\n{}",
        run.stderr
    );
    let release = status["hosts"][0]["status"]["release"].to_string();
    assert_ne!(release, v3_release);
    all_serve(&all, port, &release, "the deploy after host 4 came back");
}

/// Issue 23 item 11: a host whose network goes silent mid-deploy (every
/// packet dropped, no reset; over tcp://, where no ssh keepalive of the
/// test hosts' ssh configuration would notice) ends the deploy within seconds, with the
/// host named and every host on the previous release; a second signal stops
/// a deploy at once while the first one's clean stop waits on such a host.
/// Item 9: a host silent at the switch is switched back once it answers
/// again in time, and otherwise reported (and in the JSON) as unknown.
#[test]
fn a_host_gone_silent_ends_a_deploy_in_seconds_and_is_switched_back_or_reported_unknown() {
    let Some(mut site) = Site::new("silent") else {
        return;
    };
    let Some(hosts) = TestHosts::up(2) else {
        return;
    };
    let env = site.project.read("environments/staging.toml");
    site.project.write(
        "environments/staging.toml",
        &format!(
            "{env}\n[[deploy.hosts]]\nengine = \"ssh://shipit-h1\"\naddress = \"10.231.1.2\"\n\n[[deploy.hosts]]\nengine = \"tcp://10.231.2.2:2376\"\ncert_path = \"{DIR}/certs\"\n"
        ),
    );
    site.extra.push("deploy.transfer=stream".into());
    site.extra.push("deploy.health_timeout=120s".into());
    let port = site.port;
    let v1 = site.image("1.0.0", "");
    // Still starting for minutes: the cut comes while host 2 is staging it.
    let v2 = site.image(
        "2.0.0",
        r#"HEALTHCHECK --interval=1s --start-period=300s CMD ["/calculator", "healthcheck", "--url", "http://127.0.0.1:1/health"]"#,
    );
    site.deploy("1.0.0", &v1, &[]).success();
    all_serve(&[1, 2], port, "1", "deploying v1");
    day2_on_two_hosts(&site, &hosts);
    let set = "app.version=2.0.0".to_string();
    let deploy_v2 = || site.command(&["deploy", "staging", "--image", &v2, "--set", &set]);

    // Host 2 goes silent while the release is staged.
    let mut running = Running::start(deploy_v2());
    running.wait_for("deploying staging 2.0.0", 1);
    // Both hosts are waiting for their candidates' health: host 2's
    // connection is open, and its packets are now dropped.
    std::thread::sleep(Duration::from_secs(8));
    hosts.silence(2);
    let cut = Instant::now();
    let (code, stderr) = running.finish();
    let took = cut.elapsed();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        took < Duration::from_secs(90),
        "the deploy took {took:?} to end after host 2 went silent:\n{stderr}"
    );
    assert!(
        stderr.contains("tcp://10.231.2.2:2376") && stderr.contains("no answer within 30 s"),
        "{stderr}"
    );
    assert_eq!(serving(1, port).as_deref(), Some("1"), "{stderr}");
    hosts.speak(2);
    all_serve(&[1, 2], port, "1", "host 2 went silent while staging");

    // Again, and two SIGINTs: the first asks for the clean stop, which waits
    // on the silent host; the second ends the process at once.
    let mut running = Running::start(deploy_v2());
    running.wait_for("deploying staging 2.0.0", 1);
    std::thread::sleep(Duration::from_secs(8));
    hosts.silence(2);
    std::thread::sleep(Duration::from_secs(3));
    let pid = running.child.id().to_string();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    std::thread::sleep(Duration::from_secs(1));
    let second = Instant::now();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let (code, stderr) = running.finish();
    assert_eq!(code, 130, "{stderr}");
    assert!(
        second.elapsed() < Duration::from_secs(5),
        "{:?} after the second SIGINT:\n{stderr}",
        second.elapsed()
    );
    assert!(stderr.contains("a second signal"), "{stderr}");
    hosts.speak(2);

    // Issue 23 item 9: host 2 goes silent at the switch. The silence comes
    // right after both candidates passed, racing the switch; a run whose
    // switch won the race (it succeeded) is tried again with a new version.
    let mut attempt = 0;
    let mut at_the_switch = |back: bool| -> (i32, String, String, String) {
        for _ in 0..4 {
            attempt += 1;
            let version = format!("3.{attempt}.0");
            let image = site.image(&version, "");
            let before = serving(1, port).unwrap();
            let set = format!("app.version={version}");
            let mut running = Running::start(site.command(&[
                "deploy",
                "staging",
                "--image",
                &image,
                "--set",
                &set,
                "--lock-wait",
                "90s",
                "--output",
                "json",
            ]));
            running.wait_for("passed through the gateway's candidate route", 2);
            hosts.silence(2);
            if back {
                // Past the engine's call limit (30 s), inside the switch-back window.
                std::thread::sleep(Duration::from_secs(36));
                hosts.speak(2);
            }
            let (code, stderr, stdout) = running.finish_with_stdout();
            if !back {
                hosts.speak(2);
            }
            if code != 0 {
                return (code, stderr, stdout, before);
            }
        }
        panic!("the silence never came during the switch in 4 runs");
    };

    // It answers again within the deadline: switched back, and said so.
    let (code, stderr, _, before) = at_the_switch(true);
    assert_eq!(code, 1, "{stderr}");
    // Which call the silence caught decides the words: the engine's call
    // limit (the host is taken for gone until it answers again) or the
    // runtime API's own (the switch fails, the host is put back as usual).
    // Either way it is switched back and says what it serves.
    assert!(
        stderr.contains(&format!(
            "it answered again and was switched back: serves release {before}"
        )) || stderr.contains(&format!("now serves release {before} ")),
        "{stderr}"
    );
    assert!(!stderr.contains("unknown"), "{stderr}");
    all_serve(
        &[1, 2],
        port,
        &before,
        "host 2 silent at the switch, back in time",
    );

    // It stays silent: its state is reported as unknown, not as undone.
    let (code, stderr, stdout, before) = at_the_switch(false);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("undone on every host but 1 of them, whose state is unknown")
            && stderr.contains("unknown: it stopped answering during the switch"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["exit_code"], 1, "{report}");
    let by_host = |name: &str| {
        report["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{report}"))
    };
    let (one, two) = (by_host("ssh://shipit-h1"), by_host("tcp://10.231.2.2:2376"));
    assert_eq!(one["serving_release"].to_string(), before, "{report}");
    assert_eq!(two["result"], "unknown", "{report}");
    assert!(two["serving_release"].is_null(), "{report}");
    assert_eq!(serving(1, port), Some(before));

    // What the runs left (candidates, a half-switched host, a lock whose
    // lease runs out) is put right by the next deploy.
    let v4 = site.image("4.0.0", "");
    let run = site.deploy("4.0.0", &v4, &["--lock-wait", "90s"]).success();
    let status = site.status();
    assert!(
        status["drift"].as_array().is_some_and(Vec::is_empty),
        "{status}\n{}",
        run.stderr
    );
    let release = status["hosts"][0]["status"]["release"]
        .as_u64()
        .unwrap()
        .to_string();
    all_serve(&[1, 2], port, &release, "the deploy after host 2 came back");
}

/// Issue 25 on two hosts: `logs` merges both hosts' replicas, each line
/// named by its host's engine; `exec` and `run` go to the host asked for;
/// `logs --follow` reports a host gone silent and goes on with the other.
fn day2_on_two_hosts(site: &Site, hosts: &TestHosts) {
    let (one, two) = ("ssh://shipit-h1", "tcp://10.231.2.2:2376");
    let get = |i: usize, path: &str| {
        let _ = shipit::http::request(
            &format!("http://{}:{}{path}", TestHosts::address(i), site.port),
            "GET",
            &[],
            b"",
            Duration::from_secs(3),
        );
    };
    for n in 0..4 {
        get(1, &format!("/mark-h1-{n}"));
        get(2, &format!("/mark-h2-{n}"));
    }
    let run = site
        .shipit(
            &["logs", "staging", "--grep", "mark-h", "--output", "json"],
            &[],
        )
        .success();
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8, "{}\n{}", run.stdout, run.stderr);
    for l in &lines {
        let text = l["text"].as_str().unwrap();
        let host = if text.contains("mark-h1") { one } else { two };
        assert_eq!(l["host"], host, "{l}");
        assert!(
            l["replica"].as_str().unwrap().contains("-staging-r1-"),
            "{l}"
        );
    }
    let times: Vec<i64> = lines
        .iter()
        .map(|l| shipit::clock::parse_rfc3339(l["time"].as_str().unwrap()).unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let run = site
        .shipit(&["logs", "staging", "--host", two, "--grep", "mark-h"], &[])
        .success();
    assert_eq!(run.stdout.lines().count(), 4, "{}", run.stdout);
    assert!(
        run.stdout
            .lines()
            .all(|l| l.starts_with(&format!("{two} "))),
        "{}",
        run.stdout
    );

    // exec and run on the host asked for; the run leaves nothing there.
    let health = format!("http://127.0.0.1:{}/health", 8080);
    site.shipit(
        &[
            "exec",
            "staging",
            "--host",
            two,
            "--replica",
            "2",
            "--",
            "/calculator",
            "healthcheck",
            "--url",
            &health,
        ],
        &[],
    )
    .success();
    let run = site.shipit(
        &[
            "exec",
            "staging",
            "--host",
            two,
            "--",
            "/calculator",
            "healthcheck",
            "--url",
            "http://127.0.0.1:1/health",
        ],
        &[],
    );
    assert_ne!(run.code, 0, "{}", run.stderr);
    let run = site
        .shipit(
            &[
                "run",
                "staging",
                "--host",
                one,
                "--",
                "/calculator",
                "--version",
            ],
            &[],
        )
        .success();
    assert!(run.stdout.starts_with("calculator "), "{}", run.stdout);
    assert!(run.stderr.contains(&format!("on {one}")), "{}", run.stderr);
    let filter = format!("label=dev.shipit.app={}", site.app);
    let runs = TestHosts::docker(
        1,
        &[
            "ps",
            "-aq",
            "--filter",
            &filter,
            "--filter",
            "label=dev.shipit.role=run",
        ],
    );
    assert_eq!(runs.trim(), "", "a run container was left on host 1");

    // --follow: host 2 goes silent; it is named, and host 1's lines go on.
    let mut follow = site.command(&[
        "logs",
        "staging",
        "--follow",
        "--lines",
        "0",
        "--grep",
        "mark-after",
    ]);
    let mut child = follow
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    for pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    std::thread::sleep(Duration::from_secs(3));
    hosts.silence(2);
    let mut seen: Vec<String> = Vec::new();
    let start = Instant::now();
    let mut n = 0;
    while !(seen.iter().any(|l| l.contains(two) && l.contains("lost"))
        && seen
            .iter()
            .any(|l| l.starts_with(one) && l.contains("mark-after")))
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no lost host and no later line:\n{}",
            seen.join("\n")
        );
        get(1, &format!("/mark-after-{n}"));
        n += 1;
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            seen.push(line);
        }
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    hosts.speak(2);
    assert_eq!(status.code(), Some(0), "{}", seen.join("\n"));
}

/// Images that share random lower layers and differ in the top one, built
/// here FROM scratch; removed (here) on drop.
struct LayeredImages {
    references: Vec<String>,
}

impl LayeredImages {
    /// `tops` images, `repository:1` and on: a layer of each of `lowers`
    /// bytes, then one of `top` bytes of their own.
    fn build(repository: &str, lowers: &[usize], top: usize, tops: usize) -> LayeredImages {
        let dir = tempfile::tempdir().unwrap();
        let random = |name: &str, len: usize| {
            let mut bytes = vec![0u8; len];
            let mut file = std::fs::File::open("/dev/urandom").unwrap();
            std::io::Read::read_exact(&mut file, &mut bytes).unwrap();
            std::fs::write(dir.path().join(name), bytes).unwrap();
        };
        let mut lower = String::from("FROM scratch\n");
        for (i, len) in lowers.iter().enumerate() {
            random(&format!("lower{i}"), *len);
            lower.push_str(&format!("COPY lower{i} /lower{i}\n"));
        }
        let mut references = Vec::new();
        for i in 1..=tops {
            random(&format!("top{i}"), top);
            let dockerfile = format!("{lower}COPY top{i} /top\n");
            std::fs::write(dir.path().join(format!("Dockerfile.{i}")), dockerfile).unwrap();
            let reference = format!("{repository}:{i}");
            let (ok, out) = crate::docker::docker(&[
                "build",
                "-q",
                "-f",
                &dir.path().join(format!("Dockerfile.{i}")).to_string_lossy(),
                "-t",
                &reference,
                &dir.path().to_string_lossy(),
            ]);
            assert!(ok, "{out}");
            references.push(reference);
        }
        LayeredImages { references }
    }
}

impl Drop for LayeredImages {
    fn drop(&mut self) {
        for reference in &self.references {
            crate::docker::docker(&["rmi", "-f", reference]);
        }
    }
}

#[test]
fn only_the_layers_a_host_lacks_are_streamed_and_a_refused_archive_is_sent_whole() {
    if !crate::docker::engine() {
        return;
    }
    let Some(_hosts) = TestHosts::up(1) else {
        return;
    };
    let repository = format!("shipit-test/layers-{}", std::process::id());
    let images = LayeredImages::build(&repository, &[3 << 20, 3 << 20], 1 << 20, 3);
    let [v1, v2, v3] = [0, 1, 2].map(|i| images.references[i].as_str());
    let local_id = |reference: &str| {
        crate::docker::docker(&["image", "inspect", "--format", "{{.Id}}", reference]).1
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use shipit::engine::transfer::Progress;
        let source = shipit::engine::Engine::connect().await.unwrap();
        let endpoint = shipit::engine::Endpoint::parse("ssh://shipit-h1").unwrap();
        let host = shipit::engine::Engine::connect_to(&endpoint, None, None, false)
            .await
            .unwrap();

        // The first: every layer sent (7 MB and a little).
        let progress = Progress::default();
        let first = host
            .stream_image_from(&source, v1, &progress)
            .await
            .unwrap();
        assert_eq!(first.id, local_id(v1));
        assert_eq!((first.layers, first.skipped.layers), (3, 0));
        assert!(progress.bytes() > 7 << 20, "{}", progress.bytes());

        // The next: only the changed layer (1 MB) and the image's own files.
        let progress = Progress::default();
        let next = host
            .stream_image_from(&source, v2, &progress)
            .await
            .unwrap();
        assert_eq!(
            next.id,
            local_id(v2),
            "the host loaded the very image built"
        );
        assert_eq!((next.layers, next.skipped.layers), (3, 2), "{next:?}");
        assert!(next.skipped.bytes > 6 << 20, "{next:?}");
        let sent = progress.bytes();
        assert!(
            sent > 1 << 20 && sent < (1 << 20) + (64 << 10),
            "sent {sent} bytes"
        );
        assert!(next.resent.is_none());

        // A layer the host was thought to hold but does not (v3's top): the
        // engine refuses the archive without it, and the whole image goes.
        let top = source.image_layers(v3).await.pop().unwrap();
        let progress = Progress::default();
        let whole = host
            .stream_leaving_out(&source, v3, &progress, [top].into_iter().collect())
            .await
            .unwrap();
        assert_eq!(whole.id, local_id(v3));
        let why = whole.resent.expect("sent whole once more");
        assert!(why.contains("refused"), "{why}");
        assert!(progress.bytes() > 7 << 20, "{}", progress.bytes());
    });
    for reference in &images.references {
        TestHosts::docker(1, &["rmi", reference]);
    }
}

/// `just bench` (`.ci/bench-hosts`): a 305 MB image (six 50 MB layers and a
/// 5 MB one) streamed to a host that has none of it, and its next release
/// (the 5 MB layer changed) to a host that has the first, against `docker
/// save | ssh HOST docker load` of the same image, interleaved, median of 3.
/// Run with `--ignored --nocapture`.
#[test]
#[ignore = "a benchmark: run by .ci/bench-hosts"]
fn bench_stream_only_the_missing_layers() {
    if !crate::docker::engine() {
        return;
    }
    let Some(_hosts) = TestHosts::up(1) else {
        return;
    };
    let repository = format!("shipit-bench/layers-{}", std::process::id());
    let images = LayeredImages::build(&repository, &[50_000_000; 6], 5_000_000, 2);
    let (v1, v2) = (images.references[0].clone(), images.references[1].clone());
    let clear = |references: &[&str]| {
        for reference in references {
            TestHosts::docker(1, &["rmi", reference]);
        }
    };
    let save_load = |reference: &str| {
        let start = Instant::now();
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "docker save {reference} | ssh shipit-h1 docker load"
            ))
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "docker save | ssh docker load");
        start.elapsed().as_secs_f64()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (source, host) = runtime.block_on(async {
        let source = shipit::engine::Engine::connect().await.unwrap();
        let endpoint = shipit::engine::Endpoint::parse("ssh://shipit-h1").unwrap();
        let host = shipit::engine::Engine::connect_to(&endpoint, None, None, false)
            .await
            .unwrap();
        (source, host)
    });
    let stream = |reference: &str| {
        let progress = shipit::engine::transfer::Progress::default();
        let start = Instant::now();
        let streamed = runtime
            .block_on(host.stream_image_from(&source, reference, &progress))
            .unwrap();
        assert!(streamed.resent.is_none());
        (
            start.elapsed().as_secs_f64(),
            progress.bytes(),
            streamed.skipped.layers,
        )
    };
    let (mut first, mut first_cli, mut next, mut next_cli) = (vec![], vec![], vec![], vec![]);
    let mut sent = (0, 0);
    for _ in 0..3 {
        clear(&[&v1, &v2]);
        let (seconds, bytes, _) = stream(&v1);
        first.push(seconds);
        sent.0 = bytes;
        clear(&[&v1]);
        first_cli.push(save_load(&v1));
        // The host has the first release: the next one.
        let (seconds, bytes, skipped) = stream(&v2);
        assert_eq!(skipped, 6);
        next.push(seconds);
        sent.1 = bytes;
        clear(&[&v2]);
        next_cli.push(save_load(&v2));
    }
    clear(&[&v1, &v2]);
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let show = |v: &[f64]| {
        v.iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (a, b, c, d) = (
        median(&mut first),
        median(&mut first_cli),
        median(&mut next),
        median(&mut next_cli),
    );
    println!(
        "image of 305 MB (6 x 50 MB + 5 MB layers) to one host over ssh, median of 3 interleaved rounds:"
    );
    println!(
        "  first release: shipit stream {a:.2} s ({}), {:.1} MB sent; docker save | ssh docker load {b:.2} s ({})",
        show(&first),
        sent.0 as f64 / 1e6,
        show(&first_cli)
    );
    println!(
        "  first release, stream throughput / save|load throughput: {:.2}x (target >= 0.9x)",
        b / a
    );
    println!(
        "  next release (the 5 MB layer changed): shipit stream {c:.2} s ({}), {:.1} MB sent (target < 10 MB); docker save | ssh docker load {d:.2} s ({})",
        show(&next),
        sent.1 as f64 / 1e6,
        show(&next_cli)
    );
    println!(
        "  next release, stream time / save|load time: {:.2}x (target < 0.2x)",
        c / d
    );
}
