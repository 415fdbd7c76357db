//! `shipit image gateway`: Debian's HAProxy and socat and exactly the
//! shared libraries they link, FROM scratch.

use std::path::Path;

use super::{RootImage, Source, libraries};
use crate::error::Error;

/// The user the gateway runs as.
pub const GATEWAY_UID: u64 = 101;

/// What `shipit image gateway` makes and from what.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub image: String,
    pub haproxy_version: String,
    /// Every file of the image's root, with its source on this machine.
    pub files: Vec<String>,
}

fn which(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find(|p| Path::new(p).exists())
        .map(|p| p.to_string())
}

fn binaries() -> Result<(String, String), Error> {
    let haproxy = which(&["/usr/sbin/haproxy", "/usr/bin/haproxy"]);
    let socat = which(&["/usr/bin/socat", "/usr/sbin/socat"]);
    match (haproxy, socat) {
        (Some(h), Some(s)) => Ok((h, s)),
        _ => Err(Error::Usage(
            "the gateway image is made from Debian's haproxy and socat, which are not installed here: apt-get install haproxy socat".into(),
        )),
    }
}

/// The HAProxy version on this machine (`2.6.12`).
fn haproxy_version(haproxy: &str) -> Result<String, Error> {
    let text = crate::process::Program::new(haproxy, ["-v"])
        .merge_stderr()
        .read()
        .map_err(|e| Error::Usage(format!("cannot run {haproxy} -v: {}", e.message)))?;
    text.split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .map(|v| v.split(['-', '+']).next().unwrap_or(v).to_string())
        .ok_or_else(|| Error::Usage(format!("{haproxy} -v printed no version")))
}

/// The default image name for the HAProxy on this machine.
pub fn gateway_plan(image: Option<&str>) -> Result<Plan, Error> {
    let (haproxy, socat) = binaries()?;
    let version = haproxy_version(&haproxy)?;
    let mut files = vec![haproxy.clone(), socat.clone()];
    for binary in [&haproxy, &socat] {
        for lib in libraries(binary)? {
            if !files.contains(&lib) {
                files.push(lib);
            }
        }
    }
    files.sort();
    Ok(Plan {
        image: image
            .map(String::from)
            .unwrap_or_else(|| format!("shipit-offline/haproxy:{version}-bookworm")),
        haproxy_version: version,
        files,
    })
}

const PASSWD: &str =
    "root:x:0:0:root:/root:/sbin/nologin\ngateway:x:101:101:gateway:/nonexistent:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\ngateway:x:101:\n";

fn dockerfile(version: &str) -> String {
    format!(
        "FROM scratch\n\
         COPY rootfs/ /\n\
         LABEL org.opencontainers.image.title=\"shipit gateway\" \\\n      \
         org.opencontainers.image.description=\"Debian HAProxy {version} and socat for shipit deploy, made offline\" \\\n      \
         org.opencontainers.image.version=\"{version}\"\n\
         USER 101:101\n\
         EXPOSE 8080 8443\n\
         STOPSIGNAL SIGUSR1\n\
         ENTRYPOINT [\"/usr/sbin/haproxy\", \"-db\"]\n\
         CMD [\"-f\", \"/etc/shipit-gateway/haproxy.cfg\"]\n"
    )
}

/// The gateway image: its rootfs from this machine, and its Dockerfile.
pub fn image(plan: &Plan) -> Result<RootImage, Error> {
    let mut files: Vec<(String, Source)> = Vec::new();
    for path in &plan.files {
        // Libraries are links to versioned files: the image holds the content.
        let target = if path.ends_with("/haproxy") {
            "/usr/sbin/haproxy".to_string()
        } else if path.ends_with("/socat") {
            "/usr/bin/socat".to_string()
        } else {
            path.clone()
        };
        files.push((target, Source::File(path.clone(), 0o755)));
    }
    files.push(("/etc/passwd".into(), Source::Bytes(PASSWD.into(), 0o644)));
    files.push(("/etc/group".into(), Source::Bytes(GROUP.into(), 0o644)));
    files.push((
        "/etc/nsswitch.conf".into(),
        Source::Bytes(b"hosts: files dns\n".to_vec(), 0o644),
    ));
    Ok(RootImage {
        image: plan.image.clone(),
        dockerfile: dockerfile(&plan.haproxy_version),
        files,
        dirs: vec!["/tmp".into(), "/etc/shipit-gateway".into()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfile_runs_unprivileged() {
        let d = dockerfile("2.6.12");
        assert!(d.starts_with("FROM scratch\n"));
        assert!(d.contains("USER 101:101\n"));
        assert!(d.contains("\"/usr/sbin/haproxy\", \"-db\""));
    }
}
