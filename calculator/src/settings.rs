//! Service settings: twelve-factor, from the environment, flags may override.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn parse(s: &str) -> Option<LogLevel> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Some(LogLevel::Error),
            "warn" | "warning" => Some(LogLevel::Warn),
            "info" => Some(LogLevel::Info),
            "debug" => Some(LogLevel::Debug),
            "trace" => Some(LogLevel::Trace),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
    /// How many calculations `/history` keeps (a bounded ring).
    pub history_limit: usize,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// How long the service keeps serving after SIGTERM with readiness 503,
    /// so load balancers stop routing to it before the listener closes.
    /// Counts against `shutdown_grace`.
    pub shutdown_delay: Duration,
    pub environment: String,
    /// Threads serving requests; `None` means one per available core.
    pub workers: Option<usize>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            host: "0.0.0.0".into(),
            port: 8080,
            log_level: LogLevel::Info,
            log_format: LogFormat::Json,
            history_limit: 100,
            shutdown_grace: Duration::from_secs(10),
            shutdown_delay: Duration::ZERO,
            environment: "development".into(),
            workers: None,
        }
    }
}

/// The largest history a process may keep, whatever it is configured to.
pub const MAX_HISTORY: usize = 10_000;

/// The largest request body accepted (413 above it).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
