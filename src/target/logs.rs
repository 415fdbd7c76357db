//! `shipit logs`, the part every target shares: a log line with its time,
//! host, replica and stream; the filters (`--since`, `--until`, `--grep`);
//! lines merged in time order; and how they are printed (`host replica |
//! text`, or one JSON object a line).

use std::io::Write;

use serde::Serialize;

use crate::output::Output;

/// What `shipit logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct LogsRequest {
    /// Epoch seconds: lines from then on (`--since 10m` or a time).
    pub since: Option<i64>,
    /// Epoch seconds: lines before then (`--until`).
    pub until: Option<i64>,
    /// The last lines of each replica (`--lines N`).
    pub lines: Option<usize>,
    /// Only lines this matches (`--grep`).
    pub grep: Option<regex_lite::Regex>,
    /// Only this host of deploy.hosts.
    pub host: Option<String>,
    /// Keep printing as lines come, picking up new replicas, until Ctrl-C.
    pub follow: bool,
    /// The gateway's log too.
    pub gateway: bool,
    /// Only this role's replicas (`web`: the service's).
    pub role: Option<String>,
}

/// One line a replica (or the gateway) wrote.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Line {
    /// RFC 3339 with the fraction the source gave.
    pub time: String,
    #[serde(skip)]
    pub at: Stamp,
    pub host: String,
    pub replica: String,
    /// `stdout` or `stderr` (Kubernetes keeps them together: `output`).
    pub stream: &'static str,
    pub text: String,
}

/// A time to order lines by: epoch seconds and nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp {
    pub secs: i64,
    pub nanos: u32,
}

/// Splits `2026-12-03T17:10:00.123456789Z text`, as the Docker engine and
/// `kubectl logs --timestamps` write lines, into its time and text.
pub fn split_stamped(raw: &str) -> Option<(String, Stamp, &str)> {
    let (time, text) = raw.split_once(' ').unwrap_or((raw, ""));
    let secs = crate::clock::parse_rfc3339(time)?;
    let fraction = time
        .get(19..)
        .and_then(|rest| rest.strip_prefix('.'))
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .unwrap_or_default();
    let nanos = format!("{fraction:0<9}")[..9].parse().unwrap_or(0);
    Some((time.to_string(), Stamp { secs, nanos }, text))
}

/// Splits a chunk of stamped text into lines: complete ones are returned,
/// a partial last line is kept in `pending` for the next chunk.
pub fn complete_lines(pending: &mut String, chunk: &str) -> Vec<String> {
    pending.push_str(chunk);
    let mut lines = Vec::new();
    while let Some(end) = pending.find('\n') {
        let line: String = pending.drain(..=end).collect();
        lines.push(line.trim_end_matches(['\n', '\r']).to_string());
    }
    lines
}

/// A line from `raw` (stamped text), when it passes the request's filters.
pub fn line(
    request: &LogsRequest,
    raw: &str,
    host: &str,
    replica: &str,
    stream: &'static str,
) -> Option<Line> {
    let (time, at, text) = split_stamped(raw)?;
    let line = Line {
        time,
        at,
        host: host.to_string(),
        replica: replica.to_string(),
        stream,
        text: text.to_string(),
    };
    keep(request, &line).then_some(line)
}

/// Whether a line passes `--since`, `--until` and `--grep`.
pub fn keep(request: &LogsRequest, line: &Line) -> bool {
    request.since.is_none_or(|s| line.at.secs >= s)
        && request.until.is_none_or(|u| line.at.secs < u)
        && request.grep.as_ref().is_none_or(|g| g.is_match(&line.text))
}

/// Lines of every replica in time order (lines of one time keep their order).
pub fn merge(mut lines: Vec<Line>) -> Vec<Line> {
    lines.sort_by_key(|l| l.at);
    lines
}

/// Prints one line: `host replica | text` for people, an object for JSON.
pub fn print(out: &Output, line: &Line) {
    let text = if out.is_json() {
        serde_json::to_string(line).unwrap_or_default()
    } else {
        format!("{} {} | {}", line.host, line.replica, line.text)
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
    let _ = stdout.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_lines_split_into_time_and_text_with_nanoseconds() {
        let (time, at, text) = split_stamped("2026-12-03T17:10:00.1234Z hello world").unwrap();
        assert_eq!(time, "2026-12-03T17:10:00.1234Z");
        assert_eq!(at.nanos, 123_400_000);
        assert_eq!(text, "hello world");
        let (_, whole, text) = split_stamped("2026-12-03T17:10:00Z").unwrap();
        assert_eq!((whole.nanos, text), (0, ""));
        assert!(whole < at);
        assert!(split_stamped("not a time").is_none());
    }

    #[test]
    fn partial_lines_wait_for_their_end() {
        let mut pending = String::new();
        assert_eq!(complete_lines(&mut pending, "a\nb"), ["a"]);
        assert_eq!(complete_lines(&mut pending, "c\r\nd\n"), ["bc", "d"]);
        assert!(pending.is_empty());
    }

    #[test]
    fn filters_and_merge_order_lines_by_time() {
        let request = LogsRequest {
            since: Some(crate::clock::parse_rfc3339("2026-12-03T17:10:01Z").unwrap()),
            grep: Some(regex_lite::Regex::new("^GET").unwrap()),
            ..Default::default()
        };
        let raw = [
            ("2026-12-03T17:10:02.5Z GET /b", "r2"),
            ("2026-12-03T17:10:00.9Z GET /early", "r1"),
            ("2026-12-03T17:10:02.25Z GET /a", "r1"),
            ("2026-12-03T17:10:03Z POST /c", "r1"),
        ];
        let lines: Vec<Line> = raw
            .iter()
            .filter_map(|(text, replica)| line(&request, text, "h", replica, "stdout"))
            .collect();
        let merged: Vec<String> = merge(lines).into_iter().map(|l| l.text).collect();
        assert_eq!(merged, ["GET /a", "GET /b"]);
    }
}
