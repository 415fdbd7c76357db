//! `shipit maintenance ENV on|off` on Docker hosts: every host's gateway
//! switched live, all or none, under each host's deploy lock; a host that
//! fails puts the ones already switched back as they were.

use crate::deploy::gateway::maintenance::{self, Maintenance};
use crate::deploy::host::{self, Host};
use crate::deploy::{Settings, lock};
use crate::error::Error;
use crate::output::Output;
use crate::target::MaintenanceRequest;

pub(super) async fn maintenance(
    out: &Output,
    settings: &Settings,
    request: &MaintenanceRequest,
) -> Result<(), Error> {
    let environment = &settings.site.environment;
    let want = request.on.then(|| Maintenance {
        message: request.message.clone(),
        retry_after: request.retry_after,
    });
    let (hosts, unreachable) = host::connect_all(settings).await?;
    if let Some(u) = unreachable.first() {
        return Err(Error::Deploy {
            message: format!(
                "maintenance switches every host or none, and {} is unreachable ({}): nothing was changed",
                u.name, u.why
            ),
        });
    }
    let mut guards = Vec::new();
    let taken = take_locks(&hosts, settings, &mut guards).await;
    let result = match taken {
        Ok(()) => switch(out, settings, &hosts, want.as_ref()).await,
        Err(e) => Err(e),
    };
    for (guard, h) in guards.into_iter().zip(&hosts) {
        guard.release(&h.engine).await;
    }
    let names: Vec<String> = hosts
        .iter()
        .map(|h| super::replicas::who(h, settings))
        .collect();
    result?;
    let state = if request.on { "on" } else { "off" };
    if out.is_json() {
        out.json(&serde_json::json!({
            "environment": environment,
            "maintenance": want,
            "hosts": names,
        }));
    }
    for name in &names {
        out.status("maintenance", &format!("{state} at {name}'s gateway"));
    }
    Ok(())
}

/// Each host's deploy lock, in the hosts' fixed order; every host must
/// have a gateway.
async fn take_locks(
    hosts: &[Host],
    settings: &Settings,
    guards: &mut Vec<lock::Guard>,
) -> Result<(), Error> {
    for h in hosts {
        if h.engine
            .container(&settings.site.gateway())
            .await?
            .is_none()
        {
            return Err(Error::Deploy {
                message: format!(
                    "nothing of {} is deployed on {}: no gateway to switch (deploy first); nothing was changed",
                    settings.site.environment,
                    super::replicas::who(h, settings)
                ),
            });
        }
        let guard = lock::acquire(
            &h.engine,
            settings,
            "maintenance",
            Default::default(),
            &|| false,
            |_| {},
        )
        .await?;
        guards.push(guard);
    }
    Ok(())
}

async fn switch(
    out: &Output,
    settings: &Settings,
    hosts: &[Host],
    want: Option<&Maintenance>,
) -> Result<(), Error> {
    let mut before = Vec::new();
    for h in hosts {
        before.push(maintenance::read(&h.engine, settings).await);
    }
    for (i, h) in hosts.iter().enumerate() {
        if let Err(why) = maintenance::set(&h.engine, settings, want).await {
            for (back, was) in hosts[..=i].iter().zip(&before) {
                if let Err(e) = maintenance::set(&back.engine, settings, was.as_ref()).await {
                    out.warn(&format!("{}: could not be put back: {e}", back.name));
                }
            }
            return Err(Error::Deploy {
                message: format!(
                    "{}: {why}; every host was put back as it was",
                    super::replicas::who(h, settings)
                ),
            });
        }
    }
    Ok(())
}
