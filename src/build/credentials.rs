//! Registry credentials, scoped to the registry they belong to:
//! `SHIPIT_REGISTRY_USERNAME` / `SHIPIT_REGISTRY_PASSWORD` are `image.registry`'s
//! and go to no other registry; every registry (that one too, without them) is
//! looked up in Docker's `config.json` (`auths`, `credsStore`, `credHelpers`;
//! `DOCKER_CONFIG` honoured). Never printed.

use bollard::auth::DockerCredentials;

/// Where the credentials came from, for messages (never the values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Environment,
    DockerConfig,
    None,
}

/// The registry host an image reference is pulled from, as the engine reads
/// it: the first component when it names a host (a dot, a port or
/// `localhost`) and more follow, else Docker Hub.
pub fn registry_of(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// One name for each registry: Docker Hub's aliases are one registry.
fn canonical(host: &str) -> &str {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io",
        other => other,
    }
}

/// The credentials for `registry` (a host, or `image.registry` with a path);
/// `own` is `image.registry`, the only registry the environment's credentials
/// are given to.
pub fn for_registry(registry: &str, own: &str) -> (Option<DockerCredentials>, Source) {
    let environment = match (
        std::env::var("SHIPIT_REGISTRY_USERNAME"),
        std::env::var("SHIPIT_REGISTRY_PASSWORD"),
    ) {
        (Ok(username), Ok(password)) => Some((username, password)),
        _ => None,
    };
    let host = registry.split('/').next().unwrap_or_default();
    if let Some(credentials) = environment_for(host, own, environment) {
        return (Some(credentials), Source::Environment);
    }
    let credentials = |username, password, identitytoken| DockerCredentials {
        username,
        password,
        identitytoken,
        serveraddress: Some(host.to_string()),
        ..Default::default()
    };
    match docker_credential::get_credential(host) {
        Ok(docker_credential::DockerCredential::UsernamePassword(username, password)) => (
            Some(credentials(Some(username), Some(password), None)),
            Source::DockerConfig,
        ),
        Ok(docker_credential::DockerCredential::IdentityToken(token)) => (
            Some(credentials(None, None, Some(token))),
            Source::DockerConfig,
        ),
        Err(_) => (None, Source::None),
    }
}

/// The environment's credentials, when `host` is `own`'s registry.
fn environment_for(
    host: &str,
    own: &str,
    environment: Option<(String, String)>,
) -> Option<DockerCredentials> {
    let own = format!("{own}/image");
    if canonical(host) != canonical(registry_of(&own)) {
        return None;
    }
    let (username, password) = environment?;
    Some(DockerCredentials {
        username: Some(username),
        password: Some(password),
        serveraddress: Some(host.to_string()),
        ..Default::default()
    })
}

/// The credentials for pulling or inspecting `reference`: its own registry's.
pub fn for_reference(reference: &str, own: &str) -> Option<DockerCredentials> {
    for_registry(registry_of(reference), own).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_names_its_registry_only_by_a_host() {
        assert_eq!(registry_of("localhost:5000/app:1"), "localhost:5000");
        assert_eq!(
            registry_of("registry.example.com/a/b:1"),
            "registry.example.com"
        );
        assert_eq!(registry_of("localhost/app"), "localhost");
        assert_eq!(registry_of("haproxy:2.8"), "docker.io");
        assert_eq!(registry_of("library/haproxy:2.8"), "docker.io");
        assert_eq!(registry_of("acme/gateway@sha256:00"), "docker.io");
        assert_eq!(registry_of("registry.example.com"), "docker.io");
    }

    #[test]
    fn the_environment_credentials_go_only_to_image_registry() {
        let own = "registry.example.com:5000/team";
        let alice = || Some(("alice".to_string(), "pw-a".to_string()));
        let given = |reference: &str| environment_for(registry_of(reference), own, alice());
        let mine = given("registry.example.com:5000/team/app:1").unwrap();
        assert_eq!(mine.username.as_deref(), Some("alice"));
        assert_eq!(
            mine.serveraddress.as_deref(),
            Some("registry.example.com:5000")
        );
        for other in [
            "haproxy:2.8",
            "other.example.com/gateway:1",
            "registry.example.com:5001/app:1",
            "registry.example.com/app:1",
        ] {
            assert!(
                given(other).is_none(),
                "{other} was given image.registry's credentials"
            );
        }
        // Docker Hub's names are one registry.
        assert!(environment_for("docker.io", "index.docker.io/acme", alice()).is_some());
        assert!(environment_for("docker.io", "acme", alice()).is_some());
        assert!(environment_for("registry.example.com:5000", own, None).is_none());
    }
}
