//! `shipit accessory boot | reboot | remove | status | backup | restore ENV
//! [NAME]`: the services beside the application, on the environment's
//! target. Removing one and restoring into one destroy data: each asks for
//! `--confirm NAME` first.

use super::Context;
use crate::error::Error;
use crate::target::{
    self,
    accessory::{AccessoryAction, AccessoryRequest},
};

#[derive(Debug, Clone)]
pub struct Args {
    pub environment: String,
    pub name: Option<String>,
    pub action: AccessoryAction,
    /// `--confirm NAME` (remove, restore).
    pub confirm: Option<String>,
}

/// The confirmation a destructive action needs, or why it is refused.
pub fn confirmed(args: &Args) -> Result<(), Error> {
    let what = match &args.action {
        AccessoryAction::Remove { volumes: true } => "removes it and the data in its volumes",
        AccessoryAction::Remove { volumes: false } => "removes its container (its volumes stay)",
        AccessoryAction::Restore { .. } => "replaces its data with the dump's",
        _ => return Ok(()),
    };
    let name = args.name.as_deref().unwrap_or_default();
    match args.confirm.as_deref() {
        Some(given) if given == name => Ok(()),
        Some(given) => Err(Error::Usage(format!(
            "--confirm {given} does not name the accessory {name}; nothing was changed"
        ))),
        None => Err(Error::Usage(format!(
            "this {what}: add --confirm {name} to go on; nothing was changed"
        ))),
    }
}

pub fn run(ctx: &Context, args: Args) -> Result<(), Error> {
    confirmed(&args)?;
    if let AccessoryAction::Restore { input } = &args.action
        && !input.is_file()
    {
        return Err(Error::Usage(format!(
            "{}: no such file; nothing was changed",
            input.display()
        )));
    }
    let (_, target) = target::load(&ctx.project, &ctx.overrides, &args.environment)?;
    target.accessory(
        &ctx.out,
        &AccessoryRequest {
            action: args.action,
            name: args.name,
            project: ctx.project.clone(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_and_restoring_ask_for_the_name() {
        let args = |action, confirm: Option<&str>| Args {
            environment: "staging".into(),
            name: Some("db".into()),
            action,
            confirm: confirm.map(String::from),
        };
        let remove = || AccessoryAction::Remove { volumes: true };
        let restore = || AccessoryAction::Restore {
            input: "x.dump".into(),
        };
        assert_eq!(confirmed(&args(remove(), None)).unwrap_err().exit_code(), 2);
        assert_eq!(
            confirmed(&args(remove(), Some("cache")))
                .unwrap_err()
                .exit_code(),
            2
        );
        assert!(confirmed(&args(remove(), Some("db"))).is_ok());
        assert_eq!(
            confirmed(&args(restore(), None)).unwrap_err().exit_code(),
            2
        );
        assert!(confirmed(&args(restore(), Some("db"))).is_ok());
        assert!(confirmed(&args(AccessoryAction::Boot, None)).is_ok());
    }
}
