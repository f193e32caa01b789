//! One list of a tenant's CSP entries shared by every `CspEntry` reconcile of that tenant.
//! In memory; the fetch itself is the caller's.
//!
//! A burst of N entry changes must not cost N paged lists: concurrent reconciles of one
//! tenant wait for a single fetch ([`RemoteCache::get_or_fetch`]), and a snapshot is reused
//! while younger than `max_age`. The controller's own writes are folded into the snapshot
//! (`record_*`), because the plan cannot tell a stale list from a vanished entry: without
//! that, an entry it just created would look missing and be created again.
//!
//! A deleted tenant's snapshot is dropped by the `tenant` controller, which sees tenants
//! leave its store ([`RemoteCache::forget`], [`RemoteCache::retain`]): QlikTenants have no
//! finalizer, so nothing else would.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::tenant::wire::CspOrigin;

/// A tenant as `(namespace, name)` of its `QlikTenant`.
pub type TenantKey = (String, String);

#[derive(Clone)]
struct Snapshot {
    entries: Arc<[CspOrigin]>,
    fetched_at: Instant,
}

/// Per-tenant snapshots of the remote entries.
#[derive(Default)]
pub struct RemoteCache {
    snapshots: Mutex<HashMap<TenantKey, Snapshot>>,
    // One fetch at a time per tenant; the others wait and reuse its result.
    fetch_locks: Mutex<FetchLocks>,
}

type FetchLocks = HashMap<TenantKey, Arc<tokio::sync::Mutex<()>>>;

impl RemoteCache {
    /// The tenant's entries: the snapshot if younger than `max_age` (the tenant's drift
    /// interval: one list per interval), else the result of `fetch` (called by one caller at
    /// a time per tenant; callers that waited reuse what it stored).
    pub async fn get_or_fetch<E, F, Fut>(
        &self,
        tenant: &TenantKey,
        max_age: Duration,
        fetch: F,
    ) -> Result<Arc<[CspOrigin]>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<CspOrigin>, E>>,
    {
        if let Some(entries) = self.fresh(tenant, max_age) {
            return Ok(entries);
        }
        let lock = self.with_locks(|locks| locks.entry(tenant.clone()).or_default().clone());
        let _fetching = lock.lock().await;
        if let Some(entries) = self.fresh(tenant, max_age) {
            return Ok(entries);
        }
        let entries: Arc<[CspOrigin]> = fetch().await?.into();
        self.with_snapshots(|snapshots| {
            let snapshot = Snapshot {
                entries: entries.clone(),
                fetched_at: Instant::now(),
            };
            snapshots.insert(tenant.clone(), snapshot);
        });
        Ok(entries)
    }

    /// Forgets the tenant's snapshot: the next reconcile lists again (drift checks, errors
    /// that suggest the snapshot is wrong).
    pub fn invalidate(&self, tenant: &TenantKey) {
        self.with_snapshots(|snapshots| snapshots.remove(tenant));
    }

    /// Forgets everything kept for the tenant (deleted): its snapshot and its fetch lock.
    pub fn forget(&self, tenant: &TenantKey) {
        self.invalidate(tenant);
        self.with_locks(|locks| locks.remove(tenant));
    }

    /// Keeps only what is kept for tenants for which `keep` holds (those still in the
    /// store).
    pub fn retain(&self, mut keep: impl FnMut(&TenantKey) -> bool) {
        self.with_snapshots(|snapshots| snapshots.retain(|key, _| keep(key)));
        // A lock held by a fetch in flight is dropped from the map only: the fetch finishes
        // and its result is stored, to be swept next time.
        self.with_locks(|locks| locks.retain(|key, _| keep(key)));
    }

    /// How many tenants have a snapshot or a fetch lock.
    pub fn len(&self) -> usize {
        let mut keys: std::collections::HashSet<TenantKey> =
            self.with_snapshots(|snapshots| snapshots.keys().cloned().collect());
        keys.extend(self.with_locks(|locks| locks.keys().cloned().collect::<Vec<_>>()));
        keys.len()
    }

    /// Whether nothing is kept for any tenant.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Folds a created or updated entry into the snapshot.
    pub fn record_written(&self, tenant: &TenantKey, entry: CspOrigin) {
        self.edit(tenant, |entries| {
            entries.retain(|e| e.id != entry.id);
            entries.push(entry);
        });
    }

    /// Removes a deleted entry from the snapshot.
    pub fn record_deleted(&self, tenant: &TenantKey, id: &str) {
        self.edit(tenant, |entries| entries.retain(|e| e.id != id));
    }

    fn fresh(&self, tenant: &TenantKey, max_age: Duration) -> Option<Arc<[CspOrigin]>> {
        self.with_snapshots(|snapshots| {
            snapshots
                .get(tenant)
                .filter(|s| s.fetched_at.elapsed() < max_age)
                .map(|s| s.entries.clone())
        })
    }

    fn edit(&self, tenant: &TenantKey, change: impl FnOnce(&mut Vec<CspOrigin>)) {
        self.with_snapshots(|snapshots| {
            if let Some(snapshot) = snapshots.get_mut(tenant) {
                let mut entries = snapshot.entries.to_vec();
                change(&mut entries);
                snapshot.entries = entries.into();
            }
        });
    }

    fn with_locks<T>(&self, f: impl FnOnce(&mut FetchLocks) -> T) -> T {
        f(&mut self
            .fetch_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }

    fn with_snapshots<T>(&self, f: impl FnOnce(&mut HashMap<TenantKey, Snapshot>) -> T) -> T {
        // A panic while holding the lock leaves consistent data (every edit is one insert,
        // remove or replace), so a poisoned lock is still usable.
        f(&mut self
            .snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

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

    fn ids(entries: &[CspOrigin]) -> Vec<&str> {
        entries.iter().map(|e| e.id.as_str()).collect()
    }

    #[tokio::test]
    async fn concurrent_reconciles_of_one_tenant_share_one_fetch() {
        let cache = Arc::new(RemoteCache::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_fetch(&key(), AGE, || async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        Ok::<_, ()>(vec![remote("1", "https://a.example.com")])
                    })
                    .await
            }));
        }
        for task in tasks {
            let entries = task.await.unwrap().unwrap();
            assert_eq!(ids(&entries), ["1"]);
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
        cache.get_or_fetch(&key(), AGE, fetch).await.unwrap();
        cache.get_or_fetch(&key(), AGE, fetch).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(6)).await;
        cache.get_or_fetch(&key(), AGE, fetch).await.unwrap();
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
            .get_or_fetch(&key(), AGE, || async { Ok::<_, ()>(first) })
            .await
            .unwrap();
        cache.record_written(&key(), remote("3", "https://c.example.com"));
        cache.record_written(&key(), remote("1", "https://a2.example.com"));
        cache.record_deleted(&key(), "2");
        let unreachable = || async { Err::<Vec<CspOrigin>, _>("must not list again") };
        let entries = cache.get_or_fetch(&key(), AGE, unreachable).await.unwrap();
        assert_eq!(ids(&entries), ["3", "1"]);
        assert_eq!(entries[1].content.origin, "https://a2.example.com");
    }

    #[tokio::test]
    async fn a_forgotten_or_swept_tenant_leaves_nothing_behind() {
        let cache = RemoteCache::default();
        let other: TenantKey = ("web".into(), "globex".into());
        let one = || async { Ok::<_, ()>(vec![remote("1", "https://a.example.com")]) };
        cache.get_or_fetch(&key(), AGE, one).await.unwrap();
        cache.get_or_fetch(&other, AGE, one).await.unwrap();
        assert_eq!(cache.len(), 2);
        cache.forget(&key());
        assert_eq!(cache.len(), 1);
        cache.retain(|k| *k != other);
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn invalidation_and_fetch_errors_leave_no_stale_snapshot() {
        let cache = RemoteCache::default();
        let one = || async { Ok::<_, &str>(vec![remote("1", "https://a.example.com")]) };
        cache.get_or_fetch(&key(), AGE, one).await.unwrap();
        cache.invalidate(&key());
        let failing = || async { Err::<Vec<CspOrigin>, _>("tenant down") };
        assert_eq!(
            cache.get_or_fetch(&key(), AGE, failing).await.unwrap_err(),
            "tenant down"
        );
        let empty = || async { Ok::<_, &str>(Vec::new()) };
        assert!(
            cache
                .get_or_fetch(&key(), AGE, empty)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
