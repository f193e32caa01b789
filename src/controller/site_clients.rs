//! One [`QrsClient`] per client-managed `QlikTenant` (a Qlik Sense Enterprise on Windows
//! site), kept in the same [`TenantClients`] registry as the cloud clients. Reads Secrets
//! (only in the tenant's own namespace).
//!
//! The client is built from the certificate Secret (`client.pem`, `client_key.pem`,
//! optionally `root.pem`) and rebuilt when the Secret's `resourceVersion` changes, so a
//! renewed certificate is used from the next call after the Secret is read again: at most
//! `secret_max_age` later, or at once after the site refused the certificate (the tenant
//! controller then forgets the client). The URL's host is checked against the operator's
//! allow-list before the Secret is read, as for a cloud tenant.

use std::sync::PoisonError;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::{Client, ResourceExt};
use secrecy::SecretString;
use tokio::time::Instant;

use super::tenant::credentials::CredentialError;
use super::tenant_clients::{AccessError, TenantClients, key_of};
use crate::api::QlikTenant;
use crate::api::client_managed::{CLIENT_CERT_KEY, CLIENT_KEY_KEY, ClientManagedSpec, ROOT_CA_KEY};
use crate::api::tenant::Connection;
use crate::tenant::qrs::{ClientIdentity, QlikUser, QrsClient, QrsClientConfig};
use crate::tenant::{CredentialSource, TenantClient};

/// How the operator talks to a tenant.
#[derive(Clone)]
pub enum Remote {
    /// A Qlik Cloud tenant.
    Cloud(TenantClient),
    /// A client-managed site's Repository Service.
    Site(QrsClient),
}

/// A cached site client and what it was built from.
pub struct CachedSite {
    spec: ClientManagedSpec,
    secret_version: Option<String>,
    read_at: Instant,
    client: QrsClient,
}

/// The certificate Secret's three keys, as the QMC exports them.
pub struct SiteCertificate {
    pub cert_pem: String,
    pub key_pem: SecretString,
    /// The site's CA (`root.pem`), when given.
    pub ca_pem: Option<String>,
}

impl std::fmt::Debug for SiteCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteCertificate")
            .field("ca_pem", &self.ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// Reads the certificate from `secret` (`namespace/name`). Pure; names keys, never values.
pub fn site_certificate(
    namespace: &str,
    name: &str,
    secret: Option<&Secret>,
) -> Result<SiteCertificate, CredentialError> {
    let Some(secret) = secret else {
        return Err(CredentialError::SecretNotFound {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        });
    };
    let text = |key: &str| -> Result<Option<String>, CredentialError> {
        let Some(bytes) = secret.data.as_ref().and_then(|data| data.get(key)) else {
            return Ok(None);
        };
        match std::str::from_utf8(&bytes.0).map(str::trim) {
            Ok(value) if !value.is_empty() => Ok(Some(value.to_owned())),
            _ => Err(CredentialError::Unusable {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                key: key.to_owned(),
            }),
        }
    };
    let required = |key: &str| {
        text(key)?.ok_or_else(|| CredentialError::KeyMissing {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            key: key.to_owned(),
        })
    };
    Ok(SiteCertificate {
        cert_pem: required(CLIENT_CERT_KEY)?,
        key_pem: SecretString::from(required(CLIENT_KEY_KEY)?),
        ca_pem: text(ROOT_CA_KEY)?,
    })
}

impl TenantClients {
    /// The client for `tenant`, of its kind: a Qlik Cloud tenant's or a site's.
    pub async fn for_remote(
        &self,
        kube: &Client,
        tenant: &QlikTenant,
    ) -> Result<Remote, AccessError> {
        if tenant.spec.is_client_managed() {
            self.for_site(kube, tenant).await.map(Remote::Site)
        } else {
            self.for_tenant(kube, tenant).await.map(Remote::Cloud)
        }
    }

    /// The QRS client for the client-managed `tenant`, built or rebuilt as needed.
    pub async fn for_site(
        &self,
        kube: &Client,
        tenant: &QlikTenant,
    ) -> Result<QrsClient, AccessError> {
        let site = match tenant.spec.connection() {
            Ok(Connection::ClientManaged(site)) => site,
            Ok(Connection::Cloud { .. }) => return Err(AccessError::NotClientManaged),
            Err(_) => return Err(AccessError::Credential(CredentialError::Ambiguous)),
        };
        self.check_host(&site.url)?;
        let key = key_of(tenant);
        if let Some(client) = self.fresh_site(&key, site) {
            return Ok(client);
        }
        let name = &site.certificate_secret_ref.name;
        let secrets: Api<Secret> = Api::namespaced(kube.clone(), &key.0);
        let secret = secrets
            .get_opt(name)
            .await
            .map_err(|source| AccessError::ReadSecret {
                namespace: key.0.clone(),
                name: name.clone(),
                source,
            })?;
        let secret_version = secret.as_ref().and_then(|s| s.resource_version());

        let mut sites = self.sites.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = sites
            .get_mut(&key)
            .filter(|c| c.spec == *site && c.secret_version == secret_version)
        {
            cached.read_at = Instant::now();
            return Ok(cached.client.clone());
        }
        let certificate = site_certificate(&key.0, name, secret.as_ref())?;
        let source = CredentialSource::Secret {
            namespace: key.0.clone(),
            name: name.clone(),
            key: CLIENT_CERT_KEY.to_owned(),
        };
        let client = self.build_site_client(site, certificate, source)?;
        // A new certificate for the same site keeps the pause the site asked for.
        if let Some(previous) = sites.get(&key).filter(|c| c.spec.url == site.url) {
            client.carry_pause_from(&previous.client);
        }
        let cached = CachedSite {
            spec: site.clone(),
            secret_version,
            read_at: Instant::now(),
            client: client.clone(),
        };
        sites.insert(key, cached);
        Ok(client)
    }

    fn build_site_client(
        &self,
        site: &ClientManagedSpec,
        certificate: SiteCertificate,
        source: CredentialSource,
    ) -> Result<QrsClient, AccessError> {
        let identity = ClientIdentity::from_pem(certificate.cert_pem, certificate.key_pem)?
            .with_source(source);
        let user = QlikUser {
            directory: site.user.user_directory.clone(),
            id: site.user.user_id.clone(),
        };
        let mut config = QrsClientConfig::new(site.url.clone(), identity, user);
        config.ca_bundle = certificate.ca_pem;
        config.connect_timeout = self.template.connect_timeout;
        config.request_timeout = self.template.request_timeout;
        config.retry = self.template.retry;
        config.observer = self.template.observer.clone();
        config.max_response_bytes = self.template.max_response_bytes;
        Ok(QrsClient::new(config)?)
    }

    fn fresh_site(
        &self,
        key: &super::tenant_clients::TenantKey,
        site: &ClientManagedSpec,
    ) -> Option<QrsClient> {
        let sites = self.sites.lock().unwrap_or_else(PoisonError::into_inner);
        sites
            .get(key)
            .filter(|c| c.spec == *site && c.read_at.elapsed() < self.secret_max_age)
            .map(|c| c.client.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use secrecy::ExposeSecret;

    use super::*;

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        let data: BTreeMap<String, ByteString> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
            .collect();
        Secret {
            data: Some(data),
            ..Secret::default()
        }
    }

    #[test]
    fn the_qmc_export_is_read_from_its_three_keys_and_root_is_optional() {
        let full = secret(&[
            (CLIENT_CERT_KEY, "CERT\n"),
            (CLIENT_KEY_KEY, "KEY\n"),
            (ROOT_CA_KEY, "CA"),
        ]);
        let read = site_certificate("web", "site", Some(&full)).unwrap();
        assert_eq!(read.cert_pem, "CERT");
        assert_eq!(read.key_pem.expose_secret(), "KEY");
        assert_eq!(read.ca_pem.as_deref(), Some("CA"));
        let without_ca = secret(&[(CLIENT_CERT_KEY, "CERT"), (CLIENT_KEY_KEY, "KEY")]);
        let read = site_certificate("web", "site", Some(&without_ca)).unwrap();
        assert_eq!(read.ca_pem, None);
    }

    #[test]
    fn a_missing_secret_or_key_is_named_without_any_value() {
        let missing = site_certificate("web", "site", None).unwrap_err();
        assert_eq!(missing.reason(), "SecretNotFound");
        let no_key = secret(&[(CLIENT_CERT_KEY, "CERT-TEXT")]);
        let error = site_certificate("web", "site", Some(&no_key)).unwrap_err();
        assert_eq!(error.reason(), "SecretKeyInvalid");
        assert!(error.to_string().contains(CLIENT_KEY_KEY));
        let empty_key = secret(&[(CLIENT_CERT_KEY, "CERT-TEXT"), (CLIENT_KEY_KEY, " \n")]);
        let error = site_certificate("web", "site", Some(&empty_key)).unwrap_err();
        assert!(!error.to_string().contains("CERT-TEXT"));
    }

    #[test]
    fn a_certificate_never_shows_its_key_in_debug_output() {
        let read = site_certificate(
            "web",
            "site",
            Some(&secret(&[
                (CLIENT_CERT_KEY, "C"),
                (CLIENT_KEY_KEY, "PRIVATE"),
            ])),
        )
        .unwrap();
        assert!(!format!("{read:?}").contains("PRIVATE"));
    }
}
