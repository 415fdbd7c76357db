//! The calculator's integration tests: the real server on ephemeral ports,
//! the real binary for signals and the command line.

mod cli;
mod cli_state;
mod fuzz;
mod http;
mod server;
mod shutdown;
