//! The plan step of the `csp-entry` controller: from what observe gathered, decide the one
//! side effect to make (a tenant write or a finalizer change), the status to record and when
//! to look again. Pure: no kube client, no I/O; the clock comes in as `now`.
//!
//! The first row that applies decides:
//!
//! | situation                                                  | action                  | Ready/Synced reason  | requeue     |
//! |------------------------------------------------------------|-------------------------|----------------------|-------------|
//! | being deleted, our finalizer absent                        | `Nothing`               | (status untouched)   | `Never`     |
//! | being deleted, `Orphan`, or the `QlikTenant` is gone       | `RemoveFinalizer`       | (status untouched)   | `Never`     |
//! | being deleted, tenant not ready                            | `Nothing`               | `TenantNotReady`     | `After`     |
//! | being deleted, our remote entry exists                     | `Delete{id}`            | `Deleting`           | `Immediately` |
//! | being deleted, no remote entry (a 404 counts as done)      | `RemoveFinalizer`       | (status untouched)   | `Never`     |
//! | our finalizer absent                                       | `AddFinalizer`          | `Pending`            | `Immediately` |
//! | no such `QlikTenant` (Stalled: a person must create it)    | `Nothing`               | `TenantNotFound`     | `After`     |
//! | tenant not ready                                           | `Nothing`               | `TenantNotReady`     | `After`     |
//! | `spec.origin` rejected by [`Origin::parse`]                | `Nothing`               | `InvalidSpec`        | `OnChange`  |
//! | an older `CspEntry` claims the origin, ours tracks another | `Delete{id}`, id cleared | `DuplicateOrigin`   | `Immediately` |
//! | an older `CspEntry` claims the origin (tie: smaller name)  | `Nothing`, id cleared   | `DuplicateOrigin`    | `After`     |
//! | a client-managed site (no remote entries)                  | `Nothing`               | `CompiledLocally`    | `OnChange`  |
//! | remote entry `status.id`, content differs                  | `Update{adopted:false}` | `Updated`            | `Immediately` |
//! | remote entry `status.id`, content equal                    | `Nothing`               | `InSync` (1)         | `Drift`     |
//! | untracked remote entry, same origin, content equal         | `Adopt{id}`             | `Adopted`            | `Drift`     |
//! | untracked remote entry, same origin, content differs       | `Update{adopted:true}`  | `Adopted`            | `Immediately` |
//! | no remote entry, tenant at its limit                       | `Nothing`               | `TenantLimitReached` | `After`     |
//! | no remote entry (also when `status.id` vanished)           | `Create`                | `Created`            | `Immediately` |
//!
//! (1) A Ready reason of `Created`, `Adopted` or `Updated` is kept while in sync, so that
//! confirming a write does not cost one more status write.
//!
//! "Content" is what the entry grants (origin, directives, WebSocket, description), not its
//! name: adopting a console entry records its id and leaves its name, and a later update
//! renames it `<namespace>/<name>` with the same `PUT`. Deletion by origin (when the id
//! was lost) still needs that name, so an adopted entry never renamed is deleted only
//! through `status.id`.
//!
//! Adopting an entry whose content differs is one full `PUT` (`Update{adopted: true}`), not
//! a record followed by an update on the next reconcile: one tenant call fewer, and a crash
//! between the `PUT` and the status write is harmless (the next plan adopts it by origin).
//!
//! The one deliberate departure from "deletion waits for the tenant": when the
//! `QlikTenant` itself is gone there are no credentials left to delete with, and waiting
//! would wedge namespace deletion forever, so the finalizer is released.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use crate::api::entry_rules::claim_rank;
use crate::api::reasons::{
    DELETING, PENDING, TENANT_NOT_FOUND, TENANT_NOT_READY, tenant_not_found_message,
};
use crate::api::{CspEntrySpec, CspEntryStatus, DeletionPolicy};
use crate::controller::conditions::{Desired, READY};
use crate::csp::{Directive, Origin, OriginError};
use crate::tenant::wire::{CspOrigin, CspOriginContent};

/// The condition saying whether the tenant's entry matches the spec.
pub const SYNCED: &str = "Synced";
/// The Ready reason of an entry of a client-managed site, which has no CSP entries of its
/// own: the tenant controller compiles its header from the CspEntries.
pub const COMPILED_LOCALLY: &str = "CompiledLocally";
const COMPILED_LOCALLY_MESSAGE: &str =
    "the tenant is a client-managed site: the operator compiles its header from the CspEntries";
/// Qlik's limit on CSP entries per tenant.
pub const TENANT_ENTRY_LIMIT: usize = 256;
/// How long to wait before looking again at a tenant that is not ready.
pub const WAIT_FOR_TENANT: Duration = Duration::from_secs(30);
/// How long to wait before looking again at a full tenant or a duplicated origin.
pub const WAIT_FOR_ROOM: Duration = Duration::from_secs(60);

/// The `CspEntry` being reconciled, as far as the plan needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryState {
    pub name: String,
    pub namespace: String,
    pub generation: Option<i64>,
    /// `metadata.creationTimestamp`, to decide who owns a duplicated origin.
    pub created: Option<Timestamp>,
    pub spec: CspEntrySpec,
    pub status: Option<CspEntryStatus>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// The controller's finalizer is in `metadata.finalizers`.
    pub has_finalizer: bool,
}

/// The state of the entry's `QlikTenant`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantState {
    /// Reachable and authorized.
    Ready,
    /// Present but not usable; `reason` is the tenant's Ready reason.
    NotReady { reason: String, message: String },
    /// No such `QlikTenant` in the namespace.
    Missing,
    /// A client-managed site: nothing is synced, the tenant controller compiles the
    /// header from the CspEntries.
    Local,
}

/// Another `CspEntry` of the same tenant claiming the same origin (case-insensitively).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimant {
    pub name: String,
    pub created: Option<Timestamp>,
}

/// Everything observe gathered: reads only, no decisions.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub entry: EntryState,
    pub tenant: TenantState,
    /// The tenant's entries this one can match: the one with its `status.id` and those with
    /// its origin, taken from one paged list per tenant shared by all its `CspEntries`. They
    /// must include this controller's own writes (apply updates the cached list), or an
    /// entry just created would look vanished and be created again.
    pub remote: Arc<[CspOrigin]>,
    /// How many entries the tenant holds (at least `remote.len()`).
    pub remote_count: usize,
    /// How many it may hold ([`TENANT_ENTRY_LIMIT`]).
    pub remote_limit: usize,
    /// Other `CspEntries` of the tenant with the same origin, not counting this one.
    pub rivals: Vec<Claimant>,
}

/// The one side effect of a reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    AddFinalizer,
    /// `POST` the content.
    Create(CspOriginContent),
    /// Record the id of an existing entry whose content already matches (no tenant write).
    Adopt {
        id: String,
    },
    /// `PUT` the whole content; `adopted` when the entry was not ours until now.
    Update {
        id: String,
        content: CspOriginContent,
        adopted: bool,
    },
    /// `DELETE` the entry; a 404 counts as done.
    Delete {
        id: String,
    },
    RemoveFinalizer,
    Nothing,
}

/// When to reconcile again, unless a watch event comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// At once: confirm the write or take the next step.
    Immediately,
    /// After a fixed wait on something outside this entry (tenant, room, owner).
    After(Duration),
    /// At the tenant's `syncInterval` drift check.
    Drift,
    /// Only when the spec changes.
    OnChange,
    /// The object is going away.
    Never,
}

/// The status to record if the action succeeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredStatus {
    pub ready: Desired<'static>,
    pub synced: Desired<'static>,
    /// `status.id` to record (`None` clears it).
    pub id: Option<String>,
    /// A new `lastSyncTime`, set only with a tenant write or an adoption so that a quiet
    /// drift check changes nothing; `None` keeps the stored one.
    pub synced_at: Option<Timestamp>,
}

/// What one reconcile should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub action: Action,
    /// `None` when the status must not be written (the object is going away).
    pub status: Option<DesiredStatus>,
    pub requeue: Requeue,
}

/// The remote entry's name for the `CspEntry` `namespace/name`.
pub fn remote_name(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// The content the tenant should hold for `spec`.
pub fn desired_content(
    namespace: &str,
    name: &str,
    spec: &CspEntrySpec,
) -> Result<CspOriginContent, OriginError> {
    let origin = Origin::parse(&spec.origin)?;
    Ok(CspOriginContent::new(
        remote_name(namespace, name),
        &origin,
        spec.directives.iter().map(|&d| Directive::from(d)),
        spec.allow_web_socket,
        spec.description.clone().unwrap_or_default(),
    ))
}

/// Whether the tenant's content grants what `desired` grants (origins compared
/// case-insensitively, the rest exactly). The entry's name is left out: the operator names
/// an entry `<namespace>/<name>` whenever it writes one, but never writes only to rename,
/// so an entry made in the console and adopted keeps its name, and importing a tenant
/// (`qlik-csp-operator import`) costs no tenant write.
fn same_content(remote: &CspOriginContent, desired: &CspOriginContent) -> bool {
    remote.origin.eq_ignore_ascii_case(&desired.origin)
        && remote.description == desired.description
        && remote.connect_src_wss == desired.connect_src_wss
        && remote.directives() == desired.directives()
}

/// Decides the next step for `observed`. `now` only stamps `lastSyncTime`.
pub fn plan(observed: &Observed, now: Timestamp) -> Plan {
    let entry = &observed.entry;
    if entry.deleting {
        return plan_deletion(observed);
    }
    let status_id = entry.status.as_ref().and_then(|s| s.id.clone());
    if !entry.has_finalizer {
        let plan = Plan::not_ready(Action::AddFinalizer, PENDING, "adding the finalizer");
        return plan.id(status_id).requeue(Requeue::Immediately);
    }
    // The look after the wait is only a backstop: the controller's watch on QlikTenants
    // reconciles the tenant's entries as soon as it appears or changes.
    if let Some((reason, message)) = tenant_unusable(entry, &observed.tenant) {
        let plan = Plan::not_ready(Action::Nothing, reason, message);
        return plan.id(status_id).requeue(Requeue::After(WAIT_FOR_TENANT));
    }
    let desired = match desired_content(&entry.namespace, &entry.name, &entry.spec) {
        Ok(desired) => desired,
        Err(e) => return Plan::not_ready(Action::Nothing, "InvalidSpec", e).id(status_id),
    };
    if let Some(owner) = older_rival(observed) {
        let message = format!(
            "origin {} is claimed by CspEntry {owner}",
            entry.spec.origin
        );
        // The id is cleared: the owner adopts a remote entry under the contested origin,
        // and deleting this CspEntry must never delete it. One this entry tracks under
        // another origin is its own, left from before its spec moved: that origin is no
        // longer allowed, so the entry is deleted from the tenant first.
        let left_behind = status_id.as_deref().and_then(|id| {
            observed
                .remote
                .iter()
                .find(|r| r.id == id && !r.content.origin.eq_ignore_ascii_case(&desired.origin))
        });
        if let Some(remote) = left_behind {
            let action = Action::Delete {
                id: remote.id.clone(),
            };
            let plan = Plan::not_ready(action, "DuplicateOrigin", message);
            return plan.requeue(Requeue::Immediately);
        }
        let plan = Plan::not_ready(Action::Nothing, "DuplicateOrigin", message);
        return plan.requeue(Requeue::After(WAIT_FOR_ROOM));
    }
    if observed.tenant == TenantState::Local {
        let plan = Plan::ready(Action::Nothing, COMPILED_LOCALLY, COMPILED_LOCALLY_MESSAGE);
        return plan.requeue(Requeue::OnChange);
    }
    let tracked = status_id
        .as_deref()
        .and_then(|id| observed.remote.iter().find(|r| r.id == id));
    if let Some(remote) = tracked {
        let id = remote.id.clone();
        if same_content(&remote.content, &desired) {
            let (reason, message) = in_sync_reason(entry.status.as_ref(), &id);
            return Plan::ready(Action::Nothing, reason, message).id(Some(id));
        }
        let message = format!("updated the tenant's entry {id}");
        let (content, adopted) = (desired, false);
        let action = Action::Update {
            id: id.clone(),
            content,
            adopted,
        };
        return Plan::ready(action, "Updated", message)
            .id(Some(id))
            .synced_at(now);
    }
    if let Some(remote) = find_by_origin(observed, &desired.name) {
        let id = remote.id.clone();
        let message = format!("adopted the tenant's entry {id} with the same origin");
        let action = if same_content(&remote.content, &desired) {
            Action::Adopt { id: id.clone() }
        } else {
            let (content, adopted) = (desired, true);
            Action::Update {
                id: id.clone(),
                content,
                adopted,
            }
        };
        return Plan::ready(action, "Adopted", message)
            .id(Some(id))
            .synced_at(now);
    }
    if observed.remote_count.max(observed.remote.len()) >= observed.remote_limit {
        let message = format!(
            "the tenant holds {} entries, its limit",
            observed.remote_limit
        );
        let plan = Plan::not_ready(Action::Nothing, "TenantLimitReached", message);
        return plan.id(status_id).requeue(Requeue::After(WAIT_FOR_ROOM));
    }
    let message = match status_id {
        Some(old) => format!("re-created the tenant's entry: {old} was gone"),
        None => "created the tenant's entry".to_owned(),
    };
    // No id yet: apply records the one the tenant returns.
    Plan::ready(Action::Create(desired), "Created", message).synced_at(now)
}

/// Cleanup: independent of the spec's validity, and a missing remote entry counts as done.
fn plan_deletion(observed: &Observed) -> Plan {
    let entry = &observed.entry;
    if !entry.has_finalizer {
        return Plan::untouched(Action::Nothing);
    }
    if entry.spec.deletion_policy == DeletionPolicy::Orphan
        || observed.tenant == TenantState::Missing
    {
        return Plan::untouched(Action::RemoveFinalizer);
    }
    let status_id = entry.status.as_ref().and_then(|s| s.id.clone());
    if let Some((reason, message)) = tenant_unusable(entry, &observed.tenant) {
        let message = format!("waiting to delete the tenant's entry: {message}");
        let plan = Plan::not_ready(Action::Nothing, reason, message);
        return plan.id(status_id).requeue(Requeue::After(WAIT_FOR_TENANT));
    }
    let ours = remote_name(&entry.namespace, &entry.name);
    let is_rivals = |r: &CspOrigin| {
        let rivals = &observed.rivals;
        rivals
            .iter()
            .any(|c| r.content.name == remote_name(&entry.namespace, &c.name))
    };
    let by_id = status_id
        .as_deref()
        .and_then(|id| observed.remote.iter().find(|r| r.id == id && !is_rivals(r)));
    let by_origin = || {
        let origin = &entry.spec.origin;
        let mut remote = observed.remote.iter();
        remote.find(|r| r.content.name == ours && r.content.origin.eq_ignore_ascii_case(origin))
    };
    match by_id.or_else(by_origin) {
        Some(remote) => {
            let id = remote.id.clone();
            let message = format!("deleting the tenant's entry {id}");
            let plan = Plan::not_ready(Action::Delete { id: id.clone() }, DELETING, message);
            plan.id(Some(id)).requeue(Requeue::Immediately)
        }
        None => Plan::untouched(Action::RemoveFinalizer),
    }
}

impl Plan {
    /// `action`, leaving the entry Ready and Synced; re-checked at the drift interval when
    /// there is nothing to do, at once otherwise.
    fn ready(action: Action, reason: &'static str, message: impl ToString) -> Plan {
        let requeue = match action {
            Action::Nothing | Action::Adopt { .. } => Requeue::Drift,
            _ => Requeue::Immediately,
        };
        Plan::with_conditions(action, true, reason, message.to_string(), requeue)
    }

    /// `action`, leaving the entry not Ready; by default waits for a spec change.
    fn not_ready(action: Action, reason: &'static str, message: impl ToString) -> Plan {
        let message = message.to_string();
        Plan::with_conditions(action, false, reason, message, Requeue::OnChange)
    }

    /// `action` on an object that is going away: the status is not written.
    fn untouched(action: Action) -> Plan {
        let requeue = Requeue::Never;
        Plan {
            action,
            status: None,
            requeue,
        }
    }

    fn with_conditions(
        action: Action,
        ok: bool,
        reason: &'static str,
        message: String,
        requeue: Requeue,
    ) -> Plan {
        let condition = |type_| Desired {
            type_,
            status: ok,
            reason,
            message: message.clone(),
        };
        let (ready, synced) = (condition(READY), condition(SYNCED));
        let status = DesiredStatus {
            ready,
            synced,
            id: None,
            synced_at: None,
        };
        Plan {
            action,
            status: Some(status),
            requeue,
        }
    }

    fn id(mut self, id: Option<String>) -> Plan {
        if let Some(status) = &mut self.status {
            status.id = id;
        }
        self
    }

    fn synced_at(mut self, now: Timestamp) -> Plan {
        if let Some(status) = &mut self.status {
            status.synced_at = Some(now);
        }
        self
    }

    fn requeue(mut self, requeue: Requeue) -> Plan {
        self.requeue = requeue;
        self
    }
}

/// The reason and message of a `Ready=False` for a tenant that cannot be used, or `None`
/// when it is ready. A missing tenant is `TenantNotFound`, worded as every kind words it.
fn tenant_unusable(entry: &EntryState, tenant: &TenantState) -> Option<(&'static str, String)> {
    match tenant {
        TenantState::Ready | TenantState::Local => None,
        TenantState::NotReady { reason, message } => Some((
            TENANT_NOT_READY,
            format!("the tenant is not ready ({reason}): {message}"),
        )),
        TenantState::Missing => Some((
            TENANT_NOT_FOUND,
            tenant_not_found_message(&entry.namespace, &entry.spec.tenant_ref.name),
        )),
    }
}

/// The name of the rival that owns the origin ([`claim_rank`]: older, or as old with a
/// smaller name; an unknown creation time counts as the newest).
fn older_rival(observed: &Observed) -> Option<&str> {
    let key = claim_rank;
    let ours = key(observed.entry.created, observed.entry.name.as_str());
    let rivals = observed
        .rivals
        .iter()
        .filter(|r| r.name != observed.entry.name);
    let older = rivals
        .map(|r| key(r.created, r.name.as_str()))
        .filter(|k| *k < ours);
    older.min().map(|(_, name)| name)
}

/// A remote entry with the desired origin, preferring one already named ours.
fn find_by_origin<'a>(observed: &'a Observed, ours: &str) -> Option<&'a CspOrigin> {
    let origin = &observed.entry.spec.origin;
    let mut same = observed
        .remote
        .iter()
        .filter(|r| r.content.origin.eq_ignore_ascii_case(origin));
    let first = same.clone().next();
    same.find(|r| r.content.name == ours).or(first)
}

/// Keeps a success reason already recorded, so that confirming a write writes nothing.
fn in_sync_reason(status: Option<&CspEntryStatus>, id: &str) -> (&'static str, String) {
    let conditions = status.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let ready = conditions
        .iter()
        .find(|c| c.type_ == READY && c.status == "True");
    match ready.map(|c| (c.reason.as_str(), c.message.clone())) {
        Some(("Created", m)) => ("Created", m),
        Some(("Adopted", m)) => ("Adopted", m),
        Some(("Updated", m)) => ("Updated", m),
        _ => (
            "InSync",
            format!("the tenant's entry {id} matches the spec"),
        ),
    }
}

#[cfg(test)]
mod tests;
