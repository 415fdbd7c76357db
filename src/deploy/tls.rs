//! TLS material for the deploy gateway: read from secret references on the
//! deploying machine, checked before anything changes (every problem at
//! once), and handed to the gateway as one PEM file that only its user can
//! read. The key's bytes go nowhere else: not into a message, a label, an
//! environment variable, the history or any output.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// A certificate chain and its key, checked.
pub struct Material {
    /// The chain (leaf first) then the key: the file HAProxy loads.
    pem: Vec<u8>,
    /// When the certificate stops being valid (seconds since the epoch).
    pub not_after: i64,
    pub subject: String,
    /// The names the certificate covers.
    pub names: Vec<String>,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material")
            .field("subject", &self.subject)
            .field("not_after", &self.not_after)
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl Material {
    pub fn pem(&self) -> &[u8] {
        &self.pem
    }

    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }
}

/// Where the material comes from and what it must cover.
pub struct Request<'a> {
    pub certificate_from: &'a str,
    pub key_from: &'a str,
    pub server_names: &'a [String],
    /// `smoke.ca`: extra roots that a private CA's chain may lead to.
    pub extra_ca: Option<&'a str>,
    pub now: i64,
}

/// Reads and checks the material; every problem at once. Warnings (expiry
/// within 30 days) come back beside it.
pub fn load(request: &Request<'_>) -> Result<(Material, Vec<String>), Vec<String>> {
    let mut problems = Vec::new();
    let read = |key: &str, reference: &str, problems: &mut Vec<String>| -> Option<Vec<u8>> {
        if reference.is_empty() {
            problems.push(format!(
                "{key} is not set: a reference to the PEM file (\"file:/abs/path\" or \"env:NAME\")"
            ));
            return None;
        }
        match crate::secrets::resolve(reference) {
            Ok(text) => Some(text.into_bytes()),
            Err(why) => {
                problems.push(format!("{key} ({reference}): {why}"));
                None
            }
        }
    };
    let chain_pem = read(
        "gateway.tls.certificate_from",
        request.certificate_from,
        &mut problems,
    );
    let key_pem = read("gateway.tls.key_from", request.key_from, &mut problems);
    let chain: Vec<CertificateDer<'static>> = chain_pem
        .as_deref()
        .map(|pem| {
            CertificateDer::pem_slice_iter(pem)
                .filter_map(Result::ok)
                .collect()
        })
        .unwrap_or_default();
    if chain_pem.is_some() && chain.is_empty() {
        problems.push(format!(
            "gateway.tls.certificate_from ({}): no PEM certificate in it",
            request.certificate_from
        ));
    }
    // Never echo anything of the key: only whether it parsed.
    let key = key_pem
        .as_deref()
        .and_then(|pem| match PrivateKeyDer::from_pem_slice(pem) {
            Ok(key) => Some(key),
            Err(_) => {
                problems.push(format!(
                    "gateway.tls.key_from ({}): not a PEM private key (PKCS#8, PKCS#1 or SEC1)",
                    request.key_from
                ));
                None
            }
        });
    let Some(leaf) = chain.first() else {
        return Err(problems);
    };
    let parsed = match x509_parser::parse_x509_certificate(leaf) {
        Ok((_, cert)) => cert,
        Err(e) => {
            problems.push(format!(
                "gateway.tls.certificate_from ({}): the first certificate does not parse: {e}",
                request.certificate_from
            ));
            return Err(problems);
        }
    };
    let subject = parsed.subject().to_string();
    let not_before = parsed.validity().not_before.timestamp();
    let not_after = parsed.validity().not_after.timestamp();
    let names = dns_names(&parsed);
    let mut warnings = Vec::new();

    // The key belongs to the certificate.
    if let Some(key) = &key {
        match rustls::crypto::ring::sign::any_supported_type(key) {
            Ok(signing) => {
                let spki = signing.public_key();
                if spki.as_deref() != Some(parsed.public_key().raw) {
                    problems.push(format!(
                        "the key in gateway.tls.key_from does not belong to the certificate ({subject})"
                    ));
                }
            }
            Err(_) => problems.push(format!(
                "gateway.tls.key_from ({}): a key type the gateway cannot use (RSA, ECDSA P-256/P-384 or Ed25519)",
                request.key_from
            )),
        }
    }
    // Valid now.
    if request.now < not_before {
        problems.push(format!(
            "the certificate ({subject}) is not valid yet: valid from {}",
            parsed.validity().not_before
        ));
    }
    if request.now > not_after {
        problems.push(format!(
            "the certificate ({subject}) expired on {}",
            parsed.validity().not_after
        ));
    } else if not_after - request.now < 30 * 86_400 {
        warnings.push(format!(
            "the certificate ({subject}) expires in {} day(s), on {}: renew it",
            (not_after - request.now) / 86_400,
            parsed.validity().not_after
        ));
    }
    // Covers every server name.
    let uncovered: Vec<&String> = request
        .server_names
        .iter()
        .filter(|n| !names.iter().any(|c| covers(c, n)))
        .collect();
    if !uncovered.is_empty() {
        problems.push(format!(
            "the certificate does not cover gateway.server_names {}: it is for {}",
            uncovered
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", "),
            if names.is_empty() {
                "no DNS name (no subjectAltName)".to_string()
            } else {
                names.join(", ")
            }
        ));
    }
    // The chain leads to a trusted root with the intermediates given.
    if let Some(problem) = chain_problem(request, &chain, &names, (not_before, not_after), &parsed)
    {
        problems.push(problem);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut pem = chain_pem.unwrap_or_default();
    if !pem.ends_with(b"\n") {
        pem.push(b'\n');
    }
    pem.extend_from_slice(&key_pem.unwrap_or_default());
    if !pem.ends_with(b"\n") {
        pem.push(b'\n');
    }
    Ok((
        Material {
            pem,
            not_after,
            subject,
            names,
        },
        warnings,
    ))
}

fn dns_names(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(n) = name {
                names.push(n.to_ascii_lowercase());
            }
        }
    }
    names
}

/// Whether certificate name `cert` covers server name `name`: equal, or a
/// wildcard for exactly one more label.
pub fn covers(cert: &str, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    if cert == name {
        return true;
    }
    match (cert.strip_prefix("*."), name.split_once('.')) {
        (Some(domain), Some((label, rest))) => !label.is_empty() && label != "*" && rest == domain,
        _ => false,
    }
}

fn chain_problem(
    request: &Request<'_>,
    chain: &[CertificateDer<'static>],
    names: &[String],
    (not_before, not_after): (i64, i64),
    leaf: &x509_parser::certificate::X509Certificate<'_>,
) -> Option<String> {
    let mut roots = crate::http::system_roots();
    if let Some(reference) = request.extra_ca {
        match crate::secrets::resolve(reference) {
            Ok(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()).flatten() {
                    let _ = roots.add(cert);
                }
            }
            Err(why) => return Some(format!("smoke.ca ({reference}): {why}")),
        }
    }
    if roots.is_empty() {
        return Some(
            "no trusted roots to check the chain against: install ca-certificates, or set SSL_CERT_FILE or smoke.ca"
                .into(),
        );
    }
    // Check the chain alone: at a time the certificate is valid, for a name it has.
    let name = request
        .server_names
        .iter()
        .find(|n| names.iter().any(|c| covers(c, n)))
        .cloned()
        .or_else(|| names.first().map(|n| n.replace("*.", "x.")))
        .unwrap_or_else(|| "invalid.invalid".into());
    let server_name = ServerName::try_from(name).ok()?;
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        request.now.min(not_after - 1).max(not_before + 1).max(0) as u64,
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .ok()?;
    use rustls::client::danger::ServerCertVerifier;
    let result = verifier.verify_server_cert(&chain[0], &chain[1..], &server_name, &[], at);
    match result {
        Ok(_) => None,
        Err(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)) => {
            let issuer = leaf.issuer().to_string();
            Some(if chain.len() == 1 && leaf.issuer() != leaf.subject() {
                format!(
                    "the chain is incomplete: gateway.tls.certificate_from holds only the certificate, not its issuer ({issuer}); append the intermediate certificates after it"
                )
            } else {
                format!(
                    "the chain does not lead to a trusted root: an intermediate is missing from gateway.tls.certificate_from, or its root ({issuer} or above) is not trusted here (system roots, SSL_CERT_FILE, or smoke.ca for a private CA)"
                )
            })
        }
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. },
        )) => None,
        Err(e) => Some(format!("the certificate chain was refused: {e}")),
    }
}

/// Days the PEM's first certificate has left (for `status`; the key in the
/// same file is never looked at).
pub fn days_left(pem: &[u8], now: i64) -> Option<i64> {
    let first = CertificateDer::pem_slice_iter(pem).next()?.ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&first).ok()?;
    Some((cert.validity().not_after.timestamp() - now).div_euclid(86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(covers("example.com", "EXAMPLE.com"));
        assert!(covers("*.example.com", "api.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(!covers("api.example.com", "web.example.com"));
    }
}
