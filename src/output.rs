//! All human and machine output: status to stderr, data to stdout.

use std::io::{IsTerminal, Write as _};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone)]
pub struct Output {
    pub format: Format,
    color: bool,
    /// -1 quiet, 0 normal, 1+ verbose.
    verbosity: i8,
    /// `[host] ` before each line, when work runs on several hosts at once.
    prefix: String,
}

impl Output {
    /// `NO_COLOR` (any non-empty value) turns colour off unless `--color always`.
    pub fn new(format: Format, color: Color, verbosity: i8) -> Output {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => !no_color && std::io::stderr().is_terminal(),
        };
        Output {
            format,
            color,
            verbosity,
            prefix: String::new(),
        }
    }

    /// The same output with every status, detail and warning line marked as
    /// about `host` (and no spinners: several hosts work at once).
    pub fn for_host(&self, host: &str) -> Output {
        Output {
            prefix: format!("[{host}] "),
            ..self.clone()
        }
    }

    pub fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// A progress or result line for people (stderr; hidden by -q).
    pub fn status(&self, verb: &str, message: &str) {
        if self.verbosity >= 0 {
            let verb = self.paint("1;32", &format!("{verb:>10}"));
            let _ = writeln!(std::io::stderr(), "{verb} {}{message}", self.prefix);
        }
    }

    /// Detail shown with -v.
    pub fn detail(&self, message: &str) {
        if self.verbosity > 0 {
            let _ = writeln!(
                std::io::stderr(),
                "{}",
                self.paint("2", &format!("{}{message}", self.prefix))
            );
        }
    }

    /// A warning (stderr; shown even with -q).
    pub fn warn(&self, message: &str) {
        let _ = writeln!(
            std::io::stderr(),
            "{} {}{message}",
            self.paint("1;33", "warning:"),
            self.prefix
        );
    }

    /// An error report (stderr).
    pub fn error(&self, message: &str) {
        let mut out = String::new();
        for line in message.lines() {
            let painted = match line.strip_prefix("error:") {
                Some(rest) => format!("{}{rest}", self.paint("1;31", "error:")),
                None if line.trim_start().starts_with("= help:") => self.paint("36", line),
                None => line.to_string(),
            };
            out.push_str(&painted);
            out.push('\n');
        }
        if !message.starts_with("error:") {
            out = format!("{} {out}", self.paint("1;31", "error:"));
        }
        let _ = write!(std::io::stderr(), "{out}");
    }

    /// A spinner with `message` while long work runs, on a terminal only
    /// (not with JSON output or -q); `finish_and_clear` it when done.
    pub fn spinner(&self, message: &str) -> Option<indicatif::ProgressBar> {
        if self.format != Format::Human
            || self.verbosity < 0
            || !self.prefix.is_empty()
            || !std::io::stderr().is_terminal()
        {
            return None;
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(message.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Some(bar)
    }

    /// Data for the caller (stdout).
    pub fn data(&self, text: &str) {
        let _ = write!(std::io::stdout(), "{text}");
    }

    /// A JSON document on stdout.
    pub fn json<T: Serialize>(&self, value: &T) {
        let text = serde_json::to_string_pretty(value)
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        let _ = writeln!(std::io::stdout(), "{text}");
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}
