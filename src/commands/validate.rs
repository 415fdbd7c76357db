//! `shipit validate [ENV]...`: load, merge and validate, nothing else.

use serde::Serialize;

use super::Context;
use crate::config::{self, ProblemReport};
use crate::error::Error;

#[derive(Debug, Clone, Default)]
pub struct Args {
    /// Environments to validate; empty means every environment in `environments/`.
    pub environments: Vec<String>,
}

#[derive(Serialize)]
struct Report {
    valid: bool,
    environments: Vec<EnvReport>,
}

#[derive(Serialize)]
struct EnvReport {
    environment: String,
    valid: bool,
    version: Option<String>,
    image: Option<String>,
    files: Vec<String>,
    problems: Vec<ProblemReport>,
}

pub fn run(ctx: &Context, args: &Args) -> Result<(), Error> {
    let environments = if args.environments.is_empty() {
        let all = config::environment_names(&ctx.project);
        if all.is_empty() {
            return Err(Error::Usage(format!(
                "no environments found in {}/environments: run shipit from the project directory or pass --project-dir",
                ctx.project.display()
            )));
        }
        all
    } else {
        args.environments.clone()
    };

    let mut reports = Vec::new();
    let mut invalid = Vec::new();
    for env in &environments {
        match config::load(&ctx.project, Some(env), &ctx.overrides) {
            Ok(loaded) => {
                ctx.out.status(
                    "valid",
                    &format!(
                        "{env} ({}), image {}",
                        loaded.files.join(" + "),
                        loaded.image_ref()
                    ),
                );
                reports.push(EnvReport {
                    environment: env.clone(),
                    valid: true,
                    version: Some(loaded.version.clone()),
                    image: Some(loaded.image_ref()),
                    files: loaded.files.clone(),
                    problems: Vec::new(),
                });
            }
            Err(errors) => {
                ctx.out.error(&errors.render());
                ctx.out.error(&format!("environment {env} is invalid"));
                invalid.push(env.clone());
                reports.push(EnvReport {
                    environment: env.clone(),
                    valid: false,
                    version: None,
                    image: None,
                    files: Vec::new(),
                    problems: errors.reports(),
                });
            }
        }
    }
    if ctx.out.is_json() {
        ctx.out.json(&Report {
            valid: invalid.is_empty(),
            environments: reports,
        });
    }
    if invalid.is_empty() {
        Ok(())
    } else {
        Err(Error::Reported {
            code: 2,
            message: format!("configuration problems in: {}", invalid.join(", ")),
        })
    }
}
