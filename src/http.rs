//! A small HTTP/1.1 client over std TCP (and rustls for `https://`, trusting
//! the system's certificates or `SSL_CERT_FILE`): enough for smoke tests,
//! gateway checks and webhooks, with a timeout on every step.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The most of an answer read (smoke checks, webhooks, health).
const MAX_ANSWER: usize = 16 << 20;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub tls: bool,
    /// `host:port` to dial.
    pub address: String,
    /// The Host header (and the TLS server name, without the port).
    pub host: String,
    /// The path, without a trailing `/` (empty for the root).
    pub path: String,
}

/// `http(s)://host[:port][/path]`.
pub fn parse_url(url: &str) -> Result<Url, String> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else {
        return Err("not an http:// or https:// URL".into());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err("expected http(s)://host[:port][/path]".into());
    }
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !authority.ends_with(']');
    let address = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:{}", if tls { 443 } else { 80 })
    };
    Ok(Url {
        tls,
        address,
        host: authority.to_string(),
        path: path.trim_end_matches('/').to_string(),
    })
}

/// How requests reach a server besides the URL: another address to connect
/// to (the URL's host still goes into SNI and `Host`), headers sent with
/// every request (never printed), and the TLS trust to use.
#[derive(Clone, Default)]
pub struct Route {
    pub connect: Option<String>,
    pub headers: Vec<(String, String)>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("connect", &self.connect)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// The system's trusted roots (or `SSL_CERT_FILE`'s).
pub fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    roots
}

/// A client configuration trusting `roots`.
pub fn client_config(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, String> {
    if roots.is_empty() {
        return Err(
            "no trusted certificates found (install ca-certificates, set SSL_CERT_FILE, or smoke.ca)"
                .into(),
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The system's roots plus the PEM certificates in `extra_ca`.
pub fn trusting(extra_ca: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = system_roots();
    let mut added = 0;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(extra_ca) {
        let cert = cert.map_err(|e| format!("the CA certificates are not valid PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("a CA certificate was refused: {e}"))?;
        added += 1;
    }
    if added == 0 {
        return Err("no certificate found in the CA file".into());
    }
    client_config(roots)
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG.get_or_init(|| client_config(system_roots())).clone()
}

/// One request on a fresh connection (`Connection: close`).
pub fn request(
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response, String> {
    request_via(&Route::default(), url, method, headers, body, timeout)
}

/// One request on a fresh connection, along `route`.
pub fn request_via(
    route: &Route,
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response, String> {
    let Url {
        tls,
        address,
        host,
        path,
    } = parse_url(url)?;
    let path = if path.is_empty() {
        "/".to_string()
    } else {
        path
    };
    let address = route.connect.clone().unwrap_or(address);
    let addr = address
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {address}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {address}"))?;
    let deadline = Instant::now() + timeout;
    let tcp = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    tcp.set_read_timeout(Some(timeout)).ok();
    tcp.set_write_timeout(Some(timeout)).ok();
    // The same socket, to shorten each read to what is left of the deadline.
    let socket = tcp
        .try_clone()
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let mut stream: Box<dyn ReadWrite> = if tls {
        let name = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
        let name =
            rustls::pki_types::ServerName::try_from(name.trim_matches(['[', ']']).to_string())
                .map_err(|e| format!("{name} is not a TLS server name: {e}"))?;
        let config = match &route.tls {
            Some(config) => config.clone(),
            None => tls_config()?,
        };
        let connection = rustls::ClientConnection::new(config, name)
            .map_err(|e| format!("TLS to {address}: {e}"))?;
        Box::new(rustls::StreamOwned::new(connection, tcp))
    } else {
        Box::new(tcp)
    };
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: shipit/{}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    for (k, v) in &route.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body))
        .map_err(|e| format!("sending to {address}: {e}"))?;
    // The whole answer within the deadline (a server that trickles bytes
    // does not hold the run), and no more than MAX_ANSWER bytes.
    let mut raw = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "{address} did not finish answering within {} s",
                timeout.as_secs_f64()
            ));
        }
        socket.set_read_timeout(Some(left)).ok();
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // A TLS peer that closes without close_notify, after a whole answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!(
                    "{address} did not finish answering within {} s",
                    timeout.as_secs_f64()
                ));
            }
            Err(e) => return Err(format!("reading from {address}: {e}")),
        }
        if raw.len() > MAX_ANSWER {
            return Err(format!(
                "{address} answered more than {} MiB: not read further",
                MAX_ANSWER >> 20
            ));
        }
        // A whole answer ends the read: a server, or a tunnel such as
        // `kubectl port-forward`, may be slow to close after it.
        if answered(&raw, method) {
            break;
        }
    }
    parse_response(&raw).ok_or_else(|| {
        format!(
            "{address} answered something that is not HTTP ({} bytes)",
            raw.len()
        )
    })
}

/// Whether `raw` holds a whole answer to `method`: its head and the body
/// its `Content-Length` or chunked encoding announces (or none, for HEAD,
/// 204 and 304). An answer whose end only the close marks is never whole.
fn answered(raw: &[u8], method: &str) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let Ok(head) = std::str::from_utf8(&raw[..end]) else {
        return false;
    };
    let mut lines = head.split("\r\n");
    let status: u16 = match lines.next().and_then(|l| l.split(' ').nth(1)) {
        Some(code) => code.parse().unwrap_or(0),
        None => return false,
    };
    if (100..200).contains(&status) {
        return false;
    }
    if method == "HEAD" || status == 204 || status == 304 {
        return true;
    }
    let body = &raw[end + 4..];
    for (k, v) in lines.filter_map(|l| l.split_once(':')) {
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked") {
            return dechunk(body).is_some();
        }
        if k.eq_ignore_ascii_case("content-length") {
            return v.parse::<usize>().is_ok_and(|n| body.len() >= n);
        }
    }
    false
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on a real socket that answers with `send` after the request.
    fn server(send: impl FnOnce(&mut TcpStream) + Send + 'static) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            send(&mut stream);
        });
        format!("http://{address}/")
    }

    #[test]
    fn an_answer_that_trickles_ends_at_the_deadline() {
        let url = server(|stream| {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
            for _ in 0..1000 {
                std::thread::sleep(Duration::from_millis(100));
                if stream.write_all(b"x").is_err() {
                    return;
                }
            }
        });
        let started = Instant::now();
        let answer = request(&url, "GET", &[], b"", Duration::from_secs(1));
        assert!(
            answer
                .unwrap_err()
                .contains("did not finish answering within 1 s")
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_whole_answer_is_read_without_waiting_for_the_close() {
        let url = server(|stream| {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            std::thread::sleep(Duration::from_secs(5));
        });
        let started = Instant::now();
        let answer = request(&url, "GET", &[], b"", Duration::from_secs(4)).unwrap();
        assert_eq!(answer.text(), "ok");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let whole = |raw: &[u8]| answered(raw, "GET");
        assert!(!whole(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok"));
        assert!(whole(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
        assert!(!whole(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n"
        ));
        assert!(whole(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        ));
        assert!(!whole(b"HTTP/1.1 200 OK\r\n\r\nuntil the close"));
        assert!(!whole(b"HTTP/1.1 100 Continue\r\n\r\n"));
        assert!(whole(b"HTTP/1.1 204 No Content\r\n\r\n"));
        assert!(answered(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
            "HEAD"
        ));
    }

    #[test]
    fn an_answer_past_the_cap_is_not_read() {
        let url = server(|stream| {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n\r\n");
            let chunk = vec![b'x'; 1 << 20];
            for _ in 0..64 {
                if stream.write_all(&chunk).is_err() {
                    return;
                }
            }
        });
        let answer = request(&url, "GET", &[], b"", Duration::from_secs(20));
        assert!(answer.unwrap_err().contains("more than 16 MiB"));
    }

    #[test]
    fn urls() {
        let url = |tls, address: &str, host: &str, path: &str| Url {
            tls,
            address: address.into(),
            host: host.into(),
            path: path.into(),
        };
        assert_eq!(
            parse_url("http://localhost:8081").unwrap(),
            url(false, "localhost:8081", "localhost:8081", "")
        );
        assert_eq!(
            parse_url("http://example.com/base/").unwrap(),
            url(false, "example.com:80", "example.com", "/base")
        );
        assert_eq!(
            parse_url("https://hooks.example.com/x/t0ken").unwrap(),
            url(
                true,
                "hooks.example.com:443",
                "hooks.example.com",
                "/x/t0ken"
            )
        );
        assert!(parse_url("ftp://x").is_err());
        assert!(parse_url("http://user:pw@x").is_err());
        // Errors never repeat the URL (webhook URLs carry tokens).
        assert!(
            !parse_url("ftp://secret-token")
                .unwrap_err()
                .contains("secret")
        );
    }

    #[test]
    fn responses() {
        let r =
            parse_response(b"HTTP/1.1 200 OK\r\nX-A: b\r\nContent-Length: 2\r\n\r\nok").unwrap();
        assert_eq!(
            (r.status, r.header("x-a"), r.text().as_str()),
            (200, Some("b"), "ok")
        );
        let r = parse_response(
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.text(), "abcde");
        assert!(parse_response(b"garbage").is_none());
    }
}
