//! Semantic rules, checked once on the merged configuration.
//!
//! Each rule names the key it is about; the merged tree tells which file,
//! line and column last set that key, so the problem points where to edit.
//! The rules of the application's own tables are in `service.rs`, those of
//! where and how it runs in `platform.rs`.

mod accessories;
mod platform;
mod roles;
mod service;

use platform::{ci, deploy, gateway, kubernetes, monitoring};
pub(crate) use service::is_semver;
use service::{app, build, env_and_secrets, image, scaling, smoke_checks};

use super::model::Config;
use super::problem::Problem;
use super::rules::{self, ImageRef};
use super::tree::Node;

/// A kind of string value: the rule it keeps, what it is called in an
/// error, and how to write one.
struct Kind {
    ok: fn(&str) -> bool,
    what: &'static str,
    help: &'static str,
}

const DURATION: Kind = Kind {
    ok: |v| rules::parse_duration(v).is_some_and(|d| !d.is_zero()),
    what: "a duration",
    help: "a positive duration such as \"500ms\", \"30s\", \"5m\", \"1m30s\", \"2h\", \"7d\"",
};

const HTTP_PATH: Kind = Kind {
    ok: rules::is_http_path,
    what: "an HTTP path",
    help: "a path starting with `/`, made of letters, digits and `._~/-`, e.g. \"/health\"",
};

const DNS_LABEL: Kind = Kind {
    ok: rules::is_dns_label,
    what: "a valid name",
    help: "an RFC 1123 label: lowercase letters, digits and `-`, starting and ending with a letter or digit, at most 63 characters",
};

const HOSTNAME: Kind = Kind {
    ok: rules::is_hostname,
    what: "a valid hostname",
    help: "an RFC 1123 hostname such as \"api.example.com\" (lowercase), optionally starting with \"*.\"",
};

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

    /// A whole number within `range`: `{field} = {value} is out of range`,
    /// `from LOW to HIGH {unit}`.
    fn range(&mut self, key: &str, value: i64, range: std::ops::RangeInclusive<i64>, unit: &str) {
        let field = key.rsplit('.').next().unwrap_or(key);
        self.check(
            range.contains(&value),
            key,
            format!("{field} = {value} is out of range"),
            &format!("from {} to {} {unit}", range.start(), range.end()),
        );
    }

    fn port(&mut self, key: &str, value: i64) {
        self.check(
            (1..=65535).contains(&value),
            key,
            format!("port {value} is out of range"),
            "a port from 1 to 65535",
        );
    }

    /// A string of `kind`: `"{value}" is not {what}`, and how to write one.
    fn is(&mut self, key: &str, value: &str, kind: &Kind) {
        let message = format!("\"{value}\" is not {}", kind.what);
        self.check((kind.ok)(value), key, message, kind.help);
    }

    fn duration(&mut self, key: &str, value: &str) {
        self.is(key, value, &DURATION);
    }

    fn http_path(&mut self, key: &str, value: &str) {
        self.is(key, value, &HTTP_PATH);
    }

    fn dns_label(&mut self, key: &str, value: &str) {
        self.is(key, value, &DNS_LABEL);
    }

    fn hostname(&mut self, key: &str, value: &str) {
        self.is(key, value, &HOSTNAME);
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
    accessories::accessories(&mut c, config);
    accessories::release(&mut c, config);
    roles::roles(&mut c, config);
    c.problems
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
