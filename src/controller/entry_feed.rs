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
//! Entries are stored without `managedFields` and the `kubectl apply` copy (often larger
//! than the entry itself): no reconcile reads them (the csp-entry controller reads the
//! entry afresh before it writes).

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures::{Stream, StreamExt};
use kube::ResourceExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};

use super::Shared;
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

#[derive(Default)]
struct Dispatch {
    subscribers: Vec<UnboundedSender<EntryChange>>,
}

impl EntryFeed {
    /// The store of every watched CspEntry; starts the watch on first use.
    pub fn store(&self, shared: &Shared) -> Store<CspEntry> {
        self.started.get_or_init(|| self.start(shared)).clone()
    }

    /// Every entry already stored, then every change from now on; starts the watch on
    /// first use.
    pub fn subscribe(&self, shared: &Shared) -> impl Stream<Item = EntryChange> + Send + use<> {
        let store = self.store(shared);
        let (sender, receiver): (_, UnboundedReceiver<EntryChange>) = unbounded();
        let mut dispatch = self.dispatch.lock().unwrap_or_else(PoisonError::into_inner);
        // Under the lock no event is being dispatched: the store is exactly what the
        // subscriber has not been sent.
        for entry in store.state() {
            // The receiver is in hand: this send cannot fail.
            let _ = sender.unbounded_send(EntryChange::Applied(entry));
        }
        dispatch.subscribers.push(sender);
        receiver
    }

    fn start(&self, shared: &Shared) -> Store<CspEntry> {
        let (store, writer) = reflector::store::<CspEntry>();
        let api = shared.settings.api::<CspEntry>(&shared.kube);
        let dispatch = self.dispatch.clone();
        let reader = store.clone();
        let shutdown = shared.runtime.shutdown.clone();
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(slim);
        tokio::spawn(async move {
            let mut writer = writer;
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
                        dispatch.apply(&mut writer, &reader, &event);
                    }
                }
            }
        });
        store
    }
}

impl Dispatch {
    /// Applies `event` to the store behind `writer`, then sends what it changed to every
    /// live subscriber.
    ///
    /// A (re)list arrives as `Init`, `InitApply`… and `InitDone`, and the store swaps in the
    /// listed objects only at `InitDone`: that is when they are sent, together with a
    /// deletion for each object the list no longer has (deleted while the watch was down).
    fn apply(
        &mut self,
        writer: &mut reflector::store::Writer<CspEntry>,
        store: &Store<CspEntry>,
        event: &watcher::Event<CspEntry>,
    ) {
        let before = matches!(event, watcher::Event::InitDone).then(|| store.state());
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
        for change in changes {
            // A subscriber whose controller stopped is dropped.
            self.subscribers
                .retain(|subscriber| subscriber.unbounded_send(change.clone()).is_ok());
        }
    }
}

/// Drops from a watched entry what no reconcile reads.
fn slim(entry: &mut CspEntry) {
    entry.managed_fields_mut().clear();
    entry.annotations_mut().remove(LAST_APPLIED);
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

    #[test]
    fn a_subscriber_sees_each_change_after_the_store_has_it_deletions_included() {
        let (store, mut writer) = reflector::store::<CspEntry>();
        let (sender, mut receiver) = unbounded();
        let mut dispatch = Dispatch {
            subscribers: vec![sender],
        };
        let mut apply = |event| dispatch.apply(&mut writer, &store, &event);
        apply(watcher::Event::Init);
        apply(watcher::Event::InitApply(entry("a", "acme")));
        apply(watcher::Event::InitApply(entry("b", "acme")));
        assert_eq!(drain(&mut receiver, &store), Vec::<String>::new());
        apply(watcher::Event::InitDone);
        assert_eq!(drain(&mut receiver, &store), ["applied a", "applied b"]);
        apply(watcher::Event::Apply(entry("c", "acme")));
        apply(watcher::Event::Delete(entry("a", "acme")));
        assert_eq!(drain(&mut receiver, &store), ["applied c", "deleted a"]);
        // The watch restarts; b was deleted meanwhile.
        apply(watcher::Event::Init);
        apply(watcher::Event::InitApply(entry("c", "acme")));
        apply(watcher::Event::InitDone);
        assert_eq!(drain(&mut receiver, &store), ["applied c", "deleted b"]);
    }

    #[test]
    fn a_subscriber_that_stopped_is_dropped() {
        let (store, mut writer) = reflector::store::<CspEntry>();
        let (sender, receiver) = unbounded();
        drop(receiver);
        let mut dispatch = Dispatch {
            subscribers: vec![sender],
        };
        dispatch.apply(
            &mut writer,
            &store,
            &watcher::Event::Apply(entry("a", "acme")),
        );
        assert!(dispatch.subscribers.is_empty());
    }

    #[test]
    fn slimming_drops_managed_fields_and_the_kubectl_copy_only() {
        let mut stored = entry("a", "acme");
        stored.managed_fields_mut().push(Default::default());
        stored
            .annotations_mut()
            .insert(LAST_APPLIED.into(), "{...}".into());
        stored.annotations_mut().insert("team".into(), "web".into());
        slim(&mut stored);
        assert!(stored.managed_fields().is_empty());
        assert_eq!(stored.annotations().len(), 1);
    }
}
