//! shipit's integration tests: the real binary, run in throw-away projects.

mod alerting;
mod build;
mod certs;
mod deploy;
mod docker;
mod harness;
mod hostile;
mod init;
mod kube;
mod release;
mod render;
mod review;
mod review_engine;
mod smoke_checks;
mod snapshots;
mod tls;
mod tls_checks;
mod validate;
mod validators;
