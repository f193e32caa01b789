//! The client's rustls configuration: the `ring` provider, the platform's root
//! certificates plus an optional `caBundle`. Reads the platform certificate store once per
//! client; no network I/O.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use super::Error;

/// Builds the TLS configuration for a tenant client. `ca_bundle` is PEM with one or more
/// certificates, trusted in addition to the platform roots.
pub(crate) fn client_config(ca_bundle: Option<&str>) -> Result<ClientConfig, Error> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    if !native.errors.is_empty() || ignored > 0 {
        tracing::debug!(
            added,
            ignored,
            errors = native.errors.len(),
            "some platform root certificates could not be loaded"
        );
    }
    if let Some(pem) = ca_bundle {
        for cert in parse_ca_bundle(pem)? {
            roots.add(cert).map_err(|e| Error::CaBundle {
                problem: format!("a certificate is not a usable CA: {e}"),
            })?;
        }
    }
    if roots.is_empty() {
        tracing::warn!("no root certificates: no platform roots were found and no caBundle is set");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // HTTP/1.1 only: requests are few (rate-limited), and one connection per request keeps
    // a dropped connection from failing unrelated requests multiplexed on it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The certificates in a PEM bundle; at least one, and nothing unparsable.
pub(crate) fn parse_ca_bundle(pem: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::CaBundle {
            problem: format!("not valid PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(Error::CaBundle {
            problem: "no CERTIFICATE block found".to_owned(),
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_without_certificates_is_rejected() {
        for pem in [
            "",
            "hello",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let err = parse_ca_bundle(pem).err().map(|e| e.reason());
            assert_eq!(err, Some("InvalidConfig"), "{pem:?}");
        }
    }

    #[test]
    fn a_generated_ca_is_accepted() {
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let mut params = rcgen::CertificateParams::new(vec!["ca.test".to_owned()])
            .unwrap_or_else(|e| panic!("{e}"));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parse_ca_bundle(&cert.pem()).map(|c| c.len()).ok(), Some(1));
        assert!(client_config(Some(&cert.pem())).is_ok());
    }
}
