//! The calculator service that shipit builds, deploys and smoke-tests.
//!
//! It is built in its own issue; until then this member keeps the workspace shape.
