//! Secret references (`env:NAME`, `file:/path`) resolved to their values on the
//! deploying machine. Values are never printed: errors name the reference.

/// Where a running service finds its secrets: one file each, named by
/// [`file_name`], and `NAME_FILE` in its environment pointing at it.
pub const DIR: &str = "/run/secrets";

/// A secret's file name: `DB_PASSWORD` is `db-password`.
pub fn file_name(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// `env:NAME` or `file:/path` to its value.
pub fn resolve(reference: &str) -> Result<String, String> {
    match reference.split_once(':') {
        Some(("env", name)) => std::env::var(name).map_err(|_| format!("{name} is not set")),
        Some(("file", path)) => std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|e| format!("cannot read {path}: {e}")),
        _ => Err("not a reference".into()),
    }
}
