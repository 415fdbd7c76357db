//! Throw-away PKIs for the TLS tests: a root CA, an intermediate it signs,
//! and server certificates the intermediate signs (rcgen, ECDSA P-256).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};

/// Seconds from now, as a certificate time.
pub fn days_from_now(days: i64) -> time::OffsetDateTime {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let at = (now + days * 86_400).max(0) as u64;
    date_time_ymd(1970, 1, 1) + Duration::from_secs(at)
}

pub struct Pki {
    pub root_pem: String,
    pub intermediate_pem: String,
    intermediate: Issuer<'static, KeyPair>,
}

/// A server certificate and its key.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let root_key = KeyPair::generate().unwrap();
        let mut root = CertificateParams::new(Vec::<String>::new()).unwrap();
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root.distinguished_name
            .push(DnType::CommonName, format!("{name} root CA"));
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        root.not_before = days_from_now(-30);
        root.not_after = days_from_now(3650);
        let root_cert = root.self_signed(&root_key).unwrap();
        let root_issuer = Issuer::new(root, root_key);

        let inter_key = KeyPair::generate().unwrap();
        let mut inter = CertificateParams::new(Vec::<String>::new()).unwrap();
        inter.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        inter
            .distinguished_name
            .push(DnType::CommonName, format!("{name} intermediate CA"));
        inter.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        inter.not_before = days_from_now(-30);
        inter.not_after = days_from_now(3000);
        let inter_cert = inter.signed_by(&inter_key, &root_issuer).unwrap();
        Pki {
            root_pem: root_cert.pem(),
            intermediate_pem: inter_cert.pem(),
            intermediate: Issuer::new(inter, inter_key),
        }
    }

    /// A certificate for `names`, valid from `from` to `until` days from now.
    pub fn leaf(&self, names: &[&str], from: i64, until: i64) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("x"));
        params.not_before = days_from_now(from);
        params.not_after = days_from_now(until);
        let cert = params.signed_by(&key, &self.intermediate).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes the leaf's chain (leaf + intermediate), its key and the root
    /// into `dir`; their paths.
    pub fn write(&self, dir: &Path, leaf: &Leaf, tag: &str) -> (PathBuf, PathBuf, PathBuf) {
        let chain = dir.join(format!("{tag}-chain.pem"));
        let key = dir.join(format!("{tag}-key.pem"));
        let root = dir.join(format!("{tag}-root.pem"));
        std::fs::write(
            &chain,
            format!("{}{}", leaf.cert_pem, self.intermediate_pem),
        )
        .unwrap();
        std::fs::write(&key, &leaf.key_pem).unwrap();
        std::fs::write(&root, &self.root_pem).unwrap();
        (chain, key, root)
    }
}

/// The base64 body of a PEM key: what must never appear anywhere.
pub fn key_body(key_pem: &str) -> Vec<String> {
    key_pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 40)
        .map(String::from)
        .collect()
}
