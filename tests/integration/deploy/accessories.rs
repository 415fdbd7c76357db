//! The whole application on the real engine: PostgreSQL and Redis as
//! accessories (Debian's packages in an image the tests make offline,
//! `.ci/accessory-image`, shared), a Python service of the tests' own that
//! migrates its schema in its release command and reads and writes rows
//! over HTTP, with a worker role that processes a queue table, deployed
//! under load, a failing migration, a crashing worker, a rollback moving
//! both roles, a reboot, a backup dropped and restored.

use std::process::Command;
use std::sync::OnceLock;

use super::services::{Service, TURN};
use super::support::{Loads, Probe, no_failures_in};
use crate::docker::{self, docker};

/// The service: rows over HTTP, its schema migrated by `app.py migrate`
/// (the release command) to the version its variant knows (v3's second
/// migration fails), a counter in Redis over its own protocol, and a queue
/// of jobs that `app.py work` (the worker role) marks done by its variant.
const APP: &str = r#"import json
import os
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import psycopg2.pool

VARIANT = "VARIANT_HERE"
MIGRATIONS = {
    1: "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL); CREATE TABLE jobs (id serial PRIMARY KEY, done_by text)",
    2: "ALTER TABLE items ADD COLUMN note text NOT NULL DEFAULT ''",
    3: "ALTER TABLE no_such_table ADD COLUMN x int",
}
TARGET = {"v1": 1, "v2": 2, "v3": 3}[VARIANT]


def params():
    with open(os.environ["DB_PASSWORD_FILE"]) as f:
        password = f.read().strip()
    return dict(host=os.environ.get("DB_HOST", "db"), dbname="app", user="postgres", password=password, connect_timeout=5)


def migrate():
    conn = psycopg2.connect(**params())
    cur = conn.cursor()
    cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version int NOT NULL)")
    cur.execute("SELECT coalesce(max(version), 0) FROM schema_version")
    have = cur.fetchone()[0]
    conn.commit()
    for version in range(have + 1, TARGET + 1):
        print(f"migration {version}: {MIGRATIONS[version]}", flush=True)
        cur.execute(MIGRATIONS[version])
        cur.execute("INSERT INTO schema_version VALUES (%s)", (version,))
        conn.commit()
    print(f"schema at version {max(have, TARGET)}", flush=True)


def work():
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    conn = psycopg2.connect(**params())
    print(f"worker {VARIANT} started", flush=True)
    while not stop.is_set():
        with conn:
            with conn.cursor() as cur:
                cur.execute(
                    "UPDATE jobs SET done_by = %s WHERE id = (SELECT id FROM jobs WHERE done_by IS NULL ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id",
                    (VARIANT,),
                )
                got = cur.fetchone()
        if got is None:
            stop.wait(0.1)
    print(f"worker {VARIANT} stopped on SIGTERM", flush=True)


if sys.argv[1:] == ["migrate"]:
    migrate()
    sys.exit(0)
if sys.argv[1:] == ["work"]:
    work()
    sys.exit(0)

POOL = psycopg2.pool.ThreadedConnectionPool(1, 20, **params())


def query(sql, args=()):
    conn = POOL.getconn()
    try:
        with conn:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else None
    finally:
        POOL.putconn(conn)


def redis(*words):
    with socket.create_connection(("cache", 6379), timeout=5) as s:
        s.sendall(("*%d\r\n" % len(words) + "".join("$%d\r\n%s\r\n" % (len(w), w) for w in words)).encode())
        return s.recv(1024).decode().strip()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            self.answer(200, {"status": "ok", "variant": VARIANT})
        elif self.path == "/items":
            rows = query("SELECT id, name FROM items ORDER BY id")
            self.answer(200, {"items": [[i, n] for i, n in rows]})
        elif self.path == "/schema":
            columns = query("SELECT column_name FROM information_schema.columns WHERE table_name = 'items' ORDER BY ordinal_position")
            self.answer(200, {"version": query("SELECT max(version) FROM schema_version")[0][0], "columns": [c for (c,) in columns]})
        elif self.path == "/jobs":
            rows = query("SELECT coalesce(done_by, 'pending'), count(*) FROM jobs GROUP BY 1")
            self.answer(200, {k: n for k, n in rows})
        elif self.path == "/cache":
            self.answer(200, {"hits": redis("INCR", "hits")})
        else:
            self.answer(404, {"error": "not found"})

    def do_POST(self):
        data = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        if self.path == "/items":
            (row,) = query("INSERT INTO items (name) VALUES (%s) RETURNING id", (data["name"],))
            self.answer(200, {"id": row[0]})
        elif self.path == "/jobs":
            query("INSERT INTO jobs (done_by) SELECT NULL FROM generate_series(1, %s)", (data["count"],))
            self.answer(200, {"queued": data["count"]})
        else:
            self.answer(404, {"error": "not found"})

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 128


server = Server(("0.0.0.0", 8080), Handler)
server.daemon_threads = True
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
print(f"web {VARIANT} serving", flush=True)
server.serve_forever()
"#;

const ACCESSORIES: &str = r#"
[accessories.db]
image = "IMAGE_HERE"
port = 5432
user = "postgres"
cmd = ["postgres-accessory"]
volumes = ["data:/var/lib/postgresql/data"]
env = { POSTGRES_DB = "app" }
secrets = { POSTGRES_PASSWORD = "env:TEST_DB_PASSWORD" }
healthcheck = ["pg_isready", "-h", "/tmp", "-U", "postgres"]

[accessories.db.backup]
command = ["pg_dump", "-Fc", "-h", "/tmp", "-U", "postgres", "app"]
restore = ["pg_restore", "--clean", "--if-exists", "-h", "/tmp", "-U", "postgres", "-d", "app"]

[accessories.cache]
image = "IMAGE_HERE"
port = 6379
user = "redis"
cmd = ["redis-server", "/etc/redis/shipit.conf"]
files = ["redis.conf:/etc/redis/shipit.conf"]
healthcheck = ["redis-cli", "ping"]
"#;

/// The worker role: one replica, without a check (running steadily is its
/// health), a short grace to finish its job.
const ROLES: &str = r#"
[roles.worker]
cmd = ["python3", "/srv/app.py", "work"]
stop_grace = "5s"
"#;

const PASSWORD: &str = "not-in-any-file-7f3a";

/// The service's settings for its database: the release command migrates,
/// the password is a secret file.
const MIGRATED: [&str; 3] = [
    r#"deploy.release_command=["python3", "/srv/app.py", "migrate"]"#,
    "deploy.release_timeout=60s",
    "secrets.DB_PASSWORD=env:TEST_DB_PASSWORD",
];

/// The accessory image (`.ci/accessory-image`, made once and shared).
pub(crate) fn accessory_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let out = Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/accessory-image"))
            .output()
            .expect("bash .ci/accessory-image");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
}

/// The service's image `REFERENCE:VARIANT`, on the accessory image.
fn build_app(base: &str, reference: &str, variant: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.py"),
        APP.replace("VARIANT_HERE", variant),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {base}\nCOPY app.py /srv/app.py\nUSER 10001:10001\nCMD [\"python3\", \"/srv/app.py\"]\n"),
    )
    .unwrap();
    let (ok, text) = docker(&[
        "build",
        "-q",
        "-t",
        &format!("{reference}:{variant}"),
        dir.path().to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
}

/// The accessories' named volumes, removed at the end whatever happens.
struct Volumes(String);

impl Drop for Volumes {
    fn drop(&mut self) {
        let filter = format!("label=dev.shipit.app={}", self.0);
        let (_, ids) = docker(&["ps", "-aq", "--filter", &filter]);
        for id in ids.lines() {
            docker(&["rm", "-f", "-v", id]);
        }
        let (_, names) = docker(&["volume", "ls", "-q", "--filter", &filter]);
        for v in names.lines() {
            docker(&["volume", "rm", "-f", v]);
        }
    }
}

fn get(url: &str) -> serde_json::Value {
    let r = shipit::http::request(url, "GET", &[], b"", std::time::Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(r.status, 200, "GET {url}: {}", r.text());
    serde_json::from_str(&r.text()).unwrap()
}

fn post(url: &str, body: &str) -> serde_json::Value {
    let r = shipit::http::request(
        url,
        "POST",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
        std::time::Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    assert_eq!(r.status, 200, "POST {url}: {}", r.text());
    serde_json::from_str(&r.text()).unwrap()
}

/// Queues `count` jobs and waits until the worker role has done every one;
/// how many each variant did.
fn work_through(url: &str, count: u64) -> serde_json::Value {
    post(&format!("{url}/jobs"), &format!("{{\"count\": {count}}}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let jobs = get(&format!("{url}/jobs"));
        if jobs.get("pending").is_none() {
            return jobs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker did not finish the queue: {jobs}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// A container's state and its log, by name.
fn state_and_log(name: &str) -> (String, String) {
    let (_, state) = docker(&["inspect", "-f", "{{.State.Status}}", name]);
    let (_, log) = docker(&["logs", name]);
    (state.trim().to_string(), log)
}

const WRITE: Probe = Probe {
    path: "/items",
    body: r#"{"name": "load"}"#,
    expect: r#""id""#,
};

#[test]
fn docker_accessories_a_migrating_release_command_and_a_backup_restored() {
    if !docker::engine() {
        return;
    }
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let base = accessory_image();
    let _leftovers = docker::Leftovers(base.to_string());
    let reference = format!("shipit-test/accessory-app-{}", std::process::id());
    let _images = super::services::Cleanup(reference.clone());
    for variant in ["v1", "v2", "v3"] {
        build_app(base, &reference, variant);
    }
    let image = |v: &str| format!("build.image={reference}:{v}");
    let mut service = Service::new(
        "acc",
        &[(
            "redis.conf",
            "bind 0.0.0.0\nport 6379\nprotected-mode no\nsave \"\"\nappendonly no\n".into(),
        )],
        &["--kind", "image", "--image", &format!("{reference}:v1")],
    );
    let _volumes = Volumes(service.app.clone());
    // Its own smoke check instead of the greeting's: the rows answer.
    let config = service.project.read("environments/base.toml").replace(
        super::services::CHECKS,
        "\n[[smoke.checks]]\nname = \"GET /items answers\"\npath = \"/items\"\n",
    );
    service.project.write(
        "environments/base.toml",
        &format!("{config}{}{ROLES}", ACCESSORIES.replace("IMAGE_HERE", base)),
    );
    service.sets.retain(|s| !s.starts_with("replicas="));
    service.sets.extend(["replicas=2".into()]);
    service.sets.extend(MIGRATED.map(String::from));
    let run = |args: &[&str]| service.shipit_env(args, &[("TEST_DB_PASSWORD", PASSWORD)]);
    let url = service.url();

    // A deploy before the accessories are booted is refused, naming the command.
    let refused = run(&["deploy", "development", "--set", &image("v1")]);
    assert_ne!(refused.code, 0, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("accessory db is not booted: `shipit accessory boot development db` first"),
        "{}",
        refused.stderr
    );
    assert!(service.serving().is_none());
    // The plan says so too, and runs the release command after the inspection.
    let planned = run(&[
        "deploy",
        "development",
        "--set",
        &image("v1"),
        "--dry-run",
        "--output",
        "json",
    ]);
    let plan: serde_json::Value =
        serde_json::from_str(&planned.stdout).unwrap_or_else(|e| panic!("{e}: {}", planned.stdout));
    assert_eq!(planned.code, 1, "{}", planned.stderr);
    let plan = &plan["plan"];
    assert!(
        plan["problems"]
            .to_string()
            .contains("accessory db is not booted"),
        "{plan}"
    );
    let steps: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        &steps[..4],
        ["preflight", "lock", "inspect", "release"],
        "{plan}"
    );
    assert_eq!(
        plan["release_command"],
        serde_json::json!(["python3", "/srv/app.py", "migrate"])
    );
    assert_eq!(plan["roles"][0]["name"], "worker", "{plan}");
    assert_eq!(plan["roles"][0]["replicas"], 1, "{plan}");

    // An accessory the environment does not declare: exit 2, with those it does.
    let unknown = run(&["accessory", "boot", "development", "dbx"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(
        unknown
            .stderr
            .contains("dbx is not an accessory of development (declared: cache, db)"),
        "{}",
        unknown.stderr
    );

    // Boot: both accessories, healthy; again: nothing changes.
    let booted = run(&["accessory", "boot", "development"]).success();
    assert!(booted.stderr.contains("booted db"), "{}", booted.stderr);
    assert!(booted.stderr.contains("booted cache"), "{}", booted.stderr);
    let (_, started) = docker(&[
        "inspect",
        "-f",
        "{{.State.StartedAt}}",
        &format!("{}-development-db", service.app),
    ]);
    let again = run(&["accessory", "boot", "development", "db"]).success();
    assert!(again.stderr.contains("running db"), "{}", again.stderr);
    let (_, still) = docker(&[
        "inspect",
        "-f",
        "{{.State.StartedAt}}",
        &format!("{}-development-db", service.app),
    ]);
    assert_eq!(started, still, "a second boot restarted the accessory");
    // The password is a file inside, never in the container's configuration.
    let (_, inspect) = docker(&["inspect", &format!("{}-development-db", service.app)]);
    assert!(
        !inspect.contains(PASSWORD),
        "the secret shows in docker inspect"
    );
    assert!(
        inspect.contains("POSTGRES_PASSWORD_FILE=/run/secrets/"),
        "{inspect}"
    );

    // v1: its release command migrates before it serves.
    let v1 = run(&[
        "deploy",
        "development",
        "--set",
        &image("v1"),
        "--set",
        "app.version=1.0.0",
    ])
    .success();
    assert!(
        v1.stderr.contains("migration 1: CREATE TABLE items"),
        "{}",
        v1.stderr
    );
    assert!(
        v1.stderr.contains("the release command passed"),
        "{}",
        v1.stderr
    );
    for i in 0..50 {
        post(
            &format!("{url}/items"),
            &format!("{{\"name\": \"row {i}\"}}"),
        );
    }
    let before = get(&format!("{url}/items"))["items"].clone();
    assert_eq!(before.as_array().unwrap().len(), 50);
    assert_eq!(get(&format!("{url}/cache"))["hits"], ":1");
    // Its worker runs beside the web replicas and works the queue.
    let worker = |release: u64| format!("{}-development-r{release}-worker-1", service.app);
    assert_eq!(state_and_log(&worker(1)).0, "running");
    assert_eq!(work_through(&url, 20), serde_json::json!({"v1": 20}));
    let status = run(&["status", "development", "--output", "json"]).success();
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let roles: Vec<(String, String)> = status["replicas"]
        .as_array()
        .unwrap_or_else(|| panic!("{status}"))
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().into(),
                r["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            (format!("{}-development-r1-1", service.app), "web".into()),
            (format!("{}-development-r1-2", service.app), "web".into()),
            (worker(1), "worker".to_string()),
        ]
    );
    // `logs --role`: one role's lines only.
    let replicas_of = |role: &str| {
        let logs = run(&["logs", "development", "--role", role, "--output", "json"]).success();
        logs.stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|l| {
                (
                    l["replica"].as_str().unwrap().to_string(),
                    l["text"].as_str().unwrap().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let lines = replicas_of("worker");
    assert!(lines.iter().all(|(r, _)| *r == worker(1)), "{lines:?}");
    assert!(
        lines.iter().any(|(_, t)| t == "worker v1 started"),
        "{lines:?}"
    );
    let lines = replicas_of("web");
    assert!(lines.iter().all(|(r, _)| *r != worker(1)), "{lines:?}");
    assert!(
        lines.iter().any(|(_, t)| t == "web v1 serving"),
        "{lines:?}"
    );
    let unknown = run(&["logs", "development", "--role", "mailer"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("web, worker"), "{}", unknown.stderr);

    // v2 under load writing rows (keepalive, paced and not, new connections):
    // its migration adds a column; nothing fails, nothing is lost.
    let loads = Loads::start_probe(&url, &url, shipit::http::Route::default(), WRITE);
    let v2 = run(&[
        "deploy",
        "development",
        "--set",
        &image("v2"),
        "--set",
        "app.version=2.0.0",
    ]);
    let counts = no_failures_in(loads, "the deploy of v2 with its migration");
    assert_eq!(v2.code, 0, "{}", v2.stderr);
    eprintln!("requests during the deploy of v2: {counts:?}");
    assert!(
        v2.stderr
            .contains("migration 2: ALTER TABLE items ADD COLUMN note"),
        "{}",
        v2.stderr
    );
    let schema = get(&format!("{url}/schema"));
    assert_eq!(schema["version"], 2);
    assert_eq!(schema["columns"], serde_json::json!(["id", "name", "note"]));
    let after: Vec<serde_json::Value> = get(&format!("{url}/items"))["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        &after[..50],
        before.as_array().unwrap().as_slice(),
        "the rows written before changed"
    );
    assert!(after[50..].iter().all(|r| r[1] == "load") && after.len() > 50);
    assert_eq!(get(&format!("{url}/health"))["variant"], "v2");
    // v1's worker was stopped with the web replicas, gracefully (SIGTERM, its
    // grace); v2's does the work now.
    let (state, log) = state_and_log(&worker(1));
    assert_eq!(state, "exited");
    assert!(log.contains("worker v1 stopped on SIGTERM"), "{log}");
    assert_eq!(state_and_log(&worker(2)).0, "running");
    assert_eq!(work_through(&url, 20)["v2"], 20);

    // A release whose worker crashes is not switched to: all or none.
    let crash = run(&[
        "deploy",
        "development",
        "--set",
        &image("v2"),
        "--set",
        "app.version=2.0.1",
        "--set",
        r#"roles.worker.cmd=["python3", "-c", "raise SystemExit(3)"]"#,
    ]);
    assert_ne!(crash.code, 0, "{}", crash.stderr);
    assert!(
        crash.stderr.contains(&worker(3))
            && crash.stderr.contains("exited")
            && crash.stderr.contains("before it had run steadily"),
        "{}",
        crash.stderr
    );
    assert_eq!(service.serving().as_deref(), Some("2"));
    assert_eq!(state_and_log(&worker(2)).0, "running");
    assert_eq!(work_through(&url, 5)["v2"], 25);

    // v3: its migration fails; v2 still serves, nothing else changed.
    let v3 = run(&[
        "deploy",
        "development",
        "--set",
        &image("v3"),
        "--set",
        "app.version=3.0.0",
    ]);
    assert_ne!(v3.code, 0, "{}", v3.stderr);
    assert!(
        v3.stderr.contains("no_such_table"),
        "its output was shown: {}",
        v3.stderr
    );
    assert!(
        v3.stderr.contains("the release command exited with code 1"),
        "{}",
        v3.stderr
    );
    assert!(
        v3.stderr.contains("release 2 (2.0.0) still serves"),
        "{}",
        v3.stderr
    );
    assert_eq!(get(&format!("{url}/health"))["variant"], "v2");
    assert_eq!(service.serving().as_deref(), Some("2"));
    // The history says so.
    let status = run(&["status", "development", "--output", "json"]).success();
    assert!(
        status
            .stdout
            .contains("the release command exited with code 1"),
        "{}",
        status.stdout
    );
    let filter = format!("label=dev.shipit.app={}", service.app);
    let (_, left) = docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]);
    assert!(
        !left.contains("-release-"),
        "the release command's container stayed: {left}"
    );
    assert!(
        !left.contains("-r3-") && !left.contains("-r4-"),
        "a replica of the failed releases stayed: {left}"
    );
    assert_eq!(state_and_log(&worker(2)).0, "running");

    // A rollback moves both roles back: v1's web replicas and its worker.
    run(&["rollback", "development"]).success();
    assert_eq!(get(&format!("{url}/health"))["variant"], "v1");
    assert_eq!(state_and_log(&worker(1)).0, "running");
    let (state, log) = state_and_log(&worker(2));
    assert_eq!(state, "exited");
    assert!(log.contains("worker v2 stopped on SIGTERM"), "{log}");
    assert_eq!(work_through(&url, 10)["v1"], 30);

    // A reboot with a changed setting keeps the data.
    let rows = get(&format!("{url}/items"));
    let rebooted = run(&[
        "accessory",
        "reboot",
        "development",
        "db",
        "--set",
        "accessories.db.env.PGAPPNAME=shipit",
    ])
    .success();
    assert!(
        rebooted.stderr.contains("rebooted db"),
        "{}",
        rebooted.stderr
    );
    assert_eq!(
        get(&format!("{url}/items")),
        rows,
        "the rows after the reboot"
    );

    // Backup, drop the table, restore: every row back, by content.
    let dump = service.project.path().join("db.dump");
    let dump_arg = dump.to_str().unwrap();
    let backed = run(&["accessory", "backup", "development", "db", dump_arg]).success();
    assert!(backed.stderr.contains("backed up db"), "{}", backed.stderr);
    assert!(std::fs::metadata(&dump).unwrap().len() > 1000);
    let again = run(&["accessory", "backup", "development", "db", dump_arg]);
    assert_eq!(again.code, 2, "a backup replaced a file: {}", again.stderr);
    let (ok, text) = docker(&[
        "exec",
        &format!("{}-development-db", service.app),
        "psql",
        "-h",
        "/tmp",
        "-U",
        "postgres",
        "-d",
        "app",
        "-c",
        "DROP TABLE items",
    ]);
    assert!(ok, "{text}");
    let unconfirmed = run(&["accessory", "restore", "development", "db", dump_arg]);
    assert_eq!(unconfirmed.code, 2, "{}", unconfirmed.stderr);
    run(&[
        "accessory",
        "restore",
        "development",
        "db",
        dump_arg,
        "--confirm",
        "db",
    ])
    .success();
    assert_eq!(
        get(&format!("{url}/items")),
        rows,
        "the rows after the restore"
    );

    // Remove keeps the volume unless asked; booted again, the data is there.
    let kept = run(&["accessory", "remove", "development", "db"]);
    assert_eq!(kept.code, 2, "{}", kept.stderr);
    run(&[
        "accessory",
        "remove",
        "development",
        "db",
        "--confirm",
        "db",
    ])
    .success();
    let status = run(&["accessory", "status", "development", "--output", "json"]).success();
    let shown: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let states: Vec<(String, String)> = shown["accessories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["accessory"].as_str().unwrap().into(),
                a["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("cache".into(), "running".into()),
            ("db".into(), "missing".into())
        ]
    );
    run(&["accessory", "boot", "development", "db"]).success();
    assert_eq!(
        get(&format!("{url}/items")),
        rows,
        "the rows after remove and boot"
    );
    assert_eq!(get(&format!("{url}/cache"))["hits"], ":2");
}

/// Two hosts: PostgreSQL on the first only, published on its address in
/// the hosts' private network; the service on both, migrated once (on the
/// first host) and reaching the database across hosts: a row written
/// through one host's gateway is read through the other's.
#[test]
fn an_accessory_on_one_host_serves_the_service_on_both() {
    if !docker::engine() {
        return;
    }
    let Some(_hosts) = super::hosts::TestHosts::up(2) else {
        return;
    };
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let base = accessory_image();
    let _leftovers = docker::Leftovers(base.to_string());
    let reference = format!("shipit-test/accessory-hosts-{}", std::process::id());
    let _images = super::services::Cleanup(reference.clone());
    build_app(base, &reference, "v1");
    let mut service = Service::new(
        "acch",
        &[],
        &["--kind", "image", "--image", &format!("{reference}:v1")],
    );
    let config = service.project.read("environments/base.toml").replace(
        super::services::CHECKS,
        "\n[[smoke.checks]]\nname = \"GET /items answers\"\npath = \"/items\"\n",
    );
    let (one, two) = (
        super::hosts::TestHosts::address(1),
        super::hosts::TestHosts::address(2),
    );
    service.project.write(
        "environments/base.toml",
        &format!(
            "{config}\n[accessories.db]\nimage = \"{base}\"\nhosts = [\"ssh://shipit-h1\"]\nport = 5432\npublish = \"{one}:5432\"\nuser = \"postgres\"\ncmd = [\"postgres-accessory\"]\nvolumes = [\"data:/var/lib/postgresql/data\"]\nenv = {{ POSTGRES_DB = \"app\" }}\nsecrets = {{ POSTGRES_PASSWORD = \"env:TEST_DB_PASSWORD\" }}\nhealthcheck = [\"pg_isready\", \"-h\", \"/tmp\", \"-U\", \"postgres\"]\n"
        ),
    );
    let development = service.project.read("environments/development.toml");
    service.project.write(
        "environments/development.toml",
        &format!(
            "{development}\n[[deploy.hosts]]\nengine = \"ssh://shipit-h1\"\naddress = \"{one}\"\n\n[[deploy.hosts]]\nengine = \"ssh://shipit-h2\"\naddress = \"{two}\"\n"
        ),
    );
    service
        .sets
        .retain(|s| !s.starts_with("replicas=") && !s.starts_with("smoke.url="));
    let port = service.url().rsplit(':').next().unwrap().to_string();
    service.sets.extend([
        "replicas=1".into(),
        "deploy.transfer=stream".into(),
        format!("env.DB_HOST={one}"),
    ]);
    service.sets.extend(MIGRATED.map(String::from));
    let run = |args: &[&str]| service.shipit_env(args, &[("TEST_DB_PASSWORD", PASSWORD)]);

    let booted = run(&["accessory", "boot", "development"]).success();
    assert!(booted.stderr.contains("booted db"), "{}", booted.stderr);
    let name = format!("{}-development-db", service.app);
    let on = |i: usize| {
        super::hosts::TestHosts::docker(i, &["ps", "-q", "--filter", &format!("name=^{name}$")])
    };
    assert_eq!(
        on(1).lines().count(),
        1,
        "the database runs on the first host"
    );
    assert_eq!(on(2).lines().count(), 0, "and not on the second");

    let deployed = run(&["deploy", "development", "--set", "app.version=1.0.0"]).success();
    assert_eq!(
        deployed
            .stderr
            .matches("migration 1: CREATE TABLE items")
            .count(),
        1,
        "the release command ran once, for both hosts: {}",
        deployed.stderr
    );
    let url = |host: &str| format!("http://{host}:{port}");
    // Written through the second host's replica, read through the first's.
    let id = post(&format!("{}/items", url(&two)), r#"{"name": "across"}"#)["id"].clone();
    let rows = get(&format!("{}/items", url(&one)));
    assert_eq!(rows["items"], serde_json::json!([[id, "across"]]), "{rows}");
    assert_eq!(get(&format!("{}/items", url(&two))), rows);
    let status = run(&["accessory", "status", "development", "--output", "json"]).success();
    let shown: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let db = &shown["accessories"][0];
    assert_eq!(db["accessory"], "db", "{shown}");
    assert_eq!(db["state"], "running", "{shown}");
    assert_eq!(db["host"], "ssh://shipit-h1", "{shown}");
    assert_eq!(db["published"], format!("{one}:5432"), "{shown}");
    assert_eq!(shown["accessories"].as_array().unwrap().len(), 1, "{shown}");
}
