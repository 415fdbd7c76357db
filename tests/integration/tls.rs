//! shipit's HTTP client over TLS (smoke `--url https://...`, https webhooks),
//! against a real TLS server (rustls) with a throw-away CA made by openssl.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::harness::Project;

/// A TLS server (rustls) answering every request with 200 "ok"; its port.
fn serve(cert: &std::path::Path, key: &std::path::Path) -> u16 {
    let chain = vec![CertificateDer::from_pem_file(cert).unwrap()];
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let Ok(connection) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(connection, tcp);
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    port
}

#[test]
fn https_is_verified_against_the_trusted_certificates() {
    let project = Project::from_repo();
    let dir = project.path();
    // A throw-away CA, and a server certificate for localhost signed by it.
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl (installed by .ci/install-tools)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=shipit test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    let port = serve(&dir.join("cert.pem"), &dir.join("key.pem"));
    let url = format!("https://localhost:{port}");
    let health = |trust: &str| -> serde_json::Value {
        let run = project.shipit_env(
            &[
                "smoke",
                "staging",
                "--url",
                &url,
                "--timeout",
                "1s",
                "--output",
                "json",
            ],
            &[("SSL_CERT_FILE", trust)],
        );
        let report: serde_json::Value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("{}", run.stderr));
        report["checks"][0].clone()
    };
    // Trusted: the TLS handshake, certificate and name check pass, and
    // GET /health is answered 200.
    let trusted = health(dir.join("ca.pem").to_str().unwrap());
    assert_eq!(trusted["passed"], true, "{trusted}");
    // Not trusted: refused during the handshake.
    std::fs::write(
        dir.join("other.pem"),
        std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default(),
    )
    .unwrap();
    let untrusted = health(dir.join("other.pem").to_str().unwrap());
    assert_eq!(untrusted["passed"], false, "{untrusted}");
    assert!(
        untrusted["detail"]
            .as_str()
            .unwrap()
            .contains("certificate"),
        "{untrusted}"
    );
}
