//! The candidate route: a release on trial, reached through the gateway's
//! own port (and TLS) only by requests carrying this deploy's token. The
//! token is 128 random bits held in shipit's and HAProxy's memory; it is
//! never printed, logged or written to a file, and forgotten when the
//! route closes.

use std::time::Duration;

use super::api::{api, forget, put, retire, states, wait_up};
use super::{CANDIDATE_ACL, CANDIDATE_HEADER, Server};
use crate::deploy::Settings;
use crate::engine::Engine;

/// A release on trial, reachable through the gateway with `token`.
pub struct Candidate {
    token: String,
    names: Vec<String>,
}

impl std::fmt::Debug for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Candidate")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl Candidate {
    /// The header that routes a request to the candidate.
    pub fn header(&self) -> (String, String) {
        (CANDIDATE_HEADER.to_string(), self.token.clone())
    }
}

/// 128 random bits, hex.
pub(super) fn token() -> Result<String, String> {
    crate::identity::token()
}

/// Opens the candidate route to `servers` and waits for the gateway's
/// health check to pass for each.
pub async fn open_candidate(
    engine: &Engine,
    settings: &Settings,
    servers: &[Server],
    deadline: Duration,
) -> Result<Candidate, String> {
    let candidate = Candidate {
        token: token()?,
        names: servers.iter().map(|s| s.name.clone()).collect(),
    };
    let opened = async {
        put(engine, settings, "candidate", servers).await?;
        api(
            engine,
            settings,
            &format!("add acl {CANDIDATE_ACL} {}", candidate.token),
            Some(&candidate.token),
        )
        .await?;
        wait_up(engine, settings, "candidate", servers, deadline).await
    }
    .await;
    if let Err(why) = opened {
        close_candidate(engine, settings, &candidate).await;
        return Err(why);
    }
    Ok(candidate)
}

/// Forgets the token and takes the candidate servers out.
pub async fn close_candidate(engine: &Engine, settings: &Settings, candidate: &Candidate) {
    let _ = api(
        engine,
        settings,
        &format!("clear acl {CANDIDATE_ACL}"),
        None,
    )
    .await;
    retire(engine, settings, "candidate", &candidate.names, None).await;
    forget(engine, settings, "candidate", &[]).await;
}

/// Takes out whatever candidate route a killed run left open.
pub async fn clear_candidates(engine: &Engine, settings: &Settings) -> Result<Vec<String>, String> {
    let left: Vec<String> = states(engine, settings, "candidate")
        .await?
        .into_iter()
        .filter(|s| !s.in_maintenance())
        .map(|s| s.name)
        .collect();
    api(
        engine,
        settings,
        &format!("clear acl {CANDIDATE_ACL}"),
        None,
    )
    .await?;
    retire(engine, settings, "candidate", &left, None).await;
    forget(engine, settings, "candidate", &[]).await;
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_token_is_never_in_debug_output() {
        let c = Candidate {
            token: token().unwrap(),
            names: vec!["x".into()],
        };
        assert_eq!(c.token.len(), 32);
        assert!(!format!("{c:?}").contains(&c.token));
    }
}
