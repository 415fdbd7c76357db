//! `shipit verify [IMAGE] [--key PUB]`: checks in the image's registry that
//! the key signed the image's digest (cosign's format), as a deploy does.

use serde::Serialize;

use super::Context;
use crate::build::credentials;
use crate::config;
use crate::error::Error;
use crate::signing::{self, cosign};

#[derive(Debug, Clone, Default)]
pub struct Args {
    pub image: Option<String>,
    pub key: Option<String>,
    pub environment: String,
}

#[derive(Serialize)]
struct Report<'a> {
    image: String,
    verified: bool,
    #[serde(flatten)]
    signature: &'a cosign::Verified,
}

pub fn run(ctx: &Context, args: &Args) -> Result<(), Error> {
    let loaded = match (&args.image, &args.key) {
        (Some(_), Some(_)) => None,
        _ => Some(
            config::load(&ctx.project, Some(&args.environment), &ctx.overrides)
                .map_err(Error::Config)?,
        ),
    };
    // The configuration is loaded whenever no image is given.
    let image = args
        .image
        .clone()
        .or_else(|| loaded.as_ref().map(|l| l.image_ref()))
        .unwrap_or_default();
    let key = match (&args.key, &loaded) {
        (Some(key), _) => signing::verify_key(key, true)?,
        (None, Some(loaded)) if !loaded.config.image.verify_key.is_empty() => {
            signing::verify_key(&loaded.config.image.verify_key, false)?
        }
        _ => {
            return Err(Error::Usage(format!(
                "no public key to verify with: pass --key PUB, or set image.verify_key in environments/{}.toml",
                args.environment
            )));
        }
    };
    let own = loaded.as_ref().map_or_else(
        || credentials::registry_of(&image).to_string(),
        |l| l.config.image.registry.clone(),
    );
    let (repo, parsed) = signing::repository(&image, &own)?;
    let registry = |message: String| Error::Registry { message };
    let digest = match &parsed.digest {
        Some(digest) => digest.clone(),
        None => {
            cosign::resolve(&repo, parsed.tag.as_deref().unwrap_or("latest")).map_err(registry)?
        }
    };
    let verified = cosign::verify(&repo, &key, &digest)
        .map_err(registry)?
        .map_err(|message| Error::Signature {
            message,
            help: "sign it: shipit build --push --sign (image.signing_key), with the key whose public half this is".into(),
        })?;
    let pinned = format!("{}@{digest}", repo.name);
    if ctx.out.is_json() {
        ctx.out.json(&Report {
            image: pinned,
            verified: true,
            signature: &verified,
        });
    } else {
        ctx.out.status(
            "verified",
            &format!(
                "{pinned}: signed by key {} ({} signature(s) stored)",
                verified.key, verified.signatures
            ),
        );
        ctx.out.data(&format!("{pinned}\n"));
    }
    Ok(())
}
