//! Helpers for tests against the real Docker engine and a real registry.
//! Without an engine they fail loudly, unless SHIPIT_SKIP_DOCKER=1.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// True when the engine answers; false (with a note) when SHIPIT_SKIP_DOCKER=1.
pub fn engine() -> bool {
    if std::env::var_os("SHIPIT_SKIP_DOCKER").is_some_and(|v| v == "1") {
        eprintln!("SHIPIT_SKIP_DOCKER=1: skipping a test that needs the Docker engine");
        return false;
    }
    let ok = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test needs the Docker engine (DOCKER_HOST or /var/run/docker.sock); set SHIPIT_SKIP_DOCKER=1 to skip it"
    );
    true
}

pub fn docker(args: &[&str]) -> (bool, String) {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text.trim().to_string())
}

/// A file in a container, as the engine's archive API hands it out: its
/// bytes, mode (permission bits) and owner (uid, gid).
pub struct ContainerFile {
    pub bytes: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

pub fn container_file(container: &str, path: &str) -> ContainerFile {
    let out = Command::new("docker")
        .args(["cp", &format!("{container}:{path}"), "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut archive = tar::Archive::new(out.stdout.as_slice());
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let header = entry.header().clone();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
    ContainerFile {
        bytes,
        mode: header.mode().unwrap() & 0o7777,
        uid: header.uid().unwrap(),
        gid: header.gid().unwrap(),
    }
}

/// `docker ARGS` with `input` on stdin, and Docker's client configuration
/// from `config` when given (`--config DIR`): a Dockerfile, a password.
pub fn docker_with_input(config: Option<&std::path::Path>, args: &[&str], input: &str) {
    use std::io::Write;
    let mut command = Command::new("docker");
    if let Some(dir) = config {
        command.arg("--config").arg(dir);
    }
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds `reference` from `base` labelled with `version`, plus the
/// Dockerfile lines `tail` (the Dockerfile on stdin, no context).
pub fn build_variant(reference: &str, base: &str, version: &str, tail: &str) {
    docker_with_input(
        None,
        &["build", "-q", "-t", reference, "-"],
        &format!("FROM {base}\nLABEL test.version={version}\n{tail}\n"),
    );
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's `docker-registry` on a free loopback port, stopped and wiped on drop.
pub struct Registry {
    pub address: String,
    child: Child,
    /// Holds the registry's storage and log until the registry stops.
    dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        Registry::with_extra("")
    }

    /// A registry with extra configuration appended (auth, maintenance, ...).
    pub fn with_extra(extra: &str) -> Registry {
        Registry::serve(&format!("127.0.0.1:{}", free_port()), extra, "")
    }

    /// A registry on `address`, with `extra` top-level and `http_extra`
    /// (indented two spaces: tls, ...) configuration.
    pub fn serve(address: &str, extra: &str, http_extra: &str) -> Registry {
        Registry::serve_logged(
            address,
            extra,
            http_extra,
            "warn",
            tempfile::tempdir().unwrap(),
        )
    }

    /// A registry that lets in only `users` (name, password), logging each
    /// request and who made it (`log()`).
    pub fn with_users(users: &[(&str, &str)]) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("htpasswd");
        for (i, (user, password)) in users.iter().enumerate() {
            let made = Command::new("htpasswd")
                .arg(if i == 0 { "-Bbc" } else { "-Bb" })
                .arg(&file)
                .args([user, password])
                .output()
                .expect("htpasswd (Debian package apache2-utils)");
            assert!(made.status.success(), "htpasswd: {made:?}");
        }
        let auth = format!(
            "auth:\n  htpasswd:\n    realm: shipit-test\n    path: {}\n",
            file.display()
        );
        let address = format!("127.0.0.1:{}", free_port());
        Registry::serve_logged(&address, &auth, "", "info", dir)
    }

    fn serve_logged(
        address: &str,
        extra: &str,
        http_extra: &str,
        level: &str,
        dir: tempfile::TempDir,
    ) -> Registry {
        let config = format!(
            "version: 0.1\nlog:\n  level: {level}\nstorage:\n  filesystem:\n    rootdirectory: {}\n{extra}http:\n  addr: {address}\n{http_extra}",
            dir.path().join("data").display()
        );
        let path = dir.path().join("config.yml");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect(
                "docker-registry (Debian package docker-registry; .ci/install-tools installs it)",
            );
        let address = address.to_string();
        let start = Instant::now();
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            address,
            child,
            dir,
        }
    }

    /// What the registry logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes the untagged images that builds from `base` left: a multi-stage
/// build's builder stage, or the layers before a step that failed. Only
/// images descended from `base` are touched.
pub fn remove_leftovers_of(base: &str) {
    let (found, base_id) = docker(&["image", "inspect", "-f", "{{.Id}}", base]);
    let base_id = base_id.trim();
    if !found || base_id.is_empty() {
        return;
    }
    let (_, dangling) = docker(&["images", "-q", "--no-trunc", "-f", "dangling=true"]);
    for id in dangling.lines().filter(|l| !l.is_empty()) {
        let (_, history) = docker(&["history", "-q", "--no-trunc", id]);
        if history.lines().any(|layer| layer.trim() == base_id) {
            docker(&["rmi", id]);
        }
    }
}

/// Removes what builds from an image left behind, when dropped (even after a failed assertion).
pub struct Leftovers(pub String);

impl Drop for Leftovers {
    fn drop(&mut self) {
        remove_leftovers_of(&self.0);
    }
}

/// Removes every local tag of `repository` (and so the image, when no other tag holds it).
pub fn remove_repository(repository: &str) {
    let (_, listing) = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}", repository]);
    for name in listing.lines().filter(|l| !l.is_empty()) {
        docker(&["rmi", "-f", name]);
    }
}

/// A container from `image` with its port published on loopback; removed on drop.
pub struct Container {
    pub name: String,
    pub port: u16,
}

impl Container {
    pub fn run(image: &str) -> Container {
        let name = format!("shipit-test-{}-{}", std::process::id(), free_port());
        let (ok, out) = docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--read-only",
            "--cap-drop",
            "ALL",
            "-p",
            "127.0.0.1::8080",
            image,
        ]);
        assert!(ok, "{out}");
        let (_, port) = docker(&["port", &name, "8080/tcp"]);
        let port = port
            .lines()
            .next()
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .expect("a published port");
        Container { name, port }
    }

    /// Waits for Docker's health status to be `healthy`.
    pub fn wait_healthy(&self) {
        let start = Instant::now();
        loop {
            let (_, status) = docker(&["inspect", "-f", "{{.State.Health.Status}}", &self.name]);
            if status == "healthy" {
                return;
            }
            if start.elapsed() > Duration::from_secs(60) {
                let (_, logs) = docker(&["logs", &self.name]);
                panic!("{} never became healthy ({status}):\n{logs}", self.name);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn get(&self, path: &str) -> calculator::client::Response {
        calculator::client::request(
            &format!("127.0.0.1:{}", self.port),
            "GET",
            path,
            &[],
            b"",
            Duration::from_secs(5),
        )
        .unwrap()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        docker(&["rm", "-f", "-v", &self.name]);
    }
}
