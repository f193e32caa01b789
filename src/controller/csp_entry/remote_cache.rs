//! One copy of a tenant's CSP entries shared by every `CspEntry` reconcile of that tenant.
//! In memory; the fetch itself is the caller's.
//!
//! A burst of N entry changes must not cost N paged lists: concurrent reconciles of one
//! tenant wait for a single fetch ([`RemoteCache::get_or_fetch`]), and a snapshot is reused
//! while younger than `max_age`. The controller's own writes are folded into the snapshot
//! (`record_*`), because the plan cannot tell a stale list from a vanished entry: without
//! that, an entry it just created would look missing and be created again.
//!
//! # Cost
//!
//! A burst also brings N writes to one tenant (250 entries a tenant in the scale bench), so
//! a write must not cost the tenant's whole list. The snapshot is a [`TenantEntries`], a map
//! by id plus an index by origin, edited in place under the cache's lock: a write costs
//! O(log N) and touches only its own entry. Reconciles never hold the snapshot:
//! `get_or_fetch` lends it to the caller's `read` under the lock, and the caller keeps only
//! what it copies out (observe: the count and the few entries the plan can match,
//! [`TenantEntries::matching`]). So each tenant's entries exist once, however many
//! reconciles are in flight.
//!
//! Rejected, simplest first:
//! - An immutable snapshot shared with readers (`Arc<[CspOrigin]>`, what this replaced) is
//!   copied whole on every write, O(N) per write and O(N²) per burst, and reconciles in
//!   flight keep the older copies alive. Copy-on-write (`Arc::make_mut`) copies just as
//!   often: in a burst some reconcile always holds the current copy.
//! - An immutable base plus an overlay of recent writes must either be searched write by
//!   write (lookups and the count grow with the overlay) or carry an index of its own, and
//!   compacting it is the O(N) copy again, only rarer.
//! - A persistent map (`im`, `rpds`) makes each reader's snapshot cheap, but the plan needs
//!   no snapshot of the whole tenant, only the entries it can match: a dependency for
//!   nothing.
//!
//! # Guarantees
//!
//! - One fetch at a time per tenant; callers that waited read what it stored.
//! - A snapshot younger than `max_age` is read without fetching; writes do not make it
//!   younger.
//! - A write recorded while a fetch is in flight is replayed onto the fetched list before
//!   the list is stored or read: pages read before the write landed do not show it.
//! - An invalidation while a fetch is in flight keeps that fetch's list from being stored
//!   (its own caller still reads it): the list may predate what made the snapshot suspect.
//! - A fetch that fails or is dropped leaves the snapshot as it was.
//!
//! A deleted tenant's snapshot is dropped by the `tenant` controller, which sees tenants
//! leave its store ([`RemoteCache::forget`], [`RemoteCache::retain`]): QlikTenants have no
//! finalizer, so nothing else would.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::tenant::wire::CspOrigin;

pub use crate::api::TenantKey;

/// Per-tenant snapshots of the remote entries.
#[derive(Default)]
pub struct RemoteCache {
    tenants: Mutex<Tenants>,
    // One fetch at a time per tenant; the others wait and reuse its result.
    fetch_locks: Mutex<FetchLocks>,
}

type FetchLocks = HashMap<TenantKey, Arc<tokio::sync::Mutex<()>>>;

#[derive(Default)]
struct Tenants {
    by_key: HashMap<TenantKey, Tenant>,
    // Tells fetches apart, also two of one tenant (`forget` drops the fetch lock of a fetch
    // in flight, so the next one does not wait for it).
    next_fetch: u64,
}

/// What is kept for one tenant; removed once it holds neither a snapshot nor a fetch.
#[derive(Default)]
struct Tenant {
    snapshot: Option<Snapshot>,
    fetches: Vec<InFlight>,
}

struct Snapshot {
    entries: TenantEntries,
    fetched_at: Instant,
}

/// A fetch in flight, and what was recorded since it started (to replay onto its list).
struct InFlight {
    id: u64,
    changes: Vec<Change>,
    invalidated: bool,
}

#[derive(Clone)]
enum Change {
    Written(Arc<CspOrigin>),
    Deleted(String),
}

/// A tenant's entries, by id and by origin; lent to [`RemoteCache::get_or_fetch`]'s `read`.
/// Entries are in list order: as listed, and a written entry moves to the end (where a new
/// one appears).
#[derive(Debug, Default)]
pub struct TenantEntries {
    by_id: HashMap<String, Listed>,
    // Lowercased origin → (place in the list, entry), in list order: the plan compares
    // origins case-insensitively and, among entries with one origin, prefers the first
    // listed. A Vec, not a map: an origin almost always has one entry, and a one-entry
    // BTreeMap allocates a whole node (192 bytes; 1.9 MB at 10,000 entries).
    by_origin: HashMap<String, Vec<(u64, Arc<CspOrigin>)>>,
    next_place: u64,
}

#[derive(Debug)]
struct Listed {
    place: u64,
    entry: Arc<CspOrigin>,
}

impl TenantEntries {
    fn from_list(list: Vec<CspOrigin>) -> TenantEntries {
        let mut entries = TenantEntries::default();
        for entry in list {
            // Ids are unique in a tenant. Were one listed twice, the first would be kept, as
            // a search of the list would find it first.
            if !entries.by_id.contains_key(&entry.id) {
                entries.insert(Arc::new(entry));
            }
        }
        entries
    }

    /// How many entries the tenant holds.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the tenant holds no entry.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The entry with this id.
    pub fn get(&self, id: &str) -> Option<&CspOrigin> {
        self.by_id.get(id).map(|listed| &*listed.entry)
    }

    /// The entries with this origin, compared case-insensitively, in list order.
    pub fn with_origin(&self, origin: &str) -> impl Iterator<Item = &CspOrigin> {
        let same = self.by_origin.get(&origin.to_ascii_lowercase());
        same.into_iter()
            .flat_map(|same| same.iter().map(|(_, e)| &**e))
    }

    /// What the plan can match a `CspEntry` to: the entry with the id it recorded and those
    /// with its origin, in list order. Copies, for the caller to keep once the lock is
    /// released. The plan looks entries up only by these two keys (and counts them with
    /// [`len`](Self::len)); a new way of looking them up must be added here too.
    pub fn matching(&self, id: Option<&str>, origin: &str) -> Vec<CspOrigin> {
        let same = self.by_origin.get(&origin.to_ascii_lowercase());
        let mut found: Vec<(u64, &Arc<CspOrigin>)> = same
            .into_iter()
            .flat_map(|same| same.iter().map(|(place, e)| (*place, e)))
            .collect();
        let tracked = id.and_then(|id| self.by_id.get(id));
        if let Some(listed) = tracked
            && !listed.entry.content.origin.eq_ignore_ascii_case(origin)
        {
            found.push((listed.place, &listed.entry));
            found.sort_unstable_by_key(|(place, _)| *place);
        }
        found
            .into_iter()
            .map(|(_, e)| CspOrigin::clone(e))
            .collect()
    }

    fn apply(&mut self, change: &Change) {
        match change {
            Change::Written(entry) => {
                self.delete(&entry.id);
                self.insert(entry.clone());
            }
            Change::Deleted(id) => self.delete(id),
        }
    }

    /// Appends an entry whose id is not held.
    fn insert(&mut self, entry: Arc<CspOrigin>) {
        let place = self.next_place;
        self.next_place += 1;
        // Places only grow, so pushing keeps the list order.
        let same = self
            .by_origin
            .entry(origin_key(&entry))
            .or_insert_with(|| Vec::with_capacity(1));
        same.push((place, entry.clone()));
        self.by_id.insert(entry.id.clone(), Listed { place, entry });
    }

    fn delete(&mut self, id: &str) {
        let Some(listed) = self.by_id.remove(id) else {
            return;
        };
        let key = origin_key(&listed.entry);
        if let Some(same) = self.by_origin.get_mut(&key) {
            same.retain(|(place, _)| *place != listed.place);
            if same.is_empty() {
                self.by_origin.remove(&key);
            }
        }
    }
}

fn origin_key(entry: &CspOrigin) -> String {
    entry.content.origin.to_ascii_lowercase()
}

/// Ends a fetch however its future ends (stored, failed or dropped), so that its log of
/// changes does not outlive it.
struct Fetching<'a> {
    cache: &'a RemoteCache,
    tenant: &'a TenantKey,
    id: u64,
}

impl Drop for Fetching<'_> {
    fn drop(&mut self) {
        self.cache.with_tenants(|tenants| {
            if let Some(state) = tenants.by_key.get_mut(self.tenant) {
                state.fetches.retain(|f| f.id != self.id);
                if state.snapshot.is_none() && state.fetches.is_empty() {
                    tenants.by_key.remove(self.tenant);
                }
            }
        });
    }
}

impl RemoteCache {
    /// Reads the tenant's entries with `read`: the snapshot if younger than `max_age` (the
    /// tenant's drift interval: one list per interval), else the result of `fetch` (called
    /// by one caller at a time per tenant; callers that waited read what it stored).
    ///
    /// `read` runs under the cache's lock: it should look entries up and copy out what the
    /// caller keeps, nothing slower.
    pub async fn get_or_fetch<T, E, F, Fut>(
        &self,
        tenant: &TenantKey,
        max_age: Duration,
        fetch: F,
        read: impl FnOnce(&TenantEntries) -> T,
    ) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<CspOrigin>, E>>,
    {
        let read = match self.read_fresh(tenant, max_age, read) {
            Ok(found) => return Ok(found),
            Err(read) => read,
        };
        let lock = self.with_locks(|locks| locks.entry(tenant.clone()).or_default().clone());
        let _one_at_a_time = lock.lock().await;
        let read = match self.read_fresh(tenant, max_age, read) {
            Ok(found) => return Ok(found),
            Err(read) => read,
        };
        // Registered before the list is asked for, so that every write the list may miss is
        // in this fetch's log.
        let fetching = self.start_fetch(tenant);
        let listed = fetch().await?;
        let entries = TenantEntries::from_list(listed);
        Ok(self.store(&fetching, entries, read))
    }

    /// Forgets the tenant's snapshot: the next reconcile lists again (drift checks, errors
    /// that suggest the snapshot is wrong). A fetch in flight will not store its list.
    pub fn invalidate(&self, tenant: &TenantKey) {
        self.with_tenants(|tenants| {
            let Some(state) = tenants.by_key.get_mut(tenant) else {
                return;
            };
            state.snapshot = None;
            for fetch in &mut state.fetches {
                fetch.invalidated = true;
            }
            if state.fetches.is_empty() {
                tenants.by_key.remove(tenant);
            }
        });
    }

    /// Forgets everything kept for the tenant (deleted): its snapshot and its fetch lock.
    pub fn forget(&self, tenant: &TenantKey) {
        self.with_tenants(|tenants| tenants.by_key.remove(tenant));
        self.with_locks(|locks| locks.remove(tenant));
    }

    /// Keeps only what is kept for tenants for which `keep` holds (those still in the
    /// store).
    pub fn retain(&self, mut keep: impl FnMut(&TenantKey) -> bool) {
        // A fetch in flight for a swept tenant finishes for its caller but stores nothing:
        // its log went with the tenant.
        self.with_tenants(|tenants| tenants.by_key.retain(|key, _| keep(key)));
        self.with_locks(|locks| locks.retain(|key, _| keep(key)));
    }

    /// How many tenants have a snapshot, a fetch in flight or a fetch lock.
    pub fn len(&self) -> usize {
        let mut keys: HashSet<TenantKey> =
            self.with_tenants(|tenants| tenants.by_key.keys().cloned().collect());
        keys.extend(self.with_locks(|locks| locks.keys().cloned().collect::<Vec<_>>()));
        keys.len()
    }

    /// Whether nothing is kept for any tenant.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Folds a created or updated entry into the snapshot.
    pub fn record_written(&self, tenant: &TenantKey, entry: CspOrigin) {
        self.record(tenant, Change::Written(Arc::new(entry)));
    }

    /// Removes a deleted entry from the snapshot.
    pub fn record_deleted(&self, tenant: &TenantKey, id: &str) {
        self.record(tenant, Change::Deleted(id.to_owned()));
    }

    /// `read` of the snapshot if it is younger than `max_age`, else `read` back.
    fn read_fresh<T, R>(&self, tenant: &TenantKey, max_age: Duration, read: R) -> Result<T, R>
    where
        R: FnOnce(&TenantEntries) -> T,
    {
        self.with_tenants(|tenants| {
            let snapshot = tenants.by_key.get(tenant).and_then(|s| s.snapshot.as_ref());
            match snapshot.filter(|s| s.fetched_at.elapsed() < max_age) {
                Some(snapshot) => Ok(read(&snapshot.entries)),
                None => Err(read),
            }
        })
    }

    fn start_fetch<'a>(&'a self, tenant: &'a TenantKey) -> Fetching<'a> {
        let id = self.with_tenants(|tenants| {
            let id = tenants.next_fetch;
            tenants.next_fetch += 1;
            let fetch = InFlight {
                id,
                changes: Vec::new(),
                invalidated: false,
            };
            let state = tenants.by_key.entry(tenant.clone()).or_default();
            state.fetches.push(fetch);
            id
        });
        Fetching {
            cache: self,
            tenant,
            id,
        }
    }

    /// Replays onto the fetched entries what was recorded during the fetch, reads them, and
    /// stores them unless invalidated or forgotten meanwhile.
    fn store<T>(
        &self,
        fetching: &Fetching<'_>,
        mut entries: TenantEntries,
        read: impl FnOnce(&TenantEntries) -> T,
    ) -> T {
        self.with_tenants(|tenants| {
            let ours = tenants.by_key.get_mut(fetching.tenant).and_then(|state| {
                let at = state.fetches.iter().position(|f| f.id == fetching.id)?;
                Some((state, at))
            });
            let Some((state, at)) = ours else {
                // Forgotten while fetching (the tenant is gone): nothing to keep it for.
                return read(&entries);
            };
            let fetch = state.fetches.swap_remove(at);
            for change in &fetch.changes {
                entries.apply(change);
            }
            let found = read(&entries);
            if !fetch.invalidated {
                let fetched_at = Instant::now();
                state.snapshot = Some(Snapshot {
                    entries,
                    fetched_at,
                });
            }
            found
        })
    }

    fn record(&self, tenant: &TenantKey, change: Change) {
        self.with_tenants(|tenants| {
            let Some(state) = tenants.by_key.get_mut(tenant) else {
                return;
            };
            if let Some(snapshot) = &mut state.snapshot {
                snapshot.entries.apply(&change);
            }
            for fetch in &mut state.fetches {
                fetch.changes.push(change.clone());
            }
        });
    }

    fn with_locks<T>(&self, f: impl FnOnce(&mut FetchLocks) -> T) -> T {
        f(&mut self
            .fetch_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }

    fn with_tenants<T>(&self, f: impl FnOnce(&mut Tenants) -> T) -> T {
        // A poisoned lock is still usable: a panic under it can only come from a caller's
        // `read`, which sees the entries shared and cannot leave them half edited.
        f(&mut self.tenants.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::oneshot;

    use super::*;
    use crate::tenant::wire::CspOriginContent;

    const AGE: Duration = Duration::from_secs(5);

    fn key() -> TenantKey {
        ("web".into(), "acme".into())
    }

    fn remote(id: &str, origin: &str) -> CspOrigin {
        CspOrigin {
            id: id.into(),
            content: CspOriginContent {
                origin: origin.into(),
                ..CspOriginContent::default()
            },
            created_date: None,
            modified_date: None,
        }
    }

    /// The ids, in list order: a `read` for tests.
    fn ids(entries: &TenantEntries) -> Vec<String> {
        let mut listed: Vec<&Listed> = entries.by_id.values().collect();
        listed.sort_by_key(|listed| listed.place);
        listed
            .iter()
            .map(|listed| listed.entry.id.clone())
            .collect()
    }

    async fn must_not_list() -> Result<Vec<CspOrigin>, &'static str> {
        Err("must not list again")
    }

    /// A fetch that says when it started and returns `list` once released: what a slow
    /// paged list looks like to the cache.
    fn gated(
        list: Vec<CspOrigin>,
    ) -> (
        impl Future<Output = Result<Vec<CspOrigin>, ()>>,
        oneshot::Receiver<()>,
        oneshot::Sender<()>,
    ) {
        let (started, on_start) = oneshot::channel();
        let (release, released) = oneshot::channel::<()>();
        let fetch = async move {
            let _ = started.send(());
            let _ = released.await;
            Ok(list)
        };
        (fetch, on_start, release)
    }

    #[tokio::test]
    async fn concurrent_reconciles_of_one_tenant_share_one_fetch() {
        let cache = Arc::new(RemoteCache::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                let fetch = || async {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    Ok::<_, ()>(vec![remote("1", "https://a.example.com")])
                };
                cache.get_or_fetch(&key(), AGE, fetch, ids).await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), ["1"]);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_snapshot_older_than_max_age_is_fetched_again() {
        let cache = RemoteCache::default();
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(Vec::new())
        };
        cache
            .get_or_fetch(&key(), AGE, fetch, |_| ())
            .await
            .unwrap();
        cache
            .get_or_fetch(&key(), AGE, fetch, |_| ())
            .await
            .unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // A write does not make the snapshot younger.
        cache.record_written(&key(), remote("1", "https://a.example.com"));
        tokio::time::advance(Duration::from_secs(6)).await;
        cache
            .get_or_fetch(&key(), AGE, fetch, |_| ())
            .await
            .unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn own_writes_are_visible_without_listing_again() {
        let cache = RemoteCache::default();
        let first = vec![
            remote("1", "https://a.example.com"),
            remote("2", "https://b.example.com"),
        ];
        cache
            .get_or_fetch(&key(), AGE, || async { Ok::<_, ()>(first) }, |_| ())
            .await
            .unwrap();
        cache.record_written(&key(), remote("3", "https://c.example.com"));
        cache.record_written(&key(), remote("1", "https://a2.example.com"));
        cache.record_deleted(&key(), "2");
        let read = |entries: &TenantEntries| {
            let origin = entries.get("1").map(|e| e.content.origin.clone());
            (ids(entries), origin, entries.len())
        };
        let (ids, origin, len) = cache
            .get_or_fetch(&key(), AGE, must_not_list, read)
            .await
            .unwrap();
        // A rewritten entry moves to the end of the list, as a new one appears there.
        assert_eq!(ids, ["3", "1"]);
        assert_eq!(origin.as_deref(), Some("https://a2.example.com"));
        assert_eq!(len, 2);
    }

    /// The cost this module exists for: with the snapshot copied on every write, every
    /// untouched entry moved to a new copy at each of the 10,000 writes (O(N) per write);
    /// here each write touches its own entry only, and the others stay the very same
    /// allocations, referenced once by id and once by origin (no copy kept anywhere else).
    #[tokio::test]
    async fn recording_a_write_leaves_the_other_entries_untouched() {
        const N: usize = 10_000;
        let cache = RemoteCache::default();
        let list: Vec<CspOrigin> = (0..N)
            .map(|i| remote(&i.to_string(), &format!("https://h{i}.example.com")))
            .collect();
        let untouched: Vec<String> = (0..N)
            .filter(|i| i % 2 == 1)
            .map(|i| i.to_string())
            .collect();
        let addresses = |entries: &TenantEntries| -> Vec<Option<usize>> {
            let address = |id: &String| entries.get(id).map(|e| e as *const CspOrigin as usize);
            untouched.iter().map(address).collect()
        };
        let fetch = || async { Ok::<_, ()>(list) };
        let before = cache
            .get_or_fetch(&key(), AGE, fetch, addresses)
            .await
            .unwrap();
        for i in 0..N {
            // Half updates of listed entries, half new entries.
            let written = match i % 2 {
                0 => remote(&i.to_string(), "https://updated.example.com"),
                _ => remote(&format!("new-{i}"), "https://new.example.com"),
            };
            cache.record_written(&key(), written);
        }
        let after = cache
            .get_or_fetch(&key(), AGE, must_not_list, addresses)
            .await
            .unwrap();
        assert!(before.iter().all(Option::is_some));
        assert_eq!(before, after);
        let held_twice = |entries: &TenantEntries| {
            let mut counts = untouched.iter().filter_map(|id| entries.by_id.get(id));
            (
                entries.len(),
                counts.all(|l| Arc::strong_count(&l.entry) == 2),
            )
        };
        let (len, only_here) = cache
            .get_or_fetch(&key(), AGE, must_not_list, held_twice)
            .await
            .unwrap();
        assert_eq!(len, N + N / 2);
        assert!(only_here);
    }

    #[test]
    fn matching_finds_the_tracked_entry_and_those_with_the_origin_in_list_order() {
        let mut entries = TenantEntries::from_list(vec![
            remote("1", "https://CDN.example.com"),
            remote("2", "https://other.example.com"),
            remote("3", "https://cdn.example.com"),
            remote("4", "https://cdn.example.com"),
        ]);
        let found = |entries: &TenantEntries, id| -> Vec<String> {
            let found = entries.matching(id, "https://cdn.EXAMPLE.com");
            found.into_iter().map(|e| e.id).collect()
        };
        assert_eq!(found(&entries, None), ["1", "3", "4"]);
        assert_eq!(found(&entries, Some("2")), ["1", "2", "3", "4"]);
        assert_eq!(found(&entries, Some("3")), ["1", "3", "4"]);
        assert_eq!(found(&entries, Some("gone")), ["1", "3", "4"]);
        // A rewrite moves the entry to the end; one with a new origin leaves the old one's.
        entries.apply(&Change::Written(Arc::new(remote(
            "1",
            "https://cdn.example.com",
        ))));
        entries.apply(&Change::Written(Arc::new(remote(
            "3",
            "https://x.example.com",
        ))));
        entries.apply(&Change::Deleted("4".into()));
        assert_eq!(found(&entries, None), ["1"]);
        assert_eq!(entries.with_origin("https://x.example.com").count(), 1);
        assert_eq!(entries.len(), 3);
    }

    /// A reconcile that read the snapshot earlier can write while another one lists: the
    /// pages already read miss that write, and dropping it would make the entry look
    /// vanished (created again) or deleted ones look present.
    #[tokio::test]
    async fn a_write_recorded_during_a_fetch_is_not_lost() {
        let cache = Arc::new(RemoteCache::default());
        let list = vec![
            remote("1", "https://a.example.com"),
            remote("2", "https://b.example.com"),
        ];
        let (fetch, started, release) = gated(list);
        let listing = tokio::spawn({
            let cache = cache.clone();
            async move { cache.get_or_fetch(&key(), AGE, || fetch, ids).await }
        });
        started.await.unwrap();
        cache.record_written(&key(), remote("3", "https://c.example.com"));
        cache.record_deleted(&key(), "2");
        release.send(()).unwrap();
        assert_eq!(listing.await.unwrap().unwrap(), ["1", "3"]);
        let stored = cache.get_or_fetch(&key(), AGE, must_not_list, ids).await;
        assert_eq!(stored.unwrap(), ["1", "3"]);
    }

    /// An invalidation says the snapshot may be wrong (a write of unknown outcome): a list
    /// that was already under way may predate it, so it is not kept.
    #[tokio::test]
    async fn an_invalidation_during_a_fetch_keeps_its_list_from_being_stored() {
        let cache = Arc::new(RemoteCache::default());
        let (fetch, started, release) = gated(vec![remote("1", "https://a.example.com")]);
        let listing = tokio::spawn({
            let cache = cache.clone();
            async move { cache.get_or_fetch(&key(), AGE, || fetch, ids).await }
        });
        started.await.unwrap();
        cache.invalidate(&key());
        release.send(()).unwrap();
        assert_eq!(listing.await.unwrap().unwrap(), ["1"]);
        let again = || async { Ok::<_, ()>(Vec::new()) };
        let listed_again = cache
            .get_or_fetch(&key(), AGE, again, |e| e.is_empty())
            .await;
        assert!(listed_again.unwrap());
    }

    #[tokio::test]
    async fn a_dropped_fetch_leaves_nothing_behind_but_its_lock() {
        let cache = Arc::new(RemoteCache::default());
        let (fetch, started, _never) = gated(Vec::new());
        let listing = tokio::spawn({
            let cache = cache.clone();
            async move { cache.get_or_fetch(&key(), AGE, || fetch, ids).await }
        });
        started.await.unwrap();
        cache.record_written(&key(), remote("1", "https://a.example.com"));
        listing.abort();
        assert!(listing.await.unwrap_err().is_cancelled());
        assert!(cache.with_tenants(|tenants| tenants.by_key.is_empty()));
        let one = || async { Ok::<_, ()>(vec![remote("2", "https://b.example.com")]) };
        let listed = cache.get_or_fetch(&key(), AGE, one, ids).await.unwrap();
        assert_eq!(listed, ["2"]);
    }

    #[tokio::test]
    async fn a_forgotten_or_swept_tenant_leaves_nothing_behind() {
        let cache = RemoteCache::default();
        let other: TenantKey = ("web".into(), "globex".into());
        let one = || async { Ok::<_, ()>(vec![remote("1", "https://a.example.com")]) };
        cache.get_or_fetch(&key(), AGE, one, |_| ()).await.unwrap();
        cache.get_or_fetch(&other, AGE, one, |_| ()).await.unwrap();
        assert_eq!(cache.len(), 2);
        cache.forget(&key());
        assert_eq!(cache.len(), 1);
        cache.retain(|k| *k != other);
        assert!(cache.is_empty());
    }

    /// A tenant forgotten while its list is under way is gone: the list is for the caller
    /// only, and nothing is left to sweep.
    #[tokio::test]
    async fn a_fetch_for_a_forgotten_tenant_stores_nothing() {
        let cache = Arc::new(RemoteCache::default());
        let (fetch, started, release) = gated(vec![remote("1", "https://a.example.com")]);
        let listing = tokio::spawn({
            let cache = cache.clone();
            async move { cache.get_or_fetch(&key(), AGE, || fetch, ids).await }
        });
        started.await.unwrap();
        cache.forget(&key());
        release.send(()).unwrap();
        assert_eq!(listing.await.unwrap().unwrap(), ["1"]);
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn invalidation_and_fetch_errors_leave_no_stale_snapshot() {
        let cache = RemoteCache::default();
        let one = || async { Ok::<_, &str>(vec![remote("1", "https://a.example.com")]) };
        cache.get_or_fetch(&key(), AGE, one, |_| ()).await.unwrap();
        cache.invalidate(&key());
        let failing = || async { Err::<Vec<CspOrigin>, _>("tenant down") };
        let failed = cache.get_or_fetch(&key(), AGE, failing, |_| ()).await;
        assert_eq!(failed.unwrap_err(), "tenant down");
        assert!(cache.with_tenants(|tenants| tenants.by_key.is_empty()));
        let empty = || async { Ok::<_, &str>(Vec::new()) };
        let read = cache
            .get_or_fetch(&key(), AGE, empty, |e| e.is_empty())
            .await;
        assert!(read.unwrap());
    }
}
