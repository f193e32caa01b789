//! The client's rustls configuration: the `ring` provider, the platform's root
//! certificates plus an optional `caBundle`, and for the QRS client a client certificate
//! to present (mutual TLS). No network I/O; the platform certificate
//! store is read from disk once per process, when the first client is built.
//!
//! # Guarantees
//! - Every client without a `caBundle` trusts the one [`RootCertStore`] of platform roots
//!   (shared through an [`Arc`]), so that a thousand tenants do not mean a thousand reads
//!   and parses of the platform store, nor a thousand copies of it in memory.
//! - A `caBundle` is trusted only by the client it was given to: that client gets its own
//!   copy of the platform roots with the bundle added; the shared store is never changed.

use std::sync::{Arc, LazyLock};

use rustls::client::WantsClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, Der, PrivateKeyDer, TrustAnchor};
use rustls::{ClientConfig, ConfigBuilder, RootCertStore};

use super::Error;

/// The platform's root certificates, loaded on first use. Once per process: the platform
/// store is part of the image and does not change while the operator runs (a changed
/// store is picked up on restart; a `caBundle` change applies to the tenant at once).
static PLATFORM_ROOTS: LazyLock<Arc<RootCertStore>> =
    LazyLock::new(|| Arc::new(load_platform_roots()));

/// Reads and parses the platform certificate store (`rustls-native-certs`: `SSL_CERT_FILE`
/// and `SSL_CERT_DIR`, or the locations OpenSSL would use).
fn load_platform_roots() -> RootCertStore {
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
    RootCertStore {
        roots: roots.roots.into_iter().map(held_for_the_process).collect(),
    }
}

/// `anchor` with its bytes moved to memory that lives as long as the process, as the
/// platform store does anyway (a static). A tenant with a `caBundle` copies the platform
/// roots; the copy then shares these bytes instead of duplicating them: about 10 KB of
/// references instead of 80 KB of certificates per tenant (the heap profile of 40 tenants
/// with a private CA each showed 3.3 MiB of copies).
fn held_for_the_process(anchor: TrustAnchor<'static>) -> TrustAnchor<'static> {
    fn hold(der: &Der<'_>) -> Der<'static> {
        let bytes: &'static [u8] = Box::leak(der.as_ref().to_vec().into_boxed_slice());
        Der::from(bytes)
    }
    TrustAnchor {
        subject: hold(&anchor.subject),
        subject_public_key_info: hold(&anchor.subject_public_key_info),
        name_constraints: anchor.name_constraints.as_ref().map(hold),
    }
}

/// The roots a tenant client trusts: the shared platform roots when there is no
/// `ca_bundle`, otherwise a copy of them with the bundle's certificates added, for this
/// client alone.
fn root_store(ca_bundle: Option<&str>) -> Result<Arc<RootCertStore>, Error> {
    let platform = Arc::clone(&PLATFORM_ROOTS);
    let Some(pem) = ca_bundle else {
        return Ok(platform);
    };
    let mut roots = RootCertStore::clone(&platform);
    for cert in parse_ca_bundle(pem)? {
        roots.add(cert).map_err(|e| Error::CaBundle {
            problem: format!("a certificate is not a usable CA: {e}"),
        })?;
    }
    Ok(Arc::new(roots))
}

/// Builds the TLS configuration for a tenant client. `ca_bundle` is PEM with one or more
/// certificates, trusted in addition to the platform roots.
pub(crate) fn client_config(ca_bundle: Option<&str>) -> Result<ClientConfig, Error> {
    let config = builder(ca_bundle)?.with_no_client_auth();
    Ok(http1_only(config))
}

/// Like [`client_config`], presenting `cert_chain` and `key` to servers that ask for a
/// client certificate (mutual TLS: the QRS API of a client-managed site). Fails with
/// [`Error::Tls`] when the key does not belong to the chain's first certificate or is of
/// a type the provider cannot sign with.
pub(crate) fn mutual_client_config(
    ca_bundle: Option<&str>,
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ClientConfig, Error> {
    let config = builder(ca_bundle)?
        .with_client_auth_cert(cert_chain, key)
        .map_err(Error::Tls)?;
    Ok(http1_only(config))
}

/// The `ring` provider, safe protocol versions and the roots of [`root_store`].
fn builder(ca_bundle: Option<&str>) -> Result<ConfigBuilder<ClientConfig, WantsClientCert>, Error> {
    let roots = root_store(ca_bundle)?;
    if roots.is_empty() {
        tracing::warn!("no root certificates: no platform roots were found and no caBundle is set");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?
        .with_root_certificates(roots))
}

fn http1_only(mut config: ClientConfig) -> ClientConfig {
    // HTTP/1.1 only: requests are few (rate-limited), and one connection per request keeps
    // a dropped connection from failing unrelated requests multiplexed on it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
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

    fn generated_ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let mut params = rcgen::CertificateParams::new(vec!["ca.test".to_owned()])
            .unwrap_or_else(|e| panic!("{e}"));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .self_signed(&key)
            .unwrap_or_else(|e| panic!("{e}"))
            .pem()
    }

    #[test]
    fn a_generated_ca_is_accepted() {
        let pem = generated_ca_pem();
        assert_eq!(parse_ca_bundle(&pem).map(|c| c.len()).ok(), Some(1));
        assert!(client_config(Some(&pem)).is_ok());
    }

    #[test]
    fn clients_without_a_ca_bundle_share_one_store_of_platform_roots() {
        let first = root_store(None).unwrap_or_else(|e| panic!("{e}"));
        let second = root_store(None).unwrap_or_else(|e| panic!("{e}"));
        assert!(Arc::ptr_eq(&first, &second));
        assert!(Arc::ptr_eq(&first, &PLATFORM_ROOTS));
    }

    #[test]
    fn a_ca_bundle_is_trusted_by_its_own_client_only() {
        let pem = generated_ca_pem();
        let mut only_the_ca = RootCertStore::empty();
        for cert in parse_ca_bundle(&pem).unwrap_or_else(|e| panic!("{e}")) {
            only_the_ca.add(cert).unwrap_or_else(|e| panic!("{e}"));
        }
        let ca = only_the_ca.roots[0].clone();

        let with_ca = root_store(Some(&pem)).unwrap_or_else(|e| panic!("{e}"));
        let without = root_store(None).unwrap_or_else(|e| panic!("{e}"));
        assert!(!Arc::ptr_eq(&with_ca, &without));
        assert!(with_ca.roots.contains(&ca));
        assert_eq!(with_ca.len(), without.len() + 1);
        assert!(
            !without.roots.contains(&ca),
            "the caBundle leaked into the shared roots"
        );
        assert!(!PLATFORM_ROOTS.roots.contains(&ca));
    }

    #[test]
    fn a_ca_bundle_client_shares_the_platform_certificates_bytes() {
        let pem = generated_ca_pem();
        let with_ca = root_store(Some(&pem)).unwrap_or_else(|e| panic!("{e}"));
        let platform = &PLATFORM_ROOTS.roots;
        if platform.is_empty() {
            panic!(
                "this machine has no platform roots (install ca-certificates): nothing to compare"
            );
        }
        for (copied, shared) in with_ca.roots.iter().zip(platform) {
            let (copied, shared) = (
                copied.subject_public_key_info.as_ref(),
                shared.subject_public_key_info.as_ref(),
            );
            assert_eq!(copied, shared);
            assert!(
                std::ptr::eq(copied.as_ptr(), shared.as_ptr()),
                "a caBundle client copied the platform certificates' bytes"
            );
        }
    }
}
