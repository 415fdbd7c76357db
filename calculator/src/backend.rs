//! Where memory, history and statistics live: the local state file, or a
//! running calculator server (`--url`, its HTTP API). Both answer in the
//! same values, so every command prints the same either way.

use std::time::Duration;

use serde_json::{Value, json};

use crate::client;
use crate::ops::Operation;
use crate::store::{Entry, Store};

pub enum Backend {
    Local(Store),
    /// The server's `host:port` and the path prefix of its API.
    Remote {
        address: String,
        prefix: String,
    },
}

/// What `stats` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub calculations: u64,
    pub errors: u64,
    pub by_operation: Vec<(String, u64)>,
}

const TIMEOUT: Duration = Duration::from_secs(10);

impl Backend {
    pub fn remote(url: &str) -> Result<Backend, String> {
        let (address, path) = client::parse_url(url)?;
        Ok(Backend::Remote {
            address,
            prefix: path.trim_end_matches('/').to_string(),
        })
    }

    /// Where it is, for logs.
    pub fn describe(&self) -> String {
        match self {
            Backend::Local(store) => format!("state file {}", store.path().display()),
            Backend::Remote { address, prefix } => format!("server http://{address}{prefix}"),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let Backend::Remote { address, prefix } = self else {
            unreachable!("only a server is called");
        };
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let headers: &[(&str, &str)] = if body.is_empty() {
            &[]
        } else {
            &[("Content-Type", "application/json")]
        };
        let full = format!("{prefix}{path}");
        let response = client::request(address, method, &full, headers, body.as_bytes(), TIMEOUT)
            .map_err(|e| format!("http://{address}{full}: {e}"))?;
        let value = response.json().ok_or_else(|| {
            format!(
                "http://{address}{full} answered {} without JSON",
                response.status
            )
        })?;
        if response.status >= 400 {
            return Err(value["error"].as_str().map_or_else(
                || format!("the server answered {}", response.status),
                String::from,
            ));
        }
        Ok(value)
    }

    pub fn calculate(&self, operation: Operation, operands: &[f64]) -> Result<f64, String> {
        match self {
            Backend::Local(store) => store.calculate(operation, operands),
            Backend::Remote { .. } => {
                let answer = self.call(
                    "POST",
                    "/calculate",
                    Some(json!({ "operation": operation.name(), "operands": operands })),
                )?;
                answer["result"]
                    .as_f64()
                    .ok_or_else(|| "the server's answer has no result".to_string())
            }
        }
    }

    pub fn memory(&self) -> Result<f64, String> {
        match self {
            Backend::Local(store) => Ok(store.read()?.memory),
            Backend::Remote { .. } => number(&self.call("GET", "/memory", None)?),
        }
    }

    pub fn memory_store(&self, value: f64) -> Result<f64, String> {
        finite(value)?;
        match self {
            Backend::Local(store) => store.update(|s| {
                s.memory = value;
                value
            }),
            Backend::Remote { .. } => {
                number(&self.call("POST", "/memory/store", Some(json!({ "value": value })))?)
            }
        }
    }

    /// M+: adds to the memory at once (no update between two writers is lost).
    pub fn memory_add(&self, value: f64) -> Result<f64, String> {
        finite(value)?;
        match self {
            Backend::Local(store) => store.update(|s| {
                let sum = s.memory + value;
                if sum.is_finite() {
                    s.memory = sum;
                    Ok(sum)
                } else {
                    Err("the sum is not a finite number (overflow)".to_string())
                }
            })?,
            Backend::Remote { .. } => {
                number(&self.call("POST", "/memory/add", Some(json!({ "value": value })))?)
            }
        }
    }

    pub fn memory_clear(&self) -> Result<(), String> {
        match self {
            Backend::Local(store) => store.update(|s| s.memory = 0.0),
            Backend::Remote { .. } => self.call("POST", "/memory/clear", None).map(|_| ()),
        }
    }

    /// The newest `limit` calculations (all that are kept when `None`).
    pub fn history(&self, limit: Option<usize>) -> Result<Vec<Entry>, String> {
        match self {
            Backend::Local(store) => {
                let mut history = store.read()?.history;
                history.truncate(limit.unwrap_or(usize::MAX));
                Ok(history)
            }
            Backend::Remote { .. } => {
                let path = match limit {
                    Some(n) => format!("/history?limit={n}"),
                    None => "/history".into(),
                };
                let answer = self.call("GET", &path, None)?;
                serde_json::from_value(answer["history"].clone())
                    .map_err(|e| format!("the server's history is not understood: {e}"))
            }
        }
    }

    pub fn stats(&self) -> Result<Stats, String> {
        match self {
            Backend::Local(store) => {
                let state = store.read()?;
                Ok(Stats {
                    calculations: state.calculations,
                    errors: state.errors,
                    by_operation: state.by_operation.into_iter().collect(),
                })
            }
            Backend::Remote { .. } => {
                let answer = self.call("GET", "/stats", None)?;
                let count = |v: &Value| v.as_u64().unwrap_or(0);
                let mut by_operation: Vec<(String, u64)> = answer["by_operation"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), count(v))).collect())
                    .unwrap_or_default();
                by_operation.sort();
                Ok(Stats {
                    calculations: count(&answer["calculations"]),
                    errors: count(&answer["errors"]),
                    by_operation,
                })
            }
        }
    }
}

fn finite(value: f64) -> Result<(), String> {
    if value.is_finite() {
        Ok(())
    } else {
        Err("the value must be a finite number".into())
    }
}

fn number(answer: &Value) -> Result<f64, String> {
    answer["value"]
        .as_f64()
        .ok_or_else(|| "the server's answer has no value".to_string())
}
