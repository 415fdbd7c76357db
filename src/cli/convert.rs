//! clap's types into the library's: one `From` per argument set, and the one
//! `match` that hands each subcommand its arguments.

use clap::CommandFactory;

use super::*;
use shipit::commands::{self, Context};
use shipit::config::Overrides;
use shipit::config::model::{BuildKind, Strategy};
use shipit::output::{Color, Format, Output};
use shipit::release::{Level, Request};
use shipit::target::LockAction as Lock;

/// Runs the parsed command line; the output it printed through, and the result.
pub fn run(cli: Cli) -> (Output, Result<(), shipit::Error>) {
    let verbosity = if cli.quiet {
        -1
    } else {
        i8::try_from(cli.verbose).unwrap_or(i8::MAX)
    };
    let out = Output::new(cli.output.into(), cli.color.into(), verbosity);
    let ctx = Context {
        project: cli.project_dir,
        overrides: Overrides::from_process(cli.set),
        out: out.clone(),
    };
    let result = match cli.command {
        Command::Init(a) => commands::init::run(&ctx, &a.into()),
        Command::Validate(a) => commands::validate::run(&ctx, &a.into()),
        Command::Render(a) => commands::render::run(&ctx, &a.into()),
        Command::Build(a) => commands::build::run(&ctx, &a.into()),
        Command::Deploy(a) => commands::deploy::run(&ctx, &a.into()),
        Command::Rollback(a) => commands::rollback::run(&ctx, &a.into()),
        Command::Status(a) => commands::status::run(&ctx, &a.into()),
        Command::Smoke(a) => commands::smoke::run(&ctx, &a.into()),
        Command::Verify(a) => commands::verify::run(
            &ctx,
            &commands::verify::Args {
                image: a.image,
                key: a.key,
                environment: a.environment,
            },
        ),
        Command::Logs(a) => commands::logs::run(&ctx, &a.into()),
        Command::Exec(a) => commands::exec::exec(&ctx, &a.into()),
        Command::Run(a) => commands::exec::run(&ctx, &a.into()),
        Command::Maintenance(a) => commands::maintenance::run(
            &ctx,
            &commands::maintenance::Args {
                environment: a.environment,
                on: matches!(a.state, OnOff::On),
                message: a.message,
                retry_after: a.retry_after,
            },
        ),
        Command::Accessory { action } => commands::accessory::run(&ctx, action.into()),
        Command::Prune(a) => commands::prune::run(
            &ctx,
            &a.environment,
            &shipit::target::PruneRequest {
                host: a.host,
                dry_run: a.dry_run,
            },
        ),
        Command::Lock { action } => commands::lock::run(&ctx, &action.into()),
        Command::Release(a) => commands::release::run(&ctx, &a.into()),
        Command::Image { kind } => {
            let (interpreter, o) = match kind {
                ImageKind::Gateway {
                    environment,
                    options,
                } => {
                    return (
                        out,
                        commands::image::gateway(
                            &ctx,
                            environment.as_deref(),
                            options.tag.as_deref(),
                            options.force,
                            options.dry_run,
                        ),
                    );
                }
                ImageKind::Python { options } => (shipit::offline::Interpreter::Python, options),
                ImageKind::Node { options } => (shipit::offline::Interpreter::Node, options),
                ImageKind::Go { options } => (shipit::offline::Interpreter::Go, options),
            };
            let tag = o.tag.as_deref();
            commands::image::interpreter(&ctx, interpreter, tag, o.force, o.dry_run)
        }
        Command::Completions(a) => {
            clap_complete::generate(
                a.shell,
                &mut Cli::command(),
                "shipit",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    };
    (out, result)
}

impl From<OutputFormat> for Format {
    fn from(f: OutputFormat) -> Format {
        match f {
            OutputFormat::Human => Format::Human,
            OutputFormat::Json => Format::Json,
        }
    }
}

impl From<ColorChoice> for Color {
    fn from(c: ColorChoice) -> Color {
        match c {
            ColorChoice::Auto => Color::Auto,
            ColorChoice::Always => Color::Always,
            ColorChoice::Never => Color::Never,
        }
    }
}

impl From<BuildMode> for shipit::build::Mode {
    fn from(m: BuildMode) -> Self {
        match m {
            BuildMode::Source => shipit::build::Mode::Source,
            BuildMode::Prebuilt => shipit::build::Mode::Prebuilt,
        }
    }
}

impl From<DeployStrategy> for Strategy {
    fn from(s: DeployStrategy) -> Strategy {
        match s {
            DeployStrategy::BlueGreen => Strategy::BlueGreen,
            DeployStrategy::Rolling => Strategy::Rolling,
        }
    }
}

impl From<InitKind> for BuildKind {
    fn from(k: InitKind) -> BuildKind {
        match k {
            InitKind::Rust => BuildKind::Rust,
            InitKind::Dockerfile => BuildKind::Dockerfile,
            InitKind::Image => BuildKind::Image,
            InitKind::Python => BuildKind::Python,
            InitKind::Node => BuildKind::Node,
            InitKind::Go => BuildKind::Go,
        }
    }
}

impl From<ReleaseLevel> for Request {
    fn from(l: ReleaseLevel) -> Request {
        Request::Level(match l {
            ReleaseLevel::Major => Level::Major,
            ReleaseLevel::Minor => Level::Minor,
            ReleaseLevel::Patch => Level::Patch,
            ReleaseLevel::Premajor => Level::Premajor,
            ReleaseLevel::Preminor => Level::Preminor,
            ReleaseLevel::Prepatch => Level::Prepatch,
            ReleaseLevel::Prerelease => Level::Prerelease,
            ReleaseLevel::Release => Level::Release,
            ReleaseLevel::Auto => return Request::Auto,
        })
    }
}

impl From<InitArgs> for commands::init::Args {
    fn from(a: InitArgs) -> Self {
        commands::init::Args {
            request: shipit::init::Request {
                name: a.name,
                kind: a.kind.map(Into::into),
                port: Some(a.port),
                package: a.package,
                image: a.image,
            },
            dry_run: a.dry_run,
            force: a.force,
        }
    }
}

impl From<ValidateArgs> for commands::validate::Args {
    fn from(a: ValidateArgs) -> Self {
        commands::validate::Args {
            environments: a.environments,
        }
    }
}

impl From<RenderArgs> for commands::render::Args {
    fn from(a: RenderArgs) -> Self {
        commands::render::Args {
            targets: a.targets,
            all: a.all,
            check: a.check,
            dry_run: a.dry_run,
        }
    }
}

impl From<BuildArgs> for commands::build::Args {
    fn from(a: BuildArgs) -> Self {
        commands::build::Args {
            environment: a.environment,
            push: a.push,
            sign: a.sign,
            tags: a.tags,
            no_cache: a.no_cache,
            build_args: a.build_args,
            mode: a.mode.map(Into::into),
            dry_run: a.dry_run,
            save_context: a.save_context,
        }
    }
}

impl From<LogsArgs> for commands::logs::Args {
    fn from(a: LogsArgs) -> Self {
        commands::logs::Args {
            environment: a.environment,
            since: a.since,
            until: a.until,
            lines: a.lines,
            grep: a.grep,
            host: a.host,
            follow: a.follow,
            gateway: a.gateway,
            role: a.role,
        }
    }
}

impl From<ExecArgs> for commands::exec::Args {
    fn from(a: ExecArgs) -> Self {
        commands::exec::Args {
            environment: a.environment,
            request: shipit::target::CommandRequest {
                command: a.command,
                host: a.host,
                replica: a.replica,
                image: None,
                interactive: a.interactive,
            },
        }
    }
}

impl From<RunArgs> for commands::exec::Args {
    fn from(a: RunArgs) -> Self {
        commands::exec::Args {
            environment: a.environment,
            request: shipit::target::CommandRequest {
                command: a.command,
                host: a.host,
                replica: None,
                image: a.image,
                interactive: a.interactive,
            },
        }
    }
}

impl From<DeployArgs> for commands::deploy::Args {
    fn from(a: DeployArgs) -> Self {
        commands::deploy::Args {
            environment: a.environment,
            image: a.image,
            strategy: a.strategy.map(Into::into),
            lock_wait: a.lock_wait,
            dry_run: a.dry_run,
        }
    }
}

impl From<RollbackArgs> for commands::rollback::Args {
    fn from(a: RollbackArgs) -> Self {
        commands::rollback::Args {
            environment: a.environment,
            to: a.to,
            lock_wait: a.lock_wait,
        }
    }
}

impl From<StatusArgs> for commands::status::Args {
    fn from(a: StatusArgs) -> Self {
        commands::status::Args {
            environment: a.environment,
            last: a.last,
            host: a.host,
        }
    }
}

impl From<SmokeArgs> for commands::smoke::Args {
    fn from(a: SmokeArgs) -> Self {
        commands::smoke::Args {
            environment: a.environment,
            url: a.url,
            junit: a.junit,
            timeout: a.timeout,
            connect: a.connect,
            host: a.host,
        }
    }
}

impl From<LockAction> for commands::lock::Args {
    fn from(a: LockAction) -> Self {
        let (action, environment, host) = match a {
            LockAction::Release {
                environment,
                host,
                force,
            } => (Lock::Release { force }, environment, host),
            LockAction::Show { environment, host } => (Lock::Show, environment, host),
        };
        commands::lock::Args {
            environment,
            action,
            host,
        }
    }
}

impl From<ReleaseArgs> for commands::release::Args {
    fn from(a: ReleaseArgs) -> Self {
        commands::release::Args {
            options: shipit::release::Options {
                request: a.level.into(),
                pre_id: a.pre_id,
                push: a.push,
                allow_branches: a.allow_branches,
                date: None,
            },
            execute: a.execute,
        }
    }
}

impl From<AccessoryCommand> for commands::accessory::Args {
    fn from(c: AccessoryCommand) -> Self {
        use shipit::target::accessory::AccessoryAction as A;
        let plain = |a: AccessoryArgs, action| commands::accessory::Args {
            environment: a.environment,
            name: a.name,
            action,
            confirm: None,
        };
        match c {
            AccessoryCommand::Boot(a) => plain(a, A::Boot),
            AccessoryCommand::Reboot(a) => plain(a, A::Reboot),
            AccessoryCommand::Status(a) => plain(a, A::Status),
            AccessoryCommand::Remove {
                environment,
                name,
                confirm,
                volumes,
            } => commands::accessory::Args {
                environment,
                name: Some(name),
                action: A::Remove { volumes },
                confirm,
            },
            AccessoryCommand::Backup {
                environment,
                name,
                file,
            } => commands::accessory::Args {
                environment,
                name: Some(name),
                action: A::Backup { output: file },
                confirm: None,
            },
            AccessoryCommand::Restore {
                environment,
                name,
                file,
                confirm,
            } => commands::accessory::Args {
                environment,
                name: Some(name),
                action: A::Restore { input: file },
                confirm,
            },
        }
    }
}
