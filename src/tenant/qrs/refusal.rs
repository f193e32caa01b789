//! Telling the site's refusal of the client certificate apart from other transport
//! failures. Pure: it reads an error's source chain.
//!
//! A site that does not accept the client certificate (signed by a CA it does not trust,
//! expired, revoked, or none sent) ends the TLS handshake with an alert. Under TLS 1.2 the
//! alert fails the connect; under TLS 1.3 the client has already sent its request when
//! the alert arrives, so it surfaces while reading the first response. Either way it ends
//! up as a `rustls::Error::AlertReceived` inside an `io::Error`, inside hyper's and
//! reqwest's errors. Such a refusal is a credential problem (`Unauthorized`), not an
//! outage: retrying cannot help until the certificate changes.

use std::error::Error as StdError;

use rustls::AlertDescription;

/// The alerts by which a server refuses a client certificate (RFC 8446 §6.2, RFC 5246
/// §7.2.2).
const REFUSALS: [AlertDescription; 5] = [
    AlertDescription::BadCertificate,
    AlertDescription::UnknownCA,
    AlertDescription::CertificateRequired,
    AlertDescription::CertificateUnknown,
    AlertDescription::AccessDenied,
];

/// The alert by which the peer refused the client certificate, if `error` or one of its
/// causes is one.
pub(crate) fn client_certificate_refusal(
    error: &(dyn StdError + 'static),
) -> Option<AlertDescription> {
    let mut next = Some(error);
    // Bounded: a chain is short, but a cyclic `source` must not hang the client.
    for _ in 0..32 {
        let e = next?;
        if let Some(rustls::Error::AlertReceived(alert)) = e.downcast_ref::<rustls::Error>() {
            return REFUSALS.contains(alert).then_some(*alert);
        }
        // `io::Error::source` skips the error it wraps (it returns that error's source),
        // so look at the wrapped error itself.
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use std::fmt;
    use std::io;

    use rustls::{CertificateError, Error as TlsError};

    use super::*;

    /// An error that wraps another, as hyper and reqwest do.
    #[derive(Debug)]
    struct Wrapper(Box<dyn StdError + Send + Sync>);

    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("request failed")
        }
    }

    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(self.0.as_ref())
        }
    }

    fn io_around(tls: TlsError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, tls)
    }

    fn found(error: &(dyn StdError + 'static)) -> Option<AlertDescription> {
        client_certificate_refusal(error)
    }

    #[test]
    fn alerts_refusing_the_client_certificate_are_found_through_the_chain() {
        for alert in REFUSALS {
            let received = || TlsError::AlertReceived(alert);
            // Connect under TLS 1.2: reqwest > hyper-util > io > rustls.
            let connect = Wrapper(Box::new(Wrapper(Box::new(io_around(received())))));
            assert_eq!(found(&connect), Some(alert), "{alert:?}");
            // Reading the response under TLS 1.3: hyper > io > rustls, and io within io.
            let read = Wrapper(Box::new(io::Error::other(io_around(received()))));
            assert_eq!(found(&read), Some(alert), "{alert:?}");
            assert_eq!(found(&received()), Some(alert));
        }
    }

    #[test]
    fn other_failures_are_not_refusals_of_the_client_certificate() {
        let others: Vec<Box<dyn StdError + Send + Sync>> = vec![
            Box::new(io_around(TlsError::AlertReceived(
                AlertDescription::HandshakeFailure,
            ))),
            Box::new(io_around(TlsError::AlertReceived(
                AlertDescription::ProtocolVersion,
            ))),
            // The client refusing the site's certificate is not the site refusing ours.
            Box::new(io_around(TlsError::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))),
            Box::new(io::Error::from(io::ErrorKind::ConnectionReset)),
            Box::new(io::Error::other("connection closed")),
        ];
        for other in others {
            let wrapped = Wrapper(other);
            assert_eq!(found(&wrapped), None, "{wrapped:?}");
        }
    }
}
