//! The one adapter to the cluster: the user's own `kubectl`, run through
//! `process`, so contexts, auth plugins and the kubeconfig behave as they do for
//! the user. Every call is argv (no shell) with its stdout and stderr captured.

use serde_json::Value;

use crate::process::{Program, Reader};

/// How long one request of a kubectl call may wait for the API server.
pub const REQUEST_LIMIT: &str = "30s";
/// How long one kubectl call may take, all told (its discovery requests,
/// retries and handshakes included): it is stopped after that.
pub const CALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// A kubectl that refused or failed: its own words, trimmed.
#[derive(Debug, Clone)]
pub struct Failed {
    pub command: String,
    pub message: String,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.command, self.message)
    }
}

#[derive(Debug, Clone)]
pub struct Kubectl {
    pub program: String,
    /// `--context`, when `kubernetes.context` names one.
    pub context: Option<String>,
    pub namespace: String,
}

impl Kubectl {
    pub(super) fn argv(&self, args: &[&str], namespaced: bool) -> Vec<String> {
        let mut argv = Vec::with_capacity(args.len() + 4);
        if let Some(c) = &self.context {
            argv.push(format!("--context={c}"));
        }
        if namespaced {
            argv.push(format!("--namespace={}", self.namespace));
        }
        argv.extend(args.iter().map(|a| a.to_string()));
        argv
    }

    fn exec(&self, argv: Vec<String>, stdin: Option<&[u8]>) -> Result<String, Failed> {
        // Each call is one request or a few (apply, patch, get): none may wait
        // on a silent API server for longer than this. Watches run apart.
        let mut argv = argv;
        argv.insert(0, format!("--request-timeout={REQUEST_LIMIT}"));
        let mut program = Program::new(&self.program, &argv).timeout(CALL_LIMIT);
        if let Some(bytes) = stdin {
            program = program.stdin(bytes);
        }
        let command = program.command();
        let output = program.output().map_err(|e| Failed {
            command: command.clone(),
            message: if e.not_found {
                format!(
                    "{} is not installed (or not on PATH): kubernetes.kubectl names the program",
                    self.program
                )
            } else {
                e.message
            },
        })?;
        if output.success() {
            return Ok(output.stdout);
        }
        // kubectl warns about version skew on every call: that is not the failure.
        let message = output
            .stderr
            .lines()
            .filter(|l| !l.starts_with("WARNING: version difference"))
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_string();
        Err(Failed {
            command,
            message: if message.is_empty() {
                format!("exited with {}", output.status)
            } else {
                message
            },
        })
    }

    /// A command in the environment's namespace; its stdout.
    pub fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<String, Failed> {
        self.exec(self.argv(args, true), stdin)
    }

    /// A kubectl in the namespace that runs as long as its work does (a
    /// followed log, an exec, an attach), for the caller to wire up; killed
    /// when dropped.
    pub fn attached(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        command.args(self.argv(args, true)).kill_on_drop(true);
        command
    }

    /// A command that is not about the namespace (`version`, `config`).
    pub fn run_global(&self, args: &[&str]) -> Result<String, Failed> {
        self.exec(self.argv(args, false), None)
    }

    /// A command in the namespace whose stdout is JSON.
    pub fn json(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Value, Failed> {
        let text = self.run(args, stdin)?;
        serde_json::from_str(&text).map_err(|e| Failed {
            command: format!("{} {}", self.program, args.join(" ")),
            message: format!("answered something that is not JSON: {e}"),
        })
    }

    /// Whether `KIND/NAME` exists, read as the server's table (name, type,
    /// counts): no field of the object itself, so a Secret's values never
    /// leave the server.
    pub fn exists(&self, what: &str) -> Result<bool, Failed> {
        let text = self.run(&["get", what, "--no-headers", "--ignore-not-found"], None)?;
        Ok(!text.trim().is_empty())
    }

    /// `get KIND/NAME -o json`; `Ok(None)` when it does not exist.
    pub fn get(&self, what: &str) -> Result<Option<Value>, Failed> {
        match self.json(&["get", what, "-o", "json"], None) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.message.contains("NotFound") || e.message.contains("not found") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A running `kubectl get ... --watch`: each version of the object as it
/// changes, sent on a channel; stopped when dropped.
pub struct Watch {
    reader: std::sync::Arc<Reader>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.reader.kill();
    }
}

impl Kubectl {
    /// Watches `what` (`deployment/NAME`): the current state first, then
    /// every change. `None` if kubectl cannot be started.
    pub fn watch(&self, what: &str, tx: std::sync::mpsc::Sender<Value>) -> Option<Watch> {
        let argv = self.argv(&["get", what, "--watch", "-o", "json"], true);
        let reader = Program::new(&self.program, &argv).reader().ok()?;
        let reader = std::sync::Arc::new(reader);
        let source = reader.clone();
        std::thread::spawn(move || {
            let stream = serde_json::Deserializer::from_reader(&*source).into_iter::<Value>();
            for value in stream {
                let Ok(v) = value else { break };
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Some(Watch { reader })
    }
}

/// Seconds since the epoch of an RFC 3339 time as the API server writes it
/// (`2026-11-22T15:04:05Z`, `2026-11-22T15:04:05.123456Z`).
pub fn parse_time(text: &str) -> Option<i64> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z');
    let time = time.split(['+']).next()?;
    let mut t = time.split(':');
    let hour: i64 = t.next()?.parse().ok()?;
    let minute: i64 = t.next()?.parse().ok()?;
    let second: i64 = t.next()?.split('.').next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// The API server's MicroTime: RFC 3339 with microseconds.
pub fn micro_time(secs: i64) -> String {
    crate::clock::rfc3339(secs).replace('Z', ".000000Z")
}

/// A JSON path's string, or "".
pub fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// A JSON path's integer, or 0.
pub fn int(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        for secs in [0, 951_782_400, 1_795_000_000, 1_700_000_123] {
            let text = crate::clock::rfc3339(secs);
            assert_eq!(parse_time(&text), Some(secs), "{text}");
            assert_eq!(parse_time(&micro_time(secs)), Some(secs));
        }
        assert_eq!(
            parse_time("2026-11-22T15:04:05.123456Z"),
            parse_time("2026-11-22T15:04:05Z")
        );
        assert_eq!(parse_time("yesterday"), None);
    }
}
