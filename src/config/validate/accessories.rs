//! `[accessories.NAME]` and the deploy's release command: names, images,
//! hosts, ports, volumes, files and commands, each problem at its key.

use super::{Checker, DNS_LABEL};
use crate::config::model::{Accessory, Config};
use crate::config::rules;

pub(super) fn accessories(c: &mut Checker<'_>, config: &Config) {
    for (name, a) in &config.accessories {
        let key = |field: &str| format!("accessories.{name}.{field}");
        c.is(&format!("accessories.{name}"), name, &DNS_LABEL);
        c.check(
            !reserved(name),
            &format!("accessories.{name}"),
            format!("`{name}` is a name shipit gives its own containers"),
            "another name: not `gateway`, `release-*`, `run-*` or `rN-*`",
        );
        if a.image.is_empty() {
            c.fail(
                &format!("accessories.{name}"),
                format!("accessory `{name}` has no image"),
                "set `image` to a pinned reference, e.g. image = \"postgres:15.8-bookworm\"",
            );
        } else {
            c.pinned_image(&key("image"), &a.image, false);
        }
        hosts(c, config, name, a);
        if a.port != 0 {
            c.port(&key("port"), a.port);
        }
        if !a.publish.is_empty() {
            c.check(
                published(&a.publish),
                &key("publish"),
                format!("\"{}\" is not an address and port to publish on", a.publish),
                "\"IP:PORT\" on the host, e.g. \"127.0.0.1:5432\" (this host only) or \"10.0.0.5:5432\" (a private network)",
            );
            c.check(
                a.port != 0,
                &key("publish"),
                format!("accessory `{name}` publishes a port but sets no `port`"),
                "set `port` to the port it listens on inside its container",
            );
        }
        if !a.user.is_empty() {
            c.check(
                a.user
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-:".contains(&b)),
                &key("user"),
                format!("\"{}\" is not a user", a.user),
                "a uid[:gid] or a user name the image knows, e.g. \"999:999\" or \"postgres\"",
            );
        }
        for var in a.env.keys() {
            c.check(
                rules::is_env_name(var),
                &key(&format!("env.{var}")),
                format!("\"{var}\" is not a valid environment variable name"),
                "letters, digits and `_`, not starting with a digit",
            );
        }
        for (secret, reference) in &a.secrets {
            let k = key(&format!("secrets.{secret}"));
            c.check(
                rules::is_env_name(secret),
                &k,
                format!("\"{secret}\" is not a valid environment variable name"),
                "letters, digits and `_`, not starting with a digit",
            );
            if !rules::is_secret_reference(reference) {
                c.fail_sensitive(&k, format!("secret `{secret}` is not given as a reference (secret values never go into config)"), "a reference: \"env:NAME\" (read from the deploying environment) or \"file:/absolute/path\"");
            }
        }
        for (i, volume) in a.volumes.iter().enumerate() {
            let ok = volume
                .split_once(':')
                .is_some_and(|(v, path)| rules::is_dns_label(v) && rules::is_safe_abs_path(path));
            c.check(
                ok,
                &key(&format!("volumes.{i}")),
                format!("\"{volume}\" is not a volume and a path"),
                "\"VOLUME:/path\": a volume name (lowercase letters, digits, `-`) and an absolute path, e.g. \"data:/var/lib/postgresql/data\"",
            );
        }
        for (i, file) in a.files.iter().enumerate() {
            let ok = file.split_once(':').is_some_and(|(local, path)| {
                !local.is_empty()
                    && !local.starts_with('/')
                    && !local.split('/').any(|p| p == "..")
                    && rules::is_safe_abs_path(path)
                    && !path.ends_with('/')
            });
            c.check(
                ok,
                &key(&format!("files.{i}")),
                format!("\"{file}\" is not a project file and a path"),
                "\"LOCAL:/path\": a file inside the project (relative) and where it goes in the container, e.g. \"config/redis.conf:/etc/redis/redis.conf\"",
            );
        }
        for field in ["cmd", "healthcheck"] {
            let list = if field == "cmd" {
                &a.cmd
            } else {
                &a.healthcheck
            };
            command(c, &key(field), list);
        }
        command(c, &key("backup.command"), &a.backup.command);
        command(c, &key("backup.restore"), &a.backup.restore);
        match (a.backup.command.is_empty(), a.backup.restore.is_empty()) {
            (false, true) => c.fail(
                &key("backup.command"),
                format!("accessory `{name}` has a backup command but no restore"),
                "a backup you cannot restore is not a backup: set `restore` (reads a dump on its standard input), e.g. restore = [\"pg_restore\", \"--clean\", \"--if-exists\", \"-d\", \"app\"]",
            ),
            (true, false) => c.fail(
                &key("backup.restore"),
                format!("accessory `{name}` has a restore command but no backup command"),
                "set `command` (writes a dump to its standard output), e.g. command = [\"pg_dump\", \"-Fc\", \"app\"]",
            ),
            _ => {}
        }
    }
}

/// The release command and its time limit.
pub(super) fn release(c: &mut Checker<'_>, config: &Config) {
    command(c, "deploy.release_command", &config.deploy.release_command);
    c.duration("deploy.release_timeout", &config.deploy.release_timeout);
}

/// An exec-form command: no empty program, no empty word at its start.
pub(super) fn command(c: &mut Checker<'_>, key: &str, list: &[String]) {
    if let Some(first) = list.first() {
        c.check(
            !first.trim().is_empty(),
            key,
            "the command's program is empty",
            "a list of words, the program first, e.g. [\"python3\", \"manage.py\", \"migrate\"]",
        );
    }
}

/// Names shipit's own containers take after `APP-ENV-` (`rN-I`, a
/// replica; `rN-ROLE-I`, a role's).
fn reserved(name: &str) -> bool {
    let replica = name
        .strip_prefix('r')
        .and_then(|r| r.split_once('-'))
        .is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && a.bytes().all(|c| c.is_ascii_digit())
        });
    name == "gateway" || name.starts_with("release-") || name.starts_with("run-") || replica
}

/// `IP:PORT` with an IPv4 address and a port from 1 to 65535.
fn published(s: &str) -> bool {
    s.rsplit_once(':').is_some_and(|(ip, port)| {
        ip.parse::<std::net::Ipv4Addr>().is_ok() && port.parse::<u16>().is_ok_and(|p| p > 0)
    })
}

/// Every named host is one of `deploy.hosts`; without them there is one engine.
fn hosts(c: &mut Checker<'_>, config: &Config, name: &str, a: &Accessory) {
    let key = format!("accessories.{name}.hosts");
    let known = &config.deploy.hosts;
    if known.is_empty() {
        c.check(
            a.hosts.is_empty(),
            &key,
            format!("accessory `{name}` names hosts, but deploy.hosts is empty"),
            "leave `hosts` out: without deploy.hosts the environment has one engine (DOCKER_HOST)",
        );
        return;
    }
    for host in &a.hosts {
        let found = known
            .iter()
            .any(|h| h.engine == *host || (!h.address.is_empty() && h.address == *host));
        c.check(
            found,
            &key,
            format!("\"{host}\" is not one of deploy.hosts"),
            &format!(
                "one of: {}",
                known
                    .iter()
                    .map(|h| format!("\"{}\"", h.engine))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
}
