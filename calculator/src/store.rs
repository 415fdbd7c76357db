//! The command line's own state when no server is named: memory, history
//! and statistics in one JSON file. Every change holds an exclusive lock
//! (`FILE.lock`), reads the file, and writes a temporary file that is
//! renamed over it: two processes at once lose no update, and a reader
//! never sees half a file.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ops::{self, Operation};

/// Calculations the file keeps, newest first.
pub const HISTORY_LIMIT: usize = 1000;

/// One calculation, as `/history` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub id: u64,
    pub operation: String,
    pub operands: Vec<f64>,
    pub result: f64,
    pub timestamp: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub memory: f64,
    pub next_id: u64,
    /// Newest first, at most [`HISTORY_LIMIT`].
    pub history: Vec<Entry>,
    pub calculations: u64,
    pub errors: u64,
    pub by_operation: BTreeMap<String, u64>,
}

/// The state file.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

/// `$XDG_STATE_HOME/calculator/state.json`, else `~/.local/state/...`.
pub fn default_path() -> Option<PathBuf> {
    Some(crate::xdg_dir("XDG_STATE_HOME", ".local/state")?.join("calculator/state.json"))
}

impl Store {
    pub fn new(path: impl Into<PathBuf>) -> Store {
        Store { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state as it is now (empty when there is no file yet).
    pub fn read(&self) -> Result<State, String> {
        let _lock = self.lock()?;
        self.load()
    }

    /// Changes the state under the lock and writes it back atomically.
    pub fn update<T>(&self, change: impl FnOnce(&mut State) -> T) -> Result<T, String> {
        let _lock = self.lock()?;
        let mut state = self.load()?;
        let out = change(&mut state);
        self.save(&state)?;
        Ok(out)
    }

    /// Computes and records the calculation (or the error) in the state.
    pub fn calculate(&self, operation: Operation, operands: &[f64]) -> Result<f64, String> {
        let result = ops::compute(operation, operands).map_err(|e| e.to_string());
        self.record(operation, operands, &result)?;
        result
    }

    /// Records a calculation's outcome: its history entry and counts.
    pub fn record(
        &self,
        operation: Operation,
        operands: &[f64],
        result: &Result<f64, String>,
    ) -> Result<(), String> {
        self.update(|state| match result {
            Ok(result) => {
                state.next_id = state.next_id.max(1);
                let since = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                state.history.insert(
                    0,
                    Entry {
                        id: state.next_id,
                        operation: operation.name().to_string(),
                        operands: operands.to_vec(),
                        result: *result,
                        timestamp: crate::server::rfc3339(
                            since.as_secs() as i64,
                            since.subsec_millis(),
                        ),
                    },
                );
                state.history.truncate(HISTORY_LIMIT);
                state.next_id += 1;
                state.calculations += 1;
                *state
                    .by_operation
                    .entry(operation.name().to_string())
                    .or_default() += 1;
            }
            Err(_) => state.errors += 1,
        })
    }

    fn lock(&self) -> Result<File, String> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let path = lock_path(&self.path);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        file.lock()
            .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
        Ok(file)
    }

    fn load(&self) -> Result<State, String> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "{} is not a calculator state file ({e}); move it away to start afresh",
                    self.path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(format!("cannot read {}: {e}", self.path.display())),
        }
    }

    fn save(&self, state: &State) -> Result<(), String> {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "state.json".into());
        let tmp = self
            .path
            .with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(&serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?)?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            format!("cannot write {}: {e}", self.path.display())
        })
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_calculations_and_errors_and_keeps_memory() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("nested/state.json"));
        assert_eq!(store.read().unwrap(), State::default());
        assert_eq!(store.calculate(Operation::Add, &[5.0, 3.0]), Ok(8.0));
        assert!(store.calculate(Operation::Divide, &[1.0, 0.0]).is_err());
        store.update(|s| s.memory += 2.5).unwrap();
        let state = store.read().unwrap();
        assert_eq!(state.history.len(), 1);
        assert_eq!(state.history[0].operation, "add");
        assert_eq!((state.calculations, state.errors), (1, 1));
        assert_eq!(state.memory, 2.5);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("nested"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            leftovers.iter().all(|n| !n.ends_with(".tmp")),
            "{leftovers:?}"
        );
    }
}
