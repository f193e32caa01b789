//! When the tenant controller talks to the tenant: the header is fetched (or compiled) once
//! the tenant's CspEntries have settled, not on every entry event, and the connection is
//! proven once per drift interval, not on every reconcile. No I/O.
//!
//! This is what makes a burst cheap without slowing a single edit: while the `csp-entry`
//! controller is still syncing entries of a tenant, each of their status updates would
//! otherwise fetch a header that is about to change. The last entry to settle triggers the
//! one reconcile that publishes. A header is never held back longer than the drift interval,
//! so an entry that never settles cannot starve it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use kube::runtime::reflector::ObjectRef;

use crate::api::{CspEntry, QlikTenant};
use crate::controller::conditions::READY;

/// Entries of tenant `tenant_name` (among one namespace's `entries`) whose latest change the
/// `csp-entry` controller has not finished ([`CspEntry::has_settled`]).
pub fn settling_entries<'a>(
    entries: impl IntoIterator<Item = &'a CspEntry>,
    tenant_name: &str,
) -> usize {
    entries
        .into_iter()
        .filter(|e| e.spec.tenant_ref.name == tenant_name)
        .filter(|e| !e.has_settled())
        .count()
}

/// How long to hold the header back, or `None` to publish now. Held only while entries are
/// settling, the status already describes this generation, and the last publish is younger
/// than the drift interval.
pub fn hold_header(
    settling: usize,
    status_current: bool,
    since_last_publish: Option<Duration>,
    drift: Duration,
) -> Option<Duration> {
    if settling == 0 || !status_current {
        return None;
    }
    let age = since_last_publish?;
    drift.checked_sub(age).filter(|left| !left.is_zero())
}

/// Whether the connection must be proven again (`tenants/me`): never proven for this
/// generation of the tenant, or longer ago than the drift interval.
pub fn needs_connection_check(
    last: Option<&Checked>,
    generation: Option<i64>,
    drift: Duration,
    now: Instant,
) -> bool {
    match last {
        Some(checked) => {
            checked.generation != generation || now.duration_since(checked.at) >= drift
        }
        None => true,
    }
}

/// uid, generation, observed generation, Ready reason, remote id.
type EntryDigest<'a> = (
    &'a str,
    Option<i64>,
    Option<i64>,
    Option<&'a str>,
    Option<&'a str>,
);

/// A digest of what the tenant's header depends on among its entries: which exist, at
/// which generation, how far their sync got. Equal digests mean no entry event since.
pub fn entries_digest<'a>(
    entries: impl IntoIterator<Item = &'a CspEntry>,
    tenant_name: &str,
) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut ours: Vec<EntryDigest> = entries
        .into_iter()
        .filter(|e| e.spec.tenant_ref.name == tenant_name)
        .map(|e| {
            let status = e.status.as_ref();
            let ready = status.and_then(|s| s.conditions.iter().find(|c| c.type_ == READY));
            (
                e.metadata.uid.as_deref().unwrap_or_default(),
                e.metadata.generation,
                status.and_then(|s| s.observed_generation),
                ready.map(|c| c.reason.as_str()),
                status.and_then(|s| s.id.as_deref()),
            )
        })
        .collect();
    ours.sort_unstable();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    ours.hash(&mut hasher);
    hasher.finish()
}

/// The header last fetched from the tenant, and what it was fetched for.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub at: Instant,
    pub generation: Option<i64>,
    pub entries: u64,
    pub value: String,
}

/// Whether `fetched` still stands for the tenant: same tenant generation, no entry event
/// since, younger than the drift interval (which is what catches edits made in the
/// tenant's console). Saves the tenant call when the reconcile was triggered by the
/// controller's own writes (the status, the ConfigMap).
pub fn header_still_fresh(
    fetched: &Fetched,
    generation: Option<i64>,
    entries: u64,
    drift: Duration,
    now: Instant,
) -> bool {
    fetched.generation == generation
        && fetched.entries == entries
        && now.duration_since(fetched.at) < drift
}

/// A successful connection check.
#[derive(Clone, Debug)]
pub struct Checked {
    pub at: Instant,
    pub generation: Option<i64>,
    /// What the check proved: the tenant's id, or the site's build version.
    pub identity: super::status::Identity,
}

/// What the controller remembers per tenant between reconciles (lost on restart, which
/// only costs one extra check and publish).
#[derive(Default)]
pub struct Pacer {
    tenants: Mutex<HashMap<ObjectRef<QlikTenant>, Memory>>,
}

/// What is remembered of one tenant.
#[derive(Clone, Debug, Default)]
pub struct Memory {
    /// The last successful connection check.
    pub checked: Option<Checked>,
    /// When the header was last published.
    pub published_at: Option<Instant>,
    /// The header last fetched from the tenant.
    pub fetched: Option<Fetched>,
}

impl Pacer {
    /// What is remembered of `tenant` (nothing yet: the default).
    pub fn recall(&self, tenant: &ObjectRef<QlikTenant>) -> Memory {
        self.read(tenant, |m| Some(m.clone())).unwrap_or_default()
    }

    pub fn checked(&self, tenant: &ObjectRef<QlikTenant>, checked: Checked) {
        self.with(tenant, |m| m.checked = Some(checked));
    }

    pub fn fetched(&self, tenant: &ObjectRef<QlikTenant>, fetched: Fetched) {
        self.with(tenant, |m| m.fetched = Some(fetched));
    }

    pub fn published(&self, tenant: &ObjectRef<QlikTenant>, at: Instant) {
        self.with(tenant, |m| m.published_at = Some(at));
    }

    /// Forgets a tenant: deleted, or its credential is suspect.
    pub fn forget(&self, tenant: &ObjectRef<QlikTenant>) {
        self.tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(tenant);
    }

    /// Keeps only the tenants for which `keep` holds (those still in the store).
    pub fn retain(&self, mut keep: impl FnMut(&ObjectRef<QlikTenant>) -> bool) {
        self.tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|tenant, _| keep(tenant));
    }

    /// How many tenants are remembered.
    pub fn len(&self) -> usize {
        self.tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no tenant is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads what is remembered of `tenant` without remembering it: a read must not bring
    /// back a tenant that was forgotten.
    fn read<T>(
        &self,
        tenant: &ObjectRef<QlikTenant>,
        f: impl FnOnce(&Memory) -> Option<T>,
    ) -> Option<T> {
        let tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        tenants.get(tenant).and_then(f)
    }

    fn with<T>(&self, tenant: &ObjectRef<QlikTenant>, f: impl FnOnce(&mut Memory) -> T) -> T {
        let mut tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        f(tenants.entry(tenant.clone()).or_default())
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::api::csp_entry::CspEntryStatus;

    const DRIFT: Duration = Duration::from_secs(600);

    fn entry_with_reason(reason: &str) -> CspEntry {
        let mut entry = entry("t", 1, Some(1), false);
        if let Some(status) = entry.status.as_mut() {
            status
                .conditions
                .push(k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                    type_: READY.to_owned(),
                    status: "False".to_owned(),
                    reason: reason.to_owned(),
                    message: String::new(),
                    observed_generation: Some(1),
                    last_transition_time: Time(jiff::Timestamp::now()),
                });
        }
        entry
    }

    fn entry(tenant: &str, generation: i64, observed: Option<i64>, deleting: bool) -> CspEntry {
        let mut entry: CspEntry = serde_json::from_value(serde_json::json!({
            "apiVersion": "qlikops.io/v1alpha1",
            "kind": "CspEntry",
            "metadata": { "name": "e", "namespace": "ns", "generation": generation },
            "spec": { "tenantRef": { "name": tenant }, "origin": "https://a.example", "directives": ["img-src"] },
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        entry.status = observed.map(|g| CspEntryStatus {
            observed_generation: Some(g),
            ..CspEntryStatus::default()
        });
        if deleting {
            entry.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::now()));
        }
        entry
    }

    #[test]
    fn new_edited_and_deleting_entries_of_this_tenant_are_settling() {
        let entries = [
            entry("t", 1, Some(1), false), // settled
            entry("t", 1, None, false),    // new
            entry("t", 3, Some(2), false), // edited
            entry("t", 2, Some(2), true),  // being deleted
            entry("other", 1, None, false),
        ];
        assert_eq!(settling_entries(&entries, "t"), 3);
        assert_eq!(settling_entries(&entries[..1], "t"), 0);
    }

    #[test]
    fn an_entry_recorded_as_under_way_is_settling_and_a_settled_failure_is_not() {
        assert_eq!(settling_entries(&[entry_with_reason("Pending")], "t"), 1);
        assert_eq!(settling_entries(&[entry_with_reason("Deleting")], "t"), 1);
        assert_eq!(
            settling_entries(&[entry_with_reason("TenantNotReady")], "t"),
            0
        );
        assert_eq!(
            settling_entries(&[entry_with_reason("DuplicateOrigin")], "t"),
            0
        );
    }

    #[test]
    fn the_header_is_held_only_while_entries_settle_and_never_past_the_drift_interval() {
        let recent = Some(Duration::from_secs(5));
        assert_eq!(
            hold_header(2, true, recent, DRIFT),
            Some(Duration::from_secs(595))
        );
        assert_eq!(
            hold_header(0, true, recent, DRIFT),
            None,
            "settled: publish"
        );
        assert_eq!(
            hold_header(2, false, recent, DRIFT),
            None,
            "a new generation is recorded at once"
        );
        assert_eq!(
            hold_header(2, true, None, DRIFT),
            None,
            "never published by this process"
        );
        assert_eq!(
            hold_header(2, true, Some(DRIFT), DRIFT),
            None,
            "held long enough"
        );
    }

    #[test]
    fn the_connection_is_proven_once_per_generation_and_drift_interval() {
        let now = Instant::now();
        let checked = Checked {
            at: now,
            generation: Some(1),
            identity: super::super::status::Identity::Tenant("t1".into()),
        };
        assert!(needs_connection_check(None, Some(1), DRIFT, now));
        assert!(!needs_connection_check(
            Some(&checked),
            Some(1),
            DRIFT,
            now + Duration::from_secs(1)
        ));
        assert!(needs_connection_check(Some(&checked), Some(2), DRIFT, now));
        assert!(needs_connection_check(
            Some(&checked),
            Some(1),
            DRIFT,
            now + DRIFT
        ));
    }

    #[test]
    fn a_fetched_header_stands_until_an_entry_changes_the_tenant_changes_or_drift_passes() {
        let now = Instant::now();
        let entries = [entry("t", 1, Some(1), false)];
        let digest = entries_digest(&entries, "t");
        let fetched = Fetched {
            at: now,
            generation: Some(1),
            entries: digest,
            value: "default-src 'self'".into(),
        };
        let later = now + Duration::from_secs(1);
        assert!(header_still_fresh(&fetched, Some(1), digest, DRIFT, later));
        let edited = entries_digest(&[entry("t", 2, Some(2), false)], "t");
        assert_ne!(edited, digest);
        assert!(!header_still_fresh(&fetched, Some(1), edited, DRIFT, later));
        assert!(!header_still_fresh(&fetched, Some(2), digest, DRIFT, later));
        assert!(!header_still_fresh(
            &fetched,
            Some(1),
            digest,
            DRIFT,
            now + DRIFT
        ));
        assert_eq!(
            entries_digest(&[entry("other", 5, None, false)], "t"),
            entries_digest(&[], "t"),
            "other tenants' entries do not count"
        );
    }

    #[test]
    fn the_pacer_remembers_per_tenant_and_forgets() {
        let pacer = Pacer::default();
        let a = ObjectRef::<QlikTenant>::new("a").within("ns");
        let b = ObjectRef::<QlikTenant>::new("b").within("ns");
        let now = Instant::now();
        pacer.published(&a, now);
        assert_eq!(pacer.recall(&a).published_at, Some(now));
        assert_eq!(pacer.recall(&b).published_at, None);
        pacer.forget(&a);
        assert_eq!(pacer.recall(&a).published_at, None);
        assert!(
            pacer.is_empty(),
            "reading a tenant (forgotten or never seen) does not remember it"
        );
        pacer.published(&a, now);
        pacer.published(&b, now);
        assert_eq!(pacer.len(), 2);
        pacer.retain(|t| *t == b);
        assert_eq!(pacer.recall(&a).published_at, None);
        assert_eq!(pacer.recall(&b).published_at, Some(now));
        assert_eq!(pacer.len(), 1);
    }
}
