//! The `shipit` binary: parse arguments, run, map the result to an exit code.

mod cli;

use clap::{CommandFactory, Parser};

use cli::{Cli, ColorChoice, Command, OutputFormat};
use shipit::commands::{self, Context};
use shipit::config::Overrides;
use shipit::config::model::BuildKind;
use shipit::output::{Color, Format, Output};

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
    let mut cli = Cli::parse();
    cli.set = all_sets(std::mem::take(&mut cli.set));
    let out = Output::new(
        match cli.output {
            OutputFormat::Human => Format::Human,
            OutputFormat::Json => Format::Json,
        },
        match cli.color {
            ColorChoice::Auto => Color::Auto,
            ColorChoice::Always => Color::Always,
            ColorChoice::Never => Color::Never,
        },
        if cli.quiet {
            -1
        } else {
            i8::try_from(cli.verbose).unwrap_or(i8::MAX)
        },
    );
    let ctx = Context {
        project: cli.project_dir,
        overrides: Overrides::from_process(cli.set),
        out: out.clone(),
    };

    let result = match cli.command {
        Command::Validate { environments } => {
            commands::validate::run(&ctx, &commands::validate::Args { environments })
        }
        Command::Render {
            targets,
            all,
            check,
            dry_run,
        } => commands::render::run(
            &ctx,
            &commands::render::Args {
                targets,
                all,
                check,
                dry_run,
            },
        ),
        Command::Build {
            environment,
            push,
            tags,
            no_cache,
            build_args,
            mode,
            dry_run,
            save_context,
        } => {
            let mode = mode.map(|m| match m {
                cli::BuildMode::Source => shipit::build::Mode::Source,
                cli::BuildMode::Prebuilt => shipit::build::Mode::Prebuilt,
            });
            commands::build::run(
                &ctx,
                &commands::build::Args {
                    environment,
                    push,
                    tags,
                    no_cache,
                    build_args,
                    mode,
                    dry_run,
                    save_context,
                },
            )
        }
        Command::Deploy {
            environment,
            image,
            strategy,
            lock_wait,
            dry_run,
        } => commands::deploy::deploy(
            &ctx,
            &commands::deploy::Args {
                environment,
                image,
                strategy: strategy.map(|s| match s {
                    cli::DeployStrategy::BlueGreen => shipit::config::model::Strategy::BlueGreen,
                    cli::DeployStrategy::Rolling => shipit::config::model::Strategy::Rolling,
                }),
                lock_wait,
                dry_run,
                to: None,
            },
        ),
        Command::Rollback {
            environment,
            to,
            lock_wait,
        } => commands::deploy::rollback(
            &ctx,
            &commands::deploy::Args {
                environment,
                lock_wait,
                to,
                ..Default::default()
            },
        ),
        Command::Status {
            environment,
            last,
            host,
        } => commands::status::run(&ctx, &environment, last, host.as_deref()),
        Command::Smoke {
            environment,
            url,
            junit,
            timeout,
            connect,
            host,
        } => commands::smoke::run(
            &ctx,
            &commands::smoke::Args {
                environment,
                url,
                junit,
                timeout,
                connect,
                host,
            },
        ),
        Command::Lock { action } => match action {
            cli::LockAction::Release { environment, host } => {
                commands::deploy::lock_release(&ctx, &environment, host.as_deref())
            }
            cli::LockAction::Show { environment, host } => {
                commands::deploy::lock_show(&ctx, &environment, host.as_deref())
            }
        },
        Command::Release {
            level,
            pre_id,
            execute,
            push,
            allow_branches,
        } => {
            use shipit::release::{Level, Request};
            let request = match level {
                cli::ReleaseLevel::Major => Request::Level(Level::Major),
                cli::ReleaseLevel::Minor => Request::Level(Level::Minor),
                cli::ReleaseLevel::Patch => Request::Level(Level::Patch),
                cli::ReleaseLevel::Premajor => Request::Level(Level::Premajor),
                cli::ReleaseLevel::Preminor => Request::Level(Level::Preminor),
                cli::ReleaseLevel::Prepatch => Request::Level(Level::Prepatch),
                cli::ReleaseLevel::Prerelease => Request::Level(Level::Prerelease),
                cli::ReleaseLevel::Release => Request::Level(Level::Release),
                cli::ReleaseLevel::Auto => Request::Auto,
            };
            commands::release::run(
                &ctx,
                &commands::release::Args {
                    options: shipit::release::Options {
                        request,
                        pre_id,
                        push,
                        allow_branches,
                        date: None,
                    },
                    execute,
                },
            )
        }
        Command::Image { kind } => match kind {
            cli::ImageKind::Gateway { options: o } => {
                commands::image::gateway(&ctx, o.tag.as_deref(), o.force, o.dry_run)
            }
            cli::ImageKind::Python { options: o } => commands::image::interpreter(
                &ctx,
                shipit::offline::Interpreter::Python,
                o.tag.as_deref(),
                o.force,
                o.dry_run,
            ),
            cli::ImageKind::Node { options: o } => commands::image::interpreter(
                &ctx,
                shipit::offline::Interpreter::Node,
                o.tag.as_deref(),
                o.force,
                o.dry_run,
            ),
        },
        Command::Init {
            name,
            kind,
            port,
            package,
            image,
            dry_run,
            force,
        } => commands::init::run(
            &ctx,
            &commands::init::Args {
                request: shipit::init::Request {
                    name,
                    kind: kind.map(|k| match k {
                        cli::InitKind::Rust => BuildKind::Rust,
                        cli::InitKind::Dockerfile => BuildKind::Dockerfile,
                        cli::InitKind::Image => BuildKind::Image,
                        cli::InitKind::Python => BuildKind::Python,
                        cli::InitKind::Node => BuildKind::Node,
                    }),
                    port: Some(port),
                    package,
                    image,
                },
                dry_run,
                force,
            },
        ),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "shipit", &mut std::io::stdout());
            Ok(())
        }
    };
    if let Err(error) = result {
        if out.is_json()
            && !matches!(
                error,
                shipit::Error::Reported { .. } | shipit::Error::Stale { .. }
            )
        {
            let problems = match &error {
                shipit::Error::Config(errors) => errors.reports(),
                _ => Vec::new(),
            };
            out.json(&serde_json::json!({ "error": error.to_string(), "exit_code": error.exit_code(), "problems": problems }));
        }
        out.error(&error.to_string());
        std::process::exit(error.exit_code());
    }
}
