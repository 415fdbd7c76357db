//! What a deploy to Docker hosts will do, worked out before anything
//! changes: `--dry-run` prints this value, a real run carries it out and
//! reports it under `plan`. Nothing in it is a time or an id that would
//! differ between the two; `steps` are the phases the run will report, in
//! order.

use serde::Serialize;

use super::host::Host;
use super::lock::LockInfo;
use super::steps::Options;
use super::{Settings, gateway, status};
use crate::config::model::{Strategy, Transfer};
use crate::engine::Engine;
use crate::error::Error;
use crate::record::{Action, Subject};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Plan {
    #[serde(flatten)]
    pub subject: Subject,
    pub strategy: &'static str,
    /// Replicas on each host.
    pub replicas: usize,
    pub gateway_image: String,
    /// How images reach several hosts (absent for one engine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<Transfer>,
    /// The gateway's certificate as it would be installed (TLS environments).
    pub certificate: Option<Certificate>,
    pub hosts: Vec<HostPlan>,
    /// Every host already serves this version and image: nothing to do.
    pub no_op: bool,
    /// What would stop the run at its preflight.
    pub problems: Vec<String>,
    /// The phases the run goes through, in order.
    pub steps: Vec<String>,
    /// `deploy.release_command`, run once from the new image before any
    /// new replica takes traffic.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub release_command: Vec<String>,
    /// `[roles]`: started, gated and switched with the web replicas.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<super::Role>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Certificate {
    pub subject: String,
    pub names: Vec<String>,
    /// RFC 3339, UTC.
    pub not_after: String,
}

/// One host as the plan found it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HostPlan {
    pub host: String,
    pub gateway_url: String,
    /// The release's image is on this host's engine already.
    pub image_present: bool,
    pub serving_release: Option<u64>,
    pub serving_version: Option<String>,
    /// It already serves this version and image.
    pub unchanged: bool,
    pub lock: Option<LockInfo>,
    /// What the run repairs first (left by an interrupted run).
    pub repairs: Vec<String>,
}

pub fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::Rolling => "rolling",
        Strategy::BlueGreen => "blue-green",
        Strategy::Canary => "canary",
    }
}

/// One host: what serves there, and whether this deploy would change it.
pub async fn host(
    name: &str,
    engine: &Engine,
    settings: &Settings,
    image: &str,
) -> Result<HostPlan, Error> {
    let image_id = engine.image_id(image).await;
    let now = status::status(engine, settings, 0).await?;
    let mut unchanged = false;
    if let (Some(version), Some(replica), Some(id)) =
        (&now.version, now.replicas.first(), &image_id)
        && version == &settings.version
    {
        // The same image, and the same roles.
        unchanged = engine.container(&replica.name).await?.is_some_and(|c| {
            &c.image == id
                && c.labels.get(super::ROLES).cloned().unwrap_or_default()
                    == settings.roles_digest()
        });
    }
    Ok(HostPlan {
        host: name.to_string(),
        gateway_url: gateway::url(engine, settings),
        image_present: image_id.is_some(),
        serving_release: now.release,
        serving_version: now.version,
        unchanged,
        lock: now.lock,
        repairs: now.problems,
    })
}

/// The plan over `hosts` (one engine is a list of one); `problems` are the
/// preflight's.
pub fn plan(
    settings: &Settings,
    options: &Options,
    hosts: Vec<HostPlan>,
    problems: Vec<String>,
) -> Result<Plan, Error> {
    let several = hosts.len() > 1;
    // Several hosts each stage a whole new release (blue-green), so that no
    // host switches before every host has passed.
    let strategy = if several {
        Strategy::BlueGreen
    } else {
        options.strategy.unwrap_or(settings.strategy)
    };
    let certificate = settings.load_tls()?.map(|(m, _)| Certificate {
        subject: m.subject.clone(),
        names: m.names.clone(),
        not_after: crate::clock::rfc3339(m.not_after),
    });
    let serving: Vec<Option<u64>> = hosts.iter().map(|h| h.serving_release).collect();
    let no_op = !hosts.is_empty()
        && hosts.iter().all(|h| h.unchanged)
        && serving.windows(2).all(|w| w[0] == w[1]);
    let rolling = strategy == Strategy::Rolling && serving.first().is_some_and(Option::is_some);
    let roles = !settings.roles.is_empty();
    let mut steps = steps(several, no_op, rolling, settings.replicas, roles);
    let release = !no_op && !settings.release_command.is_empty();
    if release {
        // After the inspection, before anything starts: on the first host alone.
        let at = steps
            .iter()
            .position(|s| s == "inspect")
            .map_or(0, |i| i + 1);
        steps.insert(at, "release".into());
    }
    Ok(Plan {
        subject: Subject {
            action: Action::Deploy,
            environment: settings.site.environment.clone(),
            version: settings.version.clone(),
            image: options.image_ref(settings),
        },
        strategy: strategy_name(strategy),
        replicas: settings.replicas,
        gateway_image: settings.gateway_image.clone(),
        transfer: (!settings.hosts.is_empty()).then_some(settings.transfer),
        certificate,
        hosts,
        no_op,
        problems,
        steps,
        release_command: if release {
            settings.release_command.clone()
        } else {
            Vec::new()
        },
        roles: settings.roles.clone(),
    })
}

/// The phases of a deploy, in the order the run reports them.
fn steps(several: bool, no_op: bool, rolling: bool, replicas: usize, roles: bool) -> Vec<String> {
    let mut steps: Vec<&str> = if several {
        vec!["preflight", "images", "lock", "inspect"]
    } else {
        vec!["preflight", "lock", "inspect"]
    };
    if no_op {
        return steps.into_iter().map(String::from).collect();
    }
    if several {
        steps.extend(["stage", "switch", "drain", "cleanup"]);
    } else if rolling {
        // The roles' replicas first, whole, beside the old ones.
        if roles {
            steps.extend(["start", "health"]);
        }
        // Each replica in turn; the first is smoke-tested before it takes traffic.
        for i in 0..replicas {
            steps.extend(["start", "health"]);
            if i == 0 {
                steps.push("smoke");
            }
        }
        steps.extend(["switch", "drain", "cleanup"]);
    } else {
        steps.extend(["start", "health", "smoke", "switch", "drain", "cleanup"]);
    }
    steps.into_iter().map(String::from).collect()
}

/// The plan for the hosts that answered.
pub async fn of_hosts(
    settings: &Settings,
    options: &Options,
    hosts: &[Host],
    problems: Vec<String>,
) -> Result<Plan, Error> {
    let image = options.image_ref(settings);
    let rows = crate::deploy::host::on_each(
        hosts,
        |h| &h.name,
        std::time::Duration::from_secs(60),
        |h| host(&h.name, &h.engine, settings, &image),
    )
    .await;
    let mut found = Vec::new();
    for r in rows {
        match r {
            Ok(row) => found.push(row?),
            Err(why) => {
                return Err(Error::Deploy { message: why });
            }
        }
    }
    plan(settings, options, found, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_the_strategy() {
        let joined = |several, no_op, rolling, replicas| {
            steps(several, no_op, rolling, replicas, false).join(" ")
        };
        let one = "preflight lock inspect";
        assert_eq!(
            joined(false, false, false, 2),
            format!("{one} start health smoke switch drain cleanup")
        );
        assert_eq!(
            joined(false, false, true, 2),
            format!("{one} start health smoke start health switch drain cleanup")
        );
        assert_eq!(joined(false, true, false, 2), one);
        assert_eq!(
            steps(false, false, true, 1, true).join(" "),
            format!("{one} start health start health smoke switch drain cleanup")
        );
        assert_eq!(
            joined(true, false, false, 3),
            "preflight images lock inspect stage switch drain cleanup"
        );
    }
}
