//! Images made from this machine's Debian packages, for engines that can
//! pull nothing (`shipit image gateway`): the binaries and exactly the
//! shared libraries they link, FROM scratch, with fixed times and owners so
//! the same packages give the same layer.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::engine::Engine;
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
    let text = duct::cmd!(haproxy, "-v")
        .stderr_to_stdout()
        .read()
        .map_err(|e| Error::Usage(format!("cannot run {haproxy} -v: {e}")))?;
    text.split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .map(|v| v.split(['-', '+']).next().unwrap_or(v).to_string())
        .ok_or_else(|| Error::Usage(format!("{haproxy} -v printed no version")))
}

/// The shared libraries (and the loader) a binary links, by path.
fn libraries(binary: &str) -> Result<Vec<String>, Error> {
    let text = duct::cmd!("ldd", binary)
        .read()
        .map_err(|e| Error::Usage(format!("cannot list the libraries of {binary} (ldd): {e}")))?;
    Ok(text
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(String::from)
        .collect())
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

/// The build context: the Dockerfile and `rootfs/`, as a deterministic tar.
fn context(plan: &Plan) -> Result<Vec<u8>, Error> {
    let io = |what: &str, e: std::io::Error| Error::Usage(format!("cannot pack {what}: {e}"));
    let mut entries: BTreeMap<String, (Vec<u8>, u32)> = BTreeMap::new();
    for path in &plan.files {
        // Libraries are links to versioned files: the image holds the content.
        let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
        let target = if path.ends_with("/haproxy") {
            "/usr/sbin/haproxy".to_string()
        } else if path.ends_with("/socat") {
            "/usr/bin/socat".to_string()
        } else {
            path.clone()
        };
        entries.insert(format!("rootfs{target}"), (bytes, 0o755));
    }
    entries.insert("rootfs/etc/passwd".into(), (PASSWD.into(), 0o644));
    entries.insert("rootfs/etc/group".into(), (GROUP.into(), 0o644));
    entries.insert(
        "rootfs/etc/nsswitch.conf".into(),
        (b"hosts: files dns\n".to_vec(), 0o644),
    );
    entries.insert(
        "Dockerfile".into(),
        (dockerfile(&plan.haproxy_version).into_bytes(), 0o644),
    );
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs: Vec<String> = vec!["rootfs/tmp".into(), "rootfs/etc/shipit-gateway".into()];
    for name in entries.keys() {
        for dir in Path::new(name).ancestors().skip(1) {
            let dir = dir.display().to_string();
            if !dir.is_empty() && !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs.sort();
    for dir in &dirs {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_mode(if dir == "rootfs/tmp" { 0o1777 } else { 0o755 });
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append_data(&mut header, dir, std::io::empty())
            .map_err(|e| io(dir, e))?;
    }
    for (name, (bytes, mode)) in &entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(*mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append_data(&mut header, name, bytes.as_slice())
            .map_err(|e| io(name, e))?;
    }
    builder.into_inner().map_err(|e| io("the context", e))
}

/// Builds and tags the gateway image; `Ok(false)` when it was already there.
pub async fn make_gateway(engine: &Engine, plan: &Plan, force: bool) -> Result<bool, Error> {
    if !force && engine.image_id(&plan.image).await.is_some() {
        return Ok(false);
    }
    let tar = bytes::Bytes::from(context(plan)?);
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(tar) });
    let id = engine
        .build(
            stream,
            &crate::engine::BuildSpec {
                dockerfile: "Dockerfile",
                target: "",
                build_args: &HashMap::new(),
                labels: &HashMap::new(),
                no_cache: false,
            },
            |_| {},
        )
        .await?;
    let (repo, tag) = plan
        .image
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .unwrap_or((plan.image.as_str(), "latest"));
    engine.tag(&id, repo, tag).await?;
    Ok(true)
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
