//! Signatures in sigstore/cosign's format, so that cosign, skopeo and podman
//! read them: a "simple signing" payload naming the image's manifest digest,
//! signed with ECDSA P-256, stored as a layer of an OCI manifest tagged
//! `sha256-<hex>.sig` in the image's repository, the signature (base64 DER)
//! in the layer's `dev.cosignproject.cosign/signature` annotation.

use base64::Engine as _;
use serde_json::{Value, json};

use super::keys::{PublicKey, SigningKey};
use crate::registry::{OCI_MANIFEST, Repository};

pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const PAYLOAD_TYPE: &str = "cosign container image signature";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// The tag a digest's signatures are stored under.
pub fn tag_for(digest: &str) -> String {
    digest.replacen(':', "-", 1) + ".sig"
}

/// The payload signed for `digest` of the repository `identity`.
pub fn payload(identity: &str, digest: &str) -> Vec<u8> {
    // serde_json's maps are ordered by key: the bytes are cosign's.
    let value = json!({
        "critical": {
            "identity": {"docker-reference": identity},
            "image": {"docker-manifest-digest": digest},
            "type": PAYLOAD_TYPE,
        },
        "optional": null,
    });
    serde_json::to_vec(&value).unwrap_or_default()
}

/// What signing did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Signed {
    /// `repository:sha256-<hex>.sig`.
    pub signature: String,
    pub key: String,
    /// A signature by this key for this digest was there already.
    pub already: bool,
}

/// A verified image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verified {
    pub digest: String,
    pub key: String,
    /// The repository the signature names.
    pub identity: String,
    /// Every signature stored for the digest (by any key).
    pub signatures: usize,
}

/// The signature layers of the manifest at `tag`, or none.
fn signature_layers(repo: &Repository, tag: &str) -> Result<Vec<Value>, String> {
    let Some(manifest) = repo.manifest(tag)? else {
        return Ok(Vec::new());
    };
    let json: Value = serde_json::from_slice(&manifest.bytes)
        .map_err(|e| format!("the signature manifest {tag} is not JSON: {e}"))?;
    Ok(json
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// Why a layer does not vouch for `digest` under `key`, or `Ok` with the
/// identity it names.
fn check_layer(
    repo: &Repository,
    key: &PublicKey,
    digest: &str,
    layer: &Value,
) -> Result<String, Reason> {
    if layer.get("mediaType").and_then(Value::as_str) != Some(SIMPLE_SIGNING) {
        return Err(Reason::NotASignature);
    }
    let signature = layer
        .pointer(&format!("/annotations/{}", ANNOTATION.replace('/', "~1")))
        .and_then(Value::as_str)
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .ok_or(Reason::NotASignature)?;
    let blob = layer
        .get("digest")
        .and_then(Value::as_str)
        .ok_or(Reason::NotASignature)?;
    let payload = repo.blob(blob).map_err(Reason::Registry)?;
    if !key.verifies(&payload, &signature) {
        return Err(Reason::OtherKey);
    }
    let json: Value = serde_json::from_slice(&payload).map_err(|_| Reason::NotASignature)?;
    if json.pointer("/critical/type").and_then(Value::as_str) != Some(PAYLOAD_TYPE) {
        return Err(Reason::NotASignature);
    }
    let signed = json
        .pointer("/critical/image/docker-manifest-digest")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if signed != digest {
        return Err(Reason::OtherDigest(signed.to_string()));
    }
    Ok(json
        .pointer("/critical/identity/docker-reference")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string())
}

enum Reason {
    NotASignature,
    OtherKey,
    OtherDigest(String),
    Registry(String),
}

/// Verifies that `key` signed `digest` (a manifest digest in `repo`): the
/// outer error is the registry's (it could not be asked), the inner one the
/// refusal (it was asked, and the image is not signed so).
pub fn verify(
    repo: &Repository,
    key: &PublicKey,
    digest: &str,
) -> Result<Result<Verified, String>, String> {
    let tag = tag_for(digest);
    let layers = signature_layers(repo, &tag)?;
    let image = format!("{}@{digest}", repo.name);
    if layers.is_empty() {
        return Ok(Err(format!(
            "{image} is not signed: the registry holds no signature for it (tag {tag})"
        )));
    }
    let mut other_digest = None;
    for layer in &layers {
        match check_layer(repo, key, digest, layer) {
            Ok(identity) => {
                return Ok(Ok(Verified {
                    digest: digest.to_string(),
                    key: key.fingerprint(),
                    identity,
                    signatures: layers.len(),
                }));
            }
            Err(Reason::Registry(error)) => return Err(error),
            Err(Reason::OtherDigest(signed)) => other_digest = Some(signed),
            Err(Reason::NotASignature | Reason::OtherKey) => {}
        }
    }
    Ok(Err(match other_digest {
        Some(signed) => format!(
            "{image}: the signature by key {} is for another image ({signed}), copied to this digest",
            key.fingerprint()
        ),
        None => format!(
            "{image}: none of its {} signature(s) verifies with key {}: signed with another key, or tampered with",
            layers.len(),
            key.fingerprint()
        ),
    }))
}

/// Signs `digest` in `repo` with `key`, beside the signatures already there.
pub fn sign(repo: &Repository, key: &SigningKey, digest: &str) -> Result<Signed, String> {
    let tag = tag_for(digest);
    let public = key.public();
    let signed = Signed {
        signature: format!("{}:{tag}", repo.name),
        key: public.fingerprint(),
        already: false,
    };
    let mut layers = signature_layers(repo, &tag)?;
    for layer in &layers {
        if check_layer(repo, &public, digest, layer).is_ok() {
            return Ok(Signed {
                already: true,
                ..signed
            });
        }
    }
    let payload = payload(&repo.name, digest);
    let signature = base64::engine::general_purpose::STANDARD.encode(key.sign(&payload)?);
    let payload_digest = repo.put_blob(&payload)?;
    layers.push(json!({
        "mediaType": SIMPLE_SIGNING,
        "size": payload.len(),
        "digest": payload_digest,
        "annotations": {ANNOTATION: signature},
    }));
    let diff_ids: Vec<&str> = layers
        .iter()
        .filter_map(|l| l.get("digest").and_then(Value::as_str))
        .collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap_or_default();
    let config_digest = repo.put_blob(&config)?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": config.len(), "digest": config_digest},
        "layers": layers,
    }))
    .unwrap_or_default();
    repo.put_manifest(&tag, OCI_MANIFEST, &manifest)?;
    Ok(signed)
}

/// The manifest digest `reference` (a tag or a digest) names in `repo`.
pub fn resolve(repo: &Repository, reference: &str) -> Result<String, String> {
    match repo.manifest(reference)? {
        Some(manifest) => Ok(manifest.digest),
        None => Err(format!("{}:{reference} is not in the registry", repo.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_and_tag_are_cosigns() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            String::from_utf8(payload("127.0.0.1:5000/team/app", &digest)).unwrap(),
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"127.0.0.1:5000/team/app"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
            )
        );
        assert_eq!(tag_for(&digest), format!("sha256-{}.sig", "ab".repeat(32)));
    }
}
