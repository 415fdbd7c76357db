//! Syntax rules for the values shipit puts into generated files.
//!
//! Each parser accepts only what every target format can carry safely, so a
//! value that passes here never needs escaping in nginx or Dockerfile syntax.

use std::time::Duration;

/// RFC 1123 label: lowercase alphanumerics and `-`, starting and ending alphanumeric, at most 63.
/// The Kubernetes minor versions shipit renders for: 1.19 brought the
/// `networking.k8s.io/v1` Ingress and `seccompProfile`, the oldest APIs the
/// manifests use; 1.34 is the newest whose schemas the validators carry.
pub const KUBERNETES_VERSIONS: (u32, u32) = (19, 34);

/// The minor of a Kubernetes version `1.MINOR` or `1.MINOR.PATCH`
/// (a leading `v` is allowed).
pub fn kubernetes_minor(version: &str) -> Option<u32> {
    let v = version.strip_prefix('v').unwrap_or(version);
    let mut parts = v.split('.');
    let major = parts.next()?;
    let minor = parts.next()?;
    let patch = parts.next();
    let number = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    if major != "1" || !number(minor) || parts.next().is_some() || patch.is_some_and(|p| !number(p))
    {
        return None;
    }
    minor.parse().ok()
}

pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A hostname for nginx `server_name` or an Ingress host: a subdomain, optionally `*.`-prefixed.
pub fn is_hostname(s: &str) -> bool {
    is_dns_subdomain(s.strip_prefix("*.").unwrap_or(s))
}

/// A POSIX environment variable name.
pub fn is_env_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// An absolute path made of characters safe in every target syntax.
pub fn is_safe_abs_path(s: &str) -> bool {
    s.starts_with('/')
        && !s.contains("//")
        && !s.split('/').any(|part| part == "..")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b))
}

/// An HTTP path for a route such as `/health`.
pub fn is_http_path(s: &str) -> bool {
    s.starts_with('/')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._~/-".contains(&b))
}

/// A duration such as `30s`, `500ms`, `1m30s`, `2h`, `7d`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    if s.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number * 60),
            "h" => Duration::from_secs(number * 3600),
            "d" => Duration::from_secs(number * 86_400),
            _ => return None,
        };
        total += part;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// A Kubernetes CPU quantity (`250m`, `1`, `0.5`) in millicores.
pub fn parse_cpu(s: &str) -> Option<u64> {
    if let Some(milli) = s.strip_suffix('m') {
        return (!milli.is_empty() && milli.bytes().all(|b| b.is_ascii_digit()))
            .then(|| milli.parse().ok())?;
    }
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 3 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || (s.contains('.') && frac.is_empty()) {
        return None;
    }
    let frac_milli: u64 = format!("{frac:0<3}").parse().ok()?;
    whole
        .parse::<u64>()
        .ok()?
        .checked_mul(1000)?
        .checked_add(frac_milli)
}

/// A Kubernetes memory quantity (`64Mi`, `1Gi`, `500M`, `1048576`) in bytes.
pub fn parse_memory(s: &str) -> Option<u128> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let number: u128 = s[..digits].parse().ok()?;
    let factor: u128 = match &s[digits..] {
        "" => 1,
        "k" => 1000,
        "M" => 1000u128.pow(2),
        "G" => 1000u128.pow(3),
        "T" => 1000u128.pow(4),
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// An nginx rate (`10r/s`, `600r/m`) as (count, unit).
pub fn parse_rate(s: &str) -> Option<(u32, char)> {
    let (count, unit) = s.split_once("r/")?;
    let unit = match unit {
        "s" => 's',
        "m" => 'm',
        _ => return None,
    };
    let count: u32 = (!count.is_empty() && count.bytes().all(|b| b.is_ascii_digit()))
        .then(|| count.parse().ok())??;
    (count > 0).then_some((count, unit))
}

/// An nginx size (`16k`, `1m`, `512`) in bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 12 {
        return None;
    }
    let number: u64 = s[..digits].parse().ok()?;
    let factor = match &s[digits..] {
        "" => 1,
        "k" | "K" => 1 << 10,
        "m" | "M" => 1 << 20,
        "g" | "G" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// An absolute `http` or `https` URL without characters that need quoting.
pub fn is_http_url(s: &str) -> bool {
    let Some(rest) = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    // Without its port: `host:8080` and `[::1]:8080` have a host, `:8080` none.
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    !host.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"\"'<>\\`{}|^".contains(&b))
}

/// A parsed container image reference: `[registry/]path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub registry: Option<String>,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef, String> {
        if s.is_empty() {
            return Err("the reference is empty".into());
        }
        let (name, digest) = match s.split_once('@') {
            Some((name, digest)) => {
                if !is_digest(digest) {
                    return Err(format!(
                        "`{digest}` is not a digest (sha256: followed by 64 lowercase hex digits)"
                    ));
                }
                (name, Some(digest.to_string()))
            }
            None => (s, None),
        };
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
            None => (name, None),
        };
        if let Some(tag) = tag
            && !is_tag(tag)
        {
            return Err(format!(
                "`{tag}` is not a valid tag (letters, digits, `_`, `.`, `-`; at most 128; not starting with `.` or `-`)"
            ));
        }
        let mut parts: Vec<&str> = name.split('/').collect();
        let registry =
            if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
                let host = parts.remove(0);
                if !is_registry_host(host) {
                    return Err(format!(
                        "`{host}` is not a registry host (host or host:port)"
                    ));
                }
                Some(host.to_string())
            } else {
                None
            };
        if let Some(bad) = parts.iter().find(|p| !is_path_component(p)) {
            return Err(format!(
                "`{bad}` is not a valid repository path component (lowercase letters and digits, separated by `.`, `_`, `__` or `-`)"
            ));
        }
        Ok(ImageRef {
            registry,
            path: parts.join("/"),
            tag: tag.map(str::to_string),
            digest,
        })
    }
}

pub fn is_tag(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && !s.starts_with(['.', '-'])
}

pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// An IPv4 or IPv6 network in CIDR notation with no host bits set: `10.0.0.0/8`, `fd00::/8`.
pub fn is_cidr(s: &str) -> bool {
    let Some((addr, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u32>() else {
        return false;
    };
    if bits.to_string().len() != s.len() - addr.len() - 1 {
        return false;
    }
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) if bits <= 32 => {
            u32::from(a).checked_shl(bits).unwrap_or(0) == 0
        }
        Ok(std::net::IpAddr::V6(a)) if bits <= 128 => {
            u128::from(a).checked_shl(bits).unwrap_or(0) == 0
        }
        _ => false,
    }
}

pub fn is_registry_host(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let host_ok = host == "localhost"
        || is_dns_subdomain(&host.to_ascii_lowercase())
        || host.parse::<std::net::Ipv4Addr>().is_ok();
    host_ok && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0))
}

/// One repository path component: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
pub fn is_path_component(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.is_empty()
        || !bytes[0].is_ascii_alphanumeric()
        || !bytes[bytes.len() - 1].is_ascii_alphanumeric()
    {
        return false;
    }
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let run = bytes[i..]
            .iter()
            .take_while(|c| !c.is_ascii_alphanumeric())
            .count();
        let sep = &s[i..i + run];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
        i += run;
    }
    true
}

/// Text that can stand in a double-quoted Dockerfile or nginx string as it is.
pub fn is_plain_text(s: &str) -> bool {
    s.chars()
        .all(|c| !c.is_control() && !matches!(c, '"' | '\\' | '$' | '`' | '{' | '}' | ';' | '\''))
        && !s.contains('\u{2028}')
}

/// `env:NAME` or `file:/absolute/path`: where a secret is read from, never the secret.
pub fn is_secret_reference(reference: &str) -> bool {
    match reference.split_once(':') {
        Some(("env", var)) => is_env_name(var),
        Some(("file", path)) => is_safe_abs_path(path),
        _ => false,
    }
}

/// Whether an environment variable name suggests its value is a secret.
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
        "ACCESS_KEY",
    ]
    .iter()
    .any(|word| upper.contains(word))
}

/// An exact Debian package version: `[EPOCH:]UPSTREAM[-REVISION]`, the
/// upstream part starting with a digit (deb-version(7)).
pub fn is_debian_version(v: &str) -> bool {
    let (epoch, rest) = v.split_once(':').unwrap_or(("0", v));
    let upstream = crate::config::model::upstream_version(v);
    !epoch.is_empty()
        && epoch.bytes().all(|b| b.is_ascii_digit())
        && upstream.starts_with(|c: char| c.is_ascii_digit())
        && !rest.ends_with('-')
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+~-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(is_dns_label("calculator-staging"));
        for bad in ["", "-a", "a-", "Calc", "a_b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
        assert!(is_hostname("api.example.com"));
        assert!(is_hostname("*.example.com"));
        assert!(!is_hostname("api..example.com"));
        assert!(!is_hostname("api.example.com;"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        for ok in [
            "10.0.0.0/8",
            "127.0.0.0/8",
            "0.0.0.0/0",
            "192.168.1.7/32",
            "fd00::/8",
            "::/0",
        ] {
            assert!(is_cidr(ok), "{ok}");
        }
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0.0/08",
            "x/8",
            "fd00::1/8",
            "10.0.0.0/+8",
        ] {
            assert!(!is_cidr(bad), "{bad}");
        }
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86_400)));
        for bad in ["", "30", "s", "1.5s", "10 s", "3w", "-1s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_cpu("250m"), Some(250));
        assert_eq!(parse_cpu("1"), Some(1000));
        assert_eq!(parse_cpu("0.5"), Some(500));
        for bad in ["", "m", "1.", ".5", "1.2345", "1cpu", "-1"] {
            assert_eq!(parse_cpu(bad), None, "{bad}");
        }
        assert_eq!(parse_memory("64Mi"), Some(64 << 20));
        assert_eq!(parse_memory("1G"), Some(1_000_000_000));
        for bad in ["", "Mi", "64MB", "1.5Gi", "64mi"] {
            assert_eq!(parse_memory(bad), None, "{bad}");
        }
    }

    #[test]
    fn rates_and_sizes() {
        assert_eq!(parse_rate("10r/s"), Some((10, 's')));
        assert_eq!(parse_rate("600r/m"), Some((600, 'm')));
        for bad in ["10", "10r/h", "r/s", "0r/s", "10 r/s"] {
            assert_eq!(parse_rate(bad), None, "{bad}");
        }
        assert_eq!(parse_size("16k"), Some(16 << 10));
        assert_eq!(parse_size("1m"), Some(1 << 20));
        assert_eq!(parse_size("16kb"), None);
    }

    #[test]
    fn image_references() {
        let r = ImageRef::parse("127.0.0.1:5000/shipit/calculator:1.2.3").unwrap();
        assert_eq!(r.registry.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(r.path, "shipit/calculator");
        assert_eq!(r.tag.as_deref(), Some("1.2.3"));
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("rust:1.95.0-slim@{digest}")).unwrap();
        assert_eq!(
            (r.tag.as_deref(), r.digest.as_deref()),
            (Some("1.95.0-slim"), Some(digest.as_str()))
        );
        assert!(ImageRef::parse("Rust:1").is_err());
        assert!(ImageRef::parse("rust:-1").is_err());
        assert!(ImageRef::parse("rust@sha256:abc").is_err());
        assert!(ImageRef::parse("a//b").is_err());
        assert!(ImageRef::parse("my_app__x/b-c").is_ok());
    }

    #[test]
    fn other_rules() {
        assert!(is_env_name("LOG_LEVEL") && !is_env_name("1X") && !is_env_name("A-B"));
        assert!(
            is_safe_abs_path("/etc/nginx/tls/tls.crt")
                && !is_safe_abs_path("etc/x")
                && !is_safe_abs_path("/a/../b")
        );
        assert!(
            is_http_url("https://calc.example.com/x")
                && !is_http_url("ftp://x")
                && !is_http_url("http:// x")
                && !is_http_url("http://:8080/alerts")
                && is_http_url("http://[::1]:8080/")
                && is_http_url("http://10.0.0.1:8080")
        );
        assert!(
            looks_secret("DB_PASSWORD")
                && looks_secret("github_token")
                && !looks_secret("LOG_LEVEL")
        );
        assert!(
            is_plain_text("A calculator, v2") && !is_plain_text("a\"b") && !is_plain_text("a\nb")
        );
    }
}
