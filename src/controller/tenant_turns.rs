//! Turns: how many csp-entry reconciles work on one tenant at once, and a line for the rest.
//!
//! A tenant lets the operator write 90 times a minute (see [`crate::tenant::RateLimits`]),
//! so a burst of 10,000 CspEntries converges at that pace whatever the controller does. But
//! kube-runtime runs every pending reconcile at once: without a bound, every entry of a
//! burst starts its reconcile and waits for the tenant's budget while it holds its state,
//! kube-runtime's slot and span, an apiserver connection and its buffers. That was most of the operator's
//! memory at scale (496 MiB at 10,000 entries over 40 tenants).
//!
//! A few turns per tenant keep its budget busy (one waits for a slot while the others read
//! and record). A reconcile that finds no free turn does not wait: its entry joins the
//! tenant's line (a reference, about a hundred bytes) and the reconcile ends. When a turn
//! is given back, it is kept for the first entry in line, which is woken (see
//! [`TenantTurns::wakes`]); newcomers cannot take it first, so the line is served in
//! order. Tenants never wait for each other, so 40 tenants converge 40 times as fast as
//! one, and an edit of a quiet tenant never queues behind another tenant's burst.
//!
//! A wake can be lost: the entry may be gone (deleted) before its reconcile runs. The
//! controller hands such a wake back ([`TenantTurns::pass_on`]), and a turn kept for an
//! entry that has not come for it within [`KEPT_TURN_EXPIRY`] goes to the next in line
//! ([`TenantTurns::expire`], run by [`TenantTurns::woken_entries`] every ten seconds), so a line never stalls.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures::{Stream, StreamExt, future, stream};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::time::Instant;

use crate::api::{CspEntry, TenantKey};

/// Turns per tenant: enough that one waits for the rate budget while others do their
/// apiserver reads and status writes; more only holds more in memory.
pub const TURNS_PER_TENANT: usize = 4;

/// How long a turn kept for a woken entry waits for it before it goes to the next in line.
pub const KEPT_TURN_EXPIRY: Duration = Duration::from_secs(30);

type Entry = ObjectRef<CspEntry>;

/// The turns and lines of every tenant; a tenant's line is dropped when it is idle.
#[derive(Clone)]
pub struct TenantTurns {
    per_tenant: usize,
    state: Arc<Mutex<State>>,
}

struct State {
    lines: HashMap<TenantKey, Line>,
    wake: UnboundedSender<Entry>,
}

#[derive(Default)]
struct Line {
    /// Turns being used.
    taken: usize,
    /// Turns kept for woken entries, and since when.
    kept: Vec<(Entry, Instant)>,
    /// Entries waiting, first come first served; an entry is in line at most once.
    waiting: VecDeque<Entry>,
}

/// One reconcile's turn on a tenant; dropping it wakes the next entry in line.
pub struct Turn {
    tenant: TenantKey,
    turns: TenantTurns,
}

impl Default for TenantTurns {
    fn default() -> Self {
        TenantTurns::new(TURNS_PER_TENANT)
    }
}

impl std::fmt::Debug for TenantTurns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantTurns")
            .field("per_tenant", &self.per_tenant)
            .field("tenants", &self.lock().lines.len())
            .finish()
    }
}

impl TenantTurns {
    pub fn new(per_tenant: usize) -> TenantTurns {
        // No one reads the wakes until a controller asks for them (see `wakes`).
        let (wake, _) = unbounded();
        TenantTurns {
            per_tenant: per_tenant.max(1),
            state: Arc::new(Mutex::new(State {
                lines: HashMap::new(),
                wake,
            })),
        }
    }

    /// The entries to reconcile because a turn was kept for them, from now on; a controller
    /// that starts again takes them over from the one before.
    pub fn wakes(&self) -> UnboundedReceiver<Entry> {
        let (wake, woken) = unbounded();
        self.lock().wake = wake;
        woken
    }

    /// [`wakes`](Self::wakes) for `Controller::reconcile_on`: a wake of an entry no longer in
    /// `store` passes its turn on, and every few seconds turns kept too long are handed on.
    pub fn woken_entries(
        &self,
        store: Store<CspEntry>,
    ) -> impl Stream<Item = Entry> + Send + use<> {
        enum Item {
            Wake(Entry),
            Tick,
        }
        let ticks = stream::unfold((), |()| async {
            tokio::time::sleep(KEPT_TURN_EXPIRY / 3).await;
            Some((Item::Tick, ()))
        });
        let turns = self.clone();
        stream::select(self.wakes().map(Item::Wake), ticks).filter_map(move |item| {
            let woken = match item {
                Item::Wake(entry) if store.get(&entry).is_some() => Some(entry),
                Item::Wake(entry) => {
                    turns.pass_on(&entry);
                    None
                }
                Item::Tick => {
                    turns.expire(Instant::now());
                    None
                }
            };
            future::ready(woken)
        })
    }

    /// A turn on `tenant` for `entry`: the one kept for it, or a free one when no entry is
    /// waiting. Otherwise `entry` joins the line (once) and `None` is returned: the
    /// reconcile ends, and the entry is woken when its turn comes.
    pub fn take(&self, tenant: &TenantKey, entry: &Entry) -> Option<Turn> {
        let per_tenant = self.per_tenant;
        let mut state = self.lock();
        let line = state.lines.entry(tenant.clone()).or_default();
        if let Some(i) = line.kept.iter().position(|(kept, _)| kept == entry) {
            line.kept.swap_remove(i);
        } else if line.waiting.is_empty() && line.taken + line.kept.len() < per_tenant {
            // A free turn, and no one in line before this entry.
        } else {
            if !line.waiting.contains(entry) {
                line.waiting.push_back(entry.clone());
            }
            return None;
        }
        line.taken += 1;
        Some(Turn {
            tenant: tenant.clone(),
            turns: self.clone(),
        })
    }

    /// The wake of `entry` found it gone: its kept turn goes to the next in line.
    pub fn pass_on(&self, entry: &Entry) {
        let mut state = self.lock();
        let State { lines, wake, .. } = &mut *state;
        let holder = lines.iter_mut().find_map(|(tenant, line)| {
            let i = line.kept.iter().position(|(kept, _)| kept == entry)?;
            line.kept.swap_remove(i);
            line.hand_on(wake, Instant::now());
            Some(tenant.clone())
        });
        if let Some(tenant) = holder {
            drop_if_idle(lines, &tenant);
        }
    }

    /// Turns kept longer than [`KEPT_TURN_EXPIRY`] for an entry that never came go to the
    /// next in line.
    pub fn expire(&self, now: Instant) {
        let mut state = self.lock();
        let State { lines, wake, .. } = &mut *state;
        let tenants: Vec<TenantKey> = lines.keys().cloned().collect();
        for tenant in tenants {
            let Some(line) = lines.get_mut(&tenant) else {
                continue;
            };
            let before = line.kept.len();
            line.kept
                .retain(|(_, since)| now.saturating_duration_since(*since) < KEPT_TURN_EXPIRY);
            for _ in line.kept.len()..before {
                line.hand_on(wake, now);
            }
            drop_if_idle(lines, &tenant);
        }
    }

    /// The tenants with a turn taken, kept or awaited (for tests).
    pub fn busy_tenants(&self) -> usize {
        self.lock().lines.len()
    }

    /// The entries waiting in `tenant`'s line.
    pub fn waiting(&self, tenant: &TenantKey) -> usize {
        self.lock().lines.get(tenant).map_or(0, |l| l.waiting.len())
    }

    fn give_back(&self, tenant: &TenantKey) {
        let mut state = self.lock();
        let State { lines, wake, .. } = &mut *state;
        if let Some(line) = lines.get_mut(tenant) {
            line.taken = line.taken.saturating_sub(1);
            line.hand_on(wake, Instant::now());
        }
        drop_if_idle(lines, tenant);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state whole before it can panic; it is fine after one.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Line {
    /// A turn became free: keep it for the first entry in line and wake that entry.
    fn hand_on(&mut self, wake: &UnboundedSender<Entry>, now: Instant) {
        if let Some(next) = self.waiting.pop_front() {
            self.kept.push((next.clone(), now));
            // Fails only once the controller stopped; the turn then expires unused.
            let _ = wake.unbounded_send(next);
        }
    }
}

fn drop_if_idle(lines: &mut HashMap<TenantKey, Line>, tenant: &TenantKey) {
    if lines
        .get(tenant)
        .is_some_and(|l| l.taken == 0 && l.kept.is_empty() && l.waiting.is_empty())
    {
        lines.remove(tenant);
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.turns.give_back(&self.tenant);
    }
}

#[cfg(test)]
#[path = "tenant_turns/tests.rs"]
mod tests;
