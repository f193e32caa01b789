//! Tenant email configuration operations (`/api/v1/transports/email-config`,
//! `transports.json`): read it, push the SMTP credentials, and verify the connection.
//! Does network I/O.
//!
//! # PATCH, though deprecated
//! The credentials are written with `PATCH` (`emailConfigPatch`: `replace` of
//! `/emailPassword`, and of `/username` when given). Qlik marks that `PATCH` deprecated in
//! favour of `PUT /transports/email-config` ("to replace the entire configuration"), with
//! `x-qlik-deprecated-version: 2025-11` and **`x-qlik-deprecated-sunset: 2026-11`**. It is
//! still the right call for an operator that owns only the password: `PUT`
//! (`putEmailConfig`) replaces the whole configuration, `serviceProvider` and a complete
//! `providerConfig` (server address, port, security type, sender name and address, user
//! name, password), fields the platform team sets in the console and the operator does
//! not own. Building it from a read would overwrite any change made in between (there is
//! no precondition), and the read never returns the password. The `PATCH` names only the
//! credential fields. Before the sunset this module needs a `PUT` path (GET, merge the
//! password into `providerConfig`, PUT) for tenants where the `PATCH` is gone.
//!
//! The `PATCH` paths cover `BasicAuth` only: there is none for a `Microsoft365`
//! provider's `clientSecret`.
//!
//! # Retries
//! - `PATCH`: idempotent, retried on 5xx and timeouts; the password is declared to the
//!   client for scrubbing from error answers.
//! - `POST actions/verify-connection`: a handshake that changes nothing, marked safe to
//!   retry although a `POST`.

use reqwest::Method;
use secrecy::SecretString;

use super::Error;
use super::client::{Call, TenantClient};
use super::wire::{EmailConfig, SmtpVerification, email_credentials_patch};

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

    /// Replaces the SMTP password, and the user name when given (`PATCH`, see the module
    /// doc for why not `PUT`). The tenant answers 204; a caller that is no tenant admin
    /// gets [`Error::Forbidden`].
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
