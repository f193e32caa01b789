//! Which QlikTenant watch events concern the CspEntries naming the tenant. Pure: a stream
//! adapter over the watch, no I/O.
//!
//! A CspEntry reads of its tenant whether it exists, its spec (through its generation:
//! the URL, the sync interval, client-managed or not) and its `Ready` condition (an entry
//! of a tenant that is not Ready copies its reason and message). The tenant controller
//! also writes the tenant's status each time it publishes a header; waking every entry of
//! the tenant for that made each edit of one entry cost a reconcile of all of them (the
//! soak: about a thousand reconciles a minute for 50 entries and 12 edits a minute).
//!
//! kube-runtime's `predicate_filter` would drop a deletion too (the deleted object's last
//! state looks unchanged), so this filter tells the events apart: an arrival or a change
//! of what entries read passes, a departure always passes, anything else is dropped.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use futures::{Stream, StreamExt, future};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::api::QlikTenant;

/// The tenants from `events` whose change concerns the entries naming them (see the
/// module documentation); watch errors pass through for the controller to report.
pub fn concerning_entries<S>(events: S) -> impl Stream<Item = Result<QlikTenant, watcher::Error>>
where
    S: Stream<Item = Result<watcher::Event<QlikTenant>, watcher::Error>>,
{
    let mut seen: HashMap<ObjectRef<QlikTenant>, u64> = HashMap::new();
    events.filter_map(move |event| {
        let passed = match event {
            Ok(watcher::Event::Apply(tenant) | watcher::Event::InitApply(tenant)) => {
                let view = what_entries_read(&tenant);
                let before = seen.insert(ObjectRef::from_obj(&tenant), view);
                (before != Some(view)).then_some(Ok(tenant))
            }
            Ok(watcher::Event::Delete(tenant)) => {
                seen.remove(&ObjectRef::from_obj(&tenant));
                Some(Ok(tenant))
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
            Err(error) => Some(Err(error)),
        };
        future::ready(passed)
    })
}

/// A digest of what a CspEntry reads of its tenant: the generation, and the `Ready`
/// condition's status, reason and message.
fn what_entries_read(tenant: &QlikTenant) -> u64 {
    let ready = tenant
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| (&c.status, &c.reason, &c.message));
    let mut hasher = DefaultHasher::new();
    (
        tenant.metadata.uid.as_deref(),
        tenant.metadata.generation,
        ready,
    )
        .hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use futures::stream;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    use super::*;
    use crate::api::QlikTenantStatus;
    use crate::api::tenant::PublishedHeader;

    fn tenant(generation: i64, ready: &str, header: &str) -> QlikTenant {
        let mut tenant: QlikTenant = serde_json::from_value(serde_json::json!({
            "apiVersion": "qlikops.io/v1alpha1",
            "kind": "QlikTenant",
            "metadata": { "name": "acme", "namespace": "web", "uid": "u1", "generation": generation },
            "spec": {
                "url": "https://acme.eu.qlikcloud.com",
                "credentials": { "apiKey": { "secretRef": { "name": "qlik", "key": "k" } } },
            },
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let mut status = QlikTenantStatus::default();
        status.conditions.push(Condition {
            type_: "Ready".into(),
            status: ready.into(),
            reason: "Connected".into(),
            message: String::new(),
            observed_generation: Some(generation),
            last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
        });
        // What the tenant controller rewrites on every publish; entries do not read it.
        status.observed_generation = Some(generation);
        status.header = Some(PublishedHeader {
            sha256: header.to_owned(),
            length: header.len() as u32,
            origins: 1,
            published_at: Time(jiff::Timestamp::UNIX_EPOCH),
        });
        tenant.status = Some(status);
        tenant
    }

    fn passed(events: Vec<watcher::Event<QlikTenant>>) -> Vec<(i64, String)> {
        let events = stream::iter(events.into_iter().map(Ok));
        futures::executor::block_on(concerning_entries(events).collect::<Vec<_>>())
            .into_iter()
            .map(|t| {
                let t = t.unwrap_or_else(|e| panic!("{e}"));
                let ready = t.status.as_ref().map(|s| s.conditions[0].status.clone());
                (
                    t.metadata.generation.unwrap_or(0),
                    ready.unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn a_status_write_that_entries_do_not_read_wakes_nobody() {
        use watcher::Event::{Apply, Delete, Init, InitApply, InitDone};
        let events = vec![
            Init,
            InitApply(tenant(1, "True", "a")),
            InitDone,
            // The tenant controller publishes a new header: only its own status changes.
            Apply(tenant(1, "True", "ab")),
            Apply(tenant(1, "True", "abc")),
            // The connection fails: entries report it.
            Apply(tenant(1, "False", "abc")),
            // The spec changes.
            Apply(tenant(2, "False", "abc")),
            // Deleted: its last state is unchanged, and it still passes.
            Delete(tenant(2, "False", "abc")),
            // Created again with the same name: an arrival.
            Apply(tenant(2, "False", "abc")),
        ];
        assert_eq!(
            passed(events),
            [
                (1, "True".to_owned()),
                (1, "False".to_owned()),
                (2, "False".to_owned()),
                (2, "False".to_owned()),
                (2, "False".to_owned()),
            ]
        );
    }
}
