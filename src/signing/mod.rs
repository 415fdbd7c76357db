//! Image signatures: the keys (`image.signing_key`, `image.verify_key`,
//! `--key`) and cosign's signature format, read from and written to the
//! image's registry.

pub mod cosign;
pub mod keys;

pub use keys::{PublicKey, SigningKey};

use crate::build::credentials;
use crate::config::rules::{self, ImageRef};
use crate::error::Error;
use crate::registry::Repository;
use crate::secrets;

/// The signing key a secret reference holds.
pub fn signing_key(reference: &str) -> Result<SigningKey, Error> {
    let text = secrets::resolve(reference).map_err(|e| Error::Signature {
        message: format!("the signing key {reference}: {e}"),
        help: keys::MAKE_ONE.into(),
    })?;
    SigningKey::from_pem(&text).map_err(|e| Error::Signature {
        message: format!("the signing key {reference} is {e}"),
        help: keys::MAKE_ONE.into(),
    })
}

/// A public key: PEM text itself, a secret reference (`file:`, `env:`), or
/// (`from_path`, on the command line) a file's path.
pub fn verify_key(value: &str, from_path: bool) -> Result<PublicKey, Error> {
    let failed = |message: String| Error::Signature {
        message,
        help: "the public key that goes with the signing key: openssl pkey -in signing.pem -pubout"
            .into(),
    };
    let text = if value.contains("-----BEGIN") {
        value.to_string()
    } else if rules::is_secret_reference(value) {
        secrets::resolve(value).map_err(|e| failed(format!("the public key {value}: {e}")))?
    } else if from_path {
        std::fs::read_to_string(value)
            .map_err(|e| failed(format!("the public key {value}: cannot read it: {e}")))?
    } else {
        return Err(failed(format!(
            "the public key {value} is neither PEM nor a reference"
        )));
    };
    let shown = if value.contains("-----BEGIN") {
        "image.verify_key"
    } else {
        value
    };
    PublicKey::from_pem(&text).map_err(|e| failed(format!("the public key {shown} is {e}")))
}

/// The repository of `reference` in its registry, with the credentials
/// shipit has for that registry (`own`: `image.registry`).
pub fn repository(reference: &str, own: &str) -> Result<(Repository, ImageRef), Error> {
    let parsed = ImageRef::parse(reference)
        .map_err(|e| Error::Usage(format!("{reference} is not an image reference: {e}")))?;
    let creds = credentials::for_reference(reference, own);
    Ok((Repository::of(&parsed, creds), parsed))
}
