//! The calculator: the sample service that shipit builds, deploys and
//! smoke-tests - an HTTP API with health, readiness, metrics and structured
//! logs, and a command line: single calculations, batch files, memory,
//! history and statistics (on a state file or a server), an interactive mode.

pub mod backend;
pub mod batch;
pub mod client;
pub mod config_file;
pub mod interactive;
pub mod number;
pub mod ops;
pub mod report;
pub mod server;
pub mod settings;
pub mod store;

/// Whole numbers as JSON integers (`8`, not `8.0`), others as floats.
pub fn json_number(x: f64) -> serde_json::Value {
    if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 {
        serde_json::Value::from(x as i64)
    } else {
        serde_json::Value::from(x)
    }
}

/// An XDG base directory: `$VAR` when set, else `$HOME/fallback`.
pub fn xdg_dir(var: &str, fallback: &str) -> Option<std::path::PathBuf> {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    set(var)
        .map(std::path::PathBuf::from)
        .or_else(|| set("HOME").map(|h| std::path::PathBuf::from(h).join(fallback)))
}
