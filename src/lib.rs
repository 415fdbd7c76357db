//! shipit: per-environment configuration to validated deployment artifacts.
//!
//! Data flows one way: command-line arguments -> [`config`] (layers merged,
//! then validated) -> a plan ([`render`]) -> side effects ([`render::write`])
//! -> a report ([`output`]).

pub mod build;
pub mod cancel;
pub mod clock;
pub mod commands;
pub mod config;
pub mod deploy;
pub mod engine;
pub mod error;
pub mod http;
pub mod identity;
pub mod init;
pub mod kube;
pub mod offline;
pub mod output;
pub mod process;
pub mod record;
pub mod registry;
pub mod render;
pub mod secrets;
pub mod signing;
pub mod smoke;
pub mod target;
pub mod terminal;

pub use error::Error;
pub mod release;
