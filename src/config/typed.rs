//! The configuration's values that are not text, parsed once when the
//! configuration is loaded and validated: durations, ports, resource
//! quantities. Nothing downstream parses them again or falls back to a
//! default: a value that does not parse is a located problem at load time.

use std::time::Duration;

use super::model::Config;
use super::problem::Problem;
use super::rules;
use super::tree::Node;

/// Every typed value of one environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Typed {
    /// `deploy.health_timeout`: a new release's deadline to report healthy.
    pub health_timeout: Duration,
    /// `deploy.health_interval`: how often the engine runs its health check.
    pub health_interval: Duration,
    /// `deploy.smoke_timeout`: how long the smoke tests of a deploy may retry.
    pub smoke_timeout: Duration,
    /// `deploy.drain_timeout`: how long an old release drains before it stops.
    pub drain_timeout: Duration,
    /// `deploy.shutdown_delay`: how long a stopping replica keeps serving.
    pub shutdown_delay: Duration,
    /// `deploy.lock_lease`: how long a lock outlives its last heartbeat.
    pub lock_lease: Duration,
    /// `deploy.release_timeout`: how long the release command may run.
    pub release_timeout: Duration,
    /// Each role's `stop_grace` (or `deploy.drain_timeout`), by name.
    pub role_stop_grace: std::collections::BTreeMap<String, Duration>,
    /// `smoke.timeout`, or `deploy.smoke_timeout` when it is empty.
    pub smoke_check_timeout: Duration,
    /// `smoke.checks[].max_latency`, one per check, in order.
    pub smoke_max_latency: Vec<Option<Duration>>,
    /// `gateway.tls.hsts_max_age`, with TLS at the gateway.
    pub hsts_max_age: Option<Duration>,
    /// `gateway.connect_timeout`, `read_timeout`, `send_timeout`.
    pub gateway_connect_timeout: Duration,
    pub gateway_read_timeout: Duration,
    pub gateway_send_timeout: Duration,
    pub scrape_interval: Duration,
    pub alert_p95_latency: Duration,
    pub alert_for: Duration,
    pub alert_instance_down_for: Duration,
    /// `monitoring.alertmanager.group_wait` and `repeat_interval`.
    pub alertmanager_group_wait: Duration,
    pub alertmanager_repeat_interval: Duration,
    /// `gateway.rate_limit`: so many requests per second (`'s'`) or minute (`'m'`).
    pub rate_limit: (u32, char),
    /// `gateway.body_size` in bytes.
    pub body_size_bytes: u64,
    /// The minor version of `kubernetes.version` (1.MINOR).
    pub kubernetes_minor: u32,
    pub app_port: u16,
    pub gateway_port: u16,
    /// `gateway.tls.port`, with TLS at the gateway.
    pub tls_port: Option<u16>,
    /// `resources.limits.memory` and `requests.memory`, in bytes.
    pub memory_limit: u64,
    pub memory_request: u64,
    /// `resources.limits.cpu` and `requests.cpu`, in millicores.
    pub cpu_limit_millis: u64,
    pub cpu_request_millis: u64,
}

impl Typed {
    /// The typed values of a configuration that passed validation; any that
    /// still do not parse are problems, located like validation's own.
    pub fn new(c: &Config, root: &Node) -> Result<Typed, Vec<Problem>> {
        let problems = std::cell::RefCell::new(Vec::new());
        let fail = |key: &str, message: String| {
            problems
                .borrow_mut()
                .push(Problem::new(key, Some(root.origin_of(key)), message));
        };
        let duration = |key: &str, text: &str| {
            rules::parse_duration(text).unwrap_or_else(|| {
                fail(key, format!("\"{text}\" is not a duration"));
                Duration::ZERO
            })
        };
        let port = |key: &str, value: i64| {
            u16::try_from(value).unwrap_or_else(|_| {
                fail(key, format!("port {value} is out of range"));
                0
            })
        };
        let memory = |key: &str, text: &str| {
            rules::parse_memory(text)
                .and_then(|b| u64::try_from(b).ok())
                .unwrap_or_else(|| {
                    fail(key, format!("\"{text}\" is not a memory quantity"));
                    0
                })
        };
        let cpu = |key: &str, text: &str| {
            rules::parse_cpu(text).unwrap_or_else(|| {
                fail(key, format!("\"{text}\" is not a CPU quantity"));
                0
            })
        };
        let smoke_timeout = duration("deploy.smoke_timeout", &c.deploy.smoke_timeout);
        let typed = Typed {
            health_timeout: duration("deploy.health_timeout", &c.deploy.health_timeout),
            health_interval: duration("deploy.health_interval", &c.deploy.health_interval),
            smoke_timeout,
            drain_timeout: duration("deploy.drain_timeout", &c.deploy.drain_timeout),
            shutdown_delay: duration("deploy.shutdown_delay", &c.deploy.shutdown_delay),
            lock_lease: duration("deploy.lock_lease", &c.deploy.lock_lease),
            release_timeout: duration("deploy.release_timeout", &c.deploy.release_timeout),
            role_stop_grace: c
                .roles
                .iter()
                .map(|(name, role)| {
                    let grace = if role.stop_grace.is_empty() {
                        &c.deploy.drain_timeout
                    } else {
                        &role.stop_grace
                    };
                    let key = if role.stop_grace.is_empty() {
                        "deploy.drain_timeout".to_string()
                    } else {
                        format!("roles.{name}.stop_grace")
                    };
                    (name.clone(), duration(&key, grace))
                })
                .collect(),
            smoke_check_timeout: if c.smoke.timeout.is_empty() {
                smoke_timeout
            } else {
                duration("smoke.timeout", &c.smoke.timeout)
            },
            smoke_max_latency: c
                .smoke
                .checks
                .iter()
                .enumerate()
                .map(|(i, check)| {
                    (!check.max_latency.is_empty()).then(|| {
                        duration(
                            &format!("smoke.checks[{i}].max_latency"),
                            &check.max_latency,
                        )
                    })
                })
                .collect(),
            hsts_max_age: c
                .gateway
                .tls
                .enabled
                .then(|| duration("gateway.tls.hsts_max_age", &c.gateway.tls.hsts_max_age)),
            gateway_connect_timeout: duration(
                "gateway.connect_timeout",
                &c.gateway.connect_timeout,
            ),
            gateway_read_timeout: duration("gateway.read_timeout", &c.gateway.read_timeout),
            gateway_send_timeout: duration("gateway.send_timeout", &c.gateway.send_timeout),
            scrape_interval: duration("monitoring.scrape_interval", &c.monitoring.scrape_interval),
            alert_p95_latency: duration(
                "monitoring.alerts.p95_latency",
                &c.monitoring.alerts.p95_latency,
            ),
            alert_for: duration(
                "monitoring.alerts.for_duration",
                &c.monitoring.alerts.for_duration,
            ),
            alert_instance_down_for: duration(
                "monitoring.alerts.instance_down_for",
                &c.monitoring.alerts.instance_down_for,
            ),
            alertmanager_group_wait: duration(
                "monitoring.alertmanager.group_wait",
                &c.monitoring.alertmanager.group_wait,
            ),
            alertmanager_repeat_interval: duration(
                "monitoring.alertmanager.repeat_interval",
                &c.monitoring.alertmanager.repeat_interval,
            ),
            rate_limit: rules::parse_rate(&c.gateway.rate_limit).unwrap_or_else(|| {
                fail(
                    "gateway.rate_limit",
                    format!("\"{}\" is not a rate", c.gateway.rate_limit),
                );
                (0, 's')
            }),
            body_size_bytes: rules::parse_size(&c.gateway.body_size).unwrap_or_else(|| {
                fail(
                    "gateway.body_size",
                    format!("\"{}\" is not a size", c.gateway.body_size),
                );
                0
            }),
            kubernetes_minor: rules::kubernetes_minor(&c.kubernetes.version).unwrap_or_else(|| {
                fail(
                    "kubernetes.version",
                    format!("\"{}\" is not a Kubernetes version", c.kubernetes.version),
                );
                0
            }),
            app_port: port("app.port", c.app.port),
            gateway_port: port("gateway.port", c.gateway.port),
            tls_port: c
                .gateway
                .tls
                .enabled
                .then(|| port("gateway.tls.port", c.gateway.tls.port)),
            memory_limit: memory("resources.limits.memory", &c.resources.limits.memory),
            memory_request: memory("resources.requests.memory", &c.resources.requests.memory),
            cpu_limit_millis: cpu("resources.limits.cpu", &c.resources.limits.cpu),
            cpu_request_millis: cpu("resources.requests.cpu", &c.resources.requests.cpu),
        };
        let problems = problems.into_inner();
        if problems.is_empty() {
            Ok(typed)
        } else {
            Err(problems)
        }
    }

    /// The memory limit for the Docker engine (bytes).
    pub fn memory_bytes(&self) -> Option<i64> {
        i64::try_from(self.memory_limit).ok()
    }

    /// The CPU limit for the Docker engine (nano-CPUs).
    pub fn nano_cpus(&self) -> Option<i64> {
        i64::try_from(self.cpu_limit_millis)
            .ok()
            .and_then(|m| m.checked_mul(1_000_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_gets_the_limits_in_its_units() {
        let mut c = Config::default();
        c.app.name = "calculator".into();
        let root = Node::empty_table(crate::config::Origin {
            source: crate::config::Sources::default().add(
                "t",
                crate::config::SourceKind::Default,
                "",
            ),
            span: 0..0,
        });
        let t = Typed::new(&c, &root).unwrap();
        assert_eq!(t.memory_bytes(), Some(128 << 20));
        assert_eq!(t.nano_cpus(), Some(500_000_000));
        c.resources.limits.memory = "1.5Gi".into();
        c.deploy.health_timeout = "soon".into();
        let problems = Typed::new(&c, &root).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["deploy.health_timeout", "resources.limits.memory"]);
    }
}
