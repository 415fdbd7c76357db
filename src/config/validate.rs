//! Semantic rules, checked once on the merged configuration.
//!
//! Each rule names the key it is about; the merged tree tells which file,
//! line and column last set that key, so the problem points where to edit.

use super::model::{BuildKind, Config, Strategy, Target, VersionSource};
use super::problem::Problem;
use super::rules::{self, ImageRef};
use super::tree::Node;

struct Checker<'a> {
    tree: &'a Node,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    /// A problem at the place that set `key`; a value no file or override
    /// set is shipit's built-in default, and the problem says so.
    fn located(&self, key: &str, message: impl Into<String>, help: impl Into<String>) -> Problem {
        match self.tree.lookup(key) {
            Some(node) => Problem::new(key, Some(node.origin.clone()), message).help(help),
            None => Problem::new(key, None, format!("{} (built-in default)", message.into())).help(
                format!(
                    "{}; set `{key}` in environments/base.toml or an environment file",
                    help.into()
                ),
            ),
        }
    }

    fn fail(&mut self, key: &str, message: impl Into<String>, help: impl Into<String>) {
        let problem = self.located(key, message, help);
        self.problems.push(problem);
    }

    /// Like `fail`, for values that may be secrets: the source line is never shown.
    fn fail_sensitive(&mut self, key: &str, message: impl Into<String>, help: impl Into<String>) {
        let problem = self.located(key, message, help).sensitive();
        self.problems.push(problem);
    }

    fn check(&mut self, ok: bool, key: &str, message: impl Into<String>, help: &str) {
        if !ok {
            self.fail(key, message, help.to_string());
        }
    }

    fn port(&mut self, key: &str, value: i64) {
        self.check(
            (1..=65535).contains(&value),
            key,
            format!("port {value} is out of range"),
            "a port from 1 to 65535",
        );
    }

    fn duration(&mut self, key: &str, value: &str) {
        self.check(
            rules::parse_duration(value).is_some_and(|d| !d.is_zero()),
            key,
            format!("\"{value}\" is not a duration"),
            "a positive duration such as \"500ms\", \"30s\", \"5m\", \"1m30s\", \"2h\", \"7d\"",
        );
    }

    fn http_path(&mut self, key: &str, value: &str) {
        self.check(
            rules::is_http_path(value),
            key,
            format!("\"{value}\" is not an HTTP path"),
            "a path starting with `/`, made of letters, digits and `._~/-`, e.g. \"/health\"",
        );
    }

    fn dns_label(&mut self, key: &str, value: &str) {
        self.check(
            rules::is_dns_label(value),
            key,
            format!("\"{value}\" is not a valid name"),
            "an RFC 1123 label: lowercase letters, digits and `-`, starting and ending with a letter or digit, at most 63 characters",
        );
    }

    fn hostname(&mut self, key: &str, value: &str) {
        self.check(
            rules::is_hostname(value),
            key,
            format!("\"{value}\" is not a valid hostname"),
            "an RFC 1123 hostname such as \"api.example.com\" (lowercase), optionally starting with \"*.\"",
        );
    }

    fn pinned_image(&mut self, key: &str, value: &str, allow_scratch: bool) {
        if allow_scratch && value == "scratch" {
            return;
        }
        match ImageRef::parse(value) {
            Err(why) => self.fail(
                key,
                format!("\"{value}\" is not a valid image reference: {why}"),
                "NAME:TAG or NAME:TAG@sha256:DIGEST, e.g. \"rust:1.95.0-slim-bookworm\"",
            ),
            Ok(r) if r.tag.is_none() && r.digest.is_none() => self.fail(
                key,
                format!("image \"{value}\" is not pinned"),
                "pin it by tag (and by digest where you can): NAME:TAG[@sha256:DIGEST]",
            ),
            Ok(r) if r.tag.as_deref() == Some("latest") && r.digest.is_none() => self.fail(
                key,
                format!("image \"{value}\" uses the moving tag `latest`"),
                "pin it to a version tag, e.g. \"nginx:1.27.3-alpine\"",
            ),
            Ok(_) => {}
        }
    }
}

/// Checks every semantic rule and returns all problems found.
pub fn validate(config: &Config, tree: &Node) -> Vec<Problem> {
    let mut c = Checker {
        tree,
        problems: Vec::new(),
    };
    app(&mut c, config);
    image(&mut c, config);
    build(&mut c, config);
    env_and_secrets(&mut c, config);
    scaling(&mut c, config);
    deploy(&mut c, config);
    gateway(&mut c, config);
    kubernetes(&mut c, config);
    monitoring(&mut c, config);
    let smoke_url_ok = rules::is_http_url(&config.smoke.url);
    c.check(
        smoke_url_ok,
        "smoke.url",
        format!("\"{}\" is not an http(s) URL", config.smoke.url),
        "an absolute URL such as \"http://localhost:8080\"",
    );
    c.duration("smoke.timeout", &config.smoke.timeout);
    smoke_checks(&mut c, config);
    ci(&mut c, config);
    c.problems
}

const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

fn smoke_checks(c: &mut Checker<'_>, config: &Config) {
    let mut names: Vec<&str> = Vec::new();
    for (i, check) in config.smoke.checks.iter().enumerate() {
        let key = |field: &str| format!("smoke.checks.{i}.{field}");
        let name_ok = !check.name.trim().is_empty()
            && check.name.len() <= 200
            && !check.name.chars().any(char::is_control);
        c.check(
            name_ok,
            &key("name"),
            format!("check {} has no usable name", i + 1),
            "a short name, unique in the suite, e.g. \"POST /items creates an item\"",
        );
        if names.contains(&check.name.as_str()) {
            c.fail(
                &key("name"),
                format!("\"{}\" names two checks", check.name),
                "a name per check: reports and JUnit tell them apart by name",
            );
        }
        names.push(&check.name);
        c.check(
            METHODS.contains(&check.method.as_str()),
            &key("method"),
            format!("\"{}\" is not an HTTP method", check.method),
            "one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (upper case)",
        );
        let (path, query) = check.path.split_once('?').unwrap_or((&check.path, ""));
        c.check(
            rules::is_http_path(path)
                && query
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._~-=&%+,:".contains(&b)),
            &key("path"),
            format!("\"{}\" is not a path", check.path),
            "a path from the service's root with an optional query, e.g. \"/items?limit=1\"",
        );
        for (name, value) in &check.headers {
            c.check(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
                    && !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0),
                &key("headers"),
                format!("the header \"{name}\" is not a valid header"),
                "a header name (letters, digits, `-`) and a value on one line",
            );
        }
        c.check(
            check.body.len() <= 65_536,
            &key("body"),
            format!("the body is {} bytes", check.body.len()),
            "at most 64 KiB",
        );
        c.check(
            (100..=599).contains(&check.status),
            &key("status"),
            format!("status = {} is not an HTTP status", check.status),
            "a status code from 100 to 599",
        );
        for pointer in check.json.keys() {
            c.check(
                pointer.is_empty() || pointer.starts_with('/'),
                &key("json"),
                format!("\"{pointer}\" is not a JSON pointer"),
                "a JSON pointer (RFC 6901): \"/result\", \"/items/0/id\", or \"\" for the whole body",
            );
        }
        if !check.regex.is_empty()
            && let Err(e) = regex_lite::Regex::new(&check.regex)
        {
            c.fail(
                &key("regex"),
                format!("the regex does not compile: {e}"),
                "a regular expression (Rust regex syntax), e.g. \"(?m)^http_requests_total\"",
            );
        }
        if !check.max_latency.is_empty() {
            c.duration(&key("max_latency"), &check.max_latency);
        }
    }
}

fn app(c: &mut Checker<'_>, config: &Config) {
    let app = &config.app;
    if app.name.is_empty() {
        c.fail(
            "app.name",
            "app.name is not set",
            "name the service in environments/base.toml ([app] name = \"my-service\"); `shipit init` writes it",
        );
    } else {
        c.dns_label("app.name", &app.name);
    }
    c.port("app.port", app.port);
    c.http_path("app.health_path", &app.health_path);
    c.http_path("app.readiness_path", &app.readiness_path);
    c.http_path("app.metrics_path", &app.metrics_path);
    c.check(
        rules::is_plain_text(&app.description),
        "app.description",
        "the description has characters that cannot be written safely into a Dockerfile label",
        "plain text without quotes, backslashes, `$`, braces, `;` or control characters",
    );
    c.check(
        app.package
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !app.package.is_empty(),
        "app.package",
        format!("\"{}\" is not a Cargo package name", app.package),
        "letters, digits, `-` and `_`",
    );
    if !app.source_url.is_empty() {
        c.check(
            rules::is_http_url(&app.source_url),
            "app.source_url",
            format!("\"{}\" is not an http(s) URL", app.source_url),
            "the repository URL, e.g. \"https://github.com/org/repo\"",
        );
    }
    for (key, list) in [
        ("app.args", &app.args),
        ("app.healthcheck", &app.healthcheck),
    ] {
        for (i, arg) in list.iter().enumerate() {
            c.check(
                !arg.chars().any(char::is_control) && arg.len() <= 1024,
                &format!("{key}.{i}"),
                format!(
                    "argument {} holds a control character or is too long",
                    i + 1
                ),
                "plain text on one line, at most 1024 bytes",
            );
        }
    }
    if let Some(first) = app.healthcheck.first() {
        c.check(
            first.starts_with('/'),
            "app.healthcheck",
            format!("\"{first}\" is not an absolute path"),
            "the command's absolute path inside the image, then its arguments (exec form: no shell), e.g. [\"/app\", \"healthcheck\"]",
        );
    }
    match app.version_source {
        VersionSource::Config => c.check(
            is_semver(&app.version),
            "app.version",
            format!("\"{}\" is not a semantic version", app.version),
            "with version_source = \"config\", set app.version to MAJOR.MINOR.PATCH[-PRE][+BUILD]",
        ),
        VersionSource::Cargo => c.check(
            rules::is_safe_abs_path(&format!("/{}", app.manifest))
                || rules::is_safe_abs_path(&app.manifest),
            "app.manifest",
            format!("\"{}\" is not a manifest path", app.manifest),
            "a path to a Cargo.toml, relative to the project directory",
        ),
    }
}

pub(crate) fn is_semver(s: &str) -> bool {
    let (core, _build) = s.split_once('+').unwrap_or((s, ""));
    let (core, pre) = match core.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let numeric = |n: &&str| {
        !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
            && (n.len() == 1 || !n.starts_with('0'))
    };
    numbers.len() == 3
        && numbers.iter().all(numeric)
        && pre.is_none_or(|p| {
            p.split('.').all(|id| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
        })
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
}

/// A path inside the project: relative, no `..`, no control characters.
fn project_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.chars().any(char::is_control)
        && path.split('/').all(|part| part != "..")
}

fn build(c: &mut Checker<'_>, config: &Config) {
    let b = &config.build;
    match b.kind {
        BuildKind::Rust | BuildKind::Node => {}
        BuildKind::Python => {
            if !b.requirements.is_empty() {
                c.check(
                    project_path(&b.requirements),
                    "build.requirements",
                    format!("\"{}\" is not a path inside the project", b.requirements),
                    "the requirements file pip installs, e.g. \"requirements.txt\"; empty installs the project (pyproject.toml)",
                );
            }
        }
        BuildKind::Dockerfile => {
            for (key, value) in [
                ("build.dockerfile", &b.dockerfile),
                ("build.context", &b.context),
            ] {
                c.check(
                    project_path(value),
                    key,
                    format!("\"{value}\" is not a path inside the project"),
                    "a path relative to the project, without `..`, e.g. \"Dockerfile\" or \"services/api\"",
                );
            }
            let context = b.context.trim_end_matches('/');
            c.check(
                context == "." || b.dockerfile.starts_with(&format!("{context}/")),
                "build.dockerfile",
                format!("\"{}\" is outside build.context \"{}\"", b.dockerfile, b.context),
                "a Dockerfile inside the build context (compose and every builder read it from there)",
            );
            c.check(
                b.target.is_empty()
                    || b.target
                        .bytes()
                        .all(|x| x.is_ascii_alphanumeric() || b"-_.".contains(&x)),
                "build.target",
                format!("\"{}\" is not a stage name", b.target),
                "the name of a stage in the Dockerfile (`FROM ... AS NAME`)",
            );
        }
        BuildKind::Image => {
            if b.image.is_empty() {
                c.fail(
                    "build.image",
                    "build.kind = \"image\" deploys a given image, but build.image is empty",
                    "the reference to deploy, pinned: REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:DIGEST",
                );
            } else {
                c.pinned_image("build.image", &b.image, false);
            }
        }
    }
}

fn image(c: &mut Checker<'_>, config: &Config) {
    let image = &config.image;
    c.check(
        rules::is_registry_host(&image.registry),
        "image.registry",
        format!("\"{}\" is not a registry host", image.registry),
        "a host with an optional port, e.g. \"ghcr.io\" or \"127.0.0.1:5000\"",
    );
    let repo_ok =
        !image.repository.is_empty() && image.repository.split('/').all(rules::is_path_component);
    c.check(
        repo_ok,
        "image.repository",
        format!("\"{}\" is not a valid repository", image.repository),
        "lowercase path components separated by `/`, e.g. \"shipit/calculator\"",
    );
    if !image.tag.is_empty() {
        c.check(
            rules::is_tag(&image.tag),
            "image.tag",
            format!("\"{}\" is not a valid tag", image.tag),
            "letters, digits, `_`, `.` and `-`, at most 128, not starting with `.` or `-`",
        );
    }
    if !image.digest.is_empty() {
        c.check(
            rules::is_digest(&image.digest),
            "image.digest",
            format!("\"{}\" is not an image digest", image.digest),
            "the digest `shipit build --push` reported: sha256: and 64 lowercase hex digits",
        );
    }
    if config.build.kind.bases().is_some() {
        c.pinned_image("image.builder", &image.builder, false);
        c.pinned_image(
            "image.runtime",
            &image.runtime,
            config.build.kind == BuildKind::Rust,
        );
    }
    c.check(
        matches!(image.platform.as_str(), "linux/amd64" | "linux/arm64"),
        "image.platform",
        format!("unsupported platform \"{}\"", image.platform),
        "\"linux/amd64\" or \"linux/arm64\"",
    );
    c.check(
        image.user >= 1000 && image.user <= 2_147_483_647,
        "image.user",
        format!("user id {} is not an unprivileged user", image.user),
        "a numeric user id of 1000 or more (never 0, root)",
    );
    for (name, value) in &image.build_args {
        let key = format!("image.build_args.{name}");
        c.check(
            rules::is_env_name(name),
            &key,
            format!("\"{name}\" is not a valid build argument name"),
            "letters, digits and `_`, not starting with a digit",
        );
        if rules::looks_secret(name) {
            c.fail_sensitive(&key, format!("build argument `{name}` looks like a secret"), "build arguments are stored in the image history; pass secrets at run time through [secrets]");
        }
        if !rules::is_plain_text(value) {
            c.fail_sensitive(&key, "the value cannot be written safely into a Dockerfile", "plain text without quotes, backslashes, `$`, backticks, braces, `;` or control characters");
        }
    }
}

fn env_and_secrets(c: &mut Checker<'_>, config: &Config) {
    for (name, value) in &config.env {
        let key = format!("env.{name}");
        c.check(
            rules::is_env_name(name),
            &key,
            format!("\"{name}\" is not a valid environment variable name"),
            "letters, digits and `_`, not starting with a digit",
        );
        if rules::looks_secret(name) && !value.is_empty() {
            c.fail_sensitive(&key, format!("`{name}` looks like a secret given as a literal value"), format!("move it to [secrets] as a reference: {name} = \"env:{name}\" or \"file:/run/secrets/{}\"", name.to_ascii_lowercase()));
        }
        if config.secrets.contains_key(name) {
            c.fail(
                &key,
                format!("`{name}` is set both in [env] and in [secrets]"),
                "keep it in one of them",
            );
        }
    }
    for (name, reference) in &config.secrets {
        let key = format!("secrets.{name}");
        c.check(
            rules::is_env_name(name),
            &key,
            format!("\"{name}\" is not a valid environment variable name"),
            "letters, digits and `_`, not starting with a digit",
        );
        if !rules::is_secret_reference(reference) {
            c.fail_sensitive(&key, format!("secret `{name}` is not given as a reference (secret values never go into config)"), "a reference: \"env:NAME\" (read from the deploying environment) or \"file:/absolute/path\"");
        }
    }
}

fn scaling(c: &mut Checker<'_>, config: &Config) {
    c.check(
        config.replicas >= 1,
        "replicas",
        format!("replicas = {} leaves nothing running", config.replicas),
        "replicas must be 1 or more",
    );
    c.check(
        config.replicas <= 1000,
        "replicas",
        format!("replicas = {} is implausibly high", config.replicas),
        "at most 1000",
    );
    let r = &config.resources;
    let cpu = |s: &str| rules::parse_cpu(s);
    let mem = |s: &str| rules::parse_memory(s);
    for (key, value) in [
        ("resources.requests.cpu", &r.requests.cpu),
        ("resources.limits.cpu", &r.limits.cpu),
    ] {
        c.check(
            cpu(value).is_some_and(|m| m > 0),
            key,
            format!("\"{value}\" is not a CPU quantity"),
            "millicores such as \"250m\", or cores such as \"1\" or \"0.5\"",
        );
    }
    for (key, value) in [
        ("resources.requests.memory", &r.requests.memory),
        ("resources.limits.memory", &r.limits.memory),
    ] {
        c.check(
            mem(value).is_some_and(|b| b > 0),
            key,
            format!("\"{value}\" is not a memory quantity"),
            "bytes with a suffix such as \"64Mi\", \"1Gi\" or \"500M\"",
        );
    }
    if let (Some(req), Some(lim)) = (cpu(&r.requests.cpu), cpu(&r.limits.cpu)) {
        c.check(
            req <= lim,
            "resources.requests.cpu",
            format!(
                "the CPU request {} is above the limit {}",
                r.requests.cpu, r.limits.cpu
            ),
            "a request no larger than its limit",
        );
    }
    if let (Some(req), Some(lim)) = (mem(&r.requests.memory), mem(&r.limits.memory)) {
        c.check(
            req <= lim,
            "resources.requests.memory",
            format!(
                "the memory request {} is above the limit {}",
                r.requests.memory, r.limits.memory
            ),
            "a request no larger than its limit",
        );
    }
    let a = &config.autoscaling;
    if a.enabled {
        c.check(
            a.min >= 1,
            "autoscaling.min",
            format!("autoscaling.min = {} is below 1", a.min),
            "at least 1",
        );
        c.check(
            a.min <= a.max,
            "autoscaling.min",
            format!(
                "autoscaling.min ({}) is greater than autoscaling.max ({})",
                a.min, a.max
            ),
            "min <= max",
        );
        c.check(
            (1..=100).contains(&a.cpu_target),
            "autoscaling.cpu_target",
            format!("cpu_target = {} is not a percentage", a.cpu_target),
            "a percentage from 1 to 100",
        );
    }
}

fn deploy(c: &mut Checker<'_>, config: &Config) {
    let d = &config.deploy;
    c.duration("deploy.health_timeout", &d.health_timeout);
    c.duration("deploy.smoke_timeout", &d.smoke_timeout);
    c.duration("deploy.drain_timeout", &d.drain_timeout);
    c.duration("deploy.shutdown_delay", &d.shutdown_delay);
    if let Some(delay) = rules::parse_duration(&d.shutdown_delay) {
        c.check(
            delay <= std::time::Duration::from_secs(60),
            "deploy.shutdown_delay",
            format!("shutdown_delay = \"{}\" is longer than a minute", d.shutdown_delay),
            "a few seconds: long enough for endpoints and gateways to stop sending traffic, e.g. \"5s\"",
        );
    }
    c.duration("deploy.health_interval", &d.health_interval);
    if !d.webhook.is_empty() && !rules::is_secret_reference(&d.webhook) {
        c.fail_sensitive(
            "deploy.webhook",
            "the webhook URL is not given as a secret reference (webhook URLs carry tokens)",
            "a reference: \"env:NAME\" (read when deploying) or \"file:/absolute/path\"",
        );
    }
    c.pinned_image("deploy.gateway_image", &d.gateway_image, false);
    let mut seen: Vec<String> = Vec::new();
    for (i, host) in d.hosts.iter().enumerate() {
        let key = format!("deploy.hosts.{i}.engine");
        match crate::engine::endpoint::Endpoint::parse(&host.engine) {
            Err(why) => c.fail(
                &key,
                why,
                "ssh://[user@]host[:port] (through the system ssh), tcp://host:port (TLS from cert_path or DOCKER_CERT_PATH) or unix:///path",
            ),
            Ok(endpoint) => {
                let name = endpoint.to_string();
                if seen.contains(&name) {
                    c.fail(
                        &key,
                        format!("{name} is listed twice"),
                        "each engine once: a host's replicas are set by `replicas`",
                    );
                }
                if !host.cert_path.is_empty()
                    && !matches!(endpoint, crate::engine::endpoint::Endpoint::Tcp { .. })
                {
                    c.fail(
                        &format!("deploy.hosts.{i}.cert_path"),
                        format!("cert_path is set for {name}, which is not a tcp:// engine"),
                        "client certificates apply to tcp:// engines only; remove it",
                    );
                }
                seen.push(name);
            }
        }
        if !host.address.is_empty() {
            let address = host.address.trim_start_matches('[').trim_end_matches(']');
            c.check(
                rules::is_hostname(address) || address.parse::<std::net::IpAddr>().is_ok(),
                &format!("deploy.hosts.{i}.address"),
                format!("\"{}\" is not a host name or an IP address", host.address),
                "where the host's gateway answers from the deploying machine, e.g. \"10.0.0.5\" or \"web1.internal\"",
            );
        }
    }
    c.check(
        (1..=50).contains(&d.keep_releases),
        "deploy.keep_releases",
        format!("keep_releases = {} is out of range", d.keep_releases),
        "from 1 to 50 previous releases",
    );
    match (d.target, d.strategy) {
        (_, Strategy::Canary) => c.fail(
            "deploy.strategy",
            "the \"canary\" strategy is not supported yet",
            "use \"rolling\" or \"blue-green\" (Docker host) or \"rolling\" (Kubernetes)",
        ),
        (Target::Kubernetes, Strategy::BlueGreen) => c.fail(
            "deploy.strategy",
            "\"blue-green\" is not available for the kubernetes target",
            "use \"rolling\": the Deployment rolls with maxUnavailable 0",
        ),
        _ => {}
    }
}

fn gateway(c: &mut Checker<'_>, config: &Config) {
    let g = &config.gateway;
    c.pinned_image("gateway.image", &g.image, false);
    c.check(
        !g.server_names.is_empty(),
        "gateway.server_names",
        "no server name is set",
        "at least one hostname, e.g. [\"localhost\"]",
    );
    for (i, name) in g.server_names.iter().enumerate() {
        c.hostname(&format!("gateway.server_names.{i}"), name);
    }
    c.port("gateway.port", g.port);
    for (i, net) in g.metrics_allow.iter().enumerate() {
        c.check(
            rules::is_cidr(net),
            &format!("gateway.metrics_allow.{i}"),
            format!("\"{net}\" is not a network"),
            "a network in CIDR notation with no host bits set, e.g. \"10.0.0.0/8\"",
        );
    }
    c.check(
        rules::parse_rate(&g.rate_limit).is_some(),
        "gateway.rate_limit",
        format!("\"{}\" is not a rate", g.rate_limit),
        "requests per second or minute per client: \"10r/s\" or \"600r/m\"",
    );
    c.check(
        (0..=100_000).contains(&g.burst),
        "gateway.burst",
        format!("burst = {} is out of range", g.burst),
        "from 0 to 100000 requests",
    );
    c.check(
        rules::parse_size(&g.body_size).is_some_and(|b| b > 0),
        "gateway.body_size",
        format!("\"{}\" is not a size", g.body_size),
        "bytes with an optional k, m or g suffix: \"16k\", \"1m\"",
    );
    c.duration("gateway.connect_timeout", &g.connect_timeout);
    c.duration("gateway.read_timeout", &g.read_timeout);
    c.duration("gateway.send_timeout", &g.send_timeout);
    if g.tls.enabled {
        c.check(
            rules::is_safe_abs_path(&g.tls.certificate),
            "gateway.tls.certificate",
            format!("\"{}\" is not a safe absolute path", g.tls.certificate),
            "an absolute path of letters, digits and `._/-`",
        );
        c.check(
            rules::is_safe_abs_path(&g.tls.certificate_key),
            "gateway.tls.certificate_key",
            format!("\"{}\" is not a safe absolute path", g.tls.certificate_key),
            "an absolute path of letters, digits and `._/-`",
        );
        let dir = |p: &str| {
            std::path::Path::new(p)
                .parent()
                .map(std::path::Path::to_path_buf)
        };
        c.check(
            dir(&g.tls.certificate) == dir(&g.tls.certificate_key),
            "gateway.tls.certificate_key",
            "the certificate and its key are in different directories",
            "keep both in one directory: the gateway mounts that directory read-only",
        );
        c.port("gateway.tls.port", g.tls.port);
        c.check(
            g.tls.port != g.port,
            "gateway.tls.port",
            "the HTTPS port is the same as the HTTP port",
            "two different host ports",
        );
        c.duration("gateway.tls.hsts_max_age", &g.tls.hsts_max_age);
        for (key, value) in [
            ("gateway.tls.certificate_from", &g.tls.certificate_from),
            ("gateway.tls.key_from", &g.tls.key_from),
        ] {
            if !value.is_empty() && !rules::is_secret_reference(value) {
                c.fail_sensitive(
                    key,
                    "not a secret reference (a key or certificate is never written into configuration)",
                    "a reference: \"file:/absolute/path\" or \"env:NAME\" (read when deploying)",
                );
            }
        }
    }
    if !config.smoke.ca.is_empty() && !rules::is_secret_reference(&config.smoke.ca) {
        c.fail_sensitive(
            "smoke.ca",
            "not a reference to CA certificates",
            "a reference: \"file:/absolute/path\" or \"env:NAME\" holding PEM certificates",
        );
    }
}

fn kubernetes(c: &mut Checker<'_>, config: &Config) {
    let k = &config.kubernetes;
    c.dns_label("kubernetes.namespace", &k.namespace);
    let (low, high) = rules::KUBERNETES_VERSIONS;
    match rules::kubernetes_minor(&k.version) {
        None => c.fail(
            "kubernetes.version",
            format!("\"{}\" is not a Kubernetes version", k.version),
            "MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. \"1.30.0\"",
        ),
        Some(minor) => c.check(
            (low..=high).contains(&minor),
            "kubernetes.version",
            format!("shipit cannot render for Kubernetes {}", k.version),
            &format!("a version from 1.{low} to 1.{high}"),
        ),
    }
    c.check(
        !k.kubectl.trim().is_empty(),
        "kubernetes.kubectl",
        "no kubectl program is named",
        "a program name or path, e.g. \"kubectl\"",
    );
    if !k.cluster_ip.is_empty() {
        c.check(
            k.cluster_ip.parse::<std::net::Ipv4Addr>().is_ok(),
            "kubernetes.cluster_ip",
            format!("\"{}\" is not an IPv4 address", k.cluster_ip),
            "an address in the cluster's service range, e.g. \"10.96.0.50\", or empty",
        );
    }
    c.port("kubernetes.service_port", k.service_port);
    if k.ingress.enabled {
        c.hostname("kubernetes.ingress.host", &k.ingress.host);
        c.check(
            rules::is_dns_subdomain(&k.ingress.class),
            "kubernetes.ingress.class",
            format!("\"{}\" is not a valid IngressClass name", k.ingress.class),
            "an RFC 1123 subdomain such as \"nginx\"",
        );
        if !k.ingress.tls_secret.is_empty() {
            c.check(
                rules::is_dns_subdomain(&k.ingress.tls_secret),
                "kubernetes.ingress.tls_secret",
                format!("\"{}\" is not a valid Secret name", k.ingress.tls_secret),
                "an RFC 1123 subdomain such as \"calculator-tls\"",
            );
        }
    }
    if k.pdb.enabled {
        c.check(
            k.pdb.min_available >= 1,
            "kubernetes.pdb.min_available",
            format!("min_available = {} protects nothing", k.pdb.min_available),
            "at least 1",
        );
        let floor = if config.autoscaling.enabled {
            config.autoscaling.min
        } else {
            config.replicas
        };
        c.check(
            k.pdb.min_available < floor,
            "kubernetes.pdb.min_available",
            format!("min_available = {} with {floor} replica(s) would block every voluntary eviction (node drains, upgrades)", k.pdb.min_available),
            "fewer than the minimum number of replicas, or kubernetes.pdb.enabled = false for a single replica",
        );
    }
    if k.network_policy.enabled {
        c.dns_label(
            "kubernetes.network_policy.ingress_namespace",
            &k.network_policy.ingress_namespace,
        );
        c.dns_label(
            "kubernetes.network_policy.monitoring_namespace",
            &k.network_policy.monitoring_namespace,
        );
    }
}

fn monitoring(c: &mut Checker<'_>, config: &Config) {
    let m = &config.monitoring;
    c.pinned_image("monitoring.prometheus_image", &m.prometheus_image, false);
    c.pinned_image("monitoring.grafana_image", &m.grafana_image, false);
    c.duration("monitoring.scrape_interval", &m.scrape_interval);
    c.check(
        !m.grafana || m.prometheus,
        "monitoring.grafana",
        "Grafana is on but Prometheus is off",
        "set monitoring.prometheus = true: Grafana's datasource is the stack's Prometheus",
    );
    c.check(
        !m.prometheus || !m.alertmanagers.is_empty(),
        "monitoring.alertmanagers",
        "Prometheus is on but its alerts go nowhere",
        "list the Alertmanagers it sends alerts to, e.g. [\"alertmanager.example.com:9093\"]",
    );
    for (i, target) in m.alertmanagers.iter().enumerate() {
        c.check(
            target.contains(':') && rules::is_registry_host(target),
            &format!("monitoring.alertmanagers.{i}"),
            format!("\"{target}\" is not a host:port"),
            "a host and port, e.g. \"alertmanager.example.com:9093\"",
        );
    }
    let a = &m.alerts;
    c.check(
        a.error_rate > 0.0 && a.error_rate < 1.0,
        "monitoring.alerts.error_rate",
        format!("error_rate = {} is not a fraction", a.error_rate),
        "a fraction between 0 and 1, e.g. 0.05 for 5 %",
    );
    c.duration("monitoring.alerts.p95_latency", &a.p95_latency);
    c.duration("monitoring.alerts.for_duration", &a.for_duration);
    c.duration("monitoring.alerts.instance_down_for", &a.instance_down_for);
}

fn ci(c: &mut Checker<'_>, config: &Config) {
    let ci = &config.ci;
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
    };
    c.check(
        plain(&ci.runner),
        "ci.runner",
        format!("\"{}\" is not a runner label", ci.runner),
        "a runner label such as \"ubuntu-24.04\"",
    );
    c.check(
        plain(&ci.main_branch),
        "ci.main_branch",
        format!("\"{}\" is not a branch name", ci.main_branch),
        "a branch name such as \"main\"",
    );
    c.check(
        is_semver(&ci.rust_toolchain) || ci.rust_toolchain == "stable",
        "ci.rust_toolchain",
        format!("\"{}\" is not a pinned toolchain", ci.rust_toolchain),
        "a Rust version such as \"1.95.0\"",
    );
    for (i, env) in ci.deploy_environments.iter().enumerate() {
        c.dns_label(&format!("ci.deploy_environments.{i}"), env);
    }
    c.check(
        (1..=360).contains(&ci.timeout_minutes),
        "ci.timeout_minutes",
        format!("timeout_minutes = {} is out of range", ci.timeout_minutes),
        "from 1 to 360 minutes",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_shapes() {
        for ok in ["0.1.0", "1.2.3-rc.1", "1.2.3+build.5", "10.20.30-alpha-1"] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in ["1.2", "01.2.3", "1.2.3-", "1.2.3-a..b", "v1.2.3", "1.2.3 "] {
            assert!(!is_semver(bad), "{bad}");
        }
    }
}
