//! Apply: the values written into the target, then Qlik's own check of them where the
//! target has one. Does network I/O (the tenant only).
//!
//! - A data connection is found (by id, else by the id last pushed to, else by name),
//!   refused when it uses interactive OAuth (Qlik cannot update those), and its credential
//!   fields replaced with a JSON Patch (see [`crate::tenant::data_connections`]).
//! - An automation connection's parameters are matched by name (or id) to the ones it
//!   lists, written with a `PUT`, then checked with `actions/check`.
//! - The tenant's email configuration is read and written back whole with the password
//!   (and the user name) in it (`PUT`: Qlik's `PATCH` is sunset 2026-11), then
//!   `actions/verify-connection`; on failure the configuration's `errorCode` is read for
//!   the condition. The tenant checks the connection before it saves: a `PUT` it refuses
//!   is a failed push (`VerificationFailed`, not retried for the same values), the old
//!   password stays. A `Microsoft365` configuration is refused (`Unsupported`).
//!
//! Messages name targets and what Qlik said, never a value: text from the tenant is
//! scrubbed of every value just pushed before it reaches a condition.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::plan::{Failure, Outcome, VERIFICATION_FAILED, Verification};
use crate::api::secret_push::{
    AutomationConnectionTarget, DATA_CONNECTION_FIELDS, DataConnectionTarget, PushTarget,
};
use crate::controller::site_clients::Remote;
use crate::error_chain::error_chain;
use crate::tenant::{self, TenantClient};

/// `Ready` reason: no data connection has the name, or the id is gone.
pub const TARGET_NOT_FOUND: &str = "TargetNotFound";
/// `Ready` reason: more than one data connection has the name.
pub const TARGET_AMBIGUOUS: &str = "TargetAmbiguous";
/// `Ready` reason: Qlik cannot update this target's credentials (interactive OAuth), or
/// they are no password (a Microsoft 365 email configuration).
pub const UNSUPPORTED: &str = "Unsupported";
/// `Ready` reason: the automation connection has no parameter of that name.
pub const UNKNOWN_PARAMETER: &str = "UnknownParameter";
/// `Ready` reason: the tenant has no email configuration to put a password into.
pub const EMAIL_NOT_CONFIGURED: &str = "EmailNotConfigured";

/// A push that failed, and how long the tenant asked everyone to wait.
pub struct PushFailure {
    pub failure: Failure,
    pub retry_after: Option<Duration>,
}

type Pushed = Result<Outcome, PushFailure>;

/// Pushes `values` (target field → value) into `target`; `last_id` is the id last pushed
/// to (named in a message when a name became ambiguous). A failure comes with the pause
/// the tenant asked for, if any.
pub async fn push(
    remote: &Remote,
    target: &PushTarget,
    values: &BTreeMap<String, SecretString>,
    last_id: Option<&str>,
) -> (Outcome, Option<Duration>) {
    let client = match remote {
        Remote::Cloud(client) => client,
        Remote::Site(site) => {
            return match super::push_site::push(site, target, values, last_id).await {
                Ok(outcome) => (outcome, None),
                Err(failed) => (Outcome::Failed(failed.failure), failed.retry_after),
            };
        }
    };
    let pushed = if let Some(connection) = &target.data_connection {
        data_connection(client, connection, values, last_id).await
    } else if let Some(connection) = &target.automation_connection {
        automation_connection(client, connection, values).await
    } else {
        tenant_email(client, values).await
    };
    match pushed {
        Ok(outcome) => (outcome, None),
        Err(failed) => (Outcome::Failed(failed.failure), failed.retry_after),
    }
}

async fn data_connection(
    client: &TenantClient,
    target: &DataConnectionTarget,
    values: &BTreeMap<String, SecretString>,
    last_id: Option<&str>,
) -> Pushed {
    if let Some(field) = target
        .fields
        .keys()
        .find(|f| !DATA_CONNECTION_FIELDS.contains(&f.as_str()))
    {
        let message = format!(
            "a Qlik Cloud data connection has no field {field}: map qUsername, qPassword or qConnectionSecret"
        );
        return Err(refused(UNSUPPORTED, &message));
    }
    let id = match (&target.id, &target.name) {
        (Some(id), _) => id.clone(),
        (None, Some(name)) => find_by_name(client, name, last_id).await?.id,
        (None, None) => return Err(refused(TARGET_NOT_FOUND, "no data connection named")),
    };
    // Read by id even when found by name: only a single read carries the properties that
    // tell an interactive-OAuth connection apart.
    let connection = client
        .get_data_connection(&id)
        .await
        .map_err(|e| from_tenant(&e, &format!("data connection {id}")))?;
    if connection.uses_interactive_oauth() {
        return Err(refused(
            UNSUPPORTED,
            &format!(
                "data connection {} ({}) uses interactive OAuth, whose credentials Qlik cannot update through its API",
                connection.id, connection.name
            ),
        ));
    }
    let credentials = tenant::DataConnectionCredentials {
        username: values
            .get("qUsername")
            .map(|v| v.expose_secret().to_owned()),
        password: values.get("qPassword").cloned(),
        connection_secret: values.get("qConnectionSecret").cloned(),
    };
    client
        .update_data_connection_credentials(&connection.id, &credentials)
        .await
        .map_err(|e| from_tenant(&e, &format!("data connection {}", connection.id)))?;
    Ok(Outcome::Pushed {
        target_id: Some(connection.id),
        verification: Verification::None,
    })
}

/// The one data connection named `name`. Several are reported (with the id last pushed
/// to), never guessed between: a credential written into the wrong connection is a leak.
async fn find_by_name(
    client: &TenantClient,
    name: &str,
    last_id: Option<&str>,
) -> Result<tenant::DataConnection, PushFailure> {
    let mut found = client
        .find_data_connections_by_name(name)
        .await
        .map_err(|e| from_tenant(&e, &format!("data connections named {name:?}")))?;
    if found.len() == 1
        && let Some(connection) = found.pop()
    {
        return Ok(connection);
    }
    match found.len() {
        0 => Err(refused(
            TARGET_NOT_FOUND,
            &format!("no data connection the operator's identity can see is named {name:?}"),
        )),
        n => {
            let ids: Vec<&str> = found.iter().map(|c| c.id.as_str()).collect();
            let hint = last_id.map_or(String::new(), |id| format!(" (last pushed to {id})"));
            Err(refused(
                TARGET_AMBIGUOUS,
                &format!(
                    "{n} data connections are named {name:?} ({}){hint}: set dataConnection.id",
                    ids.join(", ")
                ),
            ))
        }
    }
}

async fn automation_connection(
    client: &TenantClient,
    target: &AutomationConnectionTarget,
    values: &BTreeMap<String, SecretString>,
) -> Pushed {
    let what = format!("automation connection {}", target.id);
    let connection = client
        .get_automation_connection(&target.id)
        .await
        .map_err(|e| from_tenant(&e, &what))?;
    let mut params = Vec::with_capacity(values.len());
    let mut unknown = Vec::new();
    for (field, value) in values {
        match connection
            .params
            .iter()
            .find(|p| p.name == *field || p.id == *field)
        {
            Some(param) => params.push(tenant::AutomationConnectionParamValue {
                id: param.id.clone(),
                value: value.clone(),
            }),
            None => unknown.push(field.as_str()),
        }
    }
    if !unknown.is_empty() {
        let known: Vec<&str> = connection.params.iter().map(|p| p.name.as_str()).collect();
        return Err(refused(
            UNKNOWN_PARAMETER,
            &format!(
                "{what} has no parameter {} (it has: {})",
                unknown.join(", "),
                known.join(", ")
            ),
        ));
    }
    client
        .update_automation_connection_params(&target.id, &params)
        .await
        .map_err(|e| from_tenant(&e, &what))?;
    let verification = match client.check_automation_connection(&target.id).await {
        Ok(check) if check.connected => Verification::Passed,
        Ok(_) => Verification::Failed {
            message: format!(
                "the values were written, but Qlik's check of {what} says it is not connected"
            ),
        },
        Err(e) => Verification::Failed {
            message: scrub(
                &format!(
                    "the values were written, but Qlik's check of {what} failed: {}",
                    error_chain(&e)
                ),
                values,
            ),
        },
    };
    Ok(Outcome::Pushed {
        target_id: Some(target.id.clone()),
        verification,
    })
}

async fn tenant_email(client: &TenantClient, values: &BTreeMap<String, SecretString>) -> Pushed {
    let what = "the tenant's email configuration";
    let Some(password) = values.get("emailPassword") else {
        return Err(refused(EMAIL_NOT_CONFIGURED, "no emailPassword mapped"));
    };
    let config = client
        .get_email_config()
        .await
        .map_err(|e| from_tenant(&e, what))?;
    let Some(config) = config else {
        return Err(refused(
            EMAIL_NOT_CONFIGURED,
            "the tenant has no email configuration: set its server in the Management Console first (the operator pushes only credentials)",
        ));
    };
    let username = values.get("username").map(|v| v.expose_secret().to_owned());
    match client
        .put_email_credentials(&config, password, username.as_deref())
        .await
    {
        Ok(()) => {}
        Err(tenant::Error::UnsupportedEmailProvider { provider, .. }) => {
            let message = if provider == tenant::wire::MICROSOFT_365 {
                "the tenant sends email through Microsoft 365, whose client secret is not an SMTP password".to_owned()
            } else {
                format!(
                    "the tenant's email provider is {provider:?}, not BasicAuth: the operator writes SMTP passwords only"
                )
            };
            return Err(refused(UNSUPPORTED, &message));
        }
        Err(tenant::Error::IncompleteEmailConfig { missing, .. }) => {
            return Err(refused(
                EMAIL_NOT_CONFIGURED,
                &format!(
                    "{what} has no {}: set it in the Management Console first (the operator writes the configuration back as it is, with the password)",
                    missing.join(", ")
                ),
            ));
        }
        Err(e @ tenant::Error::EmailConfigRejected { .. }) => {
            // The tenant checks the connection before it saves: nothing was written, and
            // the same values would be refused again.
            return Err(PushFailure {
                failure: Failure {
                    reason: VERIFICATION_FAILED,
                    message: scrub(
                        &format!(
                            "Qlik did not save the password, the old one stays: {}",
                            error_chain(&e)
                        ),
                        values,
                    ),
                    transient: false,
                },
                retry_after: None,
            });
        }
        Err(e) => return Err(from_tenant(&e, what)),
    }
    let verification = match client.verify_email_connection().await {
        Ok(result) if result.success => Verification::Passed,
        Ok(result) => {
            let error_code = match client.get_email_config().await {
                Ok(Some(config)) => config.error_code.unwrap_or_else(|| "unknown".to_owned()),
                _ => "unknown".to_owned(),
            };
            let mut message = format!(
                "the password was written, but Qlik could not verify the SMTP connection: errorCode {error_code}"
            );
            if let Some(code) = result.smtp_response_code {
                message.push_str(&format!(", SMTP response {code}"));
            }
            if result.connection_failed {
                message.push_str(", connection failed");
            }
            if let Some(detail) = result.message.as_deref().filter(|m| !m.is_empty()) {
                message.push_str(&format!(": {}", truncate(detail, 200)));
            }
            Verification::Failed {
                message: scrub(&message, values),
            }
        }
        Err(e) => Verification::Failed {
            message: scrub(
                &format!(
                    "the password was written, but Qlik's verification failed: {}",
                    error_chain(&e)
                ),
                values,
            ),
        },
    };
    Ok(Outcome::Pushed {
        target_id: None,
        verification,
    })
}

/// A tenant error while handling `what`: transient ones are retried with backoff (and a
/// `Retry-After` pause for the whole tenant); a target that is gone is `TargetNotFound`.
pub(super) fn from_tenant(error: &tenant::Error, what: &str) -> PushFailure {
    let reason = match error {
        tenant::Error::NotFound { .. } => TARGET_NOT_FOUND,
        e => e.reason(),
    };
    PushFailure {
        failure: Failure {
            reason,
            message: format!("{what}: {}", error_chain(error)),
            transient: error.is_transient(),
        },
        retry_after: error.retry_after(),
    }
}

pub(super) fn refused(reason: &'static str, message: &str) -> PushFailure {
    PushFailure {
        failure: Failure {
            reason,
            message: message.to_owned(),
            transient: false,
        },
        retry_after: None,
    }
}

/// `text` with every pushed value replaced: Qlik's messages come from an SMTP server or a
/// connector, which may echo what they were given.
fn scrub(text: &str, values: &BTreeMap<String, SecretString>) -> String {
    let mut text = text.to_owned();
    for value in values.values() {
        let value = value.expose_secret();
        // A one-character value would blank the whole message; such a value is no secret.
        if value.len() >= 4 {
            text = text.replace(value, "[redacted]");
        }
    }
    text
}

fn truncate(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pushed_value_never_survives_in_a_message() {
        let values = BTreeMap::from([("emailPassword".to_owned(), SecretString::from("hunter22"))]);
        let message = scrub("535 auth failed for password hunter22", &values);
        assert!(!message.contains("hunter22"), "{message}");
        assert!(message.contains("[redacted]"));
    }

    #[test]
    fn long_tenant_text_is_cut() {
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
