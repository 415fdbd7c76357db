//! The calculator: the sample service that shipit builds, deploys and
//! smoke-tests - an HTTP API with health, readiness, metrics and structured
//! logs, and a command line for single calculations and batch files.

pub mod batch;
pub mod client;
pub mod ops;
pub mod server;
pub mod settings;

/// Whole numbers as JSON integers (`8`, not `8.0`), others as floats.
pub fn json_number(x: f64) -> serde_json::Value {
    if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 {
        serde_json::Value::from(x as i64)
    } else {
        serde_json::Value::from(x)
    }
}
