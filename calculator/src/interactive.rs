//! `calculator interactive`: a `calc>` prompt with line editing and history
//! (rustyline) on a terminal; on a pipe, one result per line read, for
//! scripts. Errors are shown and the session goes on.

use std::io::{BufRead, IsTerminal};

use crate::backend::Backend;
use crate::number::human;
use crate::ops::Operation;
use crate::report::{self, Format};

pub const HELP: &str = "\
expressions   5 + 3   7 - 2   6 * 7   1 / 3   2 ^ 10
operations    add 5 3   subtract 5 3   multiply 2 4   divide 9 3   power 2 8
              sqrt 16   sin 0   cos 0   tan 0   log 10
operands      numbers, `ans` (the last result), `mr` (the memory)
memory        m+ [X]  add X (default: the last result)   ms [X]  store   mr  recall   mc  clear
also          history [N]   stats   help   quit
";

/// What a line asks for.
#[derive(Debug, PartialEq)]
pub enum Reply {
    Text(String),
    Quit,
}

/// One session: where state lives, how numbers are shown, the last result.
pub struct Session<'a> {
    backend: &'a Backend,
    precision: Option<u8>,
    last: Option<f64>,
}

impl<'a> Session<'a> {
    pub fn new(backend: &'a Backend, precision: Option<u8>) -> Session<'a> {
        Session {
            backend,
            precision,
            last: None,
        }
    }

    /// Evaluates one line: `None` for a blank one.
    pub fn eval(&mut self, line: &str) -> Result<Option<Reply>, String> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(None);
        }
        let lower = line.to_ascii_lowercase();
        let mut words = lower.split_whitespace();
        let first = words.next().unwrap_or("");
        let rest: Vec<&str> = words.collect();
        let text = match (first, rest.as_slice()) {
            ("quit" | "exit" | "q", []) => return Ok(Some(Reply::Quit)),
            ("help" | "?", []) => HELP.to_string(),
            ("history", []) => self.history(None)?,
            ("history", [n]) => {
                let n = n
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| format!("\"{n}\" is not a whole number from 1"))?;
                self.history(Some(n))?
            }
            ("stats", []) => report::stats(&self.backend.stats()?, Format::Table),
            ("mc", []) => {
                self.backend.memory_clear()?;
                "memory cleared\n".into()
            }
            ("mr", []) => {
                let value = self.backend.memory()?;
                self.last = Some(value);
                format!("{}\n", self.show(value))
            }
            ("m+" | "ms", args) => {
                let value = match args {
                    [] => self.last.ok_or(
                        "no result yet to put in memory: m+ X, or compute something first",
                    )?,
                    [x] => self.operand(x)?,
                    _ => return Err(format!("{first} takes one number at most")),
                };
                let now = if first == "m+" {
                    self.backend.memory_add(value)?
                } else {
                    self.backend.memory_store(value)?
                };
                format!("memory: {}\n", self.show(now))
            }
            _ => {
                let result = self.calculate(line)?;
                self.last = Some(result);
                format!("{}\n", self.show(result))
            }
        };
        Ok(Some(Reply::Text(text)))
    }

    fn show(&self, x: f64) -> String {
        human(x, self.precision)
    }

    fn history(&self, limit: Option<usize>) -> Result<String, String> {
        Ok(report::history(
            &self.backend.history(limit)?,
            Format::Table,
            self.precision,
        ))
    }

    fn operand(&self, token: &str) -> Result<f64, String> {
        match token {
            "ans" => self
                .last
                .ok_or_else(|| "no result yet for `ans`".to_string()),
            "mr" => self.backend.memory(),
            _ => token
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| format!("\"{token}\" is not a number")),
        }
    }

    fn calculate(&self, line: &str) -> Result<f64, String> {
        let tokens = tokens(&line.to_ascii_lowercase())?;
        let words: Vec<&str> = tokens.iter().map(String::as_str).collect();
        let (operation, operands) = match words.as_slice() {
            [x] => return self.operand(x),
            [a, sym, b] if symbol(sym).is_some() => {
                (symbol(sym).unwrap_or(Operation::Add), vec![*a, *b])
            }
            [name, args @ ..] if name.starts_with(|c: char| c.is_ascii_alphabetic()) => {
                if *name == "ans" || *name == "mr" {
                    return Err(format!("\"{line}\" is not an expression; try `help`"));
                }
                (
                    Operation::parse(name).map_err(|e| e.to_string())?,
                    args.to_vec(),
                )
            }
            _ => return Err(format!("\"{line}\" is not an expression; try `help`")),
        };
        let numbers = operands
            .iter()
            .map(|t| self.operand(t))
            .collect::<Result<Vec<f64>, String>>()?;
        self.backend.calculate(operation, &numbers)
    }
}

fn symbol(token: &str) -> Option<Operation> {
    match token {
        "+" => Some(Operation::Add),
        "-" => Some(Operation::Subtract),
        "*" | "x" => Some(Operation::Multiply),
        "/" => Some(Operation::Divide),
        "^" | "**" => Some(Operation::Power),
        _ => None,
    }
}

/// Words, numbers (a leading `-` after an operator or at the start is a
/// sign) and the operators `+ - * / ^`, with or without spaces.
pub fn tokens(line: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = line.chars().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // A sign, not subtraction: at the start, after an operator, or
        // after an operation's name (`sqrt -1`).
        let after_operator = out.last().is_none_or(|t| {
            symbol(t).is_some()
                || (t.starts_with(|c: char| c.is_ascii_alphabetic()) && t != "ans" && t != "mr")
        });
        let starts_number = c.is_ascii_digit()
            || c == '.'
            || (c == '-'
                && after_operator
                && chars
                    .get(i + 1)
                    .is_some_and(|n| n.is_ascii_digit() || *n == '.'));
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else if starts_number {
            let start = i;
            i += 1;
            while i < chars.len() {
                let d = chars[i];
                let exponent_sign = (d == '-' || d == '+') && matches!(chars[i - 1], 'e' | 'E');
                if d.is_ascii_digit() || d == '.' || d == 'e' || d == 'E' || exponent_sign {
                    i += 1;
                } else {
                    break;
                }
            }
            out.push(chars[start..i].iter().collect());
        } else if c == '*' && chars.get(i + 1) == Some(&'*') {
            out.push("**".into());
            i += 2;
        } else if "+-*/^".contains(c) {
            out.push(c.to_string());
            i += 1;
        } else {
            return Err(format!("unexpected \"{c}\"; try `help`"));
        }
    }
    Ok(out)
}

/// Runs the session on a terminal (prompt, editing, history) or on piped
/// input (no prompt; errors name the line). The exit code: 0, or 1 when a
/// piped line failed.
pub fn run(backend: &Backend, precision: Option<u8>) -> Result<i32, String> {
    let mut session = Session::new(backend, precision);
    if std::io::stdin().is_terminal() {
        terminal(&mut session)?;
        return Ok(0);
    }
    let mut failed = 0;
    for (index, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.map_err(|e| format!("cannot read standard input: {e}"))?;
        match session.eval(&line) {
            Ok(Some(Reply::Quit)) => break,
            Ok(Some(Reply::Text(text))) => print!("{text}"),
            Ok(None) => {}
            Err(e) => {
                failed += 1;
                eprintln!("line {}: error: {e}", index + 1);
            }
        }
    }
    Ok(i32::from(failed > 0))
}

fn terminal(session: &mut Session<'_>) -> Result<(), String> {
    use rustyline::error::ReadlineError;
    let mut editor = rustyline::DefaultEditor::new().map_err(|e| e.to_string())?;
    println!(
        "calculator {} - `help` lists what it understands, `quit` leaves",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        match editor.readline("calc> ") {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                match session.eval(&line) {
                    Ok(Some(Reply::Quit)) => return Ok(()),
                    Ok(Some(Reply::Text(text))) => print!("{text}"),
                    Ok(None) => {}
                    Err(e) => eprintln!("error: {e}"),
                }
            }
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn tokens_split_operators_from_numbers_and_keep_signs() {
        assert_eq!(tokens("5+3").unwrap(), ["5", "+", "3"]);
        assert_eq!(tokens("5 - -3").unwrap(), ["5", "-", "-3"]);
        assert_eq!(tokens("-2.5e-3*4").unwrap(), ["-2.5e-3", "*", "4"]);
        assert_eq!(tokens("2**8").unwrap(), ["2", "**", "8"]);
        assert_eq!(tokens("sqrt 16").unwrap(), ["sqrt", "16"]);
        assert_eq!(tokens("sqrt -1").unwrap(), ["sqrt", "-1"]);
        assert_eq!(tokens("ans - 1").unwrap(), ["ans", "-", "1"]);
        assert!(tokens("5 % 3").is_err());
    }

    #[test]
    fn a_session_computes_remembers_and_goes_on_after_errors() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::Local(Store::new(dir.path().join("state.json")));
        let mut s = Session::new(&backend, Some(4));
        let text = |r: Result<Option<Reply>, String>| match r {
            Ok(Some(Reply::Text(t))) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(text(s.eval("5 + 3")), "8\n");
        assert_eq!(text(s.eval("sqrt 16")), "4\n");
        assert_eq!(text(s.eval("m+")), "memory: 4\n");
        assert_eq!(text(s.eval("m+ 2")), "memory: 6\n");
        assert_eq!(text(s.eval("mr * 2")), "12\n");
        assert_eq!(text(s.eval("1 / 3")), "0.3333\n");
        assert!(s.eval("1 / 0").unwrap_err().contains("division by zero"));
        assert!(s.eval("frobnicate 2").is_err());
        assert_eq!(text(s.eval("ans * 3")), "1\n");
        assert_eq!(text(s.eval("mc")), "memory cleared\n");
        assert_eq!(text(s.eval("mr")), "0\n");
        assert!(text(s.eval("history 2")).contains("multiply"));
        assert!(text(s.eval("stats")).contains("errors"));
        assert_eq!(s.eval("  "), Ok(None));
        assert_eq!(s.eval("quit"), Ok(Some(Reply::Quit)));
    }
}
