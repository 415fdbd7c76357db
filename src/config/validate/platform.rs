//! The rules of where and how the application runs: deploy, the gateway,
//! Kubernetes, monitoring and CI.

use super::Checker;
use super::is_semver;
use crate::config::model::{Config, Strategy, Target};
use crate::config::rules;

pub(super) fn deploy(c: &mut Checker<'_>, config: &Config) {
    let d = &config.deploy;
    c.duration("deploy.health_timeout", &d.health_timeout);
    c.duration("deploy.smoke_timeout", &d.smoke_timeout);
    c.duration("deploy.drain_timeout", &d.drain_timeout);
    c.duration("deploy.shutdown_delay", &d.shutdown_delay);
    c.duration("deploy.lock_lease", &d.lock_lease);
    if let Some(lease) = rules::parse_duration(&d.lock_lease) {
        c.check(
            (3..=600).contains(&lease.as_secs()),
            "deploy.lock_lease",
            format!("lock_lease = \"{}\" is out of range", d.lock_lease),
            "from 3s to 10m: long enough to outlast a slow heartbeat over ssh, short enough that a killed run's lock is taken over soon, e.g. \"30s\"",
        );
    }
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
    gateway_packages(c, d);
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
                let tcp = matches!(endpoint, crate::engine::endpoint::Endpoint::Tcp { .. });
                if host.insecure && (!tcp || !host.cert_path.is_empty()) {
                    c.fail(
                        &format!("deploy.hosts.{i}.insecure"),
                        format!("insecure is set for {name}, which does not talk plain HTTP"),
                        "insecure applies to a tcp:// engine without TLS only; remove it",
                    );
                }
                if !host.cert_path.is_empty() && !tcp {
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
    c.range(
        "deploy.keep_releases",
        d.keep_releases,
        1..=50,
        "previous releases",
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

pub(super) fn gateway(c: &mut Checker<'_>, config: &Config) {
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
    c.range("gateway.burst", g.burst, 0..=100_000, "requests");
    c.range(
        "gateway.log_sample",
        g.log_sample,
        1..=1_000_000,
        "(1: every request; N: 1 in N answers below 400, every error)",
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

pub(super) fn kubernetes(c: &mut Checker<'_>, config: &Config) {
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

pub(super) fn monitoring(c: &mut Checker<'_>, config: &Config) {
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
        !m.prometheus || !m.alertmanagers.is_empty() || m.alertmanager.runs(),
        "monitoring.alertmanager",
        "Prometheus is on but its alerts go nowhere",
        "run an Alertmanager in the stack with a receiver ([monitoring.alertmanager] slack_url = \"env:NAME\" or webhook_url = \"https://...\"), or list the Alertmanagers outside it in monitoring.alertmanagers",
    );
    alertmanager(c, config);
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

/// How the stack's Alertmanager is given its credential, and why only so.
const FILE_REFERENCE_HELP: &str = "\"file:/absolute/path\" on the Docker host, readable by uid 65534 (e.g. owned by it, mode 0400): compose mounts it at /run/secrets/alertmanager-credential; an \"env:\" value cannot be written into the read-only container";

/// A `file:/absolute/path` secret reference.
fn is_file_reference(reference: &str) -> bool {
    reference.starts_with("file:") && rules::is_secret_reference(reference)
}

/// The stack's Alertmanager: one receiver, its credential a file reference.
fn alertmanager(c: &mut Checker<'_>, config: &Config) {
    let a = &config.monitoring.alertmanager;
    c.pinned_image("monitoring.alertmanager.image", &a.image, false);
    c.duration("monitoring.alertmanager.group_wait", &a.group_wait);
    c.duration(
        "monitoring.alertmanager.repeat_interval",
        &a.repeat_interval,
    );
    c.check(
        !a.runs() || config.monitoring.prometheus,
        "monitoring.alertmanager",
        "an Alertmanager is configured but Prometheus is off: nothing would send it alerts",
        "set monitoring.prometheus = true, or remove [monitoring.alertmanager]",
    );
    c.check(
        a.slack_url.is_empty() || a.webhook_url.is_empty(),
        "monitoring.alertmanager.webhook_url",
        "both slack_url and webhook_url are set",
        "one receiver: slack_url (a secret reference) or webhook_url (with webhook_token)",
    );
    if !a.slack_url.is_empty() && !is_file_reference(&a.slack_url) {
        c.fail_sensitive(
            "monitoring.alertmanager.slack_url",
            "the Slack webhook URL is not given as a file reference (the URL is the credential)",
            FILE_REFERENCE_HELP,
        );
    }
    c.check(
        a.slack_channel.is_empty() || !a.slack_url.is_empty(),
        "monitoring.alertmanager.slack_channel",
        "a Slack channel without slack_url",
        "set slack_url too, or remove slack_channel",
    );
    if !a.webhook_url.is_empty() {
        let authority = a.webhook_url.split("://").nth(1).unwrap_or("");
        let authority = authority.split(['/', '?', '#']).next().unwrap_or("");
        if !rules::is_http_url(&a.webhook_url) {
            c.fail_sensitive(
                "monitoring.alertmanager.webhook_url",
                "the webhook URL is not an http or https URL",
                "e.g. \"https://alerts.example.com/hooks/shipit\"",
            );
        } else if authority.contains('@') || a.webhook_url.contains('?') {
            c.fail_sensitive(
                "monitoring.alertmanager.webhook_url",
                "the webhook URL carries credentials or a query (it would sit in the generated files)",
                "put the token in webhook_token (a secret reference, sent as a bearer token), or use a URL without user info or query",
            );
        }
    }
    if !a.webhook_token.is_empty() {
        if !is_file_reference(&a.webhook_token) {
            c.fail_sensitive(
                "monitoring.alertmanager.webhook_token",
                "the webhook token is not given as a file reference",
                FILE_REFERENCE_HELP,
            );
        }
        c.check(
            !a.webhook_url.is_empty(),
            "monitoring.alertmanager.webhook_token",
            "a webhook token without webhook_url",
            "set webhook_url too, or remove webhook_token",
        );
    }
}

pub(super) fn ci(c: &mut Checker<'_>, config: &Config) {
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
    c.range("ci.timeout_minutes", ci.timeout_minutes, 1..=360, "minutes");
}

/// The gateway's Debian packages: exact versions, and the image's tag (when
/// it names a version) naming the HAProxy it holds.
fn gateway_packages(c: &mut Checker<'_>, d: &crate::config::model::Deploy) {
    for (name, version) in d.gateway_packages.pins() {
        c.check(
            rules::is_debian_version(version),
            &format!("deploy.gateway_packages.{name}"),
            format!("{name} = \"{version}\" is not an exact Debian package version"),
            "the version `dpkg-query -W` prints, [EPOCH:]UPSTREAM[-REVISION], e.g. \"2.6.12-1+deb12u4\"",
        );
    }
    let tag = rules::ImageRef::parse(&d.gateway_image)
        .ok()
        .and_then(|r| r.tag);
    let upstream = d.gateway_packages.haproxy_upstream();
    if let Some(tag) = tag
        && let Some(named) = crate::config::model::tag_version(&tag)
        && rules::is_debian_version(&d.gateway_packages.haproxy)
    {
        c.check(
            crate::config::model::tag_names(named, upstream),
            "deploy.gateway_image",
            format!(
                "the gateway image is tagged {tag}, but deploy.gateway_packages.haproxy pins HAProxy {upstream} ({})",
                d.gateway_packages.haproxy
            ),
            "a tag that names the HAProxy inside, e.g. \"shipit-offline/haproxy:2.6.12-bookworm\" for 2.6.12-1+deb12u4",
        );
    }
}
