//! This process's terminal during an attached session (`shipit exec`,
//! `shipit run`): raw while the session lasts and restored whatever
//! happens, its size, and the bytes copied both ways.

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::cancel::Cancel;
use crate::engine::{Attached, Engine};

/// Whether a session should get a terminal: asked for (`-i`) and both ends here are one.
pub fn wanted(interactive: bool) -> bool {
    interactive && std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// The terminal in raw mode (keys go to the session as they are typed,
/// Ctrl-C included); put back as it was when dropped.
pub struct Raw {
    saved: rustix::termios::Termios,
}

impl Raw {
    pub fn enable() -> Option<Raw> {
        use rustix::termios::{OptionalActions, tcgetattr, tcsetattr};
        let stdin = rustix::stdio::stdin();
        let saved = tcgetattr(stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(stdin, OptionalActions::Now, &raw).ok()?;
        Some(Raw { saved })
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let stdin = rustix::stdio::stdin();
        let _ =
            rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &self.saved);
    }
}

/// The terminal's size: (rows, columns).
pub fn size() -> Option<(u16, u16)> {
    let size = rustix::termios::tcgetwinsize(rustix::stdio::stdout()).ok()?;
    (size.ws_row > 0).then_some((size.ws_row, size.ws_col))
}

/// How an attached session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Its output ended: the process exited.
    Finished,
    /// SIGINT or SIGTERM reached shipit (its number).
    Signalled(i32),
    /// The connection to the engine failed.
    Lost(String),
}

/// Copies the session's output to this process's stdout and stderr, and,
/// with `input`, this process's stdin to the session (closing it at end of
/// file), until the output ends or a signal arrives. With `tty`, the
/// session's terminal follows this one's size.
pub async fn pump(
    engine: &Engine,
    container: &str,
    session: &mut Attached,
    input: bool,
    tty: bool,
    cancel: &Cancel,
) -> Ended {
    let mut keys = input.then(read_stdin);
    let mut resized = tty
        .then(|| tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok())
        .flatten();
    if tty && let Some((rows, columns)) = size() {
        engine.resize(session, container, rows, columns).await;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            chunk = session.output.next() => match chunk {
                None => return Ended::Finished,
                Some(Err(e)) => return Ended::Lost(e.to_string()),
                Some(Ok(chunk)) => write_out(chunk),
            },
            bytes = async { keys.as_mut()?.recv().await }, if keys.is_some() => match bytes {
                Some(bytes) => {
                    if session.input.write_all(&bytes).await.is_err() {
                        keys = None;
                    }
                    let _ = session.input.flush().await;
                }
                None => {
                    // End of file: the session's input ends too.
                    let _ = session.input.shutdown().await;
                    keys = None;
                }
            },
            _ = async { resized.as_mut()?.recv().await }, if resized.is_some() => {
                if let Some((rows, columns)) = size() {
                    engine.resize(session, container, rows, columns).await;
                }
            },
            _ = tick.tick() => if cancel.is_set() {
                return Ended::Signalled(cancel.signal());
            },
        }
    }
}

/// Writes one chunk where the session wrote it.
fn write_out(chunk: bollard::container::LogOutput) {
    use bollard::container::LogOutput;
    match chunk {
        LogOutput::StdErr { message } => {
            let mut err = std::io::stderr();
            let _ = err.write_all(&message);
            let _ = err.flush();
        }
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            let mut out = std::io::stdout();
            let _ = out.write_all(&message);
            let _ = out.flush();
        }
        LogOutput::StdIn { .. } => {}
    }
}

/// This process's stdin, read on a thread of its own (a read blocked on a
/// terminal must not hold the runtime when the session ends).
fn read_stdin() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buffer = [0u8; 4096];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buffer[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}
