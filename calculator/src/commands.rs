//! The command line's own commands: `memory`, `history`, `stats`,
//! `interactive`, and where `calc` records. Global options merged with the
//! config file (flags win), then one backend: the state file or a server.

use std::process::ExitCode;

use calculator::backend::Backend;
use calculator::config_file::{self, ConfigFile};
use calculator::report::{self, Format};
use calculator::settings::LogLevel;
use calculator::store::{self, Store};

use crate::cli::{Global, MemoryAction, ReportFormat};

/// The global options and the config file, merged.
pub struct Options {
    pub precision: Option<u8>,
    pub format: Option<Format>,
    pub log_level: LogLevel,
    /// The state file or server; an error only for the commands that need one.
    backend: Result<Backend, String>,
}

impl Options {
    pub fn load(global: &Global) -> Result<Options, String> {
        let file = match global
            .config_file
            .clone()
            .or_else(config_file::default_path)
        {
            Some(path) => ConfigFile::load(&path)?,
            None => ConfigFile::default(),
        };
        let level = match (global.quiet, global.verbose) {
            (true, _) => "error".to_string(),
            (_, 1) => "info".to_string(),
            (_, 2..) => "debug".to_string(),
            _ => global
                .log_level
                .clone()
                .or(file.log_level)
                .unwrap_or_else(|| "warn".into()),
        };
        let log_level = LogLevel::parse(&level).ok_or_else(|| {
            format!("--log-level \"{level}\" is not one of error, warn, info, debug, trace")
        })?;
        let backend = match global.url.clone().or(file.url) {
            Some(url) => Backend::remote(&url),
            None => global
                .state
                .clone()
                .or(file.state_file)
                .or_else(store::default_path)
                .map(|path| Backend::Local(Store::new(path)))
                .ok_or_else(|| {
                    "no state file: set --state FILE, or HOME or XDG_STATE_HOME".to_string()
                }),
        };
        let options = Options {
            precision: global.precision.or(file.precision),
            format: file.format.as_deref().and_then(Format::parse),
            log_level,
            backend,
        };
        if let Ok(backend) = &options.backend {
            options.log(
                LogLevel::Debug,
                &format!("using the {}", backend.describe()),
            );
        }
        Ok(options)
    }

    pub fn backend(&self) -> Result<&Backend, String> {
        self.backend.as_ref().map_err(Clone::clone)
    }

    pub fn log(&self, level: LogLevel, message: &str) {
        if level <= self.log_level {
            eprintln!("{}: {message}", level.name());
        }
    }

    fn format(&self, flag: Option<ReportFormat>) -> Format {
        match flag {
            Some(ReportFormat::Table) => Format::Table,
            Some(ReportFormat::Json) => Format::Json,
            Some(ReportFormat::Csv) => Format::Csv,
            None => self.format.unwrap_or(Format::Table),
        }
    }
}

pub fn memory(
    options: &Options,
    action: &MemoryAction,
    format: Option<ReportFormat>,
) -> Result<ExitCode, String> {
    let b = options.backend()?;
    let (value, name) = match action {
        MemoryAction::Store { value } => (b.memory_store(*value)?, "store"),
        MemoryAction::Add { value } => (b.memory_add(*value)?, "add"),
        MemoryAction::Recall => (b.memory()?, "recall"),
        MemoryAction::Clear => {
            b.memory_clear()?;
            (0.0, "clear")
        }
    };
    let format = options.format(format);
    print!("{}", report::memory(value, name, format, options.precision));
    Ok(ExitCode::SUCCESS)
}

pub fn history(
    options: &Options,
    limit: Option<u64>,
    format: Option<ReportFormat>,
) -> Result<ExitCode, String> {
    let limit = limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let entries = options.backend()?.history(limit)?;
    let format = options.format(format);
    print!("{}", report::history(&entries, format, options.precision));
    Ok(ExitCode::SUCCESS)
}

pub fn stats(options: &Options, format: Option<ReportFormat>) -> Result<ExitCode, String> {
    let stats = options.backend()?.stats()?;
    print!("{}", report::stats(&stats, options.format(format)));
    Ok(ExitCode::SUCCESS)
}

pub fn interactive(options: &Options) -> Result<ExitCode, String> {
    let code = calculator::interactive::run(options.backend()?, options.precision)?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// `calc`: computed here, or by the server with `--url`; recorded in the
/// state file's history and stats when it can be (a read-only system still
/// computes, with a warning).
pub fn calculate(
    options: &Options,
    operation: calculator::ops::Operation,
    operands: &[f64],
) -> Result<f64, String> {
    match &options.backend {
        Ok(Backend::Remote { .. }) => options.backend()?.calculate(operation, operands),
        Ok(Backend::Local(store)) => {
            let result = calculator::ops::compute(operation, operands).map_err(|e| e.to_string());
            if let Err(e) = store.record(operation, operands, &result) {
                options.log(LogLevel::Warn, &format!("not recorded in the history: {e}"));
            }
            result
        }
        Err(e) => {
            options.log(LogLevel::Info, &format!("not recorded in the history: {e}"));
            calculator::ops::compute(operation, operands).map_err(|e| e.to_string())
        }
    }
}
