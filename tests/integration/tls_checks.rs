//! The gateway's certificate checks before a deploy changes anything:
//! every problem at once, each named, and never a byte of the key.

use crate::certs::{Pki, key_body};

struct Case {
    chain: String,
    key: String,
    names: Vec<String>,
}

fn check(case: &Case, root: &str) -> Result<Vec<String>, Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain.pem");
    let key = dir.path().join("key.pem");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&chain, &case.chain).unwrap();
    std::fs::write(&key, &case.key).unwrap();
    std::fs::write(&ca, root).unwrap();
    let (cf, kf, caf) = (
        format!("file:{}", chain.display()),
        format!("file:{}", key.display()),
        format!("file:{}", ca.display()),
    );
    let request = shipit::deploy::tls::Request {
        certificate_from: &cf,
        key_from: &kf,
        server_names: &case.names,
        extra_ca: Some(&caf),
        now: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    };
    shipit::deploy::tls::load(&request).map(|(material, warnings)| {
        let debug = format!("{material:?}");
        for line in key_body(&case.key) {
            assert!(!debug.contains(&line), "the key is in Debug output");
        }
        warnings
    })
}

#[track_caller]
fn refused(case: &Case, root: &str, want: &[&str]) {
    let problems = check(case, root).expect_err("refused");
    let text = problems.join("\n");
    assert_eq!(problems.len(), want.len(), "{text}");
    for w in want {
        assert!(text.contains(w), "expected {w:?} in:\n{text}");
    }
    for line in key_body(&case.key) {
        assert!(!text.contains(&line), "a problem repeats the key");
    }
}

#[test]
fn a_good_chain_passes_and_an_expiring_one_warns() {
    let pki = Pki::new("checks");
    let names = vec![
        "calculator.test".to_string(),
        "api.calculator.test".to_string(),
    ];
    let leaf = pki.leaf(&["calculator.test", "*.calculator.test"], -1, 90);
    let case = Case {
        chain: format!("{}{}", leaf.cert_pem, pki.intermediate_pem),
        key: leaf.key_pem.clone(),
        names: names.clone(),
    };
    assert_eq!(check(&case, &pki.root_pem).unwrap(), Vec::<String>::new());

    let soon = pki.leaf(&["calculator.test", "*.calculator.test"], -1, 10);
    let case = Case {
        chain: format!("{}{}", soon.cert_pem, pki.intermediate_pem),
        key: soon.key_pem.clone(),
        names,
    };
    let warnings = check(&case, &pki.root_pem).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("expires in 9 day(s)") || warnings[0].contains("expires in 10 day(s)"),
        "{warnings:?}"
    );
}

#[test]
fn each_problem_is_refused_with_its_own_message() {
    let pki = Pki::new("checks");
    let names = vec!["calculator.test".to_string()];
    let chain = |leaf: &crate::certs::Leaf| format!("{}{}", leaf.cert_pem, pki.intermediate_pem);

    let expired = pki.leaf(&["calculator.test"], -60, -1);
    refused(
        &Case {
            chain: chain(&expired),
            key: expired.key_pem.clone(),
            names: names.clone(),
        },
        &pki.root_pem,
        &["expired on"],
    );

    let early = pki.leaf(&["calculator.test"], 2, 90);
    refused(
        &Case {
            chain: chain(&early),
            key: early.key_pem.clone(),
            names: names.clone(),
        },
        &pki.root_pem,
        &["is not valid yet"],
    );

    let good = pki.leaf(&["calculator.test"], -1, 90);
    let other = pki.leaf(&["calculator.test"], -1, 90);
    refused(
        &Case {
            chain: chain(&good),
            key: other.key_pem.clone(),
            names: names.clone(),
        },
        &pki.root_pem,
        &["does not belong to the certificate"],
    );

    refused(
        &Case {
            chain: chain(&good),
            key: good.key_pem.clone(),
            names: vec!["calculator.test".into(), "www.example.org".into()],
        },
        &pki.root_pem,
        &["does not cover gateway.server_names \"www.example.org\""],
    );

    refused(
        &Case {
            chain: good.cert_pem.clone(),
            key: good.key_pem.clone(),
            names: names.clone(),
        },
        &pki.root_pem,
        &[
            "the chain is incomplete: gateway.tls.certificate_from holds only the certificate, not its issuer (CN=checks intermediate CA); append the intermediate",
        ],
    );

    // A chain to a root nobody here trusts.
    let stranger = Pki::new("stranger");
    refused(
        &Case {
            chain: chain(&good),
            key: good.key_pem.clone(),
            names: names.clone(),
        },
        &stranger.root_pem,
        &["does not lead to a trusted root"],
    );

    // Everything at once: expired, someone else's key, a name not covered.
    refused(
        &Case {
            chain: chain(&expired),
            key: other.key_pem.clone(),
            names: vec!["other.test".into()],
        },
        &pki.root_pem,
        &[
            "expired on",
            "does not belong to the certificate",
            "does not cover gateway.server_names \"other.test\"",
        ],
    );

    // Not PEM at all: named, and the file's content is not repeated.
    refused(
        &Case {
            chain: chain(&good),
            key: "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7secretsecretsecret\n".into(),
            names,
        },
        &pki.root_pem,
        &["not a PEM private key"],
    );
}
