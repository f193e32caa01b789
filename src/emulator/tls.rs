//! A throwaway CA and a serving certificate it signs, and the rustls server configuration
//! (ring provider, HTTP/1.1), and a client configuration that trusts the CA. No I/O.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::Error;

/// The CA (PEM, for clients to trust) and the server configuration that uses its leaf.
pub struct ServerTls {
    pub ca_pem: String,
    pub config: Arc<rustls::ServerConfig>,
}

/// Makes a CA and a serving certificate for `names` (IP addresses or DNS names).
pub fn generate(names: &[String]) -> Result<ServerTls, Error> {
    let mut ca_params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(Error::Certificate)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "qlik-tenant-emulator CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_key = rcgen::KeyPair::generate().map_err(Error::Certificate)?;
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(Error::Certificate)?;

    let serving_key = rcgen::KeyPair::generate().map_err(Error::Certificate)?;
    let mut serving_params =
        rcgen::CertificateParams::new(names.to_vec()).map_err(Error::Certificate)?;
    serving_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "qlik-tenant-emulator");
    let serving = serving_params
        .signed_by(&serving_key, &ca)
        .map_err(Error::Certificate)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?
        .with_no_client_auth()
        .with_single_cert(
            vec![serving.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(serving_key.serialize_der())),
        )
        .map_err(Error::Tls)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServerTls {
        ca_pem: ca.pem(),
        config: Arc::new(config),
    })
}

/// A client configuration that trusts only the CA in `ca_pem`.
pub fn client_config(ca_pem: &str) -> Result<rustls::ClientConfig, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert =
            cert.map_err(|_| Error::Tls(rustls::Error::General("invalid CA PEM".to_owned())))?;
        roots.add(cert).map_err(Error::Tls)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
