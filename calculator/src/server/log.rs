//! Structured logs: one line per event, appended to a shared 64 KiB buffer
//! that is written out when full and flushed every 100 ms by a small thread,
//! so logging costs a request no system call and no thread wake-up.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::settings::{LogFormat, LogLevel};

const BUFFER: usize = 64 * 1024;
const FLUSH_EVERY: Duration = Duration::from_millis(100);

struct Shared {
    out: Mutex<std::io::BufWriter<Box<dyn std::io::Write + Send>>>,
    /// Set when the logger is dropped: the flusher writes out and stops.
    closed: Mutex<bool>,
    wake: Condvar,
}

pub struct Logger {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
    level: LogLevel,
    format: LogFormat,
}

/// One logged HTTP request.
pub struct RequestLog<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub route: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub latency_ms: f64,
}

impl Logger {
    pub fn new(level: LogLevel, format: LogFormat) -> Logger {
        Logger::to_writer(level, format, Box::new(std::io::stdout()))
    }

    pub fn to_writer(
        level: LogLevel,
        format: LogFormat,
        out: Box<dyn std::io::Write + Send>,
    ) -> Logger {
        let shared = Arc::new(Shared {
            out: Mutex::new(std::io::BufWriter::with_capacity(BUFFER, out)),
            closed: Mutex::new(false),
            wake: Condvar::new(),
        });
        let flusher_shared = shared.clone();
        let flusher = std::thread::Builder::new()
            .name("log-flusher".into())
            .spawn(move || flush_loop(&flusher_shared))
            .ok();
        Logger {
            shared,
            flusher,
            level,
            format,
        }
    }

    pub fn enabled(&self, level: LogLevel) -> bool {
        level <= self.level
    }

    /// A message with extra `key=value` fields (values are JSON-escaped in json format).
    pub fn event(&self, level: LogLevel, message: &str, fields: &[(&str, &str)]) {
        if !self.enabled(level) {
            return;
        }
        let mut line = String::with_capacity(160);
        match self.format {
            LogFormat::Json => {
                let _ = write!(
                    line,
                    "{{\"ts\":\"{}\",\"level\":\"{}\",\"msg\":{}",
                    timestamp(),
                    level.name(),
                    json(message)
                );
                for (key, value) in fields {
                    let _ = write!(line, ",{}:{}", json(key), json(value));
                }
                line.push('}');
            }
            LogFormat::Pretty => {
                let _ = write!(
                    line,
                    "{} {:5} {message}",
                    timestamp(),
                    level.name().to_ascii_uppercase()
                );
                for (key, value) in fields {
                    let _ = write!(line, " {key}={value:?}");
                }
            }
        }
        self.write_line(&line);
        // Lifecycle events are rare and matter: they reach the output at once.
        self.flush();
    }

    pub fn request(&self, r: &RequestLog<'_>) {
        if !self.enabled(LogLevel::Info) {
            return;
        }
        let mut line = String::with_capacity(224);
        match self.format {
            LogFormat::Json => {
                let _ = write!(
                    line,
                    "{{\"ts\":\"{}\",\"level\":\"info\",\"msg\":\"request\",\"request_id\":{},\"method\":\"{}\",\"route\":\"{}\",\"path\":{},\"status\":{},\"latency_ms\":{:.3}}}",
                    timestamp(),
                    json(r.request_id),
                    r.method,
                    r.route,
                    json(r.path),
                    r.status,
                    r.latency_ms
                );
            }
            LogFormat::Pretty => {
                let _ = write!(
                    line,
                    "{} INFO  {} {} -> {} in {:.3} ms (route {}, request {})",
                    timestamp(),
                    r.method,
                    r.path.escape_debug(),
                    r.status,
                    r.latency_ms,
                    r.route,
                    r.request_id
                );
            }
        }
        self.write_line(&line);
    }

    fn write_line(&self, line: &str) {
        let mut out = self
            .shared
            .out
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let _ = out.write_all(line.as_bytes());
        let _ = out.write_all(b"\n");
    }

    pub fn flush(&self) {
        let _ = self
            .shared
            .out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush();
    }
}

impl Drop for Logger {
    /// Writes out every buffered line before the process goes on to exit.
    fn drop(&mut self) {
        *self
            .shared
            .closed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.shared.wake.notify_all();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
        self.flush();
    }
}

fn flush_loop(shared: &Shared) {
    let mut closed = shared.closed.lock().unwrap_or_else(PoisonError::into_inner);
    while !*closed {
        closed = shared
            .wake
            .wait_timeout(closed, FLUSH_EVERY)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        let _ = shared
            .out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush();
    }
}

fn json(s: &str) -> String {
    // The common case - printable ASCII without quotes or backslashes - needs no escaping.
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
        return out;
    }
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The current UTC time as RFC 3339 with milliseconds.
pub fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_millis())
}

pub fn rfc3339(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(
            rfc3339(1_795_305_600 + 3661, 999),
            "2026-11-22T01:01:01.999Z"
        );
    }

    #[test]
    fn json_lines_escape_hostile_values_and_are_flushed_on_drop() {
        let path = std::env::temp_dir().join(format!("calc-log-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let logger = Logger::to_writer(LogLevel::Info, LogFormat::Json, Box::new(file));
        logger.request(&RequestLog {
            request_id: "id\"\n",
            method: "GET",
            route: "unmatched",
            path: "/a\"b\n\u{1}",
            status: 404,
            latency_ms: 0.25,
        });
        logger.event(LogLevel::Debug, "hidden at info", &[]);
        drop(logger);
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(text.lines().count(), 1, "{text}");
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["path"], "/a\"b\n\u{1}");
        assert_eq!(line["request_id"], "id\"\n");
        assert_eq!(line["status"], 404);
    }
}
