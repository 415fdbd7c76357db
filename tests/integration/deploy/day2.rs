//! The day-2 commands on a real engine (issue 25): `shipit logs` merges the
//! serving replicas' lines in time order, filters them and follows a deploy
//! made meanwhile; `exec` and `run` return the command's output and exit
//! code, `run` sees the service's env and secret file and leaves nothing,
//! even when shipit is killed mid-run; `prune` removes what is beyond
//! `deploy.keep_releases` and keeps what it must.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::support::{Site, Wrk, images, wait_for};
use crate::docker::docker;
use crate::harness::Run;

const TOKEN: &str = "tok-day2-51c9e3";

/// The calculator image with a shell (this machine's dash and the C
/// library it needs) as `version` of the site's repository: the
/// calculator's own image has none.
fn shell_image(site: &Site, version: &str) -> String {
    let reference = format!("{}:{version}", site.repository);
    build_shell_image(&reference, version);
    reference
}

/// Builds the calculator image with a shell as `reference`.
pub(crate) fn build_shell_image(reference: &str, version: &str) {
    let (base, _) = images();
    let dir = tempfile::tempdir().unwrap();
    for (from, to) in [
        ("/bin/dash", "sh"),
        ("/lib/x86_64-linux-gnu/libc.so.6", "libc.so.6"),
        ("/lib64/ld-linux-x86-64.so.2", "ld.so"),
    ] {
        std::fs::copy(from, dir.path().join(to)).unwrap();
    }
    // The label first: each version its own chain, no image another's parent.
    let dockerfile = format!(
        "FROM {base}\nLABEL test.version={version}\nCOPY sh /bin/sh\nCOPY libc.so.6 /lib/x86_64-linux-gnu/libc.so.6\nCOPY ld.so /lib64/ld-linux-x86-64.so.2\n"
    );
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    let (ok, out) = docker(&[
        "build",
        "-q",
        "-t",
        reference,
        &dir.path().display().to_string(),
    ]);
    assert!(ok, "{out}");
}

/// `shipit logs staging ... --output json`: its lines as objects.
fn json_lines(run: &Run) -> Vec<serde_json::Value> {
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn get(site: &Site, path: &str) {
    let _ = shipit::http::request(
        &format!("{}{path}", site.url()),
        "GET",
        &[],
        b"",
        Duration::from_secs(3),
    );
}

/// Lines a background shipit printed on stdout, as they come.
struct Streaming {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Streaming {
    fn start(mut cmd: Command) -> Streaming {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Streaming {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    #[track_caller]
    fn wait_for(&mut self, what: &str, found: impl Fn(&[String]) -> bool) {
        let start = Instant::now();
        while !found(&self.seen) {
            match self.lines.recv_timeout(Duration::from_millis(500)) {
                Ok(line) => self.seen.push(line),
                Err(_) if start.elapsed() > Duration::from_secs(60) => {
                    panic!("{what}: not seen in:\n{}", self.seen.join("\n"))
                }
                Err(_) => {}
            }
        }
    }

    /// Sends `signal`; the exit code and stderr.
    fn stop(mut self, signal: &str) -> (i32, String) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args([signal, &pid]).status();
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            std::io::Read::read_to_string(&mut err, &mut stderr).unwrap();
        }
        (status.code().unwrap_or(-1), stderr)
    }
}

/// One keepalive connection to the gateway, asked again and again.
struct KeepAlive(std::net::TcpStream);

impl KeepAlive {
    fn open(site: &Site) -> KeepAlive {
        let stream = std::net::TcpStream::connect(("127.0.0.1", site.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        KeepAlive(stream)
    }

    /// `GET path` on the same connection: the status and the body.
    fn get(&mut self, path: &str) -> (u16, String) {
        use std::io::Read;
        write!(
            self.0,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = self.0.read(&mut byte).expect("the connection stays open");
            assert_eq!(n, 1, "the gateway closed the keepalive connection");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let status = head[9..12].parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .expect("a Content-Length");
        let mut body = vec![0u8; length];
        self.0.read_exact(&mut body).unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

fn runs_left(site: &Site) -> String {
    let filter = format!("label=dev.shipit.app={}", site.app);
    docker(&[
        "ps",
        "-a",
        "--filter",
        &filter,
        "--filter",
        "label=dev.shipit.role=run",
        "--format",
        "{{.Names}}",
    ])
    .1
}

#[test]
fn logs_exec_run_and_prune_on_a_real_engine() {
    let Some(mut site) = Site::new("day2") else {
        return;
    };
    site.extra.push("secrets.API_TOKEN=env:API_TOKEN".into());
    site.extra.push("deploy.keep_releases=1".into());
    let token = [("API_TOKEN", TOKEN)];
    let v1 = shell_image(&site, "1.0.0");
    let v2 = shell_image(&site, "2.0.0");
    let v3 = shell_image(&site, "3.0.0");
    let deploy = |version: &str, image: &str| {
        let set = format!("app.version={version}");
        site.shipit(
            &["deploy", "staging", "--image", image, "--set", &set],
            &token,
        )
        .success()
    };
    deploy("1.0.0", &v1);

    // logs: both replicas' lines, in time order, with host and replica.
    for i in 0..6 {
        get(&site, &format!("/mark-early-{i}"));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let between = shipit::clock::rfc3339(shipit::clock::now());
    std::thread::sleep(Duration::from_millis(1100));
    for i in 0..6 {
        get(&site, &format!("/mark-late-{i}"));
    }
    let run = site
        .shipit(
            &["logs", "staging", "--lines", "1000", "--output", "json"],
            &[],
        )
        .success();
    let lines = json_lines(&run);
    let r1 = |n: usize| format!("{}-staging-r1-{n}", site.app);
    let replicas: std::collections::BTreeSet<&str> =
        lines.iter().filter_map(|l| l["replica"].as_str()).collect();
    assert_eq!(
        replicas,
        [r1(1).as_str(), r1(2).as_str()].into_iter().collect(),
        "{}",
        run.stdout
    );
    for l in &lines {
        assert_eq!(l["host"], "127.0.0.1", "{l}");
        assert!(l["stream"] == "stdout" || l["stream"] == "stderr", "{l}");
    }
    let times: Vec<&str> = lines.iter().map(|l| l["time"].as_str().unwrap()).collect();
    let stamps: Vec<(i64, String)> = times
        .iter()
        .map(|t| {
            (
                shipit::clock::parse_rfc3339(t).unwrap(),
                format!("{t:0<35}"),
            )
        })
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0].0 <= w[1].0),
        "not in time order: {times:?}"
    );
    for i in 0..6 {
        let mark = format!("/mark-early-{i}");
        assert!(
            lines
                .iter()
                .any(|l| l["text"].as_str().unwrap().contains(&mark)),
            "{mark}"
        );
    }
    // People's format: host, replica, then the line.
    let run = site.shipit(&["logs", "staging", "-n", "5"], &[]).success();
    assert!(
        run.stdout.lines().all(
            |l| l.starts_with(&format!("127.0.0.1 {}-staging-r1-", site.app)) && l.contains(" | ")
        ),
        "{}",
        run.stdout
    );
    // --grep and --since filter. (A replica writes its log out every 100 ms:
    // on a loaded machine the last lines may take a moment to reach the engine.)
    let grep_late = || {
        site.shipit(
            &[
                "logs",
                "staging",
                "--grep",
                "mark-late-[0-9]",
                "--output",
                "json",
            ],
            &[],
        )
        .success()
    };
    let start = std::time::Instant::now();
    let mut run = grep_late();
    while json_lines(&run).len() < 6 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(300));
        run = grep_late();
    }
    let late = json_lines(&run);
    assert_eq!(late.len(), 6, "{}", run.stdout);
    assert!(
        late.iter()
            .all(|l| l["text"].as_str().unwrap().contains("/mark-late-")),
        "{}",
        run.stdout
    );
    let run = site
        .shipit(
            &["logs", "staging", "--since", &between, "--output", "json"],
            &[],
        )
        .success();
    let since = json_lines(&run);
    let text = |ls: &[serde_json::Value]| {
        ls.iter()
            .map(|l| l["text"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(text(&since).contains("mark-late-5"), "{}", run.stdout);
    assert!(!text(&since).contains("mark-early"), "{}", run.stdout);
    // Bad flags: exit 2, nothing asked.
    let run = site
        .shipit(&["logs", "staging", "--grep", "("], &[])
        .code(2);
    assert!(
        run.stderr.contains("not a regular expression"),
        "{}",
        run.stderr
    );
    site.shipit(&["logs", "staging", "--follow", "--until", "1m"], &[])
        .code(2);

    // exec: the command's output and exit code, in the replica asked for.
    let run = site
        .shipit(
            &[
                "exec",
                "staging",
                "--replica",
                "2",
                "--",
                "/bin/sh",
                "-c",
                "echo on $HOSTNAME; echo to-stderr >&2; exit 3",
            ],
            &[],
        )
        .code(3);
    let (_, hostname) = docker(&["inspect", "-f", "{{.Config.Hostname}}", &r1(2)]);
    assert_eq!(run.stdout.trim(), format!("on {}", hostname.trim()));
    assert!(run.stderr.contains("to-stderr"), "{}", run.stderr);
    // With -i, this process's input reaches the command.
    let mut child = site
        .command(&[
            "exec",
            "staging",
            "-i",
            "--",
            "/bin/sh",
            "-c",
            "read l; echo got $l",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "got hello");
    assert_eq!(output.status.code(), Some(0));
    // On a terminal (a pty through util-linux's `script`): the command gets
    // one of its own, keys reach it as typed, its exit code is shipit's.
    let command = site.command(&["exec", "staging", "-i", "--", "/bin/sh"]);
    let line: Vec<String> = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    let mut script = Command::new("script");
    script.args(["-q", "-e", "-c", &line.join(" "), "/dev/null"]);
    for (k, v) in command.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    let mut child = script
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    let mut keys = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    for typed in [
        &b"[ -t 0 ] && echo on-a-$((1+1))tty; echo sum-$((40+2))\r"[..],
        b"exit 7\r",
    ] {
        keys.write_all(typed).unwrap();
        keys.flush().unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
    let output = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(7), "{screen}");
    assert!(
        screen.contains("on-a-2tty"),
        "a terminal of its own: {screen}"
    );
    assert!(screen.contains("sum-42"), "{screen}");
    let run = site
        .shipit(&["exec", "staging", "--replica", "9", "--", "/bin/sh"], &[])
        .code(2);
    assert!(
        run.stderr.contains("--replica 9: not a running replica"),
        "{}",
        run.stderr
    );
    site.shipit(&["exec", "staging"], &[]).code(2);

    // run: the serving release's image, the service's env and secret file,
    // the environment's network; the container removed afterwards.
    let script = format!(
        "read -r t < \"$API_TOKEN_FILE\"; [ \"$t\" = {TOKEN} ] && echo secret-ok; echo env=$ENVIRONMENT; exit 5"
    );
    let run = site
        .shipit(&["run", "staging", "--", "/bin/sh", "-c", &script], &token)
        .code(5);
    assert!(run.stdout.contains("secret-ok"), "{}", run.stdout);
    assert!(run.stdout.contains("env=staging"), "{}", run.stdout);
    assert!(!run.stderr.contains(TOKEN));
    assert_eq!(runs_left(&site), "");
    // Killed mid-run (SIGTERM, as CI cancels a job): stopped and removed.
    let running = Streaming::start({
        let mut cmd = site.command(&["run", "staging", "--", "/calculator", "serve"]);
        cmd.envs(token);
        cmd
    });
    wait_for("the one-off container", || !runs_left(&site).is_empty());
    std::thread::sleep(Duration::from_millis(500));
    let (code, stderr) = running.stop("-TERM");
    assert_eq!(code, 143, "{stderr}");
    assert!(stderr.contains("was stopped and removed"), "{stderr}");
    assert_eq!(runs_left(&site), "");

    // logs --follow: the replicas of a deploy made meanwhile are picked up.
    let mut follow = Streaming::start(site.command(&[
        "logs", "staging", "--follow", "--lines", "1", "--output", "json",
    ]));
    std::thread::sleep(Duration::from_secs(2));
    deploy("2.0.0", &v2);
    let r2 = format!("{}-staging-r2-", site.app);
    for i in 0..10 {
        get(&site, &format!("/mark-followed-{i}"));
    }
    follow.wait_for("a line of release 2", |seen| {
        seen.iter()
            .any(|l| l.contains(&r2) && l.contains("mark-followed"))
    });
    let (code, stderr) = follow.stop("-INT");
    assert_eq!(code, 0, "{stderr}");

    // maintenance on: every answer but health is the 503 page (escaped,
    // HTML or JSON), on connections kept alive, under load.
    let mut kept = KeepAlive::open(&site);
    assert_eq!(kept.get("/").0, 200);
    let message = "<b>Back</b> & \"soon\"";
    site.shipit(
        &[
            "maintenance",
            "staging",
            "on",
            "--message",
            message,
            "--retry-after",
            "120",
        ],
        &[],
    )
    .success();
    let (status, page) = kept.get("/");
    assert_eq!(status, 503, "{page}");
    assert!(
        page.contains("<p>&lt;b&gt;Back&lt;/b&gt; &amp; &quot;soon&quot;</p>"),
        "{page}"
    );
    assert_eq!(kept.get("/health").0, 200);
    let answer = shipit::http::request(
        &format!("{}/v1/calculate", site.url()),
        "GET",
        &[("Accept", "application/json")],
        b"",
        Duration::from_secs(3),
    )
    .unwrap();
    assert_eq!(answer.status, 503);
    assert_eq!(answer.header("Retry-After"), Some("120"));
    let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(json["message"], message, "{json}");
    let wrk = Wrk::start(&site.url(), true);
    std::thread::sleep(Duration::from_secs(2));
    let r = wrk.finish();
    assert!(
        r.requests > 50 && r.non_2xx == r.requests && r.socket_errors == 0,
        "every answer in maintenance is the page: {}",
        r.text
    );
    let status = site.status();
    assert_eq!(
        status["gateway"]["maintenance"]["message"], message,
        "{status}"
    );
    // A restarted gateway stays in maintenance.
    assert!(docker(&["restart", &format!("{}-staging-gateway", site.app)]).0);
    wait_for("the gateway back", || site.serving().is_some());
    assert_eq!(KeepAlive::open(&site).get("/").0, 503);
    // A deploy during maintenance smoke-tests through the candidate route,
    // switches, and stays in maintenance.
    deploy("3.0.0", &v3);
    assert_eq!(site.serving().as_deref(), Some("3"));
    let mut kept = KeepAlive::open(&site);
    assert_eq!(kept.get("/").0, 503);
    // Off: the same connection is served again, and a load sees no failure.
    site.shipit(&["maintenance", "staging", "off"], &[])
        .success();
    assert_eq!(kept.get("/").0, 200);
    let wrk = Wrk::start(&site.url(), false);
    std::thread::sleep(Duration::from_secs(2));
    let r = wrk.finish();
    assert!(
        r.requests > 50 && r.non_2xx == 0 && r.socket_errors == 0,
        "after maintenance: {}",
        r.text
    );
    site.shipit(&["maintenance", "staging", "off", "--message", "x"], &[])
        .code(2);

    // prune: v3 serves, v2 is kept (keep_releases = 1); v1's image goes,
    // and a finished run container left behind by a crash.
    let labels = [
        format!("dev.shipit.app={}", site.app),
        "dev.shipit.environment=staging".into(),
        "dev.shipit.role=run".into(),
    ];
    let mut create = vec!["create".to_string()];
    for l in &labels {
        create.extend(["--label".to_string(), l.clone()]);
    }
    create.push(v3.clone());
    let create: Vec<&str> = create.iter().map(String::as_str).collect();
    assert!(docker(&create).0);
    let id = |r: &str| {
        docker(&["image", "inspect", "-f", "{{.Id}}", r])
            .1
            .trim()
            .to_string()
    };
    let (id1, id2, id3) = (id(&v1), id(&v2), id(&v3));
    let run = site
        .shipit(&["prune", "staging", "--dry-run", "--output", "json"], &[])
        .success();
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        plan["hosts"][0]["images"],
        serde_json::json!([id1]),
        "{plan}"
    );
    assert_eq!(
        plan["hosts"][0]["containers"].as_array().unwrap().len(),
        1,
        "{plan}"
    );
    assert!(!runs_left(&site).is_empty(), "a dry run removes nothing");
    let run = site
        .shipit(&["prune", "staging", "--output", "json"], &[])
        .success();
    let pruned: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        pruned["hosts"][0]["images"],
        serde_json::json!([id1]),
        "{pruned}"
    );
    assert!(
        pruned["hosts"][0]["image_bytes"].as_i64().unwrap() > 0,
        "{pruned}"
    );
    assert!(
        !docker(&["image", "inspect", &id1]).0,
        "v1's image was removed"
    );
    assert!(
        docker(&["image", "inspect", &id2]).0,
        "v2 is kept for a rollback"
    );
    assert!(docker(&["image", "inspect", &id3]).0, "v3 serves");
    assert_eq!(runs_left(&site), "");
    assert_eq!(site.serving().as_deref(), Some("3"));
    // Nothing more to prune; the kept release still rolls back.
    let run = site
        .shipit(&["prune", "staging", "--output", "json"], &[])
        .success();
    let again: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        again["hosts"][0]["images"],
        serde_json::json!([]),
        "{again}"
    );
    site.shipit(&["rollback", "staging"], &token).success();
    assert_eq!(site.serving().as_deref(), Some("2"));
}
