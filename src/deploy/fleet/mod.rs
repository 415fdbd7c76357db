//! One deploy or rollback across several Docker hosts, all or nothing:
//! preflight every host, lock them all in a fixed order, stage the release
//! on each (healthy, then smoke-tested through that host's candidate route),
//! and only when every host passed switch every gateway; a failed switch is
//! switched back on the hosts already switched. Every host records the run
//! under one deploy id.

mod entry;
mod one;
mod preflight;
mod steps;

pub use entry::{deploy, rollback};
pub use preflight::{Prepared, prepare};

use std::time::Duration;

use super::deliver::{self, Need};
use super::history::{Entry, History, Store};
use super::host::{self, Host, Unreachable};
use super::lock::{self, Guard};
use super::releases::{Release, drain, next_number, prune, replicas_of};
use super::repair::repair;
use super::steps::{
    HostReport, Job, Options, Outcome, Timeline, on_trial, restore, start_healthy, start_kept,
};
use super::{Settings, gateway, notify};
use crate::cancel::Cancel;
use crate::config::model::Strategy;
use crate::engine::Engine;
use crate::error::Error;
use crate::output::Output;

/// What one host knows once locked and inspected.
struct Member<'a> {
    host: &'a Host,
    out: Output,
    store: Store<'a>,
    history: History,
    current: Option<Release>,
    repaired: Vec<String>,
    gateway_was_there: bool,
    /// What preparing its gateway changed.
    ensured: gateway::Ensured,
}

impl Member<'_> {
    /// This host's history entry for a run: what served before it, what
    /// was repaired, and the run's id (the same on every host).
    fn entry(&self, action: crate::record::Action, started: i64, id: &str) -> Entry {
        let mut e = Entry::new(action, crate::record::Conclusion::Succeeded, started);
        e.deploy_id = Some(id.to_string());
        e.repaired = self.repaired.clone();
        e.previous_release = self.current.as_ref().map(|r| r.number);
        e.previous_version = self.current.as_ref().map(|r| r.version.clone());
        e
    }

    fn job<'j>(&'j self, base: &Base<'j>) -> Job<'j> {
        Job {
            engine: &self.host.engine,
            settings: base.settings,
            out: &self.out,
            cancel: base.cancel,
            image_ref: base.image_ref,
            secrets: base.secrets,
            tls: base.tls,
        }
    }
}

/// What every host's steps share.
struct Base<'a> {
    settings: &'a Settings,
    cancel: &'a Cancel,
    /// The release's image (none for a rollback).
    image_ref: Option<&'a str>,
    secrets: &'a [(String, String)],
    tls: Option<&'a super::tls::Material>,
    /// Blue-green, or rolling on a fleet of one.
    strategy: Strategy,
}

impl<'a> Base<'a> {
    /// What a rollback shares: no image, blue-green (its secrets are set by
    /// the caller).
    fn new(
        settings: &'a Settings,
        cancel: &'a Cancel,
        tls: Option<&'a super::tls::Material>,
    ) -> Base<'a> {
        Base {
            settings,
            cancel,
            image_ref: None,
            secrets: &[],
            tls,
            strategy: Strategy::BlueGreen,
        }
    }
}

/// Where a host's lines go: prefixed with its name when there are several.
fn host_out(out: &Output, hosts: &[Host], name: &str) -> Output {
    if hosts.len() == 1 {
        out.clone()
    } else {
        out.for_host(name)
    }
}

fn indent(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| format!("  - {}", l.replace('\n', "\n    ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A new deploy id: the time and 32 random bits, shared by every host's entry.
fn deploy_id() -> String {
    let mut bytes = [0u8; 4];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    let suffix = if random {
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    } else {
        format!("{:08x}", std::process::id())
    };
    format!("{}-{suffix}", crate::clock::now())
}

fn describe(current: &Option<Release>) -> String {
    current
        .as_ref()
        .map(|c| format!("release {} ({})", c.number, c.version))
        .unwrap_or_else(|| "nothing".into())
}

fn members_index(members: &[Member<'_>], m: &Member<'_>) -> usize {
    members
        .iter()
        .position(|x| std::ptr::eq(x, m))
        .unwrap_or_default()
}
