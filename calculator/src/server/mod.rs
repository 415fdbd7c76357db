//! The HTTP service: state, the accept loop and graceful shutdown.

mod log;
mod metrics;
mod routes;
mod state;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use log::{Logger, rfc3339, timestamp};
pub use state::{AppState, Readiness};

use crate::settings::{LogLevel, Settings};

/// Serves on `listener` until `shutdown` completes; then readiness turns 503,
/// serving goes on for the shutdown delay, the listener closes, in-flight
/// requests finish, and this returns - at the latest when the grace period
/// (counted from the signal) is over.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let app = routes::router(state.clone());
    let draining = Arc::new(tokio::sync::Notify::new());
    let signal_state = state.clone();
    let signal_draining = draining.clone();
    let delay = state.settings.shutdown_delay;
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        signal_state.set_readiness(Readiness::Draining);
        signal_draining.notify_one();
        let delay_text = format!("{}s", delay.as_secs_f64());
        signal_state.logger.event(
            LogLevel::Info,
            "draining: readiness is 503; closing the listener after the delay, then finishing in-flight requests",
            &[("delay", &delay_text)],
        );
        tokio::time::sleep(delay).await;
    });
    state.set_readiness(Readiness::Ready);
    state.logger.event(
        LogLevel::Info,
        "listening",
        &[
            ("address", &addr.to_string()),
            ("version", state::VERSION),
            ("environment", &state.settings.environment),
        ],
    );
    let grace = state.settings.shutdown_grace;
    tokio::select! {
        result = server => {
            state.logger.event(LogLevel::Info, "stopped: every request answered", &[]);
            result
        }
        () = async { draining.notified().await; tokio::time::sleep(grace).await } => {
            let in_flight = state.metrics.in_flight.get().to_string();
            state.logger.event(LogLevel::Warn, "stopped: grace period over with requests in flight", &[("in_flight", &in_flight)]);
            Ok(())
        }
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn termination_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Builds the state for `settings` and serves until SIGTERM / SIGINT.
pub fn run(settings: Settings) -> std::io::Result<()> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = settings.workers {
        builder.worker_threads(workers);
    }
    let runtime = builder.enable_all().build()?;
    runtime.block_on(async move {
        let address = format!("{}:{}", settings.host, settings.port);
        let listener = TcpListener::bind(&address).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {address}: {e}"))
        })?;
        let state = Arc::new(AppState::new(settings));
        serve(listener, state, termination_signal()).await
    })
}
