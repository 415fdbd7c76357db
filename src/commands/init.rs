//! `shipit init`: detect what the repository builds, write the four
//! environment files for it (never over existing ones), check that they
//! validate and render, and say what comes next.

use super::Context;
use crate::config::{self, model::BuildKind};
use crate::error::Error;
use crate::init::{self, FILES, Request};
use crate::render::write::write_atomic;

#[derive(Debug, Clone, Default)]
pub struct Args {
    pub request: Request,
    pub dry_run: bool,
    pub force: bool,
}

pub fn run(ctx: &Context, args: &Args) -> Result<(), Error> {
    let found = init::detect(&ctx.project);
    let plan = init::plan(&ctx.project, &args.request, &found)?;
    let existing: Vec<&str> = FILES
        .iter()
        .copied()
        .filter(|f| ctx.project.join(f).exists())
        .collect();
    let out = &ctx.out;
    if args.dry_run {
        if out.is_json() {
            out.json(&serde_json::json!({ "written": false, "existing": existing, "plan": plan }));
        } else {
            out.status(
                "plan",
                &format!(
                    "{} ({}): {}",
                    plan.name,
                    kind_text(plan.kind),
                    if plan.found.is_empty() {
                        "as asked".to_string()
                    } else {
                        format!("found {}", plan.found.join(", "))
                    }
                ),
            );
            for (path, _) in &plan.files {
                let verb = if existing.contains(&path.as_str()) && !args.force {
                    "exists, kept"
                } else if existing.contains(&path.as_str()) {
                    "replace"
                } else {
                    "create"
                };
                out.status(verb, path);
            }
            for (path, text) in &plan.files {
                out.detail(&format!("--- {path}\n{text}"));
            }
        }
        return Ok(());
    }
    if !existing.is_empty() && !args.force {
        return Err(Error::Reported {
            code: 1,
            message: format!(
                "{} already exist{}: nothing was written (--force replaces them)",
                existing.join(", "),
                if existing.len() == 1 { "s" } else { "" }
            ),
        });
    }
    // Keep what was there, to put it back if the new files do not validate.
    let before: Vec<(String, Option<Vec<u8>>)> = plan
        .files
        .iter()
        .map(|(path, _)| (path.clone(), std::fs::read(ctx.project.join(path)).ok()))
        .collect();
    for (path, text) in &plan.files {
        write_atomic(&ctx.project.join(path), text.as_bytes())?;
    }
    let mut problems = Vec::new();
    for env in ["development", "staging", "production"] {
        match config::load(&ctx.project, Some(env), &config::Overrides::default()) {
            Ok(loaded) => {
                if let Err(e) = crate::render::environment(&loaded) {
                    problems.push(format!("{env}: {e}"));
                }
            }
            Err(e) => problems.push(format!("{env}: {}", e.render())),
        }
    }
    if !problems.is_empty() {
        for (path, bytes) in &before {
            let file = ctx.project.join(path);
            match bytes {
                Some(b) => {
                    let _ = write_atomic(&file, b);
                }
                None => {
                    let _ = std::fs::remove_file(&file);
                }
            }
        }
        return Err(Error::Reported {
            code: 1,
            message: format!(
                "the files shipit init planned do not validate; nothing was kept. This is a shipit bug: please report it with this output.\n{}",
                problems.join("\n")
            ),
        });
    }
    if out.is_json() {
        out.json(&serde_json::json!({ "written": true, "replaced": existing, "plan": plan }));
        return Ok(());
    }
    out.status(
        "detected",
        &if plan.found.is_empty() {
            "nothing: as asked on the command line".to_string()
        } else {
            plan.found.join(", ")
        },
    );
    for (path, _) in &plan.files {
        let verb = if existing.contains(&path.as_str()) {
            "replaced"
        } else {
            "wrote"
        };
        out.status(verb, path);
    }
    out.status(
        "next",
        &format!(
            "{} ({}) validates and renders; then:",
            plan.name,
            kind_text(plan.kind)
        ),
    );
    for (i, step) in plan.next.iter().enumerate() {
        out.status("", &format!("{}. {step}", i + 1));
    }
    Ok(())
}

fn kind_text(kind: BuildKind) -> String {
    format!("build.kind = \"{}\"", kind.name())
}
