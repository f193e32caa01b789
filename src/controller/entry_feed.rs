//! One watch of the CspEntries and one store of them, shared by the `csp-entry` and
//! `tenant` controllers. Does I/O (one apiserver watch).
//!
//! Both controllers need every CspEntry: the csp-entry controller to sync each one, the
//! tenant controller to know which entries a tenant's header depends on and whether they
//! have settled. Two watches would hold two copies of every entry (the heaviest object the
//! operator keeps, 10,000 in the scale bench); a LIST per tenant reconcile churns as much.
//!
//! Why not kube-runtime's shared reflector (`store_shared` and `ReflectHandle`): its
//! subscribers never see a deletion, and the tenant controller must republish when an entry
//! without a finalizer is deleted. So the feed dispatches itself: each watch event is
//! applied to the store *before* it is sent to the subscribers, under one lock, so a
//! controller woken by an event always finds the store at least as new as the event; and a
//! subscriber that joins after the first list is handed the store's contents first, so a
//! late start misses nothing.
//!
//! The csp-entry controller also hands the feed each status it writes ([`EntryFeed::written`]):
//! the store takes it at once and the tenant controller, which waits for the last entry of
//! a tenant to settle before it publishes, is woken without waiting for the write to come
//! back through the watch. The watch event that follows is then not sent to it again.
//!
//! Entries are stored without `managedFields`, the `kubectl apply` copy (often larger than
//! the entry itself), the description and every condition but `Ready` (without its
//! message): no reader of the store reads them (the csp-entry controller reads the entry
//! afresh before it plans).

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures::{Stream, StreamExt};
use kube::ResourceExt;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};

use super::Shared;
use super::conditions::READY;
use crate::api::CspEntry;

/// The annotation `kubectl apply` keeps a whole copy of the object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What happened to a CspEntry, as a subscriber sees it: the object is the store's own copy
/// (applied) or the last one seen (deleted), never a further clone.
#[derive(Clone, Debug)]
pub enum EntryChange {
    Applied(Arc<CspEntry>),
    Deleted(Arc<CspEntry>),
}

impl EntryChange {
    pub fn entry(&self) -> &Arc<CspEntry> {
        match self {
            EntryChange::Applied(entry) | EntryChange::Deleted(entry) => entry,
        }
    }
}

/// The shared watch: started by the first subscriber, stopped by the runtime's shutdown.
#[derive(Default)]
pub struct EntryFeed {
    started: OnceLock<Store<CspEntry>>,
    dispatch: Arc<Mutex<Dispatch>>,
}

/// Which changes a subscriber is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sees {
    /// What the watch reports.
    Watch,
    /// What the watch reports, and the csp-entry controller's status writes as soon as
    /// they are made ([`EntryFeed::written`]); their watch events are not sent again.
    WatchAndWrites,
}

#[derive(Default)]
struct Dispatch {
    subscribers: Vec<(Sees, UnboundedSender<EntryChange>)>,
    /// The store's writer, and a reader of it: set when the watch starts.
    store: Option<(Writer<CspEntry>, Store<CspEntry>)>,
}

impl EntryFeed {
    /// The store of every watched CspEntry; starts the watch on first use.
    pub fn store(&self, shared: &Shared) -> Store<CspEntry> {
        self.started.get_or_init(|| self.start(shared)).clone()
    }

    /// Every entry already stored, then every change from now on; starts the watch on
    /// first use.
    pub fn subscribe(
        &self,
        shared: &Shared,
        sees: Sees,
    ) -> impl Stream<Item = EntryChange> + Send + use<> {
        let store = self.store(shared);
        let (sender, receiver): (_, UnboundedReceiver<EntryChange>) = unbounded();
        let mut dispatch = self.dispatch.lock().unwrap_or_else(PoisonError::into_inner);
        // Under the lock no event is being dispatched: the store is exactly what the
        // subscriber has not been sent.
        for entry in store.state() {
            // The receiver is in hand: this send cannot fail.
            let _ = sender.unbounded_send(EntryChange::Applied(entry));
        }
        dispatch.subscribers.push((sees, sender));
        receiver
    }

    /// The csp-entry controller wrote `after` (the apiserver's answer) on top of `before`:
    /// the store takes it now, when it still holds `before`'s version (else the watch has
    /// already brought something at least as new), and the subscribers that see writes
    /// are sent it.
    pub fn written(&self, before: &CspEntry, after: CspEntry) {
        let mut dispatch = self.dispatch.lock().unwrap_or_else(PoisonError::into_inner);
        dispatch.written(before, after);
    }

    fn start(&self, shared: &Shared) -> Store<CspEntry> {
        let (store, writer) = reflector::store::<CspEntry>();
        let api = shared.settings.api::<CspEntry>(&shared.kube);
        let dispatch = self.dispatch.clone();
        dispatch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .store = Some((writer, store.clone()));
        let shutdown = shared.runtime.shutdown.clone();
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(slim);
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            loop {
                let event = tokio::select! {
                    () = shutdown.cancelled() => return,
                    event = events.next() => event,
                };
                match event {
                    None => return,
                    Some(Err(error)) => {
                        tracing::warn!(%error, "the CspEntry watch failed; retrying with backoff");
                    }
                    Some(Ok(event)) => {
                        let mut dispatch = dispatch.lock().unwrap_or_else(PoisonError::into_inner);
                        dispatch.apply(&event);
                    }
                }
            }
        });
        store
    }
}

impl Dispatch {
    /// Applies `event` to the store, then sends what it changed to every live subscriber.
    ///
    /// A (re)list arrives as `Init`, `InitApply`… and `InitDone`, and the store swaps in the
    /// listed objects only at `InitDone`: that is when they are sent, together with a
    /// deletion for each object the list no longer has (deleted while the watch was down).
    fn apply(&mut self, event: &watcher::Event<CspEntry>) {
        let Some((writer, store)) = self.store.as_mut() else {
            return;
        };
        let before = matches!(event, watcher::Event::InitDone).then(|| store.state());
        // The watch bringing back a write the store already took from `written`.
        let known = match event {
            watcher::Event::Apply(entry) => store
                .get(&ObjectRef::from_obj(entry))
                .is_some_and(|stored| stored.resource_version() == entry.resource_version()),
            _ => false,
        };
        writer.apply_watcher_event(event);
        let changes: Vec<EntryChange> = match event {
            watcher::Event::Apply(entry) => store
                .get(&ObjectRef::from_obj(entry))
                .map(EntryChange::Applied)
                .into_iter()
                .collect(),
            watcher::Event::Delete(entry) => vec![EntryChange::Deleted(Arc::new(entry.clone()))],
            watcher::Event::InitDone => {
                let gone = before
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|old| store.get(&ObjectRef::from_obj(old.as_ref())).is_none());
                let gone: Vec<EntryChange> = gone.map(EntryChange::Deleted).collect();
                gone.into_iter()
                    .chain(store.state().into_iter().map(EntryChange::Applied))
                    .collect()
            }
            watcher::Event::Init | watcher::Event::InitApply(_) => Vec::new(),
        };
        let skip = known.then_some(Sees::WatchAndWrites);
        for change in changes {
            self.send(&change, skip);
        }
    }

    fn written(&mut self, before: &CspEntry, mut after: CspEntry) {
        let Some((writer, store)) = self.store.as_mut() else {
            return;
        };
        let key = ObjectRef::from_obj(&after);
        let current = store.get(&key);
        if current.is_none_or(|c| c.resource_version() != before.resource_version()) {
            return;
        }
        slim(&mut after);
        writer.apply_watcher_event(&watcher::Event::Apply(after));
        if let Some(stored) = store.get(&key) {
            self.send(&EntryChange::Applied(stored), Some(Sees::Watch));
        }
    }

    /// Sends `change` to every subscriber but those that see `skip`; drops a subscriber
    /// whose controller stopped.
    fn send(&mut self, change: &EntryChange, skip: Option<Sees>) {
        self.subscribers.retain(|(sees, subscriber)| {
            Some(*sees) == skip || subscriber.unbounded_send(change.clone()).is_ok()
        });
    }
}

/// Drops from a watched entry what no reader of the store reads: the csp-entry controller
/// reads the entry afresh before it plans, and the tenant controller reads only the spec's
/// grant, `Ready`'s status and reason, `observedGeneration` and `status.id`. About 400
/// bytes an entry (the `Synced` condition, the messages, the description), 4 MiB at
/// 10,000 entries.
fn slim(entry: &mut CspEntry) {
    entry.managed_fields_mut().clear();
    entry.annotations_mut().remove(LAST_APPLIED);
    entry.spec.description = None;
    if let Some(status) = entry.status.as_mut() {
        status.conditions.retain(|c| c.type_ == READY);
        for condition in &mut status.conditions {
            condition.message = String::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, tenant: &str) -> CspEntry {
        let mut entry = CspEntry::new(
            name,
            serde_json::from_value(serde_json::json!({
                "tenantRef": { "name": tenant },
                "origin": "https://cdn.example.com",
                "directives": ["img-src"],
            }))
            .unwrap_or_else(|e| panic!("{e}")),
        );
        entry.metadata.namespace = Some("web".into());
        entry
    }

    fn drain(
        receiver: &mut UnboundedReceiver<EntryChange>,
        store: &Store<CspEntry>,
    ) -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(change) = receiver.try_recv() {
            let stored = store.get(&ObjectRef::from_obj(change.entry().as_ref()));
            let kind = match &change {
                EntryChange::Applied(entry) => {
                    // The subscriber holds the store's copy, not another clone.
                    assert!(stored.is_some_and(|s| Arc::ptr_eq(&s, entry)));
                    "applied"
                }
                EntryChange::Deleted(_) => {
                    assert!(stored.is_none(), "gone from the store before it is sent");
                    "deleted"
                }
            };
            seen.push(format!("{kind} {}", change.entry().name_any()));
        }
        seen.sort();
        seen
    }

    /// A dispatch with its own store, and a subscriber of each kind.
    fn dispatch() -> (
        Dispatch,
        Store<CspEntry>,
        UnboundedReceiver<EntryChange>,
        UnboundedReceiver<EntryChange>,
    ) {
        let (store, writer) = reflector::store::<CspEntry>();
        let (watch, watch_rx) = unbounded();
        let (writes, writes_rx) = unbounded();
        let dispatch = Dispatch {
            subscribers: vec![(Sees::Watch, watch), (Sees::WatchAndWrites, writes)],
            store: Some((writer, store.clone())),
        };
        (dispatch, store, watch_rx, writes_rx)
    }

    fn at_version(name: &str, version: &str) -> CspEntry {
        let mut entry = entry(name, "acme");
        entry.metadata.resource_version = Some(version.into());
        entry
    }

    #[test]
    fn a_subscriber_sees_each_change_after_the_store_has_it_deletions_included() {
        let (mut dispatch, store, mut receiver, _) = dispatch();
        dispatch.apply(&watcher::Event::Init);
        dispatch.apply(&watcher::Event::InitApply(entry("a", "acme")));
        dispatch.apply(&watcher::Event::InitApply(entry("b", "acme")));
        assert_eq!(drain(&mut receiver, &store), Vec::<String>::new());
        dispatch.apply(&watcher::Event::InitDone);
        assert_eq!(drain(&mut receiver, &store), ["applied a", "applied b"]);
        dispatch.apply(&watcher::Event::Apply(entry("c", "acme")));
        dispatch.apply(&watcher::Event::Delete(entry("a", "acme")));
        assert_eq!(drain(&mut receiver, &store), ["applied c", "deleted a"]);
        // The watch restarts; b was deleted meanwhile.
        dispatch.apply(&watcher::Event::Init);
        dispatch.apply(&watcher::Event::InitApply(entry("c", "acme")));
        dispatch.apply(&watcher::Event::InitDone);
        assert_eq!(drain(&mut receiver, &store), ["applied c", "deleted b"]);
    }

    #[test]
    fn a_write_reaches_the_store_and_the_tenant_controller_before_its_watch_event() {
        let (mut dispatch, store, mut watch, mut writes) = dispatch();
        dispatch.apply(&watcher::Event::Apply(at_version("a", "1")));
        assert_eq!(drain(&mut watch, &store), ["applied a"]);
        assert_eq!(drain(&mut writes, &store), ["applied a"]);

        dispatch.written(&at_version("a", "1"), at_version("a", "2"));
        let stored = store.get(&ObjectRef::new("a").within("web"));
        assert_eq!(
            stored.and_then(|s| s.resource_version()).as_deref(),
            Some("2")
        );
        assert_eq!(drain(&mut writes, &store), ["applied a"]);
        assert_eq!(drain(&mut watch, &store), Vec::<String>::new());

        // The write comes back through the watch: only the watch subscriber is sent it.
        dispatch.apply(&watcher::Event::Apply(at_version("a", "2")));
        assert_eq!(drain(&mut watch, &store), ["applied a"]);
        assert_eq!(drain(&mut writes, &store), Vec::<String>::new());
    }

    #[test]
    fn a_write_on_top_of_a_version_the_store_no_longer_holds_is_left_to_the_watch() {
        let (mut dispatch, store, _, mut writes) = dispatch();
        dispatch.apply(&watcher::Event::Apply(at_version("a", "3")));
        drain(&mut writes, &store);
        // Written on top of version 1 while the watch already brought 3.
        dispatch.written(&at_version("a", "1"), at_version("a", "2"));
        let stored = store.get(&ObjectRef::new("a").within("web"));
        assert_eq!(
            stored.and_then(|s| s.resource_version()).as_deref(),
            Some("3")
        );
        assert_eq!(drain(&mut writes, &store), Vec::<String>::new());
    }

    #[test]
    fn a_subscriber_that_stopped_is_dropped() {
        let (mut dispatch, _, watch, writes) = dispatch();
        drop(watch);
        drop(writes);
        dispatch.apply(&watcher::Event::Apply(entry("a", "acme")));
        assert!(dispatch.subscribers.is_empty());
    }

    #[test]
    fn slimming_keeps_only_what_the_stores_readers_read() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
        let mut stored = entry("a", "acme");
        stored.managed_fields_mut().push(Default::default());
        stored
            .annotations_mut()
            .insert(LAST_APPLIED.into(), "{...}".into());
        stored.annotations_mut().insert("team".into(), "web".into());
        stored.spec.description = Some("why".into());
        let condition = |type_: &str| Condition {
            type_: type_.into(),
            status: "True".into(),
            reason: "Created".into(),
            message: "created the tenant's entry".into(),
            observed_generation: Some(1),
            last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
        };
        stored.status = Some(crate::api::CspEntryStatus {
            conditions: vec![condition("Ready"), condition("Synced")],
            observed_generation: Some(1),
            id: Some("r1".into()),
            last_sync_time: None,
        });
        let before = stored.clone();
        slim(&mut stored);
        assert!(stored.managed_fields().is_empty());
        assert_eq!(stored.annotations().len(), 1);
        assert_eq!(stored.spec.description, None);
        // What the tenant controller and the rivals check read is untouched.
        assert_eq!(stored.has_settled(), before.has_settled());
        assert_eq!(stored.grant(), before.grant());
        assert_eq!(stored.claim_rank(), before.claim_rank());
        let status = stored.status.as_ref();
        assert_eq!(status.and_then(|s| s.id.as_deref()), Some("r1"));
        let kept: Vec<(&str, &str, &str)> = status
            .map(|s| s.conditions.iter())
            .into_iter()
            .flatten()
            .map(|c| (c.type_.as_str(), c.reason.as_str(), c.message.as_str()))
            .collect();
        assert_eq!(kept, [("Ready", "Created", "")]);
    }
}
