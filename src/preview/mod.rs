//! `qlik-csp-operator plan`: what the operator would do to a live tenant if these manifests
//! were applied, decided by the csp-entry controller's own pure plan so that the preview
//! cannot drift from what happens. Pure: the command reads the manifests and the tenant.
//!
//! Each CspEntry of the manifests is planned as the controller would plan it the first
//! time it sees it (finalizer in place, no status yet) against the tenant's entries: a
//! create, an update (with what changes), an adoption (no tenant write) or nothing. An
//! entry of the tenant that no manifest claims is deleted when the operator named it,
//! `<namespace>/<name>` (its CspEntry is gone from Git, so GitOps prunes it); any other is
//! left alone and listed as unmanaged. One caveat follows from adoption keeping the
//! console's name: an entry adopted and never written since is listed as unmanaged,
//! though deleting its CspEntry would delete it. With the cluster's CspEntries in the input
//! (`plan --cluster`) there is no guess: each tracks the tenant entry its `status.id` names.

mod header;
mod output;
mod run;

use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::Timestamp;

use crate::api::{CspEntry, CspEntryStatus, QlikTenant};
use crate::controller::csp_entry::plan::{
    self, Action, Claimant, EntryState, Observed, Plan, TENANT_ENTRY_LIMIT, TenantState,
    remote_name,
};
use crate::csp::Directive;
use crate::tenant::wire::{CspOrigin, CspOriginContent};

pub use header::{HeaderCheck, Limit};
pub use output::{json, text};
pub use run::{PlanArgs, PlanError, run};

/// What the preview compares.
#[derive(Clone, Debug)]
pub struct Input {
    /// The tenant's namespace and name, as the manifests name it.
    pub namespace: String,
    pub tenant: String,
    /// The tenant's URL (printed only).
    pub url: String,
    /// The CspEntries of the manifests that belong to the tenant.
    pub entries: Vec<CspEntry>,
    /// The QlikTenant manifest, when the input has it (base directives and edge targets).
    pub tenant_manifest: Option<QlikTenant>,
    /// The tenant's entries, as listed.
    pub remote: Vec<CspOrigin>,
    /// The tenant's CspEntries in the cluster, when read (`plan --cluster`): then which
    /// tenant entry each tracks is known from its `status.id`, not guessed from names.
    pub cluster: Option<Vec<Tracked>>,
}

/// A CspEntry in the cluster, as far as the preview needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracked {
    pub name: String,
    /// `status.id`: the tenant entry it tracks.
    pub id: Option<String>,
    /// `deletionPolicy: Orphan`: deleting it leaves the tenant entry.
    pub orphan: bool,
}

/// What happens to one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// A `POST`.
    Create,
    /// A `PUT` of the whole entry.
    Update,
    /// A `DELETE`.
    Delete,
    /// The operator records an existing entry as the CspEntry's: no tenant write.
    Adopt,
    /// Already the CspEntry's, as the manifest says: no tenant write.
    Unchanged,
}

impl Change {
    /// Whether the tenant is written.
    pub const fn writes(self) -> bool {
        matches!(self, Change::Create | Change::Update | Change::Delete)
    }
}

/// One field of an update: its value in the tenant and in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    pub from: String,
    pub to: String,
}

/// What happens to one CspEntry, or to one tenant entry no manifest claims.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryChange {
    pub change: Change,
    /// The CspEntry's name (for a delete, the name the operator gave the tenant's entry).
    pub entry: String,
    pub origin: String,
    /// The tenant's entry concerned (none for a create).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_name: Option<String>,
    /// For an update: what changes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

/// A tenant entry the operator leaves alone.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Unmanaged {
    pub id: String,
    pub name: String,
    pub origin: String,
}

/// A CspEntry that would not be synced, with the Ready reason the operator would report.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub entry: String,
    pub reason: &'static str,
    pub message: String,
}

/// What applying the manifests would do.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    pub namespace: String,
    pub tenant: String,
    pub url: String,
    /// How many entries the tenant holds, and how many CspEntries the manifests have.
    pub tenant_entries: usize,
    pub manifest_entries: usize,
    /// Creates, updates, adoptions and unchanged entries in CspEntry name order, then
    /// deletes in tenant-name order.
    pub changes: Vec<EntryChange>,
    pub unmanaged: Vec<Unmanaged>,
    pub problems: Vec<Problem>,
    pub header: HeaderCheck,
}

impl Preview {
    /// How many entries the tenant would be written for.
    pub fn writes(&self) -> usize {
        self.changes.iter().filter(|c| c.change.writes()).count()
    }

    /// How many changes of `kind`.
    pub fn count(&self, kind: Change) -> usize {
        self.changes.iter().filter(|c| c.change == kind).count()
    }
}

/// Plans `input` as the csp-entry controller would. `now` only feeds the controller's plan.
pub fn preview(input: &Input, now: Timestamp) -> Preview {
    let mut entries: Vec<&CspEntry> = input.entries.iter().collect();
    entries.sort_by_key(|e| e.metadata.name.clone());
    let names: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| e.metadata.name.as_deref())
        .collect();

    // First pass, without the entry limit: which tenant entries the manifests claim. The
    // others are deleted (named by the operator) or left alone, and the deletes make room
    // before the limit is applied in the second pass.
    let everything: Arc<[CspOrigin]> = input.remote.iter().cloned().collect();
    let claimed: BTreeSet<String> = entries
        .iter()
        .flat_map(|entry| {
            let planned = plan_one(input, entry, &everything, None, now);
            let recorded = planned.status.and_then(|s| s.id);
            let touched = match planned.action {
                Action::Adopt { id } | Action::Update { id, .. } | Action::Delete { id } => {
                    Some(id)
                }
                _ => None,
            };
            recorded.into_iter().chain(touched)
        })
        .collect();
    let (deletes, unmanaged) = leftovers(input, &claimed, &names);
    let deleted: BTreeSet<&str> = deletes
        .iter()
        .filter_map(|d| d.remote_id.as_deref())
        .collect();
    let remaining: Arc<[CspOrigin]> = input
        .remote
        .iter()
        .filter(|r| !deleted.contains(r.id.as_str()))
        .cloned()
        .collect();
    let mut changes = Vec::new();
    let mut problems = Vec::new();
    let mut held = remaining.len();
    for entry in &entries {
        let planned = plan_one(input, entry, &remaining, Some(held), now);
        let name = entry.metadata.name.clone().unwrap_or_default();
        if let Action::Delete { id } = &planned.action {
            // The entry's origin is another's now: the tenant entry it tracked is deleted,
            // and the entry itself reports the duplicate (below).
            let remote = input.remote.iter().find(|r| &r.id == id);
            changes.push(EntryChange {
                change: Change::Delete,
                entry: name.clone(),
                origin: remote.map(|r| r.content.origin.clone()).unwrap_or_default(),
                remote_id: Some(id.clone()),
                remote_name: remote.map(|r| r.content.name.clone()),
                fields: Vec::new(),
            });
        }
        match describe(input, entry, &name, planned) {
            Ok(change) => {
                held += usize::from(change.change == Change::Create);
                changes.push(change);
            }
            Err(problem) => problems.push(problem),
        }
    }
    changes.extend(deletes);
    let header = header::check(input, &unmanaged);
    Preview {
        namespace: input.namespace.clone(),
        tenant: input.tenant.clone(),
        url: input.url.clone(),
        tenant_entries: input.remote.len(),
        manifest_entries: input.entries.len(),
        changes,
        unmanaged,
        problems,
        header,
    }
}

/// What happens to the tenant entries no manifest claims: deleted when a CspEntry that
/// leaves Git tracks them, else left alone. Without the cluster, "tracks" is read from the
/// name the operator gives what it writes, `<namespace>/<name>`.
fn leftovers(
    input: &Input,
    claimed: &BTreeSet<String>,
    names: &BTreeSet<&str>,
) -> (Vec<EntryChange>, Vec<Unmanaged>) {
    let mut unclaimed: Vec<&CspOrigin> = input
        .remote
        .iter()
        .filter(|r| !claimed.contains(&r.id))
        .collect();
    unclaimed.sort_by(|a, b| (&a.content.name, &a.id).cmp(&(&b.content.name, &b.id)));
    let prefix = format!("{}/", input.namespace);
    let tracker = |r: &CspOrigin| -> Option<String> {
        match &input.cluster {
            Some(cluster) => cluster
                .iter()
                .find(|t| t.id.as_deref() == Some(r.id.as_str()) && !t.orphan)
                .map(|t| t.name.clone()),
            None => r.content.name.strip_prefix(&prefix).map(str::to_owned),
        }
    };
    let mut deletes = Vec::new();
    let mut unmanaged = Vec::new();
    for r in unclaimed {
        match tracker(r) {
            Some(entry) if !names.contains(entry.as_str()) => deletes.push(EntryChange {
                change: Change::Delete,
                entry,
                origin: r.content.origin.clone(),
                remote_id: Some(r.id.clone()),
                remote_name: Some(r.content.name.clone()),
                fields: Vec::new(),
            }),
            // Named after a CspEntry of the manifests that tracks another entry: the
            // operator leaves this one (it deletes only what a CspEntry tracks).
            Some(_) => {}
            None => unmanaged.push(Unmanaged {
                id: r.id.clone(),
                name: r.content.name.clone(),
                origin: r.content.origin.clone(),
            }),
        }
    }
    (deletes, unmanaged)
}

/// The controller's plan for `entry` with its finalizer in place, against `remote`, with
/// `held` entries in the tenant (`None`: no limit). Its status holds the id the cluster
/// records for it; without the cluster, the id of the tenant entry named after it, as the
/// cluster would hold for an entry the operator synced.
fn plan_one(
    input: &Input,
    entry: &CspEntry,
    remote: &Arc<[CspOrigin]>,
    held: Option<usize>,
    now: Timestamp,
) -> Plan {
    let name = entry.metadata.name.clone().unwrap_or_default();
    let id = match &input.cluster {
        Some(cluster) => cluster
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.id.clone()),
        None => {
            let ours = remote_name(&input.namespace, &name);
            let tracked = remote.iter().find(|r| r.content.name == ours);
            tracked.map(|r| r.id.clone())
        }
    };
    let status = id.map(|id| CspEntryStatus {
        id: Some(id),
        ..CspEntryStatus::default()
    });
    let rivals = input
        .entries
        .iter()
        .filter(|other| other.metadata.name.as_deref() != Some(&name))
        .filter(|other| other.spec.origin.eq_ignore_ascii_case(&entry.spec.origin))
        .map(|other| Claimant {
            name: other.metadata.name.clone().unwrap_or_default(),
            created: other.metadata.creation_timestamp.as_ref().map(|t| t.0),
        })
        .collect();
    let observed = Observed {
        entry: EntryState {
            name,
            namespace: input.namespace.clone(),
            generation: entry.metadata.generation,
            created: entry.metadata.creation_timestamp.as_ref().map(|t| t.0),
            spec: entry.spec.clone(),
            status,
            deleting: false,
            has_finalizer: true,
        },
        tenant: TenantState::Ready,
        remote: remote.clone(),
        remote_count: held.unwrap_or(0),
        remote_limit: held.map_or(usize::MAX, |_| TENANT_ENTRY_LIMIT),
        rivals,
    };
    plan::plan(&observed, now)
}

/// The change `planned` makes, or the problem that keeps the entry from being synced (the
/// Ready reason and message the operator would record).
fn describe(
    input: &Input,
    entry: &CspEntry,
    name: &str,
    planned: Plan,
) -> Result<EntryChange, Problem> {
    let find = |id: &str| input.remote.iter().find(|r| r.id == id);
    let change = |change, remote: Option<&CspOrigin>, fields| EntryChange {
        change,
        entry: name.to_owned(),
        origin: entry.spec.origin.clone(),
        remote_id: remote.map(|r| r.id.clone()),
        remote_name: remote.map(|r| r.content.name.clone()),
        fields,
    };
    let ready = planned.status.as_ref().map(|s| &s.ready);
    match planned.action {
        Action::Create(_) => Ok(change(Change::Create, None, Vec::new())),
        Action::Update { id, content, .. } => {
            let remote = find(&id);
            let fields = remote
                .map(|r| field_changes(&r.content, &content))
                .unwrap_or_default();
            Ok(change(Change::Update, remote, fields))
        }
        Action::Adopt { id } => Ok(change(Change::Adopt, find(&id), Vec::new())),
        Action::Nothing if ready.is_some_and(|r| r.status) => {
            let id = planned.status.as_ref().and_then(|s| s.id.as_deref());
            Ok(change(Change::Unchanged, id.and_then(find), Vec::new()))
        }
        _ => {
            let (reason, message) = ready
                .map(|r| (r.reason, r.message.clone()))
                .unwrap_or(("Unknown", "the operator would not sync it".to_owned()));
            Err(Problem {
                entry: name.to_owned(),
                reason,
                message,
            })
        }
    }
}

/// The fields an update changes, in the tenant's words.
fn field_changes(from: &CspOriginContent, to: &CspOriginContent) -> Vec<FieldChange> {
    let mut fields = Vec::new();
    let mut push = |field, a: String, b: String| {
        if a != b {
            fields.push(FieldChange {
                field,
                from: a,
                to: b,
            });
        }
    };
    push("origin", from.origin.clone(), to.origin.clone());
    let list = |d: &BTreeSet<Directive>| {
        d.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    };
    push(
        "directives",
        list(&from.directives()),
        list(&to.directives()),
    );
    push(
        "allowWebSocket",
        from.connect_src_wss.to_string(),
        to.connect_src_wss.to_string(),
    );
    push(
        "description",
        from.description.clone(),
        to.description.clone(),
    );
    push("name", from.name.clone(), to.name.clone());
    fields
}

#[cfg(test)]
mod tests;
