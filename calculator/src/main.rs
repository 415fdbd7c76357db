//! The `calculator` binary: parse arguments, run, map the result to an exit code.

mod cli;
mod commands;

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use calculator::batch::{self, BatchFormat};
use calculator::ops::Operation;
use calculator::settings::{LogFormat, LogLevel, MAX_HISTORY, Settings};
use cli::{Cli, Command};

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    let global = cli.global;
    match cli.command {
        Command::Serve(args) => {
            let level = global.log_level.as_deref().unwrap_or("info");
            let log_level = LogLevel::parse(level).ok_or_else(|| {
                format!("LOG_LEVEL \"{level}\" is not one of error, warn, info, debug, trace")
            })?;
            if args.history_limit == 0 || args.history_limit > MAX_HISTORY {
                return Err(format!("HISTORY_LIMIT must be from 1 to {MAX_HISTORY}"));
            }
            let settings = Settings {
                host: args.host,
                port: args.port,
                log_level,
                log_format: match args.log_format {
                    cli::LogFormatArg::Json => LogFormat::Json,
                    cli::LogFormatArg::Pretty => LogFormat::Pretty,
                },
                history_limit: args.history_limit,
                shutdown_grace: Duration::from_secs(args.shutdown_grace_seconds),
                shutdown_delay: Duration::from_secs(
                    args.shutdown_delay_seconds.min(args.shutdown_grace_seconds),
                ),
                environment: args.environment,
                workers: args.workers.map(usize::from),
            };
            calculator::server::run(settings).map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Healthcheck { url, port, timeout } => {
            let url = url.unwrap_or_else(|| format!("http://127.0.0.1:{port}/health"));
            match calculator::client::healthcheck(&url, Duration::from_secs(timeout)) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(why) => {
                    eprintln!("unhealthy: {why}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Calc {
            operation,
            operands,
            format,
        } => {
            let op =
                Operation::parse(&operation.to_ascii_lowercase()).map_err(|e| e.to_string())?;
            let numbers = operands
                .iter()
                .map(|s| {
                    s.parse::<f64>()
                        .map_err(|_| format!("\"{s}\" is not a number"))
                })
                .collect::<Result<Vec<f64>, String>>()?;
            let options = commands::Options::load(&global)?;
            let result = commands::calculate(&options, op, &numbers)?;
            let format = match format {
                cli::CalcFormat::Number => "number",
                cli::CalcFormat::Json => "json",
                cli::CalcFormat::Table => "table",
            };
            print!(
                "{}",
                batch::format_single(op, &numbers, result, format, options.precision)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Memory { action, format } => {
            commands::memory(&commands::Options::load(&global)?, &action, format)
        }
        Command::History { limit, format } => {
            commands::history(&commands::Options::load(&global)?, limit, format)
        }
        Command::Stats { format } => commands::stats(&commands::Options::load(&global)?, format),
        Command::Interactive => commands::interactive(&commands::Options::load(&global)?),
        Command::Batch {
            file,
            format,
            output,
        } => run_batch(&file, format, output.as_deref()),
    }
}

fn run_batch(
    file: &std::path::Path,
    format: cli::BatchFormat,
    output: Option<&std::path::Path>,
) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let progress = indicatif::ProgressBar::new(lines.len() as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} lines {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut outcomes = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if let Some(outcome) = batch::evaluate_line(index + 1, line) {
            if let Some(error) = &outcome.error {
                progress.suspend(|| eprintln!("{}:{}: {error}", file.display(), outcome.line));
            }
            outcomes.push(outcome);
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    let format = match format {
        cli::BatchFormat::Json => BatchFormat::Json,
        cli::BatchFormat::Csv => BatchFormat::Csv,
        cli::BatchFormat::Table => BatchFormat::Table,
    };
    let rendered = batch::format(&outcomes, format);
    match output {
        Some(path) => write_atomic(path, rendered.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => {
            let _ = std::io::stdout().write_all(rendered.as_bytes());
        }
    }
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    eprintln!(
        "{} line(s) computed, {failed} failed",
        outcomes.len() - failed
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
