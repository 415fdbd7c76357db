//! The command line: clap types only. `convert` turns them into library
//! arguments; `main` parses, converts, runs.

mod convert;

pub use convert::run;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "shipit",
    version,
    about = "Render, build, deploy and release a service from per-environment configuration",
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// The project directory (holding environments/, templates are built in)
    #[arg(
        short = 'C',
        long,
        global = true,
        value_name = "DIR",
        default_value = ".",
        env = "SHIPIT_PROJECT_DIR"
    )]
    pub project_dir: PathBuf,

    /// Override a configuration key (repeatable), e.g. --set image.tag=1.2.3
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Output format: human text on stderr, or JSON on stdout
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,

    /// When to colour output (NO_COLOR is honoured by `auto`)
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Print only warnings and errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail (every file, every source)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Detect what this repository builds and write environments/ for it (never over existing files)
    Init(InitArgs),
    /// Load, merge and validate configuration; report every problem (exit 2)
    Validate(ValidateArgs),
    /// Render deployment files into generated/ENV (or the CI workflows for `ci`)
    Render(RenderArgs),
    /// Build the image through the Docker Engine API (and push it with --push)
    Build(BuildArgs),
    /// Deploy the environment's release to its Docker host(s) (zero downtime, all hosts or none, rolls back on failure)
    Deploy(DeployArgs),
    /// Return to the previous release (kept stopped on the engine), health-gated
    Rollback(RollbackArgs),
    /// The serving release, its replicas' health, the gateway, the lock and the last deploys
    Status(StatusArgs),
    /// Run the smoke suite against the environment (or --url)
    Smoke(SmokeArgs),
    /// The serving release's logs from every host (or pod), merged in time order, or followed
    Logs(LogsArgs),
    /// Run a command in a running replica (or pod); its exit code is shipit's
    Exec(ExecArgs),
    /// Run a command in a new container of the serving release (its env and secrets), removed afterwards
    Run(RunArgs),
    /// Remove stopped releases beyond deploy.keep_releases, their images, and finished one-off runs
    Prune(PruneArgs),
    /// Answer every request but health with 503 and a page (on), or serve again (off), on every host
    Maintenance(MaintenanceArgs),
    /// The services beside the application (a database, a cache): boot, reboot, remove, status, backup, restore
    Accessory {
        #[command(subcommand)]
        action: AccessoryCommand,
    },
    /// Inspect or release an environment's deploy lock
    Lock {
        #[command(subcommand)]
        action: LockAction,
    },
    /// Bump the version, write the changelog, commit and tag (a dry run unless --execute)
    Release(ReleaseArgs),
    /// Make images locally from this machine's Debian packages, for engines that pull nothing
    Image {
        #[command(subcommand)]
        kind: ImageKind,
    },
    /// Verify an image's signature in its registry (cosign's format) with a public key
    Verify(VerifyArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The service's name (default: the package's or project's name, else the directory's)
    #[arg(long)]
    pub name: Option<String>,
    /// What to build (default: detected: a Dockerfile, Cargo, Python, Node.js)
    #[arg(long, value_enum)]
    pub kind: Option<InitKind>,
    /// The port the service listens on in its container
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The Cargo binary package to build (a workspace with several); for Go, the main package (./cmd/NAME)
    #[arg(long)]
    pub package: Option<String>,
    /// The image to deploy, with --kind image: REGISTRY/NAME:TAG or @sha256:DIGEST
    #[arg(long, value_name = "REFERENCE")]
    pub image: Option<String>,
    /// Print what would be written; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Replace existing environment files
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Environments to validate (default: every file in environments/)
    pub environments: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// Environments to render, or `ci` for the repository files (workflows, dependabot, .dockerignore, trivy)
    pub targets: Vec<String>,
    /// Render every environment and `ci`
    #[arg(long)]
    pub all: bool,
    /// Change nothing; print a diff and exit 1 when generated files are stale
    #[arg(long, conflicts_with = "dry_run")]
    pub check: bool,
    /// Show what would be written, write nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The environment (default: production)
    pub environment: Option<String>,
    /// Push every tag to the environment's registry
    #[arg(long)]
    pub push: bool,
    /// Sign the pushed digest with image.signing_key (cosign's format, beside the image)
    #[arg(long, requires = "push")]
    pub sign: bool,
    /// An extra tag (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Build without the engine's layer cache
    #[arg(long)]
    pub no_cache: bool,
    /// A build argument NAME=VALUE (repeatable; never a secret)
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_args: Vec<String>,
    /// source: compile in the builder stage; prebuilt: compile a static binary here and package it
    #[arg(long, value_enum)]
    pub mode: Option<BuildMode>,
    /// Print the plan (tags, labels, mode); build nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Write the exact build context (a tar) to FILE; build nothing
    #[arg(long, value_name = "FILE", conflicts_with_all = ["push", "dry_run"])]
    pub save_context: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The image: REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:DIGEST (default: the environment's)
    pub image: Option<String>,
    /// The public key: a PEM file, or env:NAME / file:/path (default: image.verify_key)
    #[arg(long, value_name = "PUB")]
    pub key: Option<String>,
    /// The environment whose image, registry and image.verify_key to use
    #[arg(short, long = "env", value_name = "ENV", default_value = "production")]
    pub environment: String,
}

#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    pub environment: String,
    /// The image to deploy (default: the environment's image and version)
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Override deploy.strategy
    #[arg(long, value_enum)]
    pub strategy: Option<DeployStrategy>,
    /// Wait this long for another deploy's lock (e.g. 5m) instead of failing at once
    #[arg(long, value_name = "DURATION")]
    pub lock_wait: Option<String>,
    /// Show what would happen; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    pub environment: String,
    /// The version to return to (default: the release before the serving one)
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    #[arg(long, value_name = "DURATION")]
    pub lock_wait: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    pub environment: String,
    /// How many history entries to show
    #[arg(long, default_value_t = 10)]
    pub last: usize,
    /// Only this host of deploy.hosts (its engine address or host name)
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    pub environment: String,
    /// Lines from this long ago (10m, 2h) or this RFC 3339 time on
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Lines before this long ago or this RFC 3339 time
    #[arg(long, value_name = "WHEN", conflicts_with = "follow")]
    pub until: Option<String>,
    /// The last N lines of each replica
    #[arg(short = 'n', long, value_name = "N")]
    pub lines: Option<usize>,
    /// Only lines matching this regular expression
    #[arg(long, value_name = "REGEX")]
    pub grep: Option<String>,
    /// Only this host of deploy.hosts
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Keep printing new lines, from new replicas too, until Ctrl-C
    #[arg(short, long)]
    pub follow: bool,
    /// The gateway's lines too
    #[arg(long)]
    pub gateway: bool,
    /// Only this role's replicas: `web` (the service) or a [roles] name
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    pub environment: String,
    /// This host of deploy.hosts (default: the first)
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// The replica: its number in the serving release, or its container (pod) name (default: the first)
    #[arg(long, value_name = "N|NAME")]
    pub replica: Option<String>,
    /// Send this terminal's input to the command (on a terminal of its own when this is one)
    #[arg(short, long)]
    pub interactive: bool,
    /// The command and its arguments (no shell)
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    pub environment: String,
    /// This host of deploy.hosts (default: the first)
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Another image than the serving release's (a kept release's reference or id)
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Send this terminal's input to the command (on a terminal of its own when this is one)
    #[arg(short, long)]
    pub interactive: bool,
    /// The command and its arguments (no shell; it replaces the image's entrypoint)
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct MaintenanceArgs {
    pub environment: String,
    #[arg(value_enum)]
    pub state: OnOff,
    /// The page's text (shown escaped, in HTML or JSON)
    #[arg(long, value_name = "TEXT")]
    pub message: Option<String>,
    /// Seconds clients are told to wait (Retry-After; default 60)
    #[arg(long, value_name = "SECONDS")]
    pub retry_after: Option<u64>,
}

#[derive(Debug, clap::Subcommand)]
pub enum AccessoryCommand {
    /// Create and start what is not running (what runs stays as it is)
    Boot(AccessoryArgs),
    /// Replace with today's configuration and image, on the same volumes; the old one comes back when the new one is not healthy
    Reboot(AccessoryArgs),
    /// Stop and remove its container (its volumes stay unless --volumes)
    Remove {
        environment: String,
        name: String,
        /// The accessory's name again: nothing is removed without it
        #[arg(long, value_name = "NAME")]
        confirm: Option<String>,
        /// Its volumes too: the data in them is gone
        #[arg(long)]
        volumes: bool,
    },
    /// Each accessory on each of its hosts: state, health, image, volumes
    Status(AccessoryArgs),
    /// Its backup command's output into a new file here (whole, or no file)
    Backup {
        environment: String,
        name: String,
        /// Where (default: NAME-ENV-TIME.dump here); an existing file is never replaced
        file: Option<std::path::PathBuf>,
    },
    /// A dump into its restore command
    Restore {
        environment: String,
        name: String,
        file: std::path::PathBuf,
        /// The accessory's name again: nothing is restored without it
        #[arg(long, value_name = "NAME")]
        confirm: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct AccessoryArgs {
    pub environment: String,
    /// One accessory (default: all of them)
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    pub environment: String,
    /// Only this host of deploy.hosts
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Say what would be removed; remove nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub struct SmokeArgs {
    pub environment: String,
    /// Base URL (default: smoke.url, else the gateway on this host)
    #[arg(long)]
    pub url: Option<String>,
    /// Write a JUnit XML report here
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Retry failing checks up to this long (default: smoke.timeout)
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Connect to HOST:PORT instead of the URL's host; the URL's name is still sent
    /// for TLS (SNI) and in Host, like curl --connect-to
    #[arg(long, value_name = "HOST:PORT")]
    pub connect: Option<String>,
    /// Only this host of deploy.hosts (default: every host's gateway in turn)
    #[arg(long, value_name = "HOST", conflicts_with = "connect")]
    pub host: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ReleaseArgs {
    /// major, minor, patch, premajor, preminor, prepatch, prerelease, release (drop the
    /// pre-release part), or auto (from Conventional Commits since the last tag)
    #[arg(value_enum)]
    pub level: ReleaseLevel,
    /// The pre-release identifier, e.g. rc gives 1.2.4-rc.0
    #[arg(long, value_name = "ID")]
    pub pre_id: Option<String>,
    /// Carry out the plan (default: show it and change nothing)
    #[arg(long)]
    pub execute: bool,
    /// Push the commit and the tag to the upstream remote (atomically) after releasing
    #[arg(long)]
    pub push: bool,
    /// A branch (glob) releases may be made from; repeatable (default: main, master)
    #[arg(long = "allow-branch", value_name = "GLOB")]
    pub allow_branches: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum InitKind {
    Rust,
    Dockerfile,
    Image,
    Python,
    Node,
    Go,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BuildMode {
    Source,
    Prebuilt,
}

#[derive(Debug, Subcommand)]
pub enum ImageKind {
    /// The deploy gateway: Debian's HAProxy and socat at deploy.gateway_packages' versions, FROM scratch, running as 101:101
    Gateway {
        /// Whose deploy.gateway_image and deploy.gateway_packages (default: shipit's defaults)
        environment: Option<String>,
        #[command(flatten)]
        options: ImageOptions,
    },
    /// The base of build.kind = "python" where nothing can be pulled: this machine's Python 3 and pip, FROM scratch
    Python {
        #[command(flatten)]
        options: ImageOptions,
    },
    /// The base of build.kind = "node" where nothing can be pulled: this machine's Node.js and npm, FROM scratch
    Node {
        #[command(flatten)]
        options: ImageOptions,
    },
    /// The builder of build.kind = "go" where nothing can be pulled: this machine's Go toolchain and a shell, FROM scratch
    Go {
        #[command(flatten)]
        options: ImageOptions,
    },
}

/// What every `shipit image` kind takes.
#[derive(Debug, clap::Args)]
pub struct ImageOptions {
    /// The image name (default: shipit-offline/NAME:VERSION; the gateway's: deploy.gateway_image)
    #[arg(long, value_name = "NAME:TAG")]
    pub tag: Option<String>,
    /// Make it again even when the engine has it
    #[arg(long)]
    pub force: bool,
    /// Print what would go into the image; build nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum LockAction {
    /// Remove the lock of a deploy that is gone (killed); says who held it
    Release {
        environment: String,
        /// Only this host of deploy.hosts (default: all of them)
        #[arg(long, value_name = "HOST")]
        host: Option<String>,
        /// Even a lock whose holder is still running (its heartbeat is fresh)
        #[arg(long)]
        force: bool,
    },
    /// Show who holds the lock
    Show {
        environment: String,
        /// Only this host of deploy.hosts (default: all of them)
        #[arg(long, value_name = "HOST")]
        host: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DeployStrategy {
    BlueGreen,
    Rolling,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReleaseLevel {
    Major,
    Minor,
    Patch,
    Premajor,
    Preminor,
    Prepatch,
    Prerelease,
    Release,
    Auto,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}
