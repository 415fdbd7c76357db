//! The `shipit` binary: parse arguments, run, map the result to an exit code.

mod cli;

use clap::Parser;

/// Every `--set`, before and after the subcommand, in order: clap keeps only
/// the subcommand's occurrences of a global argument given in both places,
/// so they are read from the command line itself.
fn all_sets(parsed: Vec<String>) -> Vec<String> {
    let mut raw = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        } else if arg == "--set" {
            raw.extend(args.next());
        } else if let Some(value) = arg.strip_prefix("--set=") {
            raw.push(value.to_string());
        }
    }
    if raw.len() > parsed.len() {
        raw
    } else {
        parsed
    }
}

fn main() {
    let mut cli = cli::Cli::parse();
    cli.set = all_sets(std::mem::take(&mut cli.set));
    let (out, result) = cli::run(cli);
    if let Err(error) = result {
        std::process::exit(shipit::commands::fail(&out, &error));
    }
}
