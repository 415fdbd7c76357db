//! Structured logs: one line per event, formatted on the caller's thread and
//! written by a dedicated thread, so a slow stdout never stalls a request.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::settings::{LogFormat, LogLevel};

/// Lines waiting to be written; senders block beyond this (memory stays bounded).
const QUEUE: usize = 8192;

pub struct Logger {
    tx: Option<SyncSender<String>>,
    writer: Option<JoinHandle<()>>,
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
        let (tx, rx) = sync_channel(QUEUE);
        let writer = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_lines(rx, out))
            .ok();
        Logger {
            tx: Some(tx),
            writer,
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
        self.send(line);
    }

    pub fn request(&self, r: &RequestLog<'_>) {
        if !self.enabled(LogLevel::Info) {
            return;
        }
        let mut line = String::with_capacity(200);
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
        self.send(line);
    }

    fn send(&self, line: String) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(line);
        }
    }
}

impl Drop for Logger {
    /// Flushes every queued line before the process goes on to exit.
    fn drop(&mut self) {
        self.tx.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn write_lines(rx: Receiver<String>, out: Box<dyn std::io::Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    while let Ok(line) = rx.recv() {
        let _ = writeln!(out, "{line}");
        while let Ok(more) = rx.try_recv() {
            let _ = writeln!(out, "{more}");
        }
        let _ = out.flush();
    }
    let _ = out.flush();
}

fn json(s: &str) -> String {
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
