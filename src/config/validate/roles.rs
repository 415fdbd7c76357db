//! `[roles.NAME]`: the processes of the release's image that serve no HTTP,
//! each problem at its key.

use super::{Checker, DNS_LABEL};
use crate::config::model::{Config, Target};
use crate::config::rules;

pub(super) fn roles(c: &mut Checker<'_>, config: &Config) {
    for (name, role) in &config.roles {
        let table = format!("roles.{name}");
        let key = |field: &str| format!("roles.{name}.{field}");
        c.is(&table, name, &DNS_LABEL);
        c.check(
            name.starts_with(|ch: char| ch.is_ascii_lowercase()) && name != "web",
            &table,
            format!("`{name}` cannot name a role"),
            "a name starting with a letter, not `web` (the web role is the service itself: `app.args` and `replicas`)",
        );
        if role.cmd.is_empty() {
            c.fail(
                &table,
                format!("role `{name}` has no cmd"),
                "set `cmd` to what it runs (exec form), e.g. cmd = [\"python3\", \"worker.py\"]",
            );
        } else {
            super::accessories::command(c, &key("cmd"), &role.cmd);
        }
        c.range(
            &key("replicas"),
            role.replicas,
            1..=1000,
            "per host (pods on Kubernetes)",
        );
        super::accessories::command(c, &key("healthcheck"), &role.healthcheck);
        if !role.stop_grace.is_empty() {
            c.duration(&key("stop_grace"), &role.stop_grace);
        }
        // Kubernetes: without a check, a pod counts after minReadySeconds
        // (3 x health_interval), which must be below progressDeadlineSeconds.
        let d = &config.deploy;
        if d.target == Target::Kubernetes
            && role.healthcheck.is_empty()
            && let (Some(interval), Some(timeout)) = (
                rules::parse_duration(&d.health_interval),
                rules::parse_duration(&d.health_timeout),
            )
            && interval.as_secs().max(1) * 3 >= timeout.as_secs()
        {
            c.fail(
                &table,
                format!(
                    "role `{name}` has no healthcheck, and three deploy.health_interval ({}) reach deploy.health_timeout ({})",
                    d.health_interval, d.health_timeout
                ),
                "give the role a healthcheck, or a deploy.health_timeout above three health_intervals (a pod without a check counts once it has run that long)",
            );
        }
    }
}
