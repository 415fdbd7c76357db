//! Registry credentials: `SHIPIT_REGISTRY_USERNAME` / `SHIPIT_REGISTRY_PASSWORD`,
//! else `~/.docker/config.json` (auths and credential helpers). Never printed.

use bollard::auth::DockerCredentials;

/// Where the credentials came from, for messages (never the values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Environment,
    DockerConfig,
    None,
}

pub fn for_registry(registry: &str) -> (Option<DockerCredentials>, Source) {
    if let (Ok(username), Ok(password)) = (
        std::env::var("SHIPIT_REGISTRY_USERNAME"),
        std::env::var("SHIPIT_REGISTRY_PASSWORD"),
    ) {
        let credentials = DockerCredentials {
            username: Some(username),
            password: Some(password),
            serveraddress: Some(registry.to_string()),
            ..Default::default()
        };
        return (Some(credentials), Source::Environment);
    }
    match docker_credential::get_credential(registry) {
        Ok(docker_credential::DockerCredential::UsernamePassword(username, password)) => (
            Some(DockerCredentials {
                username: Some(username),
                password: Some(password),
                serveraddress: Some(registry.to_string()),
                ..Default::default()
            }),
            Source::DockerConfig,
        ),
        Ok(docker_credential::DockerCredential::IdentityToken(token)) => (
            Some(DockerCredentials {
                identitytoken: Some(token),
                serveraddress: Some(registry.to_string()),
                ..Default::default()
            }),
            Source::DockerConfig,
        ),
        Err(_) => (None, Source::None),
    }
}
