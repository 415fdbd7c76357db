//! `shipit image gateway`: Debian's HAProxy and socat and exactly the
//! shared libraries they link, FROM scratch.

use std::path::Path;

use super::{RootImage, Source, libraries};
use crate::config::model::GatewayPackages;
use crate::error::Error;

/// The user the gateway runs as.
pub const GATEWAY_UID: u64 = 101;

/// What `shipit image gateway` makes and from what.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub image: String,
    pub haproxy_version: String,
    /// The pinned packages, `haproxy=VERSION socat=VERSION`.
    pub pinned: String,
    /// The Debian package of every file, `NAME=VERSION`, sorted.
    pub packages: Vec<String>,
    /// Every file of the image's root, with its source on this machine.
    pub files: Vec<String>,
}

/// The labels that say what a gateway image holds.
pub const LABEL_PINNED: &str = "dev.shipit.gateway.pinned";
pub const LABEL_PACKAGES: &str = "dev.shipit.gateway.packages";

/// `haproxy=V socat=V`, as labelled and compared.
pub fn pinned(pins: &GatewayPackages) -> String {
    pins.pins()
        .iter()
        .map(|(name, version)| format!("{name}={version}"))
        .collect::<Vec<_>>()
        .join(" ")
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

fn dpkg_query(args: &[String]) -> Result<String, Error> {
    crate::process::Program::new("dpkg-query", args)
        .read()
        .map_err(|e| {
            Error::Usage(format!(
                "the gateway image is made from Debian packages, and dpkg-query could not say which are installed: {}",
                e.message
            ))
        })
}

/// The installed version of each package (`None`: not installed).
fn installed(names: &[&str]) -> Vec<Option<String>> {
    names
        .iter()
        .map(|name| {
            let text = crate::process::Program::new(
                "dpkg-query",
                ["-W", "-f", "${db:Status-Abbrev}${Version}", name],
            )
            .read()
            .unwrap_or_default();
            text.strip_prefix("ii ")
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        })
        .collect()
}

/// The packages that hold these files, `NAME=VERSION`, sorted. Read from
/// dpkg's file lists (what `dpkg-query -S` reads), in one pass.
fn owners(files: &[String]) -> Result<Vec<String>, Error> {
    let wanted: Vec<Vec<String>> = files.iter().map(|f| candidates(f)).collect();
    let mut found: Vec<Option<String>> = vec![None; files.len()];
    let info = Path::new("/var/lib/dpkg/info");
    let entries = std::fs::read_dir(info).map_err(|e| {
        Error::Usage(format!(
            "the gateway image is made from Debian packages, and dpkg's database ({}) cannot be read: {e}",
            info.display()
        ))
    })?;
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(package) = file.strip_suffix(".list") else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        for line in text.lines() {
            for (i, paths) in wanted.iter().enumerate() {
                if found[i].is_none() && paths.iter().any(|p| p == line) {
                    found[i] = Some(package.split(':').next().unwrap_or(package).to_string());
                }
            }
        }
    }
    let mut names: Vec<String> = Vec::new();
    for (file, name) in files.iter().zip(found) {
        let name = name.ok_or_else(|| Error::Usage(format!("no Debian package holds {file}")))?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.sort();
    let mut args = vec![
        "-W".to_string(),
        "-f".into(),
        "${Package}=${Version}\n".into(),
    ];
    args.extend(names);
    let text = dpkg_query(&args)?;
    let mut packages: Vec<String> = text.lines().map(String::from).collect();
    packages.sort();
    packages.dedup();
    Ok(packages)
}

/// The paths dpkg may know a file by: as linked, as resolved, each with
/// and without `/usr` (merged-/usr systems list either).
fn candidates(file: &str) -> Vec<String> {
    let mut paths = vec![file.to_string()];
    if let Ok(real) = std::fs::canonicalize(file) {
        paths.push(real.display().to_string());
    }
    for path in paths.clone() {
        match path.strip_prefix("/usr") {
            Some(rest) => paths.push(rest.to_string()),
            None => paths.push(format!("/usr{path}")),
        }
    }
    paths.dedup();
    paths
}

/// This machine's Debian release (`bookworm`), from os-release.
fn codename() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

/// What the image's tag claims (`2.6.12-bookworm`) against what goes in.
fn tag_problems(image: &str, version: &str, codename: Option<&str>) -> Vec<String> {
    let Some((_, tag)) = image.rsplit_once(':').filter(|(_, t)| !t.contains('/')) else {
        return Vec::new();
    };
    let Some(named) = crate::config::model::tag_version(tag) else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let suffix = tag.split_once('-').map_or("", |(_, s)| s);
    if !crate::config::model::tag_names(named, version) {
        problems.push(format!(
            "the tag {tag} names HAProxy {named}, and the HAProxy here is {version}"
        ));
    }
    if let Some(codename) = codename
        && !suffix.is_empty()
        && suffix.chars().all(|c| c.is_ascii_lowercase())
        && suffix != codename
    {
        problems.push(format!(
            "the tag {tag} names the release {suffix}, and this machine runs {codename}"
        ));
    }
    problems
}

/// The gateway image of `pins`: refused unless this machine has exactly
/// the pinned packages, and unless the tag names the HAProxy inside.
pub fn gateway_plan(image: &str, pins: &GatewayPackages) -> Result<Plan, Error> {
    let (haproxy, socat) = binaries()?;
    let names: Vec<&str> = pins.pins().iter().map(|(n, _)| *n).collect();
    let have = installed(&names);
    let wrong: Vec<String> = pins
        .pins()
        .iter()
        .zip(&have)
        .filter(|((_, want), have)| have.as_deref() != Some(*want))
        .map(|((name, want), have)| match have {
            Some(have) => format!("{name} {have} is installed here, and deploy.gateway_packages.{name} pins {want}"),
            None => format!("{name} is not installed here as a Debian package (deploy.gateway_packages.{name} pins {want})"),
        })
        .collect();
    if !wrong.is_empty() {
        let install = pins
            .pins()
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(Error::Usage(format!(
            "the gateway image is made from the pinned packages only:\n  {}\ninstall them (apt-get install --allow-downgrades {install}), or pin what the hosts should run in deploy.gateway_packages",
            wrong.join("\n  ")
        )));
    }
    let version = haproxy_version(&haproxy)?;
    if version != pins.haproxy_upstream() {
        return Err(Error::Usage(format!(
            "{haproxy} says it is HAProxy {version}, and the package pinned is {} ({}): it was not installed by that package",
            pins.haproxy_upstream(),
            pins.haproxy
        )));
    }
    let claims = tag_problems(image, &version, codename().as_deref());
    if !claims.is_empty() {
        return Err(Error::Usage(format!(
            "{image} would name another gateway than the one made here: {}\nname it for what it holds, e.g. shipit-offline/haproxy:{version}-{}",
            claims.join("; "),
            codename().unwrap_or_else(|| "bookworm".into())
        )));
    }
    let mut files = vec![haproxy.clone(), socat.clone()];
    for binary in [&haproxy, &socat] {
        for lib in libraries(binary)? {
            if !files.contains(&lib) {
                files.push(lib);
            }
        }
    }
    files.sort();
    let packages = owners(&files)?;
    Ok(Plan {
        image: image.to_string(),
        haproxy_version: version,
        pinned: pinned(pins),
        packages,
        files,
    })
}

const PASSWD: &str =
    "root:x:0:0:root:/root:/sbin/nologin\ngateway:x:101:101:gateway:/nonexistent:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\ngateway:x:101:\n";

fn dockerfile(plan: &Plan) -> String {
    let version = &plan.haproxy_version;
    let (pinned, packages) = (&plan.pinned, plan.packages.join(" "));
    format!(
        "FROM scratch\n\
         COPY rootfs/ /\n\
         LABEL org.opencontainers.image.title=\"shipit gateway\" \\\n      \
         org.opencontainers.image.description=\"Debian HAProxy {version} and socat for shipit deploy, made offline\" \\\n      \
         org.opencontainers.image.version=\"{version}\" \\\n      \
         {LABEL_PINNED}=\"{pinned}\" \\\n      \
         {LABEL_PACKAGES}=\"{packages}\"\n\
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
        dockerfile: dockerfile(plan),
        files,
        dirs: vec!["/tmp".into(), "/etc/shipit-gateway".into()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            image: "shipit-offline/haproxy:2.6.12-bookworm".into(),
            haproxy_version: "2.6.12".into(),
            pinned: pinned(&GatewayPackages::default()),
            packages: vec!["haproxy=2.6.12-1+deb12u4".into(), "libc6=2.36-9".into()],
            files: Vec::new(),
        }
    }

    #[test]
    fn dockerfile_runs_unprivileged_and_says_what_it_holds() {
        let d = dockerfile(&plan());
        assert!(d.starts_with("FROM scratch\n"));
        assert!(d.contains("USER 101:101\n"));
        assert!(d.contains("\"/usr/sbin/haproxy\", \"-db\""));
        assert!(
            d.contains("dev.shipit.gateway.pinned=\"haproxy=2.6.12-1+deb12u4 socat=1.7.4.4-2\"")
        );
        assert!(
            d.contains("dev.shipit.gateway.packages=\"haproxy=2.6.12-1+deb12u4 libc6=2.36-9\"")
        );
    }

    #[test]
    fn a_tag_must_name_the_haproxy_and_release_inside() {
        let ok = "shipit-offline/haproxy:2.6.12-bookworm";
        assert!(tag_problems(ok, "2.6.12", Some("bookworm")).is_empty());
        assert!(tag_problems("127.0.0.1:5000/gw:stable", "2.6.12", Some("bookworm")).is_empty());
        assert!(tag_problems("127.0.0.1:5000/gw:1", "2.6.12", Some("bookworm")).is_empty());
        assert!(tag_problems("gw:2.6-bookworm", "2.6.12", Some("bookworm")).is_empty());
        let wrong = tag_problems(
            "shipit-offline/haproxy:2.8.5-noble",
            "2.6.12",
            Some("bookworm"),
        );
        assert_eq!(wrong.len(), 2, "{wrong:?}");
        assert!(wrong[0].contains("names HAProxy 2.8.5"), "{wrong:?}");
        assert!(wrong[1].contains("this machine runs bookworm"), "{wrong:?}");
    }
}
