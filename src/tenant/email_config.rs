//! Tenant email configuration operations (`/api/v1/transports/email-config`,
//! `transports.json`): read it, push the SMTP credentials, and verify the connection.
//! Does network I/O.
//!
//! # PUT, since the PATCH is sunset
//! The credentials are written with `PUT` (`putEmailConfig`), which replaces the whole
//! configuration: `serviceProvider: BasicAuth` and a complete `providerConfig`. The operator
//! owns only the password (and the user name when mapped); the other fields (server
//! address, port, security type, sender name and address) are the platform team's, set in
//! the Management Console. So the body is built from what `GET` returned, with the
//! password added ([`TenantClient::put_email_credentials`]). Two consequences:
//! - a change made in the console between the `GET` and the `PUT` is overwritten (the API
//!   has no precondition); the window is one round trip;
//! - the tenant checks the connection before it saves (204 "Connection to the email
//!   server verified with provided credentials"): a password the SMTP server refuses is a
//!   400 ([`Error::EmailConfigRejected`]) and the previous password stays.
//!
//! `PATCH` (`emailConfigPatch`, deprecated in 2025-11, **`x-qlik-deprecated-sunset:
//! 2026-11`**) named only the credential fields and saved without checking. It is kept as
//! [`TenantClient::patch_email_credentials`] for tenants that still serve it, but nothing in
//! the operator calls it any more.
//!
//! Only `BasicAuth` is written: a `Microsoft365` provider's secret is a `clientSecret`
//! ([`Error::UnsupportedEmailProvider`]).
//!
//! # Retries
//! - `PUT` and `PATCH`: idempotent, retried on 5xx and timeouts; the password is declared
//!   to the client for scrubbing from error answers.
//! - `POST actions/verify-connection`: a handshake that changes nothing, marked safe to
//!   retry although a `POST`.

use reqwest::Method;
use secrecy::SecretString;

use super::Error;
use super::client::{Call, TenantClient};
use super::wire::{
    EmailConfig, EmailConfigPut, EmailConfigPutRefusal, SmtpVerification, email_credentials_patch,
};

impl TenantClient {
    /// The tenant's email configuration (never the password: see
    /// [`EmailConfig::password_exists`]); `None` when the tenant has none. The definition
    /// answers that case with 200 and `{isValid: false, passwordExists: false}`
    /// ([`EmailConfig::is_unset`]); a 404 counts the same.
    pub async fn get_email_config(&self) -> Result<Option<EmailConfig>, Error> {
        let url = self.url(&["api", "v1", "transports", "email-config"]);
        match self.get_json::<EmailConfig>("email-config.get", url).await {
            Ok(config) if config.is_unset() => Ok(None),
            Ok(config) => Ok(Some(config)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the email configuration with `current` (as [`Self::get_email_config`]
    /// returned it) plus `password`, and `username` when given (`PUT`, see the module doc).
    /// The tenant checks the connection before it saves and answers 204.
    ///
    /// # Errors
    /// - [`Error::UnsupportedEmailProvider`]: `current` is not `BasicAuth`; nothing is sent.
    /// - [`Error::IncompleteEmailConfig`]: `current` lacks the server address, port, sender
    ///   address or user name; nothing is sent.
    /// - [`Error::EmailConfigRejected`]: the tenant's 400 `UpdateEmailConfigError` (the
    ///   connection check failed, or a field is invalid); the previous configuration stays.
    /// - [`Error::Forbidden`]: the caller is no tenant admin.
    ///
    /// # Guarantees
    /// The password is in the request body only: the body's `Debug` redacts it, and it is
    /// scrubbed from the tenant's error answers.
    pub async fn put_email_credentials(
        &self,
        current: &EmailConfig,
        password: &SecretString,
        username: Option<&str>,
    ) -> Result<(), Error> {
        const OPERATION: &str = "email-config.put";
        let body =
            EmailConfigPut::basic_auth(current, password, username).map_err(
                |refusal| match refusal {
                    EmailConfigPutRefusal::Provider(provider) => Error::UnsupportedEmailProvider {
                        operation: OPERATION,
                        provider,
                    },
                    EmailConfigPutRefusal::Missing(missing) => Error::IncompleteEmailConfig {
                        operation: OPERATION,
                        missing,
                    },
                },
            )?;
        let url = self.url(&["api", "v1", "transports", "email-config"]);
        let call = Call::new(OPERATION, Method::PUT, url)
            .json(&body)?
            .redacting([password]);
        match self.execute(&call).await {
            Ok(_) => Ok(()),
            // `UpdateEmailConfigError` has `errors` with `code` and `title`; a 400 without
            // them is not the tenant's verdict on the configuration and stays a BadRequest.
            Err(Error::BadRequest { operation, detail })
                if detail.0.iter().any(|e| e.code.is_some()) =>
            {
                Err(Error::EmailConfigRejected { operation, detail })
            }
            Err(e) => Err(e),
        }
    }

    /// Replaces the SMTP password, and the user name when given, with `PATCH`.
    ///
    /// **Deprecated by Qlik** (2025-11) and **sunset 2026-11**: it may be gone on a tenant.
    /// Use [`Self::put_email_credentials`]. Kept, unused by the operator, as the fallback
    /// for a tenant whose `PUT` misbehaves while its `PATCH` still works (one line to switch
    /// back, with its emulator route and tests intact); delete it once no tenant serves it.
    /// The tenant answers 204; a caller that is no tenant admin gets [`Error::Forbidden`].
    pub async fn patch_email_credentials(
        &self,
        password: &SecretString,
        username: Option<&str>,
    ) -> Result<(), Error> {
        let patch = email_credentials_patch(password, username);
        let url = self.url(&["api", "v1", "transports", "email-config"]);
        let call = Call::new("email-config.patch", Method::PATCH, url)
            .json(&patch)?
            .redacting(patch.secrets());
        self.execute(&call).await?;
        Ok(())
    }

    /// Has the tenant connect and log in to its SMTP server without sending mail
    /// (`actions/verify-connection`). The outcome is in the answer, not the status: a
    /// failed login is a 200 with `success: false`. No configuration is
    /// [`Error::NotFound`].
    pub async fn verify_email_connection(&self) -> Result<SmtpVerification, Error> {
        let url = self.url(&[
            "api",
            "v1",
            "transports",
            "email-config",
            "actions",
            "verify-connection",
        ]);
        self.call_json(Call::new("email-config.verify-connection", Method::POST, url).retry_safe())
            .await
    }
}
