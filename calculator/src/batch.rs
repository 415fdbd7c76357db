//! `calculator calc` and `calculator batch`: parsing lines and formatting results.

use std::fmt::Write as _;

use serde::Serialize;

use crate::ops::{self, Operation};

/// One evaluated line of a batch file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub line: usize,
    pub input: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<&'static str>,
    pub operands: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Evaluates `add 5 3`-style text. `None` for blank lines and `#` comments.
pub fn evaluate_line(line_number: usize, text: &str) -> Option<Outcome> {
    let content = text.split('#').next().unwrap_or("").trim();
    if content.is_empty() {
        return None;
    }
    let mut words = content.split_whitespace();
    let name = words.next().unwrap_or("");
    let mut outcome = Outcome {
        line: line_number,
        input: content.to_string(),
        operation: None,
        operands: Vec::new(),
        result: None,
        error: None,
    };
    let operation = match Operation::parse(&name.to_ascii_lowercase()) {
        Ok(op) => op,
        Err(e) => {
            outcome.error = Some(e.to_string());
            return Some(outcome);
        }
    };
    outcome.operation = Some(operation.name());
    for word in words {
        match word.parse::<f64>() {
            Ok(x) => outcome.operands.push(x),
            Err(_) => {
                outcome.error = Some(format!(
                    "\"{}\" is not a number",
                    word.chars().take(40).collect::<String>()
                ));
                return Some(outcome);
            }
        }
    }
    match ops::compute(operation, &outcome.operands) {
        Ok(result) => outcome.result = Some(result),
        Err(e) => outcome.error = Some(e.to_string()),
    }
    Some(outcome)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFormat {
    Json,
    Csv,
    Table,
}

fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Formats every outcome (failed lines included, with their error).
pub fn format(outcomes: &[Outcome], format: BatchFormat) -> String {
    match format {
        BatchFormat::Json => {
            let mut out = serde_json::to_string_pretty(outcomes).unwrap_or_else(|_| "[]".into());
            out.push('\n');
            out
        }
        BatchFormat::Csv => {
            let mut out = String::from("line,operation,operands,result,error\n");
            for o in outcomes {
                let operands: Vec<String> = o.operands.iter().map(|x| num(*x)).collect();
                let _ = writeln!(
                    out,
                    "{},{},{},{},{}",
                    o.line,
                    o.operation.unwrap_or(""),
                    csv_field(&operands.join(" ")),
                    o.result.map(num).unwrap_or_default(),
                    csv_field(o.error.as_deref().unwrap_or(""))
                );
            }
            out
        }
        BatchFormat::Table => {
            let rows: Vec<[String; 4]> = outcomes
                .iter()
                .map(|o| {
                    [
                        o.line.to_string(),
                        o.input.clone(),
                        o.result.map(num).unwrap_or_default(),
                        o.error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            table(&["LINE", "INPUT", "RESULT", "ERROR"], &rows)
        }
    }
}

/// A left-aligned text table.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == N {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ");
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// `calculator calc` output in each format.
pub fn format_single(
    operation: Operation,
    operands: &[f64],
    result: f64,
    format: &str,
    precision: Option<u8>,
) -> String {
    match format {
        "json" => {
            let value = serde_json::json!({
                "operation": operation.name(),
                "operands": operands.iter().map(|x| crate::json_number(*x)).collect::<Vec<_>>(),
                "result": crate::json_number(result),
            });
            format!("{value}\n")
        }
        "table" => {
            let operands: Vec<String> = operands
                .iter()
                .map(|x| crate::number::human(*x, precision))
                .collect();
            table(
                &["OPERATION", "OPERANDS", "RESULT"],
                &[[
                    operation.name().to_string(),
                    operands.join(" "),
                    crate::number::human(result, precision),
                ]],
            )
        }
        _ => format!("{}\n", crate::number::human(result, precision)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_skip_comments_and_report_errors() {
        assert_eq!(evaluate_line(1, "  # a comment"), None);
        assert_eq!(evaluate_line(2, "   "), None);
        let ok = evaluate_line(3, "add 5 3  # trailing comment").unwrap();
        assert_eq!(
            (ok.operation, ok.result, ok.error),
            (Some("add"), Some(8.0), None)
        );
        assert_eq!(evaluate_line(4, "SQRT 16").unwrap().result, Some(4.0));
        assert_eq!(
            evaluate_line(5, "divide 1 0").unwrap().error.as_deref(),
            Some("division by zero")
        );
        assert_eq!(
            evaluate_line(6, "add 1 x").unwrap().error.as_deref(),
            Some("\"x\" is not a number")
        );
        assert!(
            evaluate_line(7, "modulo 1 2")
                .unwrap()
                .error
                .unwrap()
                .starts_with("unknown operation \"modulo\"")
        );
        assert_eq!(
            evaluate_line(8, "add 1").unwrap().error.as_deref(),
            Some("add takes 2 operands, got 1")
        );
        assert_eq!(
            evaluate_line(9, "add nan 1").unwrap().error.as_deref(),
            Some("operand 1 is not a finite number")
        );
    }

    #[test]
    fn formats() {
        let outcomes = vec![
            evaluate_line(1, "add 5 3").unwrap(),
            evaluate_line(2, "divide 1 0").unwrap(),
        ];
        assert_eq!(
            format(&outcomes, BatchFormat::Csv),
            "line,operation,operands,result,error\n1,add,5 3,8,\n2,divide,1 0,,division by zero\n"
        );
        assert_eq!(
            format(&outcomes, BatchFormat::Table),
            "LINE  INPUT       RESULT  ERROR\n1     add 5 3     8\n2     divide 1 0          division by zero\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&format(&outcomes, BatchFormat::Json)).unwrap();
        assert_eq!(json[0]["result"], 8.0);
        assert_eq!(json[1]["error"], "division by zero");
        assert!(json[1].get("result").is_none());
    }
}
