//! The rules of the application's own tables: app, build, image, env and
//! secrets, scaling and resources, and the smoke checks.

use super::Checker;
use crate::config::model::{BuildKind, Config, VersionSource};
use crate::config::rules;

const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

pub(super) fn smoke_checks(c: &mut Checker<'_>, config: &Config) {
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

pub(super) fn app(c: &mut Checker<'_>, config: &Config) {
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
    if config.build.kind == BuildKind::Go {
        c.check(
            is_go_main_package(&app.package),
            "app.package",
            format!("\"{}\" is not a main package of the module", app.package),
            "\".\" (the module's root) or a directory below it, e.g. \"./cmd/server\"",
        );
    } else {
        c.check(
            app.package
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !app.package.is_empty(),
            "app.package",
            format!("\"{}\" is not a Cargo package name", app.package),
            "letters, digits, `-` and `_`",
        );
    }
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

/// `.` or `./dir/dir`: a package path of the module, plain characters only.
fn is_go_main_package(package: &str) -> bool {
    package == "."
        || package.strip_prefix("./").is_some_and(|rest| {
            !rest.is_empty()
                && rest.split('/').all(|part| {
                    !part.is_empty()
                        && part != "."
                        && part != ".."
                        && part
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                })
        })
}

/// A path inside the project: relative, no `..`, no control characters.
fn project_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.chars().any(char::is_control)
        && path.split('/').all(|part| part != "..")
}

pub(super) fn build(c: &mut Checker<'_>, config: &Config) {
    let b = &config.build;
    match b.kind {
        BuildKind::Rust | BuildKind::Node | BuildKind::Go => {}
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

pub(super) fn image(c: &mut Checker<'_>, config: &Config) {
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
    if !image.signing_key.is_empty() && !rules::is_secret_reference(&image.signing_key) {
        c.fail_sensitive(
            "image.signing_key",
            "not a secret reference (a private key is never written into configuration)",
            "a reference to an ECDSA P-256 PKCS#8 PEM key: \"file:/absolute/path\" or \"env:NAME\" (read when signing)",
        );
    }
    let key = &image.verify_key;
    if !key.is_empty() {
        if key.contains("-----BEGIN") {
            if let Err(e) = crate::signing::PublicKey::from_pem(key) {
                c.fail(
                    "image.verify_key",
                    format!("the public key is {e}"),
                    "a PEM ECDSA P-256 public key (openssl pkey -in signing.pem -pubout)"
                        .to_string(),
                );
            }
        } else {
            c.check(
                rules::is_secret_reference(key),
                "image.verify_key",
                format!("\"{key}\" is neither a PEM public key nor a reference"),
                "the PEM text of the public key, or \"file:/absolute/path\" or \"env:NAME\" holding it",
            );
        }
    }
    if config.build.kind.bases().is_some() {
        c.pinned_image("image.builder", &image.builder, false);
        c.pinned_image(
            "image.runtime",
            &image.runtime,
            matches!(config.build.kind, BuildKind::Rust | BuildKind::Go),
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

pub(super) fn env_and_secrets(c: &mut Checker<'_>, config: &Config) {
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

pub(super) fn scaling(c: &mut Checker<'_>, config: &Config) {
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
