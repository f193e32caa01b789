//! The `csp-entry` controller: keeps one `CspEntry` in sync with its tenant's `csp-origins`.
//! [`observe`] (cluster + tenant, through the shared [`remote_cache`]) → [`plan`] (pure) →
//! [`apply`] (one side effect) → [`record`] (status, events).

pub mod apply;
pub mod observe;
pub mod plan;
pub mod record;
pub mod remote_cache;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::{self, Action as Requeue, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use self::plan::Requeue as Next;
use super::Shared;
use super::backoff::{self, Backoff};
use super::conditions::{self, Desired, Progress, READY};
use super::entry_feed::{EntryChange, Sees};
use super::own_writes;
use super::tenant_clients::AccessError;
use crate::api::reasons::TENANT_NOT_READY;
use crate::api::{CspEntry, QlikTenant};
use crate::controller::log_failure;
use crate::tenant;

/// Field manager, event reporter and tracing span of this controller.
pub const CONTROLLER_NAME: &str = "qlik-csp-operator/csp-entry";
/// Holds a `CspEntry` until its tenant entry is deleted (or orphaned).
pub const FINALIZER: &str = "qlikops.io/csp-entry";
/// The requeue after a step that wrote the entry, in case its watch event is lost.
const SELF_WRITE_BACKSTOP: Duration = Duration::from_secs(1);
/// How often an entry that failed permanently (a rejected spec) is looked at again, in
/// case what fixed it is not something this controller watches.
const PERMANENT_RECHECK: Duration = Duration::from_secs(300);
/// The `controller` label of this controller's metrics and its readiness line.
pub const METRICS_NAME: &str = "csp-entry";

/// Why a reconcile failed; each variant is one failed step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The QlikTenant watch has not listed the tenants yet (the first seconds after start):
    /// an entry must not be told its tenant is missing before the list says so.
    #[error("the QlikTenants have not been listed yet")]
    TenantsNotListed,
    /// No client for the tenant (credential Secret missing or unusable).
    #[error("failed to reach the tenant")]
    Access(#[from] AccessError),
    /// The tenant's entries could not be listed.
    #[error("failed to list the tenant's CSP entries")]
    List(#[source] tenant::Error),
    /// The tenant refused or failed a write.
    #[error("failed to write the tenant's CSP entry")]
    Write(#[source] tenant::Error),
    /// The plan wanted a tenant write without a usable tenant (a bug).
    #[error("failed to write: the tenant is not usable")]
    TenantGone,
    /// The entry itself could not be read.
    #[error("failed to read the CspEntry")]
    Read(#[source] kube::Error),
    /// The finalizer could not be added or removed.
    #[error("failed to update the finalizer")]
    Finalizer(#[source] kube::Error),
    /// The status could not be written.
    #[error("failed to record the status")]
    Status(#[source] kube::Error),
    /// The tenant refused a create because it already holds an entry for the origin, made
    /// since the shared list was taken (in the console, say): the list is taken again and
    /// the next reconcile adopts it. Not a failure worth a condition or an event.
    #[error("the tenant already holds an entry for the origin; listing its entries again")]
    StaleList,
}

impl Error {
    /// The condition and event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Read(_) | Error::TenantsNotListed | Error::Finalizer(_) | Error::Status(_) => {
                "KubernetesApiError"
            }
            Error::Access(e) => e.reason(),
            Error::List(e) => e.reason(),
            Error::Write(tenant::Error::LimitReached { .. }) => "TenantLimitReached",
            Error::Write(tenant::Error::BadRequest { .. }) => "Rejected",
            Error::Write(e) => e.reason(),
            Error::TenantGone => TENANT_NOT_READY,
            Error::StaleList => "StaleList",
        }
    }

    /// Whether a write was refused because this reconcile worked from a stale view: of
    /// the entry (the apiserver's 409), or of the tenant's entries ([`Error::StaleList`]).
    /// The next reconcile works from a fresh one.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Error::Finalizer(kube::Error::Api(status)) | Error::Status(kube::Error::Api(status))
                if status.code == 409
        ) || matches!(self, Error::StaleList)
    }

    /// The remaining `Retry-After` pause of the entry's tenant, when this error is the
    /// tenant's (or the client's, during that pause) refusal: requeue no earlier.
    pub fn tenant_pause(&self) -> Option<Duration> {
        match self {
            Error::List(e) | Error::Write(e) | Error::Access(AccessError::Client(e)) => {
                e.retry_after()
            }
            _ => None,
        }
    }

    /// Whether retrying soon can help.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Read(_) | Error::TenantsNotListed | Error::Finalizer(_) | Error::Status(_) => {
                true
            }
            Error::Access(e) => e.is_transient(),
            Error::List(e) | Error::Write(e) => e.is_transient(),
            Error::TenantGone | Error::StaleList => true,
        }
    }

    /// The whole chain of causes, for conditions and events (tenant errors carry no
    /// credential).
    pub fn message(&self) -> String {
        crate::error_chain::error_chain(self)
    }
}

struct Context {
    shared: Arc<Shared>,
    store: Store<CspEntry>,
    /// The QlikTenants, watched: an entry's reconcile reads its tenant here, not from the
    /// apiserver (one round trip less per edit, 10,000 fewer GETs per burst).
    tenants: Store<QlikTenant>,
    /// Publishes warnings: kube's recorder remembers each event for six minutes, so a
    /// failure repeated by every retry becomes one event with a count.
    recorder: Recorder,
    reporter: Reporter,
    /// Consecutive failures per entry: the requeue after a transient error.
    backoff: Backoff<CspEntry>,
}

impl Context {
    /// A recorder for an event that never repeats (one per tenant write). The shared one
    /// would remember it for six minutes to count repeats that never come: about 4.5 KB
    /// per event, 45 MB in a burst of 10,000 entries (the largest item of the heap profile
    /// at scale).
    fn recorder_for_one_event(&self) -> Recorder {
        Recorder::new(self.shared.kube.clone(), self.reporter.clone())
    }
}

/// Runs the controller until its watch streams end, or until `shared.runtime.shutdown`
/// and the reconciles in flight have finished.
pub async fn run(shared: Arc<Shared>) {
    let runtime = shared.runtime.clone();
    let kube = shared.kube.clone();
    let config = controller::Config::default().debounce(shared.settings.debounce);
    // One watch and store of the CspEntries, shared with the tenant controller (see
    // `entry_feed`); deletions do not trigger a reconcile here: a deleted entry has nothing
    // left to sync (one with our finalizer is reconciled while it is being deleted).
    let store = shared.entries.store(&shared);
    let trigger = shared
        .entries
        .subscribe(&shared, Sees::Watch)
        .filter_map(|change| async move {
            match change {
                EntryChange::Applied(entry) => Some(entry),
                EntryChange::Deleted(_) => None,
            }
        });
    let controller = Controller::for_shared_stream(trigger, store.clone())
        .with_config(config)
        .reconcile_on(shared.turns.woken_entries(store.clone()));
    let entries = store.clone();
    let ready = runtime.ready_when_synced(METRICS_NAME, store.clone());
    // A tenant that appears, becomes ready (or not), changes its spec or goes changes what
    // every entry of it should say: an entry naming a missing tenant (`TenantNotFound`)
    // recovers from here. Its other status writes (each header it publishes) wake nobody.
    let (tenants, tenant_writer) = reflector::store::<QlikTenant>();
    let tenant_events = super::tenant_changes::concerning_entries(
        watcher(
            shared.settings.api::<QlikTenant>(&kube),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(tenant_writer),
    );
    let controller = controller.watches_stream(tenant_events, move |tenant| {
        super::naming_tenant(&entries, &tenant, |e: &CspEntry| &e.spec.tenant_ref.name)
    });
    let reporter = super::event_reporter(CONTROLLER_NAME);
    let context = Arc::new(Context {
        shared,
        store,
        tenants,
        recorder: Recorder::new(kube, reporter.clone()),
        reporter,
        backoff: Backoff::new(backoff::DEFAULT),
    });
    let controller = controller
        .graceful_shutdown_on(runtime.shutdown.clone().cancelled_owned())
        .run(
            runtime.observed(METRICS_NAME, Error::reason, reconcile),
            error_policy,
            context,
        )
        .for_each(|result| log_failure(CONTROLLER_NAME, result));
    futures::join!(controller, ready);
}

/// Reconciles with a turn on the entry's tenant (see [`tenant_turns`](super::tenant_turns));
/// without one, the entry joins the tenant's line and is woken when its turn comes. A
/// burst's thousands of waiting entries each hold a place in line, not a reconcile.
///
/// The work in turn is boxed so that this future stays small until a turn is taken:
/// kube-runtime creates the future of every entry that is due before it polls any of them,
/// and a future is as large as its largest state (about 18 KB with the tenant and
/// apiserver calls inlined). Unboxed, the hundreds created at once by a burst's watch
/// events were the largest item of the heap profile, though most end at their first poll.
async fn reconcile(stored: Arc<CspEntry>, context: Arc<Context>) -> Result<Requeue, Error> {
    // An entry the tenant failed waits for its retry: the watch event of its own failure
    // status (or of any status or metadata write) must not call the tenant again sooner.
    if let Some(wait) = context.backoff.holding(&stored) {
        return Ok(Requeue::requeue(wait));
    }
    let me = ObjectRef::from_obj(stored.as_ref());
    let Some(_turn) = context.shared.turns.take(&stored.tenant_key(), &me) else {
        return Ok(Requeue::await_change());
    };
    Box::pin(reconcile_in_turn(stored, context)).await
}

#[tracing::instrument(name = "csp-entry", skip_all, fields(namespace = stored.namespace(), name = stored.name_any()))]
async fn reconcile_in_turn(stored: Arc<CspEntry>, context: Arc<Context>) -> Result<Requeue, Error> {
    // The store can lag behind this controller's own last write (its watch event is still
    // on the way); planning from that copy would repeat the step (re-add the finalizer: a
    // conflict) or misread it (take the entry just created for someone else's: "Adopted").
    // One GET per reconcile is cheap next to the tenant call it prevents.
    let entry = match read_fresh(&context, &stored).await {
        Ok(Some(entry)) => entry,
        Ok(None) => return Ok(Requeue::await_change()),
        Err(error) => return Err(error),
    };
    let result = sync(&entry, &context).await;
    if result.is_ok() {
        context.backoff.succeeded(&entry);
    }
    if let Err(error) = &result
        && error.is_conflict()
    {
        // This reconcile saw an older version than the apiserver has; the watch event of
        // the newer one reconciles again. Not a failure worth a condition or an event.
        tracing::debug!(error = %error.message(), "stale view of the entry");
        return result;
    }
    if let Err(error) = &result {
        tracing::warn!(reason = error.reason(), error = %error.message(), "reconcile failed");
        record_failure(&context, &entry, error).await;
        record::warn(&context.recorder, &entry, error).await;
    }
    result
}

async fn read_fresh(context: &Context, stored: &CspEntry) -> Result<Option<CspEntry>, Error> {
    let api: Api<CspEntry> = Api::namespaced(
        context.shared.kube.clone(),
        &stored.namespace().unwrap_or_default(),
    );
    api.get_opt(&stored.name_any()).await.map_err(Error::Read)
}

async fn sync(entry: &CspEntry, context: &Context) -> Result<Requeue, Error> {
    let shared = &context.shared;
    let now = shared.clock.now();
    let observation = observe::observe(shared, &context.store, &context.tenants, entry).await?;
    let plan = plan::plan(&observation.observed, now);
    let outcome = apply::apply(shared, entry, &observation, &plan.action).await?;
    // The status first: its write tells the tenant controller that the entry settled (see
    // `entry_feed`), and the event would only delay that by a round trip.
    let recorded = match &plan.status {
        Some(desired) => record::record(shared, entry, desired, &outcome, now).await,
        None => Ok(()),
    };
    record::event_for(&context.recorder_for_one_event(), entry, &plan.action).await;
    recorded?;
    Ok(match plan.requeue {
        // The step just written changes the entry, and that change's watch event runs the
        // next step with the new version; the short requeue is only a backstop. Requeueing
        // at once would run it on the store's older copy and conflict.
        Next::Immediately => Requeue::requeue(SELF_WRITE_BACKSTOP),
        Next::After(wait) => Requeue::requeue(wait),
        Next::Drift => Requeue::requeue(observation.drift),
        Next::OnChange | Next::Never => Requeue::await_change(),
    })
}

/// Records `Ready=False` (and `Synced=False`) with the error's reason before the error is
/// returned, so the failure is visible on the object and not only in logs.
async fn record_failure(context: &Context, entry: &CspEntry, error: &Error) {
    if entry.meta().deletion_timestamp.is_some() && matches!(error, Error::Status(_)) {
        return;
    }
    let generation = entry.meta().generation;
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(context.shared.clock.now());
    let mut status = entry.status.clone().unwrap_or_default();
    for type_ in [READY, plan::SYNCED] {
        let desired = Desired {
            type_,
            status: false,
            reason: error.reason(),
            message: error.message(),
        };
        conditions::set(&mut status.conditions, desired, generation, now.clone());
    }
    let progress = if error.is_transient() {
        Progress::Reconciling(error.reason())
    } else {
        Progress::Stalled(error.reason())
    };
    let message = error.message();
    conditions::set_progress(&mut status.conditions, progress, &message, generation, now);
    status.observed_generation = generation;
    if entry
        .status
        .as_ref()
        .is_some_and(|current| record::same_status(current, &status))
    {
        return;
    }
    let api: Api<CspEntry> = Api::namespaced(
        context.shared.kube.clone(),
        &entry.namespace().unwrap_or_default(),
    );
    match own_writes::write_status(&api, entry, CONTROLLER_NAME, status, false).await {
        Ok(written) => context.shared.entries.written(entry, written),
        Err(e) => tracing::warn!(error = %e, "failed to record the failure in the status"),
    }
}

/// The requeue after a failed reconcile (whose condition is already recorded): transient
/// errors back off per entry ([`backoff`]), never sooner than the end of the tenant's
/// `Retry-After` pause; permanent ones wait for a change, looked at again now and then.
fn error_policy(entry: Arc<CspEntry>, error: &Error, context: Arc<Context>) -> Requeue {
    if error.is_conflict() {
        return Requeue::requeue(SELF_WRITE_BACKSTOP);
    }
    let wait = if error.is_transient() {
        let tenant = context
            .shared
            .tenants
            .backoff_state(&entry.tenant_key(), error.tenant_pause());
        let wait = context.backoff.failed_on(&entry, tenant);
        // A tenant's failure: nothing but the retry (or an edit) calls it again. Other
        // failures (the tenant missing or not Ready, the apiserver) are ended by events
        // this controller watches, and keep reconciling on them.
        if matches!(error, Error::List(_) | Error::Write(_)) {
            context.backoff.hold(&entry, wait);
        }
        wait
    } else if let Error::Write(tenant::Error::LimitReached { .. }) = error {
        plan::WAIT_FOR_ROOM
    } else {
        PERMANENT_RECHECK
    };
    tracing::debug!(
        reason = error.reason(),
        requeue_ms = wait.as_millis() as u64,
        "requeued after a failure"
    );
    Requeue::requeue(wait)
}
