//! ECDSA P-256 keys as cosign and skopeo use them: a PKCS#8 PEM private
//! key to sign with, a SubjectPublicKeyInfo PEM public key to verify with.
//! Errors say what a key is and how to make the right one; they never hold
//! key bytes.

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};

/// SubjectPublicKeyInfo of an id-ecPublicKey on prime256v1, up to the point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const P256_OID: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const KINDS: [(&[u8], &str); 4] = [
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
        "an RSA key",
    ),
    (&[0x2b, 0x81, 0x04, 0x00, 0x22], "an ECDSA P-384 key"),
    (&[0x2b, 0x81, 0x04, 0x00, 0x23], "an ECDSA P-521 key"),
    (&[0x2b, 0x65, 0x70], "an Ed25519 key"),
];

pub const MAKE_ONE: &str = "make one with: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out signing.pem && openssl pkey -in signing.pem -pubout -out signing.pub";

/// A key to sign with.
pub struct SigningKey {
    pair: EcdsaKeyPair,
}

/// A key to verify with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The uncompressed point (65 bytes).
    point: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public().fingerprint())
    }
}

/// The first PEM block of `text`: its label and its bytes.
fn pem(text: &str) -> Result<(String, Vec<u8>), String> {
    let begin = text
        .find("-----BEGIN ")
        .ok_or("not PEM (no -----BEGIN line)")?;
    let rest = &text[begin + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").ok_or("a malformed PEM header")?;
    let label = rest[..label_end].to_string();
    let body = &rest[label_end + 5..];
    let end = body
        .find(&format!("-----END {label}-----"))
        .ok_or_else(|| format!("no -----END {label}----- line"))?;
    let body = &body[..end];
    if body.lines().any(|l| l.contains(':')) {
        return Err(format!(
            "an encrypted PEM {label} (Proc-Type headers): shipit signs with an unencrypted PKCS#8 key held in a secret"
        ));
    }
    let base64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(base64)
        .map_err(|_| format!("the PEM {label} is not valid base64"))?;
    Ok((label, der))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn other_kind(der: &[u8]) -> Option<&'static str> {
    KINDS
        .iter()
        .find(|(oid, _)| contains(der, oid))
        .map(|(_, kind)| *kind)
}

impl SigningKey {
    pub fn from_pem(text: &str) -> Result<SigningKey, String> {
        let (label, der) = pem(text)?;
        match label.as_str() {
            "PRIVATE KEY" => {}
            "EC PRIVATE KEY" => {
                return Err("a SEC1 \"EC PRIVATE KEY\"; shipit reads PKCS#8: convert it with openssl pkcs8 -topk8 -nocrypt -in KEY".into());
            }
            "ENCRYPTED PRIVATE KEY"
            | "ENCRYPTED SIGSTORE PRIVATE KEY"
            | "ENCRYPTED COSIGN PRIVATE KEY" => {
                return Err(format!(
                    "an encrypted key (\"{label}\") and shipit has no passphrase for it: keep the key unencrypted in the secret store it is read from (openssl pkcs8 -topk8 -nocrypt); cosign's own encrypted keys are not read"
                ));
            }
            "PUBLIC KEY" => return Err("a public key, not a private key".into()),
            other => return Err(format!("a PEM \"{other}\", not a PKCS#8 private key")),
        }
        if !contains(&der, P256_OID) {
            return Err(format!(
                "{}, not ECDSA P-256",
                other_kind(&der).unwrap_or("not an ECDSA P-256 key")
            ));
        }
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &der,
            &SystemRandom::new(),
        )
        .map_err(|e| format!("not a usable ECDSA P-256 PKCS#8 key ({e})"))?;
        Ok(SigningKey { pair })
    }

    /// An ASN.1 DER ECDSA signature over SHA-256 of `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| "signing failed".to_string())
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            point: self.pair.public_key().as_ref().to_vec(),
        }
    }
}

impl PublicKey {
    pub fn from_pem(text: &str) -> Result<PublicKey, String> {
        let (label, der) = pem(text)?;
        if label != "PUBLIC KEY" {
            return Err(format!(
                "a PEM \"{label}\", not a public key (-----BEGIN PUBLIC KEY-----)"
            ));
        }
        match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
            Some(point) if point.len() == 65 && point[0] == 4 => Ok(PublicKey {
                point: point.to_vec(),
            }),
            _ => Err(format!(
                "{}, not ECDSA P-256",
                other_kind(&der).unwrap_or("not an ECDSA P-256 public key")
            )),
        }
    }

    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(message, signature)
            .is_ok()
    }

    pub fn to_pem(&self) -> String {
        let mut der = P256_SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.point);
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    /// `sha256:` and the first 16 hex digits of the key's SubjectPublicKeyInfo
    /// digest: names the key in messages.
    pub fn fingerprint(&self) -> String {
        let mut der = P256_SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.point);
        let full = crate::registry::digest_of(&der);
        full[..7 + 16].to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated() -> (String, String) {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let body = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
        let private = format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n");
        let public = SigningKey::from_pem(&private).unwrap().public().to_pem();
        (private, public)
    }

    #[test]
    fn a_signature_verifies_with_its_public_key_only() {
        let (private, public) = generated();
        let key = SigningKey::from_pem(&private).unwrap();
        let public = PublicKey::from_pem(&public).unwrap();
        let signature = key.sign(b"payload").unwrap();
        assert!(public.verifies(b"payload", &signature));
        assert!(!public.verifies(b"payload!", &signature));
        let (_, other) = generated();
        assert!(
            !PublicKey::from_pem(&other)
                .unwrap()
                .verifies(b"payload", &signature)
        );
        assert_eq!(PublicKey::from_pem(&public.to_pem()).unwrap(), public);
        assert!(public.fingerprint().starts_with("sha256:") && public.fingerprint().len() == 23);
        assert!(!format!("{key:?}").contains("PRIVATE"));
    }

    #[test]
    fn the_wrong_kinds_of_key_are_named() {
        let (private, public) = generated();
        let wrong = |text: &str| SigningKey::from_pem(text).unwrap_err();
        assert!(wrong("hello").contains("not PEM"));
        assert!(wrong(&public).contains("a public key"));
        assert!(wrong(&private.replace("PRIVATE KEY", "EC PRIVATE KEY")).contains("pkcs8 -topk8"));
        assert!(
            wrong(&private.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY"))
                .contains("no passphrase")
        );
        assert!(
            PublicKey::from_pem(&private)
                .unwrap_err()
                .contains("not a public key")
        );
        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        assert!(wrong(&p384.serialize_pem()).contains("P-384 key, not ECDSA P-256"));
        assert!(
            PublicKey::from_pem(&p384.public_key_pem())
                .unwrap_err()
                .contains("P-384 key, not ECDSA P-256")
        );
    }
}
