//! The registry's own HTTP API (Docker Registry v2 / OCI distribution), as
//! much as signatures need: a manifest by tag or digest, a blob, a blob
//! upload and a manifest put. Over [`crate::http`], with the registry's auth
//! (Basic, or a Bearer token from the realm its 401 names). A registry on a
//! loopback address is spoken to over plain HTTP, as the engine does; every
//! other over HTTPS. Credentials are never printed.

use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use bollard::auth::DockerCredentials;

use crate::config::rules::ImageRef;
use crate::http::{self, Response};

const TIMEOUT: Duration = Duration::from_secs(30);

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// One repository of one registry.
pub struct Repository {
    /// `http(s)://host[:port]`.
    base: String,
    /// The repository's path in the registry: `team/app`, `library/redis`.
    pub path: String,
    /// `registry/path`, as a reference names it (signatures carry it).
    pub name: String,
    credentials: Option<DockerCredentials>,
    token: Mutex<Option<String>>,
}

/// A manifest as the registry holds it.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub digest: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    let hash = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = hash.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

impl Repository {
    /// The repository `reference` names (its tag or digest aside), with the
    /// credentials given for its registry.
    pub fn of(reference: &ImageRef, credentials: Option<DockerCredentials>) -> Repository {
        let host = reference.registry.as_deref().unwrap_or("docker.io");
        let (endpoint, path) = match host {
            "docker.io" | "index.docker.io" => (
                "registry-1.docker.io",
                if reference.path.contains('/') {
                    reference.path.clone()
                } else {
                    format!("library/{}", reference.path)
                },
            ),
            other => (other, reference.path.clone()),
        };
        let scheme = if is_loopback(endpoint) {
            "http"
        } else {
            "https"
        };
        Repository {
            base: format!("{scheme}://{endpoint}"),
            name: format!("{host}/{}", reference.path),
            path,
            credentials,
            token: Mutex::new(None),
        }
    }

    /// The manifest `reference` (a tag or a digest) names; `None` when the
    /// registry has none by that name.
    pub fn manifest(&self, reference: &str) -> Result<Option<Manifest>, String> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.path);
        let answer = self.send("GET", &url, &[("Accept", ACCEPT)], b"")?;
        match answer.status {
            200 => {}
            404 => return Ok(None),
            _ => return Err(refused("reading manifest", reference, &answer)),
        }
        let computed = digest_of(&answer.body);
        if reference.starts_with("sha256:") && computed != reference {
            return Err(format!(
                "the registry answered {reference} with a manifest whose digest is {computed}"
            ));
        }
        Ok(Some(Manifest {
            digest: answer
                .header("Docker-Content-Digest")
                .map_or(computed, str::to_string),
            media_type: answer
                .header("Content-Type")
                .unwrap_or_default()
                .to_string(),
            bytes: answer.body,
        }))
    }

    /// The blob `digest` names, checked against it.
    pub fn blob(&self, digest: &str) -> Result<Vec<u8>, String> {
        let url = format!("{}/v2/{}/blobs/{digest}", self.base, self.path);
        let mut answer = self.send("GET", &url, &[], b"")?;
        // The registry may send the blob from elsewhere (a storage redirect).
        for _ in 0..3 {
            if !matches!(answer.status, 301 | 302 | 303 | 307 | 308) {
                break;
            }
            let location = answer.header("Location").unwrap_or_default().to_string();
            answer = http::request(&self.absolute(&location), "GET", &[], b"", TIMEOUT)?;
        }
        if answer.status != 200 {
            return Err(refused("reading blob", digest, &answer));
        }
        let computed = digest_of(&answer.body);
        if computed != digest {
            return Err(format!(
                "the registry answered blob {digest} with bytes whose digest is {computed}"
            ));
        }
        Ok(answer.body)
    }

    /// Uploads `bytes` (in one request) and returns their digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String, String> {
        let digest = digest_of(bytes);
        // The trailing slash is the route's ([`http::parse_url`] drops a
        // path's last slash, not a query's).
        let url = format!("{}/v2/{}/blobs/uploads/?", self.base, self.path);
        let started = self.send("POST", &url, &[], b"")?;
        if started.status != 202 {
            return Err(refused("starting an upload", &digest, &started));
        }
        let location = started
            .header("Location")
            .ok_or("the registry started an upload without saying where to send it")?;
        let location = self.absolute(location);
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest={digest}");
        let done = self.send(
            "PUT",
            &url,
            &[("Content-Type", "application/octet-stream")],
            bytes,
        )?;
        if done.status != 201 {
            return Err(refused("uploading blob", &digest, &done));
        }
        Ok(digest)
    }

    /// Puts a manifest under `tag`; returns its digest.
    pub fn put_manifest(
        &self,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String, String> {
        let url = format!("{}/v2/{}/manifests/{tag}", self.base, self.path);
        let answer = self.send("PUT", &url, &[("Content-Type", media_type)], bytes)?;
        if answer.status != 201 {
            return Err(refused("putting manifest", tag, &answer));
        }
        Ok(digest_of(bytes))
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{location}", self.base)
        }
    }

    /// One request, authenticated as the registry asks: once with what is
    /// known, and again with Basic or a fresh token after a 401.
    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, String> {
        let attempt = |authorization: Option<&str>| {
            let mut all: Vec<(&str, &str)> = headers.to_vec();
            if let Some(value) = authorization {
                all.push(("Authorization", value));
            }
            http::request(url, method, &all, body, TIMEOUT)
                .map_err(|e| format!("registry {}: {e}", self.base))
        };
        let known = self.token.lock().map(|t| t.clone()).unwrap_or_default();
        let answer = attempt(known.as_deref())?;
        if answer.status != 401 {
            return Ok(answer);
        }
        let challenge = answer
            .header("WWW-Authenticate")
            .unwrap_or_default()
            .to_string();
        let authorization = self.authorize(&challenge)?;
        let answer = attempt(Some(&authorization))?;
        if answer.status == 401 {
            return Err(format!(
                "registry {} refused the credentials{} (401)",
                self.base,
                if self.credentials.is_some() {
                    ""
                } else {
                    ": none were found (SHIPIT_REGISTRY_USERNAME / SHIPIT_REGISTRY_PASSWORD, or docker login)"
                }
            ));
        }
        if let Ok(mut token) = self.token.lock() {
            *token = Some(authorization);
        }
        Ok(answer)
    }

    fn basic(&self) -> Option<String> {
        let c = self.credentials.as_ref()?;
        let user = c.username.as_deref()?;
        let password = c.password.as_deref().unwrap_or_default();
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        ))
    }

    /// The Authorization a 401's challenge asks for.
    fn authorize(&self, challenge: &str) -> Result<String, String> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return self.basic().ok_or_else(|| {
                format!(
                    "registry {} asks for credentials and none were found (SHIPIT_REGISTRY_USERNAME / SHIPIT_REGISTRY_PASSWORD, or docker login)",
                    self.base
                )
            });
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(format!(
                "registry {} asks for an authentication shipit does not speak ({scheme})",
                self.base
            ));
        }
        let params = challenge_params(params);
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("registry {}: a Bearer challenge without a realm", self.base))?;
        let mut query = Vec::new();
        for (k, v) in &params {
            if k == "service" || k == "scope" {
                query.push(format!("{k}={}", encode(v)));
            }
        }
        if !params.iter().any(|(k, _)| k == "scope") {
            query.push(format!(
                "scope={}",
                encode(&format!("repository:{}:pull,push", self.path))
            ));
        }
        let url = format!("{realm}?{}", query.join("&"));
        let basic = self.basic();
        let headers: Vec<(&str, &str)> = basic
            .as_deref()
            .map(|b| vec![("Authorization", b)])
            .unwrap_or_default();
        let answer = http::request(&url, "GET", &headers, b"", TIMEOUT)
            .map_err(|e| format!("the registry's token service {realm}: {e}"))?;
        if answer.status != 200 {
            return Err(format!(
                "the registry's token service {realm} refused a token ({})",
                answer.status
            ));
        }
        let json = answer.json().unwrap_or_default();
        let token = json
            .get("token")
            .or_else(|| json.get("access_token"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| format!("the registry's token service {realm} sent no token"))?;
        Ok(format!("Bearer {token}"))
    }
}

fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() => name,
        _ => host,
    };
    name == "localhost"
        || name == "[::1]"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `realm="https://auth",service="registry",scope="repository:a:pull"`.
fn challenge_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.push((key, value.to_string()));
        rest = next.trim_start_matches([',', ' ']);
    }
    out
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn refused(action: &str, what: &str, answer: &Response) -> String {
    let detail = answer
        .json()
        .and_then(|j| {
            j.get("errors")?.as_array()?.first().map(|e| {
                format!(
                    "{}: {}",
                    e.get("code").and_then(|c| c.as_str()).unwrap_or_default(),
                    e.get("message")
                        .and_then(|m| m.as_str())
                        .unwrap_or_default()
                )
            })
        })
        .unwrap_or_else(|| answer.text().chars().take(200).collect());
    format!(
        "the registry refused {action} {what} ({}): {}",
        answer.status,
        detail.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_challenge_is_read_whole() {
        let params = challenge_params(
            r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        );
        assert_eq!(
            params,
            vec![
                ("realm".into(), "https://auth.docker.io/token".into()),
                ("service".into(), "registry.docker.io".into()),
                ("scope".into(), "repository:samalba/my-app:pull,push".into()),
            ]
        );
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }

    #[test]
    fn docker_hub_and_loopback_registries_are_addressed_as_the_engine_does() {
        let hub = Repository::of(&ImageRef::parse("redis:7").unwrap(), None);
        assert_eq!(hub.base, "https://registry-1.docker.io");
        assert_eq!(hub.path, "library/redis");
        assert_eq!(hub.name, "docker.io/redis");
        let local = Repository::of(&ImageRef::parse("127.0.0.1:5000/team/app:1").unwrap(), None);
        assert_eq!(local.base, "http://127.0.0.1:5000");
        assert_eq!(local.name, "127.0.0.1:5000/team/app");
        let remote = Repository::of(&ImageRef::parse("ghcr.io/team/app:1").unwrap(), None);
        assert_eq!(remote.base, "https://ghcr.io");
        assert!(is_loopback("localhost:5000") && !is_loopback("10.0.0.1:5000"));
    }
}
