//! `--config-file FILE` (default `$XDG_CONFIG_HOME/calculator/config.toml`
//! when it exists): the command line's defaults. Flags override it; an
//! unknown key is refused with its name, line and column.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Significant digits in human output (2-15).
    pub precision: Option<u8>,
    /// `table`, `json` or `csv`, for `memory`, `history` and `stats`.
    pub format: Option<String>,
    /// The local state file.
    pub state_file: Option<PathBuf>,
    /// A running calculator server to use instead of the state file.
    pub url: Option<String>,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub log_level: Option<String>,
}

/// The default location, when a file is there.
pub fn default_path() -> Option<PathBuf> {
    let path = crate::xdg_dir("XDG_CONFIG_HOME", ".config")?.join("calculator/config.toml");
    path.is_file().then_some(path)
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<ConfigFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        ConfigFile::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<ConfigFile, String> {
        let config: ConfigFile = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|span| {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    format!("line {line}, column {column}: ")
                })
                .unwrap_or_default();
            format!("{at}{}", e.message())
        })?;
        if let Some(p) = config.precision
            && !crate::number::PRECISION.contains(&p)
        {
            return Err(format!("precision = {p}: from 2 to 15 significant digits"));
        }
        if let Some(f) = &config.format
            && crate::report::Format::parse(f).is_none()
        {
            return Err(format!("format = \"{f}\": one of table, json, csv"));
        }
        if let Some(level) = &config.log_level
            && crate::settings::LogLevel::parse(level).is_none()
        {
            return Err(format!(
                "log_level = \"{level}\": one of error, warn, info, debug, trace"
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::ConfigFile;

    #[test]
    fn reads_every_key_and_names_an_unknown_one() {
        let c = ConfigFile::parse(
            "precision = 4\nformat = \"json\"\nstate_file = \"/tmp/s.json\"\nurl = \"http://127.0.0.1:8080\"\nlog_level = \"debug\"\n",
        )
        .unwrap();
        assert_eq!(c.precision, Some(4));
        assert_eq!(c.format.as_deref(), Some("json"));
        let e = ConfigFile::parse("precision = 4\ncolour = \"red\"\n").unwrap_err();
        assert!(e.contains("line 2, column 1"), "{e}");
        assert!(e.contains("unknown field `colour`"), "{e}");
        assert!(e.contains("precision"), "the valid keys are listed: {e}");
        assert!(
            ConfigFile::parse("precision = 1\n")
                .unwrap_err()
                .contains("from 2 to 15")
        );
        assert!(ConfigFile::parse("format = \"xml\"\n").is_err());
    }
}
