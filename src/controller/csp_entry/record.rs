//! Record: writes the status the plan wants, only when it differs from the stored one
//! (compared without timestamps), and an event for every tenant write. Writes the status
//! subresource and Events.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};

use super::apply::Outcome;
use super::plan::{Action, DesiredStatus};
use super::{CONTROLLER_NAME, Error};
use crate::api::reasons::TENANT_NOT_FOUND;
use crate::api::{CspEntry, CspEntryStatus};
use crate::controller::Shared;
use crate::controller::conditions::{self, Desired, Progress};
use crate::controller::own_writes;

/// Plan reasons that only a user can resolve (kstatus `Stalled`); any other not-Ready
/// reason is work pending (`Reconciling`), e.g. `TenantNotReady`, `Pending`, `Deleting`.
const STALLED_REASONS: &[&str] = &[
    "InvalidSpec",
    "DuplicateOrigin",
    "TenantLimitReached",
    TENANT_NOT_FOUND,
];

/// The kstatus progress a plan's `Ready` condition implies (pure).
pub fn plan_progress<'a>(ready: &Desired<'a>) -> Progress<'a> {
    if ready.status {
        Progress::Done
    } else if STALLED_REASONS.contains(&ready.reason) {
        Progress::Stalled(ready.reason)
    } else {
        Progress::Reconciling(ready.reason)
    }
}

/// The status `desired` leads to from `current` (pure).
pub fn build_status(
    current: Option<&CspEntryStatus>,
    desired: &DesiredStatus,
    outcome: &Outcome,
    generation: Option<i64>,
    now: Time,
) -> CspEntryStatus {
    let mut status = current.cloned().unwrap_or_default();
    conditions::set(
        &mut status.conditions,
        desired.ready.clone(),
        generation,
        now.clone(),
    );
    conditions::set(
        &mut status.conditions,
        desired.synced.clone(),
        generation,
        now.clone(),
    );
    let progress = plan_progress(&desired.ready);
    let message = &desired.ready.message;
    conditions::set_progress(&mut status.conditions, progress, message, generation, now);
    status.observed_generation = generation;
    status.id = outcome.created_id.clone().or_else(|| desired.id.clone());
    if let Some(synced_at) = desired.synced_at {
        status.last_sync_time = Some(Time(synced_at));
    }
    status
}

/// Whether two statuses say the same, ignoring condition transition times.
pub fn same_status(a: &CspEntryStatus, b: &CspEntryStatus) -> bool {
    conditions::same_ignoring_time(&a.conditions, &b.conditions)
        && a.observed_generation == b.observed_generation
        && a.id == b.id
        && a.last_sync_time == b.last_sync_time
}

pub async fn record(
    shared: &Shared,
    entry: &CspEntry,
    desired: &DesiredStatus,
    outcome: &Outcome,
    now: jiff::Timestamp,
) -> Result<(), Error> {
    let now = Time(now);
    let status = build_status(
        entry.status.as_ref(),
        desired,
        outcome,
        entry.meta().generation,
        now,
    );
    if entry
        .status
        .as_ref()
        .is_some_and(|current| same_status(current, &status))
    {
        return Ok(());
    }
    let api: Api<CspEntry> =
        Api::namespaced(shared.kube.clone(), &entry.namespace().unwrap_or_default());
    let written = own_writes::write_status(&api, entry, CONTROLLER_NAME, status, false)
        .await
        .map_err(Error::Status)?;
    // The tenant controller learns at once that the entry settled (see `entry_feed`).
    shared.entries.written(entry, written);
    Ok(())
}

/// Publishes an event for a tenant write; events are best effort (a failure is logged).
pub async fn event_for(recorder: &Recorder, entry: &CspEntry, action: &Action) {
    let (reason, note) = match action {
        Action::Create(content) => (
            "Created",
            format!("created the tenant's entry for {}", content.origin),
        ),
        Action::Adopt { id } => (
            "Adopted",
            format!("adopted the tenant's existing entry {id}"),
        ),
        Action::Update {
            id, adopted: true, ..
        } => (
            "Adopted",
            format!("adopted and updated the tenant's entry {id}"),
        ),
        Action::Update { id, .. } => ("Updated", format!("updated the tenant's entry {id}")),
        Action::Delete { id } => ("Deleted", format!("deleted the tenant's entry {id}")),
        _ => return,
    };
    publish(recorder, entry, EventType::Normal, reason, note).await;
}

/// Publishes a warning for a failed reconcile.
pub async fn warn(recorder: &Recorder, entry: &CspEntry, error: &Error) {
    publish(
        recorder,
        entry,
        EventType::Warning,
        error.reason(),
        error.message(),
    )
    .await;
}

async fn publish(
    recorder: &Recorder,
    entry: &CspEntry,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Sync".to_owned(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &entry.object_ref(&())).await {
        tracing::warn!(error = %e, "failed to publish an event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(status: bool, reason: &'static str) -> Desired<'static> {
        Desired {
            type_: conditions::READY,
            status,
            reason,
            message: String::new(),
        }
    }

    #[test]
    fn a_duplicate_origin_or_missing_tenant_is_stalled_a_waiting_entry_reconciling_a_synced_one_neither()
     {
        assert_eq!(
            plan_progress(&ready(false, "DuplicateOrigin")),
            Progress::Stalled("DuplicateOrigin")
        );
        assert_eq!(
            plan_progress(&ready(false, "TenantNotReady")),
            Progress::Reconciling("TenantNotReady")
        );
        assert_eq!(
            plan_progress(&ready(false, "TenantNotFound")),
            Progress::Stalled("TenantNotFound")
        );
        assert_eq!(plan_progress(&ready(true, "Created")), Progress::Done);
    }
}
