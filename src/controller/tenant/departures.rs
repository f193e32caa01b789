//! Dropping what the operator keeps per `QlikTenant` once the tenant leaves the store: its
//! tenant client, the csp-entry controller's snapshot of its remote entries, this
//! controller's pacing and retry state, and its metric series. Does no I/O.
//!
//! QlikTenants have no finalizer and kube-runtime does not reconcile an object that is gone,
//! so no reconcile ever sees a deleted tenant. Instead this controller watches its own
//! reflector: a `Delete` event drops the tenant's state at once (the store has already
//! removed it, so no new reconcile for it starts afterwards). Watch events can be missed (a
//! watch that restarts relists without reporting what was deleted meanwhile), and a
//! reconcile in flight when its tenant goes may store something after the drop; so every
//! relist (`InitDone`) and every [`SWEEP_INTERVAL`] keep only what belongs to a tenant still
//! in the store.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use super::context::Context;
use crate::api::QlikTenant;
use crate::controller::tenant_clients::{TenantKey, key_of};

/// How often what in-flight reconciles stored for a tenant gone meanwhile is swept.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// Reacts to one event of the controller's own reflector (already applied to the store).
/// Returns the tenant that left, so that its rivals for a ConfigMap can be reconciled.
pub fn on_event(ctx: &Context, event: &watcher::Event<QlikTenant>) -> Option<QlikTenant> {
    match event {
        watcher::Event::Delete(tenant) => {
            forget(ctx, &key_of(tenant));
            Some(tenant.clone())
        }
        watcher::Event::InitDone => {
            sweep(ctx);
            None
        }
        _ => None,
    }
}

/// Drops everything kept for tenant `key`.
pub fn forget(ctx: &Context, key: &TenantKey) {
    let shared = &ctx.shared;
    shared.tenants.forget(key);
    shared.remote.forget(key);
    shared.runtime.metrics.forget_header(&key.0, &key.1);
    let me = ObjectRef::<QlikTenant>::new(&key.1).within(&key.0);
    ctx.pacer.forget(&me);
    ctx.backoff.forget(&me);
}

/// Keeps only what belongs to tenants in the store.
pub fn sweep(ctx: &Context) {
    let live: HashSet<TenantKey> = ctx.tenants.state().iter().map(|t| key_of(t)).collect();
    let is_live =
        |namespace: &str, name: &str| live.contains(&(namespace.to_owned(), name.to_owned()));
    let shared = &ctx.shared;
    shared.tenants.retain(|key| live.contains(key));
    shared.remote.retain(|key| live.contains(key));
    shared.runtime.metrics.retain_headers(is_live);
    let live_ref = |tenant: &ObjectRef<QlikTenant>| {
        is_live(
            tenant.namespace.as_deref().unwrap_or_default(),
            &tenant.name,
        )
    };
    ctx.pacer.retain(live_ref);
    ctx.backoff.retain(live_ref);
}

/// Sweeps every [`SWEEP_INTERVAL`] once the store has its first full list, until
/// `shutdown`. An empty store before that would sweep everything away.
pub async fn sweep_periodically(ctx: Arc<Context>, shutdown: CancellationToken) {
    let ready = tokio::select! {
        () = shutdown.cancelled() => return,
        ready = ctx.tenants.wait_until_ready() => ready,
    };
    if ready.is_err() {
        return;
    }
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => sweep(&ctx),
        }
    }
}

/// Reports the size of each per-tenant cache in `/metrics`
/// (`qlikops_tenant_cache_entries{cache}`), for as long as `ctx` lives.
pub fn track_caches(ctx: &Arc<Context>) {
    let metrics = &ctx.shared.runtime.metrics;
    let weak = Arc::downgrade(ctx);
    metrics.track_cache("tenant-clients", move || {
        weak.upgrade().map(|ctx| ctx.shared.tenants.len())
    });
    let weak = Arc::downgrade(ctx);
    metrics.track_cache("remote-entries", move || {
        weak.upgrade().map(|ctx| ctx.shared.remote.len())
    });
    let weak = Arc::downgrade(ctx);
    metrics.track_cache("header-state", move || {
        weak.upgrade().map(|ctx| ctx.pacer.len())
    });
}
