//! The command line: clap types only.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "calculator",
    version,
    about = "A calculator: HTTP service and command line"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: Global,
}

/// What every command line command takes (a config file may set them too).
#[derive(Debug, clap::Args)]
pub struct Global {
    /// TOML defaults: precision, format, state_file, url, log_level
    /// (default: $XDG_CONFIG_HOME/calculator/config.toml when it exists)
    #[arg(long, global = true, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Significant digits in human output, 2-15 (JSON and CSV keep full precision)
    #[arg(long, global = true, value_name = "N",
          value_parser = clap::value_parser!(u8).range(2..=15))]
    pub precision: Option<u8>,
    /// error, warn, info, debug, trace (default: info for `serve`, warn otherwise)
    #[arg(long, global = true, env = "LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Only errors on standard error (as --log-level error)
    #[arg(short, long, global = true, conflicts_with_all = ["verbose", "log_level"])]
    pub quiet: bool,
    /// More on standard error: -v info, -vv debug (as --log-level)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "log_level")]
    pub verbose: u8,
    /// The state file of memory, history and stats (default: $XDG_STATE_HOME/calculator/state.json)
    #[arg(long, global = true, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Use a running calculator server's memory, history and stats instead of the state file
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (configured by environment variables; flags override)
    Serve(ServeArgs),
    /// Exit 0 only when the service answers /health healthy (for image HEALTHCHECKs)
    Healthcheck {
        /// Defaults to http://127.0.0.1:$PORT/health
        #[arg(long)]
        url: Option<String>,
        #[arg(long, env = "PORT", default_value_t = 8080, hide_env = true)]
        port: u16,
        /// Seconds to wait for an answer
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
    /// Compute one operation: calculator calc add 5 3
    #[command(allow_negative_numbers = true)]
    Calc {
        /// add, subtract, multiply, divide, power, sqrt, sin, cos, tan, log
        operation: String,
        /// One or two operands
        #[arg(num_args = 1..=2, required = true)]
        operands: Vec<String>,
        #[arg(long, value_enum, default_value_t = CalcFormat::Number)]
        format: CalcFormat,
    },
    /// The memory register: store, add (M+), recall, clear
    Memory {
        #[command(subcommand)]
        action: MemoryAction,
        #[arg(long, value_enum, global = true)]
        format: Option<ReportFormat>,
    },
    /// The latest calculations, newest first
    History {
        /// How many (default: all that are kept)
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
        #[arg(long, value_enum)]
        format: Option<ReportFormat>,
    },
    /// How many calculations and errors, by operation
    Stats {
        #[arg(long, value_enum)]
        format: Option<ReportFormat>,
    },
    /// A `calc>` prompt (`help`, `quit`); reads lines from a pipe for scripts
    Interactive,
    /// Compute every line of a file (`add 5 3`; `#` comments and blank lines skipped)
    Batch {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = BatchFormat::Table)]
        format: BatchFormat,
        /// Write the results here (atomically) instead of standard output
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: String,
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormatArg::Json)]
    pub log_format: LogFormatArg,
    /// Calculations kept for /history (at most 10000)
    #[arg(long, env = "HISTORY_LIMIT", default_value_t = 100)]
    pub history_limit: usize,
    /// Seconds in-flight requests may take to finish after SIGTERM
    #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", default_value_t = 10)]
    pub shutdown_grace_seconds: u64,
    /// Seconds to keep serving (readiness 503) after SIGTERM before closing the listener
    #[arg(long, env = "SHUTDOWN_DELAY_SECONDS", default_value_t = 0)]
    pub shutdown_delay_seconds: u64,
    #[arg(long, env = "ENVIRONMENT", default_value = "development")]
    pub environment: String,
    /// Threads serving requests (default: one per available core)
    #[arg(long, env = "WORKERS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,
}

#[derive(Debug, Subcommand)]
pub enum MemoryAction {
    /// Set the memory to X
    #[command(allow_negative_numbers = true)]
    Store { value: f64 },
    /// Add X to the memory (M+), at once: two processes lose no update
    #[command(allow_negative_numbers = true)]
    Add { value: f64 },
    /// Print the memory
    Recall,
    /// Set the memory to 0
    Clear,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CalcFormat {
    Number,
    Json,
    Table,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BatchFormat {
    Json,
    Csv,
    Table,
}
