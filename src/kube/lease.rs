//! The deploy lock on Kubernetes: a `coordination.k8s.io/v1` Lease in the
//! namespace. Its holder renews it while the deploy runs; a Lease not renewed
//! for its whole duration is stale (a killed deploy) and is taken over.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use super::kubectl::{Kubectl, int, micro_time, parse_time, text};
use crate::error::Error;

/// A holder that stops renewing is stale after this long.
const DURATION_SECONDS: i64 = 30;
const RENEW_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize)]
pub struct Holder {
    pub lease: String,
    pub namespace: String,
    pub holder: String,
    /// Seconds since the epoch.
    pub since: i64,
    pub renewed: i64,
    pub stale: bool,
}

impl Holder {
    pub fn describe(&self) -> String {
        let now = crate::clock::now();
        format!(
            "held by {} since {} ({} s ago; Lease {} in {}){}",
            self.holder,
            crate::clock::rfc3339(self.since),
            (now - self.since).max(0),
            self.lease,
            self.namespace,
            if self.stale {
                format!(
                    " - STALE: not renewed for {} s (a killed deploy)",
                    now - self.renewed
                )
            } else {
                String::new()
            }
        )
    }
}

pub fn name(app: &str) -> String {
    format!("{app}-shipit-deploy")
}

fn holder_of(lease: &Value, namespace: &str) -> Holder {
    let since = parse_time(text(lease, "/spec/acquireTime")).unwrap_or(0);
    let renewed = parse_time(text(lease, "/spec/renewTime")).unwrap_or(since);
    let duration = int(lease, "/spec/leaseDurationSeconds").max(1);
    Holder {
        lease: text(lease, "/metadata/name").to_string(),
        namespace: namespace.to_string(),
        holder: text(lease, "/spec/holderIdentity").to_string(),
        since,
        renewed,
        stale: crate::clock::now() > renewed + duration,
    }
}

/// Who holds the environment's Lease, if anyone.
pub fn read(kubectl: &Kubectl, app: &str) -> Result<Option<Holder>, Error> {
    kubectl
        .get(&format!("lease/{}", name(app)))
        .map(|l| l.map(|l| holder_of(&l, &kubectl.namespace)))
        .map_err(|e| Error::Deploy {
            message: format!("cannot read the deploy lock: {e}"),
        })
}

/// Held until dropped: renewed in the background, deleted at the end.
pub struct Guard {
    kubectl: Kubectl,
    name: String,
    identity: String,
    stop: Arc<AtomicBool>,
    renewer: Option<std::thread::JoinHandle<()>>,
    /// A stale holder this deploy took over from.
    pub took_over: Option<Holder>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.renewer.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        // Only our own Lease is deleted.
        if let Ok(Some(l)) = self.kubectl.get(&format!("lease/{}", self.name))
            && text(&l, "/spec/holderIdentity") == self.identity
        {
            let _ = self
                .kubectl
                .run(&["delete", "lease", &self.name, "--wait=false"], None);
        }
    }
}

fn lease(name: &str, identity: &str, now: i64, resource_version: Option<&str>) -> Value {
    let mut lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "shipit"}},
        "spec": {
            "holderIdentity": identity,
            "leaseDurationSeconds": DURATION_SECONDS,
            "acquireTime": micro_time(now),
            "renewTime": micro_time(now),
        },
    });
    if let Some(rv) = resource_version {
        lease["metadata"]["resourceVersion"] = json!(rv);
    }
    lease
}

/// Takes the Lease, waiting up to `wait` for another holder to finish, and
/// taking it over if its holder stopped renewing it.
pub fn acquire(
    kubectl: &Kubectl,
    app: &str,
    command: &str,
    wait: Duration,
    cancelled: &dyn Fn() -> bool,
) -> Result<Guard, Error> {
    let name = name(app);
    let identity = format!(
        "{} pid {} `{command}`",
        crate::identity::who().0,
        std::process::id()
    );
    let start = Instant::now();
    loop {
        let now = crate::clock::now();
        let body = lease(&name, &identity, now, None).to_string();
        let mut took_over = None;
        let taken = match kubectl.run(&["create", "-f", "-", "-o", "name"], Some(body.as_bytes())) {
            Ok(_) => true,
            Err(e)
                if e.message.contains("AlreadyExists") || e.message.contains("already exists") =>
            {
                match kubectl.get(&format!("lease/{name}")) {
                    Ok(Some(current)) => {
                        let holder = holder_of(&current, &kubectl.namespace);
                        if holder.stale {
                            // Replace only the version we read: of two
                            // takers, one wins and the other sees a conflict.
                            let rv = text(&current, "/metadata/resourceVersion");
                            let body = lease(&name, &identity, now, Some(rv)).to_string();
                            let won = kubectl
                                .run(&["replace", "-f", "-", "-o", "name"], Some(body.as_bytes()))
                                .is_ok();
                            if won {
                                took_over = Some(holder.clone());
                            }
                            won
                        } else if start.elapsed() >= wait || cancelled() {
                            return Err(Error::Deploy {
                                message: format!(
                                    "another deploy is running: the deploy lock is {}\nwait for it (--lock-wait 5m), or if it was killed, `shipit lock release ENV`",
                                    holder.describe()
                                ),
                            });
                        } else {
                            false
                        }
                    }
                    // Released between the two calls: try again.
                    Ok(None) => false,
                    Err(e) => {
                        return Err(Error::Deploy {
                            message: format!("cannot read the deploy lock: {e}"),
                        });
                    }
                }
            }
            Err(e) => {
                return Err(Error::Deploy {
                    message: format!("cannot take the deploy lock (Lease {name}): {e}"),
                });
            }
        };
        if taken {
            let stop = Arc::new(AtomicBool::new(false));
            let renewer = {
                let (kubectl, name, stop) = (kubectl.clone(), name.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        std::thread::park_timeout(RENEW_EVERY);
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let patch = json!({"spec": {"renewTime": micro_time(crate::clock::now())}})
                            .to_string();
                        let _ = kubectl.run(
                            &["patch", "lease", &name, "--type=merge", "-p", &patch],
                            None,
                        );
                    }
                })
            };
            return Ok(Guard {
                kubectl: kubectl.clone(),
                name,
                identity,
                stop,
                renewer: Some(renewer),
                took_over,
            });
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `shipit lock release ENV`: deletes the Lease whoever holds it.
pub fn release(kubectl: &Kubectl, app: &str) -> Result<Option<Holder>, Error> {
    let held = read(kubectl, app)?;
    if held.is_some() {
        kubectl
            .run(&["delete", "lease", &name(app)], None)
            .map_err(|e| Error::Deploy {
                message: format!("cannot release the deploy lock: {e}"),
            })?;
    }
    Ok(held)
}
