//! Throwaway CAs and the certificates they sign, and the rustls configurations that use
//! them (ring provider, HTTP/1.1). No I/O.
//!
//! - [`generate`]: the cloud emulator's CA and serving certificate; the server asks for no
//!   client certificate.
//! - [`generate_mutual`]: a QRS site's CA, a serving certificate and a client certificate
//!   (CN `QlikClient`, like the one the QMC exports) signed by that same CA; the server
//!   *requires* a client certificate chaining to it, so a client without one, or with one
//!   from another CA, fails in the TLS handshake, as on a real site's port 4242.
//! - [`client_config`] and [`client_config_with_identity`]: what a client trusts and
//!   presents.

use std::sync::Arc;

use rcgen::{CertifiedIssuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::Error;

/// The common name of the client certificate a QRS site issues (Qlik's export uses it).
pub const CLIENT_COMMON_NAME: &str = "QlikClient";

/// The CA (PEM, for clients to trust) and the server configuration that uses its leaf.
pub struct ServerTls {
    pub ca_pem: String,
    pub config: Arc<rustls::ServerConfig>,
}

/// A site with mutual TLS: its CA, the client identity it issued, and the server
/// configuration that requires a client certificate from that CA.
pub struct MutualTls {
    pub ca_pem: String,
    pub client_cert_pem: String,
    /// PKCS#8 PEM.
    pub client_key_pem: String,
    pub config: Arc<rustls::ServerConfig>,
}

fn certificate_authority(common_name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, Error> {
    let mut ca_params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(Error::Certificate)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_key = KeyPair::generate().map_err(Error::Certificate)?;
    CertifiedIssuer::self_signed(ca_params, ca_key).map_err(Error::Certificate)
}

/// A leaf for `names` (IP addresses or DNS names) with `common_name`, signed by `ca`.
fn leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    names: &[String],
    common_name: &str,
    usage: rcgen::ExtendedKeyUsagePurpose,
    with_usage: bool,
) -> Result<(rcgen::Certificate, KeyPair), Error> {
    let key = KeyPair::generate().map_err(Error::Certificate)?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(Error::Certificate)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    if with_usage {
        params.extended_key_usages = vec![usage];
    }
    let certificate = params.signed_by(&key, ca).map_err(Error::Certificate)?;
    Ok((certificate, key))
}

fn server_key(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes a CA and a serving certificate for `names` (IP addresses or DNS names).
pub fn generate(names: &[String]) -> Result<ServerTls, Error> {
    let ca = certificate_authority("qlik-tenant-emulator CA")?;
    let (serving, serving_key) = leaf(
        &ca,
        names,
        "qlik-tenant-emulator",
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        false,
    )?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?
        .with_no_client_auth()
        .with_single_cert(vec![serving.der().clone()], server_key(&serving_key))
        .map_err(Error::Tls)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServerTls {
        ca_pem: ca.pem(),
        config: Arc::new(config),
    })
}

/// Makes a CA, a serving certificate for `names`, and a client certificate
/// ([`CLIENT_COMMON_NAME`]) signed by the same CA; the server configuration requires a
/// client certificate that chains to that CA.
pub fn generate_mutual(names: &[String]) -> Result<MutualTls, Error> {
    let ca = certificate_authority("qlik-tenant-emulator QRS CA")?;
    let (serving, serving_key) = leaf(
        &ca,
        names,
        "qlik-tenant-emulator QRS",
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        true,
    )?;
    let (client, client_key) = leaf(
        &ca,
        &[],
        CLIENT_COMMON_NAME,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        true,
    )?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).map_err(Error::Tls)?;
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| Error::Tls(rustls::Error::General(e.to_string())))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![serving.der().clone()], server_key(&serving_key))
        .map_err(Error::Tls)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(MutualTls {
        ca_pem: ca.pem(),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
        config: Arc::new(config),
    })
}

/// A client certificate (CN [`CLIENT_COMMON_NAME`]) and its PKCS#8 key, signed by a CA of
/// its own that no site trusts: the "wrong certificate" of tests.
pub fn untrusted_client_identity() -> Result<(String, String), Error> {
    let ca = certificate_authority("qlik-tenant-emulator untrusted CA")?;
    let (client, key) = leaf(
        &ca,
        &[],
        CLIENT_COMMON_NAME,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        true,
    )?;
    Ok((client.pem(), key.serialize_pem()))
}

fn roots(ca_pem: &str) -> Result<rustls::RootCertStore, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert =
            cert.map_err(|_| Error::Tls(rustls::Error::General("invalid CA PEM".to_owned())))?;
        roots.add(cert).map_err(Error::Tls)?;
    }
    Ok(roots)
}

/// A client configuration that trusts only the CA in `ca_pem`.
pub fn client_config(ca_pem: &str) -> Result<rustls::ClientConfig, Error> {
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?
        .with_root_certificates(roots(ca_pem)?)
        .with_no_client_auth())
}

/// A client configuration that trusts only the CA in `ca_pem` and presents the
/// certificate chain in `cert_pem` with the key in `key_pem` (PKCS#8, PKCS#1 or SEC1 PEM).
pub fn client_config_with_identity(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<rustls::ClientConfig, Error> {
    let invalid = |what: &str| Error::Tls(rustls::Error::General(format!("invalid {what} PEM")));
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| invalid("client certificate"))?;
    let key =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| invalid("client key"))?;
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?
        .with_root_certificates(roots(ca_pem)?)
        .with_client_auth_cert(chain, key)
        .map_err(Error::Tls)
}
