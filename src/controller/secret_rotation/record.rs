//! Record: the status (replaced whole with the resourceVersion it was computed from, so a stale
//! decision cannot overwrite a newer one; written only when it differs, ignoring
//! condition transition times) and events (best effort).

use kube::api::Api;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};

use super::CONTROLLER_NAME;
use super::failure::Error;
use super::observed::Note;
use crate::api::{SecretRotation, SecretRotationStatus};
use crate::controller::Shared;
use crate::controller::conditions;
use crate::controller::own_writes;

/// Whether two statuses say the same, ignoring condition transition times.
pub fn same_status(a: &SecretRotationStatus, b: &SecretRotationStatus) -> bool {
    conditions::same_ignoring_time(&a.conditions, &b.conditions)
        && SecretRotationStatus {
            conditions: Vec::new(),
            ..a.clone()
        } == SecretRotationStatus {
            conditions: Vec::new(),
            ..b.clone()
        }
}

/// Whether two statuses hold the same intent and credentials, ignoring the conditions:
/// what must be persisted before a side effect.
pub fn same_intent(a: &SecretRotationStatus, b: &SecretRotationStatus) -> bool {
    SecretRotationStatus {
        conditions: Vec::new(),
        ..a.clone()
    } == SecretRotationStatus {
        conditions: Vec::new(),
        ..b.clone()
    }
}

/// Writes `desired` unless `object` already says it; returns the object as written.
pub async fn write_status(
    shared: &Shared,
    object: &SecretRotation,
    desired: &SecretRotationStatus,
) -> Result<Option<SecretRotation>, Error> {
    let stored = object.status.clone().unwrap_or_default();
    if object.status.is_some() && same_status(&stored, desired) {
        return Ok(None);
    }
    let api: Api<SecretRotation> =
        Api::namespaced(shared.kube.clone(), &object.namespace().unwrap_or_default());
    let written = own_writes::write_status(&api, object, CONTROLLER_NAME, desired.clone(), true)
        .await
        .map_err(Error::Status)?;
    Ok(Some(written))
}

pub async fn publish_notes(recorder: &Recorder, object: &SecretRotation, notes: &[Note]) {
    for note in notes {
        // Notes name credentials by id or hint only, so they can be logged as they are.
        if note.warning {
            tracing::warn!(reason = note.reason, "{}", note.message);
        } else {
            tracing::info!(reason = note.reason, "{}", note.message);
        }
        let event = Event {
            type_: if note.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: note.reason.to_owned(),
            note: Some(note.message.clone()),
            action: "Rotate".to_owned(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&event, &object.object_ref(&())).await {
            tracing::warn!(error = %e, "failed to publish an event");
        }
    }
}
