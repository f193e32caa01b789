//! A tenant client for the commands a person or a CI job runs (`import`, `plan`): the
//! credential comes from environment variables, never from a flag (flags end up in shell
//! history and in `ps`). Reads the environment and a CA file; no network I/O until used.

use std::path::Path;

use super::{ClientConfig, Credential, CredentialSource, Error, TenantClient};

/// An API key.
pub const API_KEY_VAR: &str = "QLIK_API_KEY";
/// An OAuth machine-to-machine client's id and secret (used when no API key is set).
pub const CLIENT_ID_VAR: &str = "QLIK_CLIENT_ID";
pub const CLIENT_SECRET_VAR: &str = "QLIK_CLIENT_SECRET";

/// Why no client could be made.
#[derive(Debug, thiserror::Error)]
pub enum EnvironmentError {
    #[error("no credential: set {API_KEY_VAR}, or {CLIENT_ID_VAR} and {CLIENT_SECRET_VAR}")]
    NoCredential,
    #[error("{CLIENT_ID_VAR} is set without {CLIENT_SECRET_VAR}")]
    NoClientSecret,
    #[error("failed to read the CA file {path}: {source}")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Client(#[from] Error),
}

/// The credential the environment (read through `var`) names, and how to name it in
/// messages. An empty variable counts as unset.
pub fn credential(
    var: impl Fn(&str) -> Option<String>,
) -> Result<(Credential, CredentialSource), EnvironmentError> {
    let var = |name: &str| var(name).filter(|v| !v.is_empty());
    if let Some(key) = var(API_KEY_VAR) {
        let source = CredentialSource::Described(format!("the {API_KEY_VAR} variable"));
        return Ok((Credential::api_key(key), source));
    }
    match (var(CLIENT_ID_VAR), var(CLIENT_SECRET_VAR)) {
        (Some(id), Some(secret)) => {
            let source = CredentialSource::Described(format!(
                "the {CLIENT_ID_VAR} and {CLIENT_SECRET_VAR} variables"
            ));
            Ok((Credential::oauth_client(id, secret), source))
        }
        (Some(_), None) => Err(EnvironmentError::NoClientSecret),
        _ => Err(EnvironmentError::NoCredential),
    }
}

/// The credential of this process's environment.
pub fn process_credential() -> Result<(Credential, CredentialSource), EnvironmentError> {
    credential(|name| std::env::var(name).ok())
}

/// A client for the tenant at `url` (HTTPS only), trusting `ca_file` besides the platform
/// roots, authenticated with `credential` (from [`process_credential`]).
pub fn client(
    url: &str,
    ca_file: Option<&Path>,
    (credential, source): (Credential, CredentialSource),
) -> Result<TenantClient, EnvironmentError> {
    let mut config = ClientConfig::new(url);
    if let Some(path) = ca_file {
        let pem = std::fs::read_to_string(path).map_err(|source| EnvironmentError::CaFile {
            path: path.display().to_string(),
            source,
        })?;
        config.ca_bundle = Some(pem);
    }
    Ok(TenantClient::new(config, credential, source)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn an_api_key_wins_over_an_oauth_client() {
        let both = env(&[
            (API_KEY_VAR, "k"),
            (CLIENT_ID_VAR, "id"),
            (CLIENT_SECRET_VAR, "s"),
        ]);
        let (key, source) = credential(both).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(key.kind(), "api-key");
        assert_eq!(source.to_string(), "the QLIK_API_KEY variable");
        let oauth = env(&[
            (API_KEY_VAR, ""),
            (CLIENT_ID_VAR, "id"),
            (CLIENT_SECRET_VAR, "s"),
        ]);
        let (client, _) = credential(oauth).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(client.kind(), "oauth-client");
    }

    #[test]
    fn a_missing_credential_names_the_variables() {
        let none = credential(env(&[])).err().map(|e| e.to_string());
        assert_eq!(
            none.as_deref(),
            Some("no credential: set QLIK_API_KEY, or QLIK_CLIENT_ID and QLIK_CLIENT_SECRET")
        );
        let half = credential(env(&[(CLIENT_ID_VAR, "id")])).err();
        assert!(matches!(half, Some(EnvironmentError::NoClientSecret)));
    }
}
