//! The tenant side of automation execution tokens: what [`observe`](super::observe) reads
//! (the automations status names, and, when a copy may have been made, every automation
//! whose name carries this SecretRotation's marker) and what [`act`](super::act) does (copy
//! the current automation, give the copy the state the copied one has, read the copy's
//! token, delete an automation). Does network I/O. A token read here goes only to
//! [`Held`](super::held::Held) and the Secret.
//!
//! What the rotation assumes of a copy (Qlik documents no more than "duplicates an existing
//! automation"): a new id, a new execution token, the caller as its owner, and the name
//! the request gives it. Its state is set here to the copied automation's (enabled or
//! disabled); its run mode is read-only in the API and cannot be set.

use secrecy::SecretString;

use super::marker;
use super::observed::{Remote, RemoteCredential};
use super::schedule;
use crate::api::SecretRotation;
use crate::api::secret_rotation::SecretRotationStatus;
use crate::failpoint::{self, rotation as point};
use crate::tenant::wire::{Automation, AutomationSummary};
use crate::tenant::{Error, TenantClient};

/// The automation the spec names.
pub fn original(object: &SecretRotation) -> &str {
    object
        .spec
        .credential
        .automation_execution_token
        .as_ref()
        .map_or("", |t| t.automation_id.as_str())
}

/// The automation a rotation copies: the current one, else the spec's.
pub fn source<'a>(object: &'a SecretRotation, status: &'a SecretRotationStatus) -> &'a str {
    status
        .current
        .as_ref()
        .and_then(|c| c.id.as_deref())
        .unwrap_or_else(|| original(object))
}

fn uid(object: &SecretRotation) -> &str {
    object.metadata.uid.as_deref().unwrap_or_default()
}

/// The automations status names (the current or original one, the previous one, a copy
/// recorded in `pending.created`) that exist, and with `scan` those whose name carries the
/// marker (one list of every automation of the tenant: only when a copy may exist that
/// status does not name).
pub async fn remote(
    client: &TenantClient,
    object: &SecretRotation,
    status: &SecretRotationStatus,
    scan: bool,
) -> Result<Remote, Error> {
    let uid = uid(object);
    let named = [
        Some(source(object, status)),
        status.previous.as_ref().and_then(|p| p.id.as_deref()),
        status
            .pending
            .as_ref()
            .and_then(|p| p.created.as_ref())
            .and_then(|c| c.id.as_deref()),
    ];
    let mut credentials: Vec<RemoteCredential> = Vec::new();
    for id in named.into_iter().flatten().filter(|id| !id.is_empty()) {
        if credentials.iter().any(|c| c.id == id) {
            continue;
        }
        match client.get_automation(id).await {
            Ok(found) => credentials.push(from_detail(&found, uid)),
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    if scan {
        let marked = client
            .find_automations_by_name_marker(&marker::automation_prefix(uid))
            .await?;
        for found in marked {
            if !credentials.iter().any(|c| c.id == found.id) {
                credentials.push(from_summary(&found, uid));
            }
        }
    }
    Ok(Remote {
        credentials,
        max_expiry: None,
    })
}

fn from_detail(found: &Automation, uid: &str) -> RemoteCredential {
    credential(
        &found.id,
        &found.name,
        found.owner_id.as_deref(),
        found.created_at,
        uid,
    )
}

fn from_summary(found: &AutomationSummary, uid: &str) -> RemoteCredential {
    credential(
        &found.id,
        &found.name,
        found.owner_id.as_deref(),
        found.created_at,
        uid,
    )
}

fn credential(
    id: &str,
    name: &str,
    owner: Option<&str>,
    created_at: Option<jiff::Timestamp>,
    uid: &str,
) -> RemoteCredential {
    RemoteCredential {
        id: id.to_owned(),
        revision: marker::automation_revision(name, uid),
        active: true,
        created_at: created_at.map(schedule::whole_seconds),
        expires_at: None,
        created_by: owner.filter(|o| !o.is_empty()).map(str::to_owned),
        subject: None,
    }
}

/// Copies the current automation as revision `revision` (its name carries the marker),
/// then finishes the copy (its state, its token). The copy request is sent once: an
/// unknown outcome is an error, and the next `Creating` looks for the copy by its marker
/// before copying again.
pub async fn copy(
    client: &TenantClient,
    object: &SecretRotation,
    status: &SecretRotationStatus,
    revision: i64,
) -> Result<(RemoteCredential, SecretString), Error> {
    let source_id = source(object, status);
    let copied = client.get_automation(source_id).await?;
    let name = marker::automation_name(&copied.name, uid(object), revision);
    let id = client.copy_automation(source_id, &name).await?;
    // The copy exists; neither status nor memory knows it yet.
    failpoint::hit(point::AFTER_COPY);
    finish(client, object, &id, Some(copied.is_enabled())).await
}

/// Finishes the copy `id` made before an interruption, with the state of the current
/// automation if it still exists.
pub async fn adopt(
    client: &TenantClient,
    object: &SecretRotation,
    status: &SecretRotationStatus,
    id: &str,
) -> Result<(RemoteCredential, SecretString), Error> {
    let enabled = match client.get_automation(source(object, status)).await {
        Ok(copied) => Some(copied.is_enabled()),
        Err(Error::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    finish(client, object, id, enabled).await
}

/// Gives the copy `id` the state `enabled` (when known) and reads its token.
async fn finish(
    client: &TenantClient,
    object: &SecretRotation,
    id: &str,
    enabled: Option<bool>,
) -> Result<(RemoteCredential, SecretString), Error> {
    let copy = client.get_automation(id).await?;
    match enabled {
        Some(true) if !copy.is_enabled() => client.enable_automation(id).await?,
        Some(false) if copy.is_enabled() => client.disable_automation(id).await?,
        _ => {}
    }
    let Some(token) = copy.execution_token.clone() else {
        return Err(Error::InvalidResponse {
            operation: "automations.get",
            problem: format!("automation {id} has no execution token"),
        });
    };
    Ok((from_detail(&copy, uid(object)), token))
}

/// Deletes the automation `id`; one already gone counts as done.
pub async fn delete(client: &TenantClient, id: &str) -> Result<(), Error> {
    client.delete_automation(id).await.map(drop)
}
