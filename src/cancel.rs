//! A clean stop asked for by SIGINT or SIGTERM, shared by every target.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

/// Set by SIGINT / SIGTERM: the signal number, 0 while running.
#[derive(Clone, Default)]
pub struct Cancel(Arc<AtomicI32>);

impl Cancel {
    /// Installs the signal handlers for the rest of the process.
    pub fn install() -> Cancel {
        let cancel = Cancel::default();
        for (kind, number) in [
            (tokio::signal::unix::SignalKind::interrupt(), 2),
            (tokio::signal::unix::SignalKind::terminate(), 15),
        ] {
            if let Ok(mut signal) = tokio::signal::unix::signal(kind) {
                let flag = cancel.0.clone();
                tokio::spawn(async move {
                    while signal.recv().await.is_some() {
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
}
