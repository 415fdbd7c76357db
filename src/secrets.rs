//! Secret references (`env:NAME`, `file:/path`) resolved to their values on the
//! deploying machine. Values are never printed: errors name the reference.

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
