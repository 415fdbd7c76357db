//! A clean stop asked for by SIGINT or SIGTERM, or by a run that finds it
//! no longer holds its deploy lock, shared by every target.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// What `signal` holds once the run lost its lock (no signal has this number).
const LOST_LOCK: i32 = -1;

/// Set by SIGINT / SIGTERM: the signal number, 0 while running.
#[derive(Clone, Default)]
pub struct Cancel(Arc<AtomicI32>);

impl Cancel {
    /// Installs the signal handlers for the rest of the process. The first
    /// SIGINT or SIGTERM asks for a clean stop (undo, unlock, report); a
    /// second one stops the process at once, leaving what the next run's
    /// repair puts right (and a lock whose lease runs out).
    pub fn install() -> Cancel {
        let cancel = Cancel::default();
        let asked = Arc::new(AtomicBool::new(false));
        for (kind, number) in [
            (tokio::signal::unix::SignalKind::interrupt(), 2),
            (tokio::signal::unix::SignalKind::terminate(), 15),
        ] {
            if let Ok(mut signal) = tokio::signal::unix::signal(kind) {
                let (flag, asked) = (cancel.0.clone(), asked.clone());
                tokio::spawn(async move {
                    while signal.recv().await.is_some() {
                        if asked.swap(true, Ordering::SeqCst) {
                            eprintln!(
                                "shipit: a second signal: stopping now, without the clean stop. The next deploy repairs what is left; its lock expires after deploy.lock_lease"
                            );
                            std::process::exit(128 + number);
                        }
                        flag.store(number, Ordering::SeqCst);
                    }
                });
            }
        }
        cancel
    }

    pub fn signal(&self) -> i32 {
        self.0.load(Ordering::SeqCst)
    }

    pub fn is_set(&self) -> bool {
        self.signal() != 0
    }

    /// Asks for a clean stop: this run's lock was lost (not renewed in
    /// time, or another run holds it now), so it must not change more.
    pub fn lose_lock(&self) {
        let _ = self
            .0
            .compare_exchange(0, LOST_LOCK, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// What stopped the run, for people.
    pub fn cause(&self) -> String {
        match self.signal() {
            LOST_LOCK => "stopped: this deploy no longer holds the deploy lock (its renewal failed or another deploy took it)".into(),
            15 => "interrupted by SIGTERM".into(),
            2 => "interrupted by SIGINT".into(),
            n => format!("interrupted by signal {n}"),
        }
    }

    /// The exit code of a stopped run: 128 + the signal, 1 for a lost lock.
    pub fn exit_code(&self) -> i32 {
        match self.signal() {
            LOST_LOCK => 1,
            n => 128 + n,
        }
    }
}
