//! Who the QRS client is: the client certificate and key it presents in the TLS handshake
//! (as the QMC exports them: `client.pem` and `client_key.pem`), and the user it acts as
//! (`X-Qlik-User`). Parsing and checks only; no I/O.
//!
//! # Guarantees
//! - No error and no `Debug` output shows the key: a bad key PEM is described by the kind
//!   of problem, never by quoting it (rustls-pki-types' PEM errors can quote a line).

use std::fmt;

use reqwest::header::HeaderValue;
use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use secrecy::{ExposeSecret, SecretString};

use crate::tenant::{CredentialSource, Error};

/// The client certificate chain and private key the QRS client presents (mutual TLS).
///
/// The key may be PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`, what the QMC exports)
/// or SEC1 (`EC PRIVATE KEY`), unencrypted. `Debug` never shows it.
#[derive(Clone)]
pub struct ClientIdentity {
    cert_pem: String,
    key: SecretString,
    source: CredentialSource,
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("source", &self.source)
            .field("key", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

impl ClientIdentity {
    /// The identity in `cert_pem` (the certificate first, then any intermediates) and
    /// `key_pem`. Checks that both parse and that the key belongs to the certificate.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the `client certificate` or the `client key`.
    pub fn from_pem(
        cert_pem: impl Into<String>,
        key_pem: impl Into<SecretString>,
    ) -> Result<ClientIdentity, Error> {
        let identity = ClientIdentity {
            cert_pem: cert_pem.into(),
            key: key_pem.into(),
            source: CredentialSource::Described("the client certificate".to_owned()),
        };
        let (chain, key) = identity.der()?;
        CertifiedKey::from_der(chain, key, &default_provider()).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                invalid("client key", "it does not belong to the client certificate")
            }
            rustls::Error::InvalidCertificate(e) => invalid(
                "client certificate",
                format!("it is not a valid certificate: {e}"),
            ),
            // rustls describes an unusable key by its type, never by its bytes.
            other => invalid("client key", format!("it cannot be used: {other}")),
        })?;
        Ok(identity)
    }

    /// Names where the certificate came from (e.g. the Secret), for error messages.
    pub fn with_source(mut self, source: CredentialSource) -> ClientIdentity {
        self.source = source;
        self
    }

    /// Where the certificate came from.
    pub fn source(&self) -> &CredentialSource {
        &self.source
    }

    /// The certificate chain, as given.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The chain and the key, parsed.
    pub(crate) fn der(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
        Ok((
            parse_chain(&self.cert_pem)?,
            parse_key(self.key.expose_secret())?,
        ))
    }
}

fn invalid(what: &'static str, problem: impl Into<String>) -> Error {
    Error::InvalidConfig {
        what,
        problem: problem.into(),
    }
}

/// What is wrong with a PEM text, without quoting any of it.
fn pem_problem(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a PEM block has no END line",
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a PEM block is not valid base64",
        pem::Error::NoItemsFound => "no PEM block found",
        pem::Error::SectionTooLarge => "a PEM block is too large",
        _ => "not valid PEM",
    }
}

fn parse_chain(pem: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("client certificate", pem_problem(&e)))?;
    if chain.is_empty() {
        return Err(invalid(
            "client certificate",
            "no CERTIFICATE block found (QMC exports it as client.pem)",
        ));
    }
    Ok(chain)
}

fn parse_key(pem: &str) -> Result<PrivateKeyDer<'static>, Error> {
    if pem.contains("ENCRYPTED PRIVATE KEY") || pem.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(invalid(
            "client key",
            "it is protected by a password, which the operator cannot use: export the \
             certificate from the QMC without a password",
        ));
    }
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| {
        invalid(
            "client key",
            match e {
                pem::Error::NoItemsFound => {
                    "no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block found \
                     (QMC exports it as client_key.pem)"
                }
                other => pem_problem(&other),
            },
        )
    })
}

/// The user the QRS client acts as: the `X-Qlik-User` header,
/// `UserDirectory=INTERNAL; UserId=sa_api`. The user's rights on the site decide what the
/// client may read and change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QlikUser {
    /// The user directory, e.g. `INTERNAL`.
    pub directory: String,
    /// The user id within it, e.g. `sa_api`.
    pub id: String,
}

impl QlikUser {
    /// `directory\id`.
    pub fn new(directory: impl Into<String>, id: impl Into<String>) -> QlikUser {
        QlikUser {
            directory: directory.into(),
            id: id.into(),
        }
    }

    /// The `X-Qlik-User` header value.
    pub fn header_value(&self) -> String {
        format!("UserDirectory={}; UserId={}", self.directory, self.id)
    }

    /// The header, checked: both parts present, neither with a `;` (which would end the
    /// part early) nor a control character.
    pub(crate) fn header(&self) -> Result<HeaderValue, Error> {
        for (part, value) in [("UserDirectory", &self.directory), ("UserId", &self.id)] {
            let problem = if value.trim().is_empty() {
                Some("is empty")
            } else if value.contains(';') {
                Some("contains a ';'")
            } else if value.chars().any(char::is_control) {
                Some("contains a control character")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(invalid("QRS user", format!("its {part} {problem}")));
            }
        }
        HeaderValue::from_bytes(self.header_value().as_bytes())
            .map_err(|_| invalid("QRS user", "it is not a valid header value"))
    }
}

/// `INTERNAL\sa_api`, as the QMC shows a user.
impl fmt::Display for QlikUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\\{}", self.directory, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_CERT: &str = include_str!("testdata/rsa_cert.pem");
    const RSA_PKCS1_KEY: &str = include_str!("testdata/rsa_pkcs1_key.pem");
    const EC_CERT: &str = include_str!("testdata/ec_cert.pem");
    const EC_SEC1_KEY: &str = include_str!("testdata/ec_sec1_key.pem");

    fn generated() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let cert = rcgen::CertificateParams::new(vec!["qrs-client".to_owned()])
            .and_then(|p| p.self_signed(&key))
            .unwrap_or_else(|e| panic!("{e}"));
        (cert.pem(), key.serialize_pem())
    }

    fn problem(result: Result<ClientIdentity, Error>) -> (String, &'static str) {
        match result {
            Ok(_) => panic!("accepted"),
            Err(e) => {
                assert_eq!(e.reason(), "InvalidConfig");
                let Error::InvalidConfig { what, .. } = &e else {
                    panic!("{e:?}")
                };
                (e.to_string(), what)
            }
        }
    }

    #[test]
    fn pkcs8_pkcs1_and_sec1_keys_are_accepted() {
        let (cert, pkcs8) = generated();
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(RSA_PKCS1_KEY.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert!(EC_SEC1_KEY.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        for (cert, key) in [
            (cert.as_str(), pkcs8.as_str()),
            (RSA_CERT, RSA_PKCS1_KEY),
            (EC_CERT, EC_SEC1_KEY),
        ] {
            let identity = ClientIdentity::from_pem(cert, key).unwrap_or_else(|e| panic!("{e}"));
            let (chain, key) = identity.der().unwrap_or_else(|e| panic!("{e}"));
            assert!(crate::tenant::tls::mutual_client_config(None, chain, key).is_ok());
        }
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let (cert, _) = generated();
        let (shown, what) = problem(ClientIdentity::from_pem(cert, EC_SEC1_KEY));
        assert_eq!(what, "client key");
        assert!(shown.contains("does not belong"), "{shown}");
        let (shown, _) = problem(ClientIdentity::from_pem(RSA_CERT, EC_SEC1_KEY));
        assert!(shown.contains("does not belong"), "{shown}");
    }

    #[test]
    fn a_bad_pem_names_the_part_and_never_quotes_the_key() {
        let secret_line = "c2VjcmV0LWtleS1tYXRlcmlhbA";
        let cases: [(&str, String, &str, &str); 6] = [
            (
                "",
                EC_SEC1_KEY.to_owned(),
                "client certificate",
                "no CERTIFICATE",
            ),
            (
                EC_SEC1_KEY,
                EC_SEC1_KEY.to_owned(),
                "client certificate",
                "no CERTIFICATE",
            ),
            (EC_CERT, String::new(), "client key", "no PRIVATE KEY"),
            (EC_CERT, EC_CERT.to_owned(), "client key", "no PRIVATE KEY"),
            (
                EC_CERT,
                format!(
                    "-----BEGIN EC PRIVATE KEY-----\n{secret_line}!!\n-----END EC PRIVATE KEY-----\n"
                ),
                "client key",
                "base64",
            ),
            (
                EC_CERT,
                format!("-----BEGIN EC PRIVATE KEY-----\n{secret_line}\n"),
                "client key",
                "END",
            ),
        ];
        for (cert, key, part, says) in cases {
            let (shown, what) = problem(ClientIdentity::from_pem(cert, key.as_str()));
            assert_eq!(what, part, "{shown}");
            assert!(shown.contains(says), "{shown}");
            assert!(!shown.contains(secret_line), "{shown}");
        }
    }

    #[test]
    fn an_encrypted_key_asks_for_an_export_without_a_password() {
        for key in [
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        ] {
            let (shown, what) = problem(ClientIdentity::from_pem(EC_CERT, key));
            assert_eq!(what, "client key");
            assert!(shown.contains("password"), "{shown}");
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let identity = ClientIdentity::from_pem(EC_CERT, EC_SEC1_KEY)
            .unwrap_or_else(|e| panic!("{e}"))
            .with_source(CredentialSource::Described("Secret qlik/qrs".into()));
        let shown = format!("{identity:?} {identity:#?}");
        let key_body = EC_SEC1_KEY.lines().nth(1).unwrap_or_default();
        assert!(!shown.contains(key_body), "{shown}");
        assert!(shown.contains("Secret qlik/qrs"), "{shown}");
    }

    #[test]
    fn the_user_header_is_qliks_form_and_refuses_what_would_break_it() {
        let user = QlikUser::new("INTERNAL", "sa_api");
        assert_eq!(user.header_value(), "UserDirectory=INTERNAL; UserId=sa_api");
        assert_eq!(user.to_string(), "INTERNAL\\sa_api");
        assert!(user.header().is_ok());
        assert!(QlikUser::new("CORP", "jörg müller").header().is_ok());
        for (directory, id, says) in [
            ("", "sa_api", "UserDirectory is empty"),
            ("INTERNAL", " ", "UserId is empty"),
            ("INTERNAL", "a; UserId=sa_repository", "contains a ';'"),
            ("INTERNAL", "a\r\nX-Evil: 1", "control character"),
        ] {
            let shown = QlikUser::new(directory, id)
                .header()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(shown.contains(says), "{shown}");
            assert!(shown.starts_with("failed to load the QRS user"), "{shown}");
        }
    }
}
