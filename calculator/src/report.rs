//! Output of `memory`, `history` and `stats` in every format: a table for
//! people (numbers to `--precision`), JSON and CSV in full precision.

use std::fmt::Write as _;

use serde_json::json;

use crate::backend::Stats;
use crate::batch::table;
use crate::json_number;
use crate::number::human;
use crate::store::Entry;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

impl Format {
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "table" => Some(Format::Table),
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

fn full(x: f64) -> String {
    human(x, None)
}

/// The memory register after `action` (`recall`, `store`, `add`, `clear`).
pub fn memory(value: f64, action: &str, format: Format, precision: Option<u8>) -> String {
    match format {
        Format::Json => {
            let mut out = json!({ "value": json_number(value) });
            match action {
                "store" | "add" => out["stored"] = json!(true),
                "clear" => out["cleared"] = json!(true),
                _ => {}
            }
            format!("{out}\n")
        }
        Format::Csv => format!("memory\n{}\n", full(value)),
        Format::Table => table(&["MEMORY"], &[[human(value, precision)]]),
    }
}

pub fn history(entries: &[Entry], format: Format, precision: Option<u8>) -> String {
    match format {
        Format::Json => {
            let items: Vec<_> = entries
                .iter()
                .map(|e| {
                    json!({
                        "id": e.id,
                        "operation": e.operation,
                        "operands": e.operands.iter().map(|x| json_number(*x)).collect::<Vec<_>>(),
                        "result": json_number(e.result),
                        "timestamp": e.timestamp,
                    })
                })
                .collect();
            format!("{}\n", json!({ "count": items.len(), "history": items }))
        }
        Format::Csv => {
            let mut out = String::from("id,operation,operands,result,timestamp\n");
            for e in entries {
                let operands: Vec<String> = e.operands.iter().map(|x| full(*x)).collect();
                let _ = writeln!(
                    out,
                    "{},{},{},{},{}",
                    e.id,
                    e.operation,
                    operands.join(" "),
                    full(e.result),
                    e.timestamp
                );
            }
            out
        }
        Format::Table => {
            let rows: Vec<[String; 5]> = entries
                .iter()
                .map(|e| {
                    let operands: Vec<String> =
                        e.operands.iter().map(|x| human(*x, precision)).collect();
                    [
                        e.id.to_string(),
                        e.operation.clone(),
                        operands.join(" "),
                        human(e.result, precision),
                        e.timestamp.clone(),
                    ]
                })
                .collect();
            table(&["ID", "OPERATION", "OPERANDS", "RESULT", "TIME"], &rows)
        }
    }
}

pub fn stats(stats: &Stats, format: Format) -> String {
    let mut rows: Vec<[String; 2]> = vec![
        ["calculations".into(), stats.calculations.to_string()],
        ["errors".into(), stats.errors.to_string()],
    ];
    rows.extend(
        stats
            .by_operation
            .iter()
            .map(|(op, n)| [op.clone(), n.to_string()]),
    );
    match format {
        Format::Json => {
            let by: serde_json::Map<String, serde_json::Value> = stats
                .by_operation
                .iter()
                .map(|(op, n)| (op.clone(), json!(n)))
                .collect();
            format!(
                "{}\n",
                json!({
                    "calculations": stats.calculations,
                    "errors": stats.errors,
                    "by_operation": by,
                })
            )
        }
        Format::Csv => {
            let mut out = String::from("name,count\n");
            for [name, n] in &rows {
                let _ = writeln!(out, "{name},{n}");
            }
            out
        }
        Format::Table => table(&["NAME", "COUNT"], &rows),
    }
}
