//! Where an engine is: `unix:///path`, `tcp://host:port` or
//! `ssh://[user@]host[:port]`, as `DOCKER_HOST` writes it.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(String),
    /// `host:port`; TLS when client certificates are configured.
    Tcp {
        host: String,
        port: u16,
    },
    /// Through the system `ssh` (its config, agent and known_hosts apply).
    Ssh {
        user: Option<String>,
        host: String,
        port: Option<u16>,
    },
}

pub const LOCAL_SOCKET: &str = "unix:///var/run/docker.sock";

impl Endpoint {
    /// Parses an engine address; the error says what is valid.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let valid = "ssh://[user@]host[:port], tcp://host:port or unix:///path";
        let port = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("\"{p}\" is not a port"))
        };
        let host_ok = |h: &str| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
        };
        if let Some(path) = text.strip_prefix("unix://") {
            return if path.starts_with('/') {
                Ok(Endpoint::Unix(path.to_string()))
            } else {
                Err(format!(
                    "\"{text}\": a unix socket needs an absolute path (unix:///var/run/docker.sock)"
                ))
            };
        }
        if let Some(rest) = text.strip_prefix("tcp://") {
            let rest = rest.trim_end_matches('/');
            let Some((host, p)) = rest.rsplit_once(':') else {
                return Err(format!(
                    "\"{text}\" has no port (tcp://host:2376 for TLS, as Docker does it)"
                ));
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if !host_ok(host) {
                return Err(format!("\"{text}\" has no valid host name"));
            }
            return Ok(Endpoint::Tcp {
                host: host.to_string(),
                port: port(p)?,
            });
        }
        if let Some(rest) = text.strip_prefix("ssh://") {
            let rest = rest.trim_end_matches('/');
            let (user, hostport) = match rest.rsplit_once('@') {
                Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
                Some(_) => return Err(format!("\"{text}\" has an empty user name")),
                None => (None, rest),
            };
            let (host, p) = match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(port(p)?)),
                None => (hostport, None),
            };
            if !host_ok(host) || host.contains(':') {
                return Err(format!("\"{text}\" has no valid host name"));
            }
            return Ok(Endpoint::Ssh {
                user,
                host: host.to_string(),
                port: p,
            });
        }
        Err(format!("\"{text}\" is not an engine address: use {valid}"))
    }

    /// The engine of `DOCKER_HOST`, or the local socket.
    pub fn from_env() -> Result<Endpoint, String> {
        match std::env::var("DOCKER_HOST") {
            Ok(h) if !h.is_empty() => Endpoint::parse(&h.replacen("http://", "tcp://", 1)),
            _ => Endpoint::parse(LOCAL_SOCKET),
        }
    }

    /// Where ports the engine publishes answer from here: the engine's host
    /// name, or loopback for a local socket.
    pub fn published_host(&self) -> String {
        match self {
            Endpoint::Unix(_) => "127.0.0.1".into(),
            Endpoint::Tcp { host, .. } | Endpoint::Ssh { host, .. } => host.clone(),
        }
    }
}

/// Checks, with the system `ssh` and `StrictHostKeyChecking=yes`, that an
/// ssh:// engine's host key is already known (known_hosts, or the user's ssh
/// config), and that the login works without a prompt. bollard's own ssh
/// connection would accept a key it has never seen; this refuses it first.
pub async fn verify_host_key(
    endpoint: &Endpoint,
    limit: std::time::Duration,
) -> Result<(), String> {
    let Endpoint::Ssh { user, host, port } = endpoint else {
        return Ok(());
    };
    let destination = match user {
        Some(u) => format!("{u}@{host}"),
        None => host.clone(),
    };
    let mut ssh = tokio::process::Command::new("ssh");
    ssh.args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .args(["-o", &format!("ConnectTimeout={}", limit.as_secs().max(1))]);
    if let Some(p) = port {
        ssh.args(["-p", &p.to_string()]);
    }
    ssh.args(["--", &destination, "true"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(limit, ssh.output())
        .await
        .map_err(|_| format!("ssh {destination}: no answer within {} s", limit.as_secs()))?
        .map_err(|e| format!("cannot run ssh (the system OpenSSH client is needed): {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr
        .lines()
        .rfind(|l| !l.trim().is_empty() && !l.starts_with("Warning: Permanently added"))
        .unwrap_or("ssh failed")
        .trim()
        .to_string();
    if stderr.contains("Host key verification failed")
        || stderr.contains("No ED25519 host key is known")
        || stderr.contains("host key is known")
    {
        Err(format!(
            "{last}: the host key of {host} is not in known_hosts; add it (`ssh-keyscan` it once, then check its fingerprint; in CI, the SHIPIT_SSH_KNOWN_HOSTS secret)"
        ))
    } else {
        Err(last)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{path}"),
            Endpoint::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            Endpoint::Ssh { user, host, port } => {
                write!(f, "ssh://")?;
                if let Some(u) = user {
                    write!(f, "{u}@")?;
                }
                write!(f, "{host}")?;
                if let Some(p) = port {
                    write!(f, ":{p}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_docker_host_takes() {
        assert_eq!(
            Endpoint::parse("ssh://deploy@web1:2222").unwrap(),
            Endpoint::Ssh {
                user: Some("deploy".into()),
                host: "web1".into(),
                port: Some(2222)
            }
        );
        assert_eq!(
            Endpoint::parse("ssh://web1").unwrap().to_string(),
            "ssh://web1"
        );
        assert_eq!(
            Endpoint::parse("tcp://10.0.0.2:2376").unwrap(),
            Endpoint::Tcp {
                host: "10.0.0.2".into(),
                port: 2376
            }
        );
        assert_eq!(
            Endpoint::parse("unix:///run/docker.sock").unwrap(),
            Endpoint::Unix("/run/docker.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://10.0.0.2:2376")
                .unwrap()
                .published_host(),
            "10.0.0.2"
        );
        for bad in [
            "web1",
            "tcp://web1",
            "tcp://web1:0",
            "ssh://@web1",
            "ssh://web 1",
            "unix://run/docker.sock",
            "http2://x:1",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
