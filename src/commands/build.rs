//! `shipit build [ENV] [--push]`: the image through the Docker Engine API.

use std::io::IsTerminal;
use std::time::Instant;

use serde::Serialize;

use super::Context;
use crate::build::{self, Mode, Plan, Request, context, credentials};
use crate::config;
use crate::engine::{BuildEvent, BuildSpec, Engine, PushEvent};
use crate::error::Error;
use crate::signing::{self, SigningKey, cosign};

#[derive(Debug, Clone, Default)]
pub struct Args {
    pub environment: Option<String>,
    pub push: bool,
    /// Sign the pushed digest with `image.signing_key`.
    pub sign: bool,
    pub tags: Vec<String>,
    pub no_cache: bool,
    pub build_args: Vec<String>,
    pub mode: Option<Mode>,
    /// Print the plan; build nothing.
    pub dry_run: bool,
    /// Write the context tar here; build nothing.
    pub save_context: Option<std::path::PathBuf>,
}

#[derive(Serialize, Default)]
struct Durations {
    compile_seconds: Option<f64>,
    context_seconds: f64,
    build_seconds: f64,
    push_seconds: Option<f64>,
    sign_seconds: Option<f64>,
}

#[derive(Serialize)]
struct Report<'a> {
    image: String,
    id: String,
    digest: Option<String>,
    tags: Vec<String>,
    size_bytes: i64,
    context_bytes: u64,
    mode: Mode,
    pushed: bool,
    signature: Option<cosign::Signed>,
    durations: Durations,
    plan: &'a Plan,
}

pub fn run(ctx: &Context, args: &Args) -> Result<(), Error> {
    let environment = args
        .environment
        .clone()
        .unwrap_or_else(|| "production".to_string());
    let loaded =
        config::load(&ctx.project, Some(&environment), &ctx.overrides).map_err(Error::Config)?;
    if loaded.config.build.kind == config::model::BuildKind::Image {
        // Nothing to build: the environment deploys a given reference.
        let image = loaded.image_ref();
        if ctx.out.is_json() {
            ctx.out.json(&serde_json::json!({
                "environment": environment,
                "kind": "image",
                "image": image,
                "version": loaded.version,
                "built": false,
                "pushed": false,
            }));
        } else {
            ctx.out.status(
                "nothing",
                &format!(
                    "to build: {environment} deploys the prebuilt image {image} (build.kind = \"image\")"
                ),
            );
            ctx.out.data(&format!("{image}\n"));
        }
        return Ok(());
    }
    let request = Request {
        mode: args.mode,
        extra_tags: args.tags.clone(),
        build_args: args.build_args.clone(),
    };
    let plan = build::plan(&ctx.project, &loaded, &request)?;

    if plan.generated_stale {
        ctx.out.warn(&format!(
            "generated/{environment} is stale; building from what shipit renders now (run `shipit render {environment}` and commit it)"
        ));
    }
    if plan.git_dirty == Some(true) {
        ctx.out
            .warn("the working tree has uncommitted changes: the sha tag is marked -dirty");
    }
    // The key is read and checked before anything is built or pushed.
    let signing_key = if args.sign {
        let reference = &loaded.config.image.signing_key;
        if reference.is_empty() {
            return Err(Error::Usage(format!(
                "--sign needs image.signing_key in environments/{environment}.toml: a reference (env:NAME or file:/path) to an ECDSA P-256 PKCS#8 PEM key"
            )));
        }
        Some(signing::signing_key(reference)?)
    } else {
        None
    };
    if args.dry_run {
        if ctx.out.is_json() {
            ctx.out.json(&plan);
        }
        ctx.out.status(
            "plan",
            &format!(
                "{} ({:?} mode) with tags {}",
                plan.image(),
                plan.mode,
                plan.tags.join(", ")
            ),
        );
        return Ok(());
    }

    if let Some(path) = &args.save_context {
        return save_context(ctx, &plan, path);
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io(&ctx.project, e))?;
    runtime.block_on(build_and_push(ctx, &plan, args, signing_key.as_ref()))
}

async fn build_and_push(
    ctx: &Context,
    plan: &Plan,
    args: &Args,
    signing_key: Option<&SigningKey>,
) -> Result<(), Error> {
    let engine = Engine::connect().await?;
    let mut durations = Durations::default();

    let binary = if plan.mode == Mode::Prebuilt {
        let started = Instant::now();
        ctx.out.status(
            "compiling",
            &format!("{} for {} (static)", plan.package, plan.rust_target),
        );
        let path = build::compile_static(&ctx.project, plan)?;
        durations.compile_seconds = Some(started.elapsed().as_secs_f64());
        Some(path)
    } else {
        None
    };

    let started = Instant::now();
    let entries = build::context_entries(&ctx.project, plan, binary.as_deref())?;
    durations.context_seconds = started.elapsed().as_secs_f64();
    let (chunks, writer) = context::stream(entries);
    let body = futures_util::stream::unfold(chunks, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });

    ctx.out.status(
        "building",
        &format!(
            "{} ({} mode) on {}",
            plan.image(),
            mode_name(plan.mode),
            engine.address
        ),
    );
    let started = Instant::now();
    let progress = Progress::new(ctx);
    let build_args = build::hashmap(&plan.build_args);
    let labels = build::hashmap(&plan.labels);
    let result = engine
        .build(
            body,
            &BuildSpec {
                dockerfile: build::CONTEXT_DOCKERFILE,
                target: plan.target.as_deref().unwrap_or(""),
                build_args: &build_args,
                labels: &labels,
                no_cache: args.no_cache,
            },
            |event| match event {
                BuildEvent::Line(line) => progress.line(line),
            },
        )
        .await;
    progress.finish();
    let context_bytes = writer.join().unwrap_or(Ok(0)).unwrap_or(0);
    let image_id = result?;
    durations.build_seconds = started.elapsed().as_secs_f64();
    ctx.out.status(
        "built",
        &format!(
            "{} in {:.1}s, context {}",
            short_id(&image_id),
            durations.build_seconds,
            human_bytes(context_bytes)
        ),
    );

    // Tag all or none.
    let mut done: Vec<String> = Vec::new();
    for tag in &plan.tags {
        if let Err(error) = engine.tag(&image_id, &plan.repository, tag).await {
            for name in &done {
                engine.remove(name).await;
            }
            return Err(error);
        }
        done.push(format!("{}:{tag}", plan.repository));
    }
    let info = engine.inspect(&image_id).await;
    let size = info.as_ref().map_or(0, |i| i.size);
    ctx.out.status("tagged", &done.join(", "));

    let mut digest = None;
    let mut signature = None;
    if args.push {
        let (creds, source) = credentials::for_registry(plan.registry(), plan.registry());
        ctx.out.detail(&format!(
            "registry {}: credentials from {}",
            plan.registry(),
            match source {
                credentials::Source::Environment =>
                    "SHIPIT_REGISTRY_USERNAME / SHIPIT_REGISTRY_PASSWORD",
                credentials::Source::DockerConfig => "~/.docker/config.json",
                credentials::Source::None => "nowhere (anonymous)",
            }
        ));
        let started = Instant::now();
        for tag in &plan.tags {
            let progress = Progress::new(ctx);
            let pushed = engine
                .push(&plan.repository, tag, creds.clone(), |event| match event {
                    PushEvent::Status {
                        status,
                        current,
                        total,
                    } => progress.push_status(status, current, total),
                    PushEvent::Retry {
                        attempt,
                        wait,
                        reason,
                    } => {
                        progress.suspend(|| {
                            ctx.out.warn(&format!(
                                "push attempt {attempt} failed ({reason}); retrying in {:.1}s",
                                wait.as_secs_f64()
                            ))
                        });
                    }
                })
                .await;
            progress.finish();
            let pushed = pushed?;
            if digest.is_none() {
                digest = Some(pushed.clone());
            }
            ctx.out
                .status("pushed", &format!("{}:{tag} {pushed}", plan.repository));
        }
        durations.push_seconds = Some(started.elapsed().as_secs_f64());
        if let (Some(key), Some(pushed)) = (signing_key, &digest) {
            let started = Instant::now();
            signature = Some(sign(ctx, plan, key, pushed)?);
            durations.sign_seconds = Some(started.elapsed().as_secs_f64());
        }
        if let Some(d) = &digest {
            ctx.out.status(
                "pin",
                &format!(
                    "the manifests to it: shipit render {} --set image.digest={d}",
                    plan.environment
                ),
            );
        }
    }

    if ctx.out.is_json() {
        ctx.out.json(&Report {
            image: plan.image(),
            id: image_id.clone(),
            digest: digest.clone(),
            tags: done.clone(),
            size_bytes: size,
            context_bytes,
            mode: plan.mode,
            pushed: args.push,
            signature,
            durations,
            plan,
        });
    } else {
        ctx.out.data(&format!(
            "{}\n",
            digest.map_or_else(|| plan.image(), |d| format!("{}@{d}", plan.repository))
        ));
    }
    Ok(())
}

/// Signs the pushed `digest`; a failure says the image is pushed unsigned.
fn sign(
    ctx: &Context,
    plan: &Plan,
    key: &SigningKey,
    digest: &str,
) -> Result<cosign::Signed, Error> {
    let reference = format!("{}@{digest}", plan.repository);
    let (repo, _) = signing::repository(&reference, plan.registry())?;
    let signed = cosign::sign(&repo, key, digest).map_err(|message| Error::Push {
        reference: reference.clone(),
        message: format!("the image is pushed UNSIGNED: its signature was not stored: {message}"),
        help: "a deploy with image.verify_key refuses it; run the build again with --push --sign once the registry takes the signature".into(),
    })?;
    ctx.out.status(
        "signed",
        &format!(
            "{reference} with key {}{}",
            signed.key,
            if signed.already {
                " (that signature was there already)"
            } else {
                ""
            }
        ),
    );
    ctx.out
        .detail(&format!("signature stored as {}", signed.signature));
    Ok(signed)
}

/// `--save-context FILE`: the exact tar the engine would get, for inspection and benchmarks.
fn save_context(ctx: &Context, plan: &Plan, path: &std::path::Path) -> Result<(), Error> {
    let binary = match plan.mode {
        Mode::Prebuilt => Some(build::compile_static(&ctx.project, plan)?),
        Mode::Source => None,
    };
    let started = Instant::now();
    let entries = build::context_entries(&ctx.project, plan, binary.as_deref())?;
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    context::write_tar(&entries, std::io::BufWriter::new(file)).map_err(|e| Error::io(path, e))?;
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    ctx.out.status(
        "context",
        &format!(
            "{} entries, {} in {:.3}s -> {} (Dockerfile at {})",
            entries.len(),
            human_bytes(bytes),
            started.elapsed().as_secs_f64(),
            path.display(),
            build::CONTEXT_DOCKERFILE
        ),
    );
    Ok(())
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Source => "source",
        Mode::Prebuilt => "prebuilt",
    }
}

fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

pub fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

/// A spinner with the current step on a terminal; plain lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
}

impl Progress {
    fn new(ctx: &Context) -> Progress {
        let tty = std::io::stderr().is_terminal() && !ctx.out.is_json();
        let bar = tty.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            quiet: ctx.out.is_json(),
        }
    }

    fn line(&self, line: &str) {
        match &self.bar {
            Some(bar) if line.starts_with("Step ") => bar.set_message(line.to_string()),
            Some(_) => {}
            None if !self.quiet => eprintln!("  {line}"),
            None => {}
        }
    }

    fn push_status(&self, status: &str, current: Option<i64>, total: Option<i64>) {
        match &self.bar {
            Some(bar) => {
                let bytes = match (current, total) {
                    (Some(c), Some(t)) => format!(
                        " {} / {}",
                        human_bytes(c.max(0) as u64),
                        human_bytes(t.max(0) as u64)
                    ),
                    _ => String::new(),
                };
                bar.set_message(format!("{status}{bytes}"));
            }
            None if !self.quiet && current.is_none() => eprintln!("  {status}"),
            None => {}
        }
    }

    fn suspend(&self, f: impl FnOnce()) {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
