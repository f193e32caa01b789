//! Apply on a client-managed site: a QRS data connection's `username` and `password`,
//! written by reading the whole entity and putting it back with the `modifiedDate` it was
//! read with (see [`crate::tenant::qrs`]). Does network I/O (the site only).
//!
//! - The connection is found by id, else by the id last pushed to, else by name; several
//!   with the name are reported, never guessed between.
//! - An edit made in the QMC between the read and the write makes the site refuse the
//!   write (409): the connection is read again and the values written on the new version,
//!   at most [`WRITE_ATTEMPTS`] times.
//! - Only `username` and `password` exist on a QRS data connection: the cloud's
//!   `qUsername`, `qPassword` and `qConnectionSecret`, and the other targets (automation
//!   connections, the tenant's email), are refused as `Unsupported`.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};

use super::plan::{Outcome, Verification};
use super::push::{
    PushFailure, TARGET_AMBIGUOUS, TARGET_NOT_FOUND, UNSUPPORTED, from_tenant, refused,
};
use crate::api::secret_push::{DataConnectionTarget, PushTarget, QRS_DATA_CONNECTION_FIELDS};
use crate::tenant;
use crate::tenant::qrs::{QrsClient, QrsDataConnection};

/// Read-modify-write rounds before a connection that keeps changing is reported.
pub const WRITE_ATTEMPTS: usize = 3;

/// Pushes `values` into `target` on the site; see [`super::push::push`].
pub async fn push(
    site: &QrsClient,
    target: &PushTarget,
    values: &BTreeMap<String, SecretString>,
    last_id: Option<&str>,
) -> Result<Outcome, PushFailure> {
    let Some(connection) = &target.data_connection else {
        return Err(refused(
            UNSUPPORTED,
            &format!(
                "{} is a Qlik Cloud target; a client-managed site takes dataConnection only",
                target.kind().as_str()
            ),
        ));
    };
    if let Some(field) = connection
        .fields
        .keys()
        .find(|f| !QRS_DATA_CONNECTION_FIELDS.contains(&f.as_str()))
    {
        return Err(refused(
            UNSUPPORTED,
            &format!(
                "a QRS data connection has no field {field}: map username and password on a client-managed site"
            ),
        ));
    }
    data_connection(site, connection, values, last_id).await
}

async fn data_connection(
    site: &QrsClient,
    target: &DataConnectionTarget,
    values: &BTreeMap<String, SecretString>,
    last_id: Option<&str>,
) -> Result<Outcome, PushFailure> {
    let username = values.get("username").map(|v| v.expose_secret().to_owned());
    let password = values.get("password");
    for _ in 0..WRITE_ATTEMPTS {
        let connection = find(site, target, last_id).await?;
        let id = connection.id().to_owned();
        match site
            .update_data_connection_credentials(&connection, username.as_deref(), password)
            .await
        {
            Ok(_) => {
                return Ok(Outcome::Pushed {
                    target_id: Some(id),
                    verification: Verification::None,
                });
            }
            // Changed since it was read (an edit in the QMC): read it again.
            Err(tenant::Error::Conflict { .. }) => continue,
            Err(e) => return Err(from_tenant(&e, &format!("data connection {id}"))),
        }
    }
    Err(PushFailure {
        failure: super::plan::Failure {
            reason: "TargetConflict",
            message: format!(
                "the data connection changed between each of {WRITE_ATTEMPTS} reads and writes; trying again later"
            ),
            transient: true,
        },
        retry_after: None,
    })
}

/// The connection by id, else the one named; several with the name are refused.
async fn find(
    site: &QrsClient,
    target: &DataConnectionTarget,
    last_id: Option<&str>,
) -> Result<QrsDataConnection, PushFailure> {
    let name = match (&target.id, &target.name) {
        (Some(id), _) => {
            return site
                .data_connection(id)
                .await
                .map_err(|e| from_tenant(&e, &format!("data connection {id}")));
        }
        (None, Some(name)) => name,
        (None, None) => return Err(refused(TARGET_NOT_FOUND, "no data connection named")),
    };
    let mut found = site
        .data_connections_named(name)
        .await
        .map_err(|e| from_tenant(&e, &format!("data connections named {name:?}")))?;
    match found.len() {
        1 => found.pop().ok_or_else(|| refused(TARGET_NOT_FOUND, name)),
        0 => Err(refused(
            TARGET_NOT_FOUND,
            &format!("no data connection the operator's user can see is named {name:?}"),
        )),
        n => {
            let ids: Vec<&str> = found.iter().map(QrsDataConnection::id).collect();
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
