//! The view the CI workflow templates read.

use crate::config::Loaded;

use super::escape;

/// Third-party actions, pinned by full commit SHA (the tag they were taken from in the comment).
pub const CHECKOUT: &str = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2";
pub const SETUP_PYTHON: &str =
    "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0";
pub const RUST_TOOLCHAIN: &str =
    "dtolnay/rust-toolchain@3c5f7ea28cd621ae0bf5283f0e981fb97b8a7af9 # master, 2026-05";
pub const RUST_CACHE: &str =
    "Swatinem/rust-cache@98c8021b550208e191a6a3145459bfc9fb29c4c0 # v2.8.0";

pub struct CiCtx {
    pub sources: String,
    pub runner: String,
    pub rust_toolchain: String,
    pub main_branch: String,
    pub kubernetes_version: String,
    pub timeout_minutes: i64,
    /// Every environment, for `render --check`.
    pub environments: Vec<String>,
    /// Deploy jobs in order, each with the job it waits for.
    pub deploy_chain: Vec<(String, Option<String>)>,
    pub checkout: &'static str,
    pub setup_python: &'static str,
    pub rust_toolchain_action: &'static str,
    pub rust_cache: &'static str,
}

impl CiCtx {
    pub fn new(loaded: &Loaded, environments: Vec<String>) -> CiCtx {
        let ci = &loaded.config.ci;
        let deploy_chain = ci
            .deploy_environments
            .iter()
            .enumerate()
            .map(|(i, env)| {
                (
                    env.clone(),
                    i.checked_sub(1).map(|p| ci.deploy_environments[p].clone()),
                )
            })
            .collect();
        CiCtx {
            sources: loaded.files.join(" + "),
            runner: ci.runner.clone(),
            rust_toolchain: ci.rust_toolchain.clone(),
            main_branch: ci.main_branch.clone(),
            kubernetes_version: ci.kubernetes_version.clone(),
            timeout_minutes: ci.timeout_minutes,
            environments,
            deploy_chain,
            checkout: CHECKOUT,
            setup_python: SETUP_PYTHON,
            rust_toolchain_action: RUST_TOOLCHAIN,
            rust_cache: RUST_CACHE,
        }
    }

    pub fn y(&self, s: impl AsRef<str>) -> String {
        escape::yaml(s.as_ref())
    }
}
