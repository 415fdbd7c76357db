//! The deploy lock on Kubernetes: a `coordination.k8s.io/v1` Lease in the
//! namespace. Its holder renews it while the deploy runs, replacing only the
//! version it read; a Lease that a waiting run watched go unrenewed for its
//! whole duration (by the waiter's own clock) is a killed deploy's and is
//! taken over. A holder that loses its Lease stops its deploy cleanly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use super::kubectl::{Kubectl, int, micro_time, parse_time, text};
use crate::cancel::Cancel;
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
/// taking it over once this run has watched it go unrenewed for its whole
/// duration: its resourceVersion did not change for that long by this
/// machine's own clock, whatever the holder's clock wrote in `renewTime`.
/// A Lease whose `renewTime` looks old is watched that long even past
/// `wait` (it may be a killed deploy's); one that is renewed all the while
/// is a live holder with a skewed clock, and is left alone. The renewal
/// runs in the background; when it fails for longer than the Lease lasts,
/// or finds another holder, it asks `cancel` for a clean stop.
pub fn acquire(
    kubectl: &Kubectl,
    app: &str,
    command: &str,
    wait: Duration,
    cancel: &Cancel,
) -> Result<Guard, Error> {
    let name = name(app);
    let identity = format!(
        "{} pid {} `{command}`",
        crate::identity::who().0,
        std::process::id()
    );
    let start = Instant::now();
    // The Lease as this run watched it: its resourceVersion and since when.
    let mut watched: Option<(String, Instant)> = None;
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
                        let rv = text(&current, "/metadata/resourceVersion").to_string();
                        let duration = Duration::from_secs(
                            int(&current, "/spec/leaseDurationSeconds").max(1) as u64,
                        );
                        let unrenewed = match &watched {
                            Some((seen, since)) if *seen == rv => since.elapsed(),
                            _ => {
                                watched = Some((rv.clone(), Instant::now()));
                                Duration::ZERO
                            }
                        };
                        let patience = if holder.stale {
                            wait.max(duration + Duration::from_secs(5))
                        } else {
                            wait
                        };
                        if unrenewed >= duration {
                            // Replace only the version we read: of two
                            // takers, one wins and the other sees a conflict.
                            let body = lease(&name, &identity, now, Some(&rv)).to_string();
                            let won = kubectl
                                .run(&["replace", "-f", "-", "-o", "name"], Some(body.as_bytes()))
                                .is_ok();
                            if won {
                                took_over = Some(Holder {
                                    stale: true,
                                    ..holder
                                });
                            }
                            won
                        } else if start.elapsed() >= patience || cancel.is_set() {
                            return Err(Error::Deploy {
                                message: format!(
                                    "another deploy is running: the deploy lock is {}\nwait for it (--lock-wait 5m), or if it was killed, `shipit lock release ENV --force`",
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
                let (kubectl, name, identity, stop, cancel) = (
                    kubectl.clone(),
                    name.clone(),
                    identity.clone(),
                    stop.clone(),
                    cancel.clone(),
                );
                std::thread::spawn(move || {
                    let mut renewed = Instant::now();
                    let mut every = RENEW_EVERY;
                    while !stop.load(Ordering::SeqCst) {
                        std::thread::park_timeout(every);
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        match renew(&kubectl, &name, &identity) {
                            Ok(()) => {
                                renewed = Instant::now();
                                every = RENEW_EVERY;
                            }
                            Err(Renewal::Lost) => {
                                cancel.lose_lock();
                                break;
                            }
                            // A failed call: again soon, until the Lease would lapse.
                            Err(Renewal::Failed)
                                if renewed.elapsed()
                                    < Duration::from_secs(DURATION_SECONDS as u64)
                                        - RENEW_EVERY =>
                            {
                                every = Duration::from_secs(2);
                            }
                            Err(Renewal::Failed) => {
                                cancel.lose_lock();
                                break;
                            }
                        }
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

/// Why a renewal did not happen.
enum Renewal {
    /// Another holder has the Lease, or it is gone: this run holds no lock.
    Lost,
    /// The call failed (the API server did not answer, a conflict): try again.
    Failed,
}

/// Renews this holder's Lease: `renewTime` now, replacing only the version
/// read (so a renewal never overwrites a taker's Lease).
fn renew(kubectl: &Kubectl, name: &str, identity: &str) -> Result<(), Renewal> {
    let mut current = match kubectl.get(&format!("lease/{name}")) {
        Ok(Some(l)) => l,
        Ok(None) => return Err(Renewal::Lost),
        Err(_) => return Err(Renewal::Failed),
    };
    if text(&current, "/spec/holderIdentity") != identity {
        return Err(Renewal::Lost);
    }
    current["spec"]["renewTime"] = json!(micro_time(crate::clock::now()));
    kubectl
        .run(
            &["replace", "-f", "-", "-o", "name"],
            Some(current.to_string().as_bytes()),
        )
        .map(|_| ())
        .map_err(|_| Renewal::Failed)
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
