//! The one way shipit runs another program - kubectl, git, cargo, ldd, the
//! interpreters and HAProxy it packages: argv (never a shell), output
//! captured, an optional deadline after which the program is killed, and
//! failures that name the program and its last words on stderr. Nothing
//! else in shipit starts a process (the ssh transport to a Docker engine is
//! a stream, not a command: `engine::endpoint`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A program that could not be run, or that failed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The command line, for people (`kubectl get deployment/x -o json`).
    pub command: String,
    pub message: String,
    /// The program is not installed (or not on PATH).
    pub not_found: bool,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.command, self.message)
    }
}

/// What a program that ran printed, and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Its stderr, trimmed; or how it exited, when it said nothing.
    pub fn why(&self) -> String {
        let stderr = self.stderr.trim();
        if stderr.is_empty() {
            format!("exited with {}", self.status)
        } else {
            stderr.to_string()
        }
    }
}

/// One program to run.
#[derive(Debug, Clone)]
pub struct Program {
    program: String,
    args: Vec<String>,
    dir: Option<PathBuf>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    timeout: Option<Duration>,
    merge_stderr: bool,
}

impl Program {
    pub fn new<I, S>(program: &str, args: I) -> Program
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Program {
            program: program.to_string(),
            args: args.into_iter().map(|a| a.as_ref().to_string()).collect(),
            dir: None,
            env: Vec::new(),
            stdin: None,
            timeout: None,
            merge_stderr: false,
        }
    }

    pub fn dir(mut self, dir: &Path) -> Program {
        self.dir = Some(dir.to_path_buf());
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Program {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// Bytes on its standard input (else it reads nothing).
    pub fn stdin(mut self, bytes: &[u8]) -> Program {
        self.stdin = Some(bytes.to_vec());
        self
    }

    /// Killed, and a failure, when it runs longer.
    pub fn timeout(mut self, limit: Duration) -> Program {
        self.timeout = Some(limit);
        self
    }

    /// Its stderr goes where its stdout goes (one captured text).
    pub fn merge_stderr(mut self) -> Program {
        self.merge_stderr = true;
        self
    }

    /// The command line, for messages.
    pub fn command(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn failure(&self, message: impl Into<String>) -> Failure {
        Failure {
            command: self.command(),
            message: message.into(),
            not_found: false,
        }
    }

    fn start_failure(&self, e: &std::io::Error) -> Failure {
        let not_found = e.kind() == std::io::ErrorKind::NotFound;
        Failure {
            command: self.command(),
            message: if not_found {
                format!("{} is not installed (or not on PATH)", self.program)
            } else {
                format!("cannot run {}: {e}", self.program)
            },
            not_found,
        }
    }

    fn expression(&self) -> duct::Expression {
        let mut e = duct::cmd(&self.program, &self.args).unchecked();
        if let Some(d) = &self.dir {
            e = e.dir(d);
        }
        for (k, v) in &self.env {
            e = e.env(k, v);
        }
        e = match &self.stdin {
            Some(bytes) => e.stdin_bytes(bytes.clone()),
            None => e.stdin_null(),
        };
        e
    }

    /// Runs it to the end, whatever its exit status; a failure only when it
    /// could not start or ran past its deadline.
    pub fn output(self) -> Result<Output, Failure> {
        let mut e = self.expression();
        e = if self.merge_stderr {
            e.stderr_to_stdout().stdout_capture()
        } else {
            e.stdout_capture().stderr_capture()
        };
        let handle = e.start().map_err(|err| self.start_failure(&err))?;
        let output = match self.timeout {
            None => handle.wait().map_err(|err| self.failure(err.to_string()))?,
            Some(limit) => match handle
                .wait_timeout(limit)
                .map_err(|err| self.failure(err.to_string()))?
            {
                Some(o) => o,
                None => {
                    let _ = handle.kill();
                    return Err(
                        self.failure(format!("no answer within {} s: stopped", limit.as_secs()))
                    );
                }
            },
        };
        Ok(Output {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Its stdout, when it succeeds; else a failure with its stderr.
    pub fn read(self) -> Result<String, Failure> {
        let command = self.command();
        let output = self.output()?;
        if output.success() {
            Ok(output.stdout)
        } else {
            Err(Failure {
                command,
                message: last_lines(&output.why(), 1),
                not_found: false,
            })
        }
    }

    /// Runs it with its output on shipit's stderr (a long build people watch).
    pub fn run_to_stderr(self) -> Result<(), Failure> {
        let status = self
            .expression()
            .stdout_to_stderr()
            .run()
            .map_err(|err| self.start_failure(&err))?
            .status;
        if status.success() {
            Ok(())
        } else {
            Err(self.failure(format!("exited with {status}")))
        }
    }

    /// Starts it and reads its stdout as it comes (stderr dropped, or read
    /// with it after `merge_stderr`); killed when the reader is dropped.
    pub fn reader(self) -> Result<Reader, Failure> {
        let e = self.expression();
        let e = if self.merge_stderr {
            e.stderr_to_stdout()
        } else {
            e.stderr_null()
        };
        e.reader()
            .map(Reader)
            .map_err(|err| self.start_failure(&err))
    }
}

/// The stdout of a running program; the program is killed on drop.
pub struct Reader(duct::ReaderHandle);

impl Read for &Reader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        (&self.0).read(buf)
    }
}

impl Reader {
    /// Stops the program (a thread blocked reading then sees the end).
    pub fn kill(&self) {
        let _ = self.0.kill();
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `n` lines of a text.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_captures_and_a_failure_names_the_program_and_its_last_stderr_line() {
        let ok = Program::new("sh", ["-c", "echo out; echo err >&2"])
            .output()
            .unwrap();
        assert!(ok.success());
        assert_eq!((ok.stdout.as_str(), ok.stderr.as_str()), ("out\n", "err\n"));
        let failed = Program::new("sh", ["-c", "echo first >&2; echo last >&2; exit 3"])
            .read()
            .unwrap_err();
        assert_eq!(failed.message, "last");
        assert!(failed.to_string().starts_with("`sh -c "), "{failed}");
        let missing = Program::new("no-such-program-here", ["x"])
            .read()
            .unwrap_err();
        assert!(missing.not_found, "{missing}");
        assert!(missing.message.contains("not installed"), "{missing}");
    }

    #[test]
    fn stdin_merge_and_directory() {
        let echoed = Program::new("cat", Vec::<String>::new())
            .stdin(b"bytes")
            .read()
            .unwrap();
        assert_eq!(echoed, "bytes");
        let merged = Program::new("sh", ["-c", "echo a; echo b >&2"])
            .merge_stderr()
            .read()
            .unwrap();
        assert_eq!(merged, "a\nb\n");
        let dir = Program::new("pwd", Vec::<String>::new())
            .dir(Path::new("/"))
            .read()
            .unwrap();
        assert_eq!(dir.trim(), "/");
    }

    #[test]
    fn a_program_past_its_deadline_is_stopped() {
        let started = std::time::Instant::now();
        let late = Program::new("sleep", ["30"])
            .timeout(Duration::from_millis(300))
            .output()
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(late.message.contains("no answer within"), "{late}");
    }
}
