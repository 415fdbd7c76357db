//! What `shipit accessory` asks of a target: an accessory (a database, a
//! cache beside the application) booted, rebooted, removed, shown, backed
//! up or restored.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessoryAction {
    /// Create and start what is not running (idempotent).
    Boot,
    /// Replace the container with one of today's configuration, keeping its
    /// volumes; the old one comes back when the new one is not healthy.
    Reboot,
    /// Stop and remove the container; its volumes too with `volumes`.
    Remove {
        volumes: bool,
    },
    Status,
    /// Its backup command's output into `output` (a new file, whole or not at all).
    Backup {
        output: Option<PathBuf>,
    },
    /// `input` into its restore command.
    Restore {
        input: PathBuf,
    },
}

#[derive(Debug, Clone)]
pub struct AccessoryRequest {
    pub action: AccessoryAction,
    /// One accessory, or (boot, reboot, status) all of them.
    pub name: Option<String>,
    /// Where `files` are read from.
    pub project: PathBuf,
}
