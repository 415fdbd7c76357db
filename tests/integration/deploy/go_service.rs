//! `build.kind = "go"`: a Go service of the test's own (standard library
//! only) from `shipit init` to a redeploy under load, built offline on the
//! builder `shipit image go` makes: a static binary on scratch, non-root.

use std::process::Command;

use super::services::{Service, TURN, offline_base};
use super::support::{Loads, Probe, no_failures_in};
use crate::docker::{self, docker};
use crate::harness::Project;

const GO_MOD: &str = "module example.com/shop\n\ngo 1.19\n";

/// Health (and `-healthcheck`, the image's probe), a greeting, an echo.
const MAIN: &str = r#"package main

import (
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const variant = "VARIANT_HERE"

var version = "dev"

func answer(w http.ResponseWriter, status int, payload any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(payload)
}

func main() {
	probe := flag.Bool("healthcheck", false, "exit 0 when /health answers 200")
	flag.Parse()
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if *probe {
		client := http.Client{Timeout: 3 * time.Second}
		response, err := client.Get("http://127.0.0.1:" + port + "/health")
		if err != nil || response.StatusCode != http.StatusOK {
			os.Exit(1)
		}
		os.Exit(0)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		answer(w, 200, map[string]string{"status": "ok", "version": version})
	})
	mux.HandleFunc("/greeting", func(w http.ResponseWriter, r *http.Request) {
		answer(w, 200, map[string]string{"greeting": "hello", "variant": variant})
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		var body any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			answer(w, 400, map[string]string{"error": err.Error()})
			return
		}
		answer(w, 200, map[string]any{"echo": body})
	})
	server := &http.Server{Addr: ":" + port, Handler: mux}
	go func() { _ = server.ListenAndServe() }()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	<-stop
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = server.Shutdown(ctx)
}
"#;

const ECHO: Probe = Probe {
    path: "/echo",
    body: r#"{"n": 7}"#,
    expect: r#""n":7"#,
};

/// A container made to read the image's files, removed on drop.
struct Created(String);

impl Drop for Created {
    fn drop(&mut self) {
        docker(&["rm", "-f", "-v", &self.0]);
    }
}

/// `go ARGS` in `dir`, offline (no proxy), with its cache in `dir/.gocache`; it must succeed.
fn go(dir: &std::path::Path, args: &[&str]) {
    let run = Command::new("go")
        .args(args)
        .current_dir(dir)
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOCACHE", dir.join(".gocache"))
        .output()
        .expect("go (.ci/install-tools installs golang-go)");
    assert!(
        run.status.success(),
        "go {args:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

fn main_go(variant: &str) -> String {
    MAIN.replace("VARIANT_HERE", variant)
}

#[test]
fn init_names_every_main_package_when_a_go_module_has_several() {
    let project = Project::empty();
    project.write("go.mod", GO_MOD);
    project.write("cmd/api/main.go", &main_go("v1"));
    project.write("cmd/worker/main.go", &main_go("v1"));
    let run = project.shipit(&["init"]).code(2);
    assert!(
        run.stderr
            .contains("the Go module has 2 main packages: ./cmd/api, ./cmd/worker; choose the service with --package"),
        "{}",
        run.stderr
    );
    assert!(!project.path().join("environments").exists());
    let run = project.shipit(&["init", "--package", "api"]).success();
    assert!(
        run.stderr.contains("a Go module (example.com/shop)"),
        "{}",
        run.stderr
    );
    let base = project.read("environments/base.toml");
    assert!(base.contains("kind = \"go\""), "{base}");
    assert!(base.contains("package = \"./cmd/api\""), "{base}");
    assert!(base.contains("name = \"api\""), "{base}");
    // The rendered CI checks the module with go vet and go test, as written.
    project.shipit(&["render", "ci", "-q"]).success();
    let ci = project.read(".github/workflows/ci.yml");
    for step in ["- run: go vet ./...", "- run: go test ./..."] {
        assert!(ci.contains(step), "{ci}");
        let args: Vec<&str> = step.trim_start_matches("- run: go ").split(' ').collect();
        go(project.path(), &args);
    }
    let lint = Command::new("actionlint")
        .arg(project.path().join(".github/workflows/ci.yml"))
        .output()
        .expect("actionlint");
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stdout)
    );
}

#[test]
fn docker_a_go_service_built_offline_is_static_on_scratch_and_redeploys_with_zero_failed_requests()
{
    if !docker::engine() {
        return;
    }
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let base = offline_base("go");
    let _leftovers = docker::Leftovers(base.clone());
    let mut service = Service::new(
        "go",
        &[("go.mod", GO_MOD.into()), ("main.go", main_go("v1"))],
        &[],
    );
    // The service's own probe as the image's health check.
    let config = service.project.read("environments/base.toml");
    assert!(config.contains("kind = \"go\""), "{config}");
    service.project.write(
        "environments/base.toml",
        &config.replacen("# healthcheck = ", "healthcheck = ", 1),
    );
    service.sets.push(format!("image.builder={base}"));
    service.shipit(&["validate", "development"]).success();
    service.shipit(&["render", "development", "-q"]).success();
    let dockerfile = service
        .project
        .path()
        .join("generated/development/Dockerfile");
    let lint = Command::new("hadolint")
        .arg(&dockerfile)
        .output()
        .expect("hadolint");
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stdout)
    );

    // v1: built with nothing pulled; the binary is static, alone on scratch.
    service.build("1.0.0");
    let image = format!("127.0.0.1:5000/{}:1.0.0", service.app);
    let (_, user) = docker(&["image", "inspect", "--format", "{{.Config.User}}", &image]);
    assert_eq!(user, "10001:10001");
    let (_, created) = docker(&["create", &image]);
    let container = Created(created);
    let created = container.0.as_str();
    let files = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker export {created} | tar -t | grep -v '/$' | sort"
        ))
        .output()
        .unwrap();
    let files = String::from_utf8_lossy(&files.stdout).into_owned();
    let binary = service.app.clone();
    assert!(files.lines().any(|f| f == binary), "{files}");
    assert!(
        files.lines().all(|f| f == binary
            || f == "etc/ssl/certs/ca-certificates.crt"
            // What the engine adds to every container.
            || matches!(f, ".dockerenv" | "etc/hostname" | "etc/hosts" | "etc/mtab" | "etc/resolv.conf")
            || f.starts_with("dev/")
            || f.starts_with("proc/")
            || f.starts_with("sys/")),
        "nothing but the binary and the certificates: {files}"
    );
    let dir = tempfile::tempdir().unwrap();
    let copied = dir.path().join("binary");
    docker(&[
        "cp",
        &format!("{created}:/{binary}"),
        copied.to_str().unwrap(),
    ]);
    let kind = Command::new("file").arg(&copied).output().expect("file");
    let kind = String::from_utf8_lossy(&kind.stdout).into_owned();
    assert!(kind.contains("statically linked"), "{kind}");

    let run = service.deploy("1.0.0", &[]).success();
    assert!(run.stderr.contains("smoke passed"), "{}", run.stderr);
    assert!(service.greeting().contains("\"variant\":\"v1\""));
    let (_, health) = docker(&[
        "ps",
        "--filter",
        &format!("label=dev.shipit.app={}", service.app),
        "--format",
        "{{.Status}}",
    ]);
    assert!(
        health.contains("(healthy)"),
        "the image's probe runs: {health}"
    );

    // v2 takes its variant from a module, vendored (`go mod vendor`,
    // build.vendor = true): built offline with nothing downloaded.
    let p = &service.project;
    p.write("greet/go.mod", "module example.com/greet\n\ngo 1.19\n");
    p.write(
        "greet/greet.go",
        "package greet\n\n// Variant names this build.\nfunc Variant() string { return \"v2\" }\n",
    );
    p.write(
        "go.mod",
        &format!(
            "{GO_MOD}\nrequire example.com/greet v0.0.0\n\nreplace example.com/greet => ./greet\n"
        ),
    );
    p.write(
        "main.go",
        &main_go("v2")
            .replace("const variant = \"v2\"", "var variant = greet.Variant()")
            .replace(
                "\"encoding/json\"",
                "\"encoding/json\"\n\t\"example.com/greet\"",
            ),
    );
    go(p.path(), &["mod", "vendor"]);
    let _ = std::fs::remove_dir_all(p.path().join(".gocache"));
    service.sets.push("build.vendor=true".into());
    service.shipit(&["render", "development", "-q"]).success();
    let rendered = p.read("generated/development/Dockerfile");
    assert!(!rendered.contains("go mod download"), "{rendered}");

    // v2 under load: keepalive (paced and not) and new connections, POST.
    service.build("2.0.0");
    let url = service.url();
    let loads = Loads::start_probe(&url, &url, shipit::http::Route::default(), ECHO);
    let run = service.deploy("2.0.0", &[]);
    let counts = no_failures_in(loads, "the Go service's redeploy");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(service.greeting().contains("\"variant\":\"v2\""));
    assert_eq!(service.serving().as_deref(), Some("2"));
    eprintln!("requests during the redeploy: {counts:?}");
}
