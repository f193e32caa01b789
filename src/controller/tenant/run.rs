//! Runs the `tenant` controller: watches the `QlikTenant`s (all namespaces, or
//! [`Settings::watch_namespace`](crate::controller::Settings::watch_namespace)), the
//! ConfigMaps they name, the CspEntries that name them (through the watch shared with the
//! csp-entry controller, [`EntryFeed`](crate::controller::entry_feed::EntryFeed)) and the
//! Ingresses that serve their ConfigMaps. Does I/O.
//!
//! CspEntry changes are mapped to their tenant. A burst of entry changes still publishes
//! once: the reconcile holds the header while the tenant's entries are settling
//! ([`pacing`](super::pacing)).
//!
//! The QlikTenants come from the controller's own reflector, whose events also drop what is
//! kept for a tenant once it is deleted ([`departures`](super::departures)) and wake the
//! other tenants that name its ConfigMap. ConfigMaps are watched by metadata only (their
//! data is never needed to decide whom to wake): any ConfigMap a tenant names, whether the
//! operator created it or not, so that creating, deleting or opting in a ConfigMap is acted
//! on at once.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Config, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};

use super::apply::names_config_map;
use super::context::Context;
use super::reconcile;
use super::{departures, publish};
use crate::api::{CspEntry, QlikTenant};
use crate::controller::Shared;
use crate::controller::entry_feed::Sees;
use crate::controller::log_failure;

/// Tenants reconciled at once; each reconcile waits mostly on the tenant and the apiserver.
const CONCURRENCY: u16 = 8;
/// The `controller` label of this controller's metrics and its readiness line.
pub const METRICS_NAME: &str = "tenant";

/// Runs the controller until its watches end.
/// On `shared.runtime.shutdown`, stops taking new work and returns once the reconciles in
/// flight have finished.
pub async fn run(shared: Arc<Shared>) {
    let runtime = shared.runtime.clone();
    let client = shared.kube.clone();
    let settings = shared.settings.clone();
    let (tenants, writer) = reflector::store::<QlikTenant>();
    // Every change to a CspEntry, from the watch shared with the csp-entry controller, and
    // its status writes as soon as they are made: the store the reconcile reads already
    // has the change when the tenant is woken.
    let entry_changes = shared
        .entries
        .subscribe(&shared, Sees::WatchAndWrites)
        .map(|change| change.entry().clone());
    let ctx = Arc::new(Context::new(shared, tenants.clone()));
    departures::track_caches(&ctx);
    let ready = runtime.ready_when_synced(METRICS_NAME, tenants.clone());

    let (departed, departures_rx) = futures::channel::mpsc::unbounded::<QlikTenant>();
    let on_event = ctx.clone();
    let tenant_events = watcher(
        settings.api::<QlikTenant>(&client),
        watcher::Config::default(),
    )
    .reflect(writer)
    .inspect_ok(move |event| {
        if let Some(gone) = departures::on_event(&on_event, event) {
            // The receiver lives as long as the controller; a send fails only at shutdown.
            let _ = departed.unbounded_send(gone);
        }
    })
    .applied_objects();

    let (for_config_maps, for_departures, for_ingresses) =
        (tenants.clone(), tenants.clone(), tenants.clone());
    // `PartialObjectMeta`: metadata-only list and watch requests.
    let config_maps = watcher(
        settings.api::<PartialObjectMeta<ConfigMap>>(&client),
        watcher::Config::default(),
    )
    .touched_objects();
    // Ingresses by metadata only too: only their annotations are read.
    let ingresses = watcher(
        settings.api::<PartialObjectMeta<Ingress>>(&client),
        watcher::Config::default(),
    )
    .touched_objects();
    let controller = Controller::for_stream(tenant_events, tenants)
        .watches_stream(config_maps, move |config_map| {
            tenants_naming(&for_config_maps, &config_map)
        })
        .watches_stream(
            departures_rx.map(Ok::<_, watcher::Error>),
            move |gone: QlikTenant| rivals_of(&for_departures, &gone),
        )
        .watches_shared_stream(entry_changes, |entry| tenant_of(&entry))
        .watches_stream(ingresses, move |ingress| {
            tenants_served_by(&for_ingresses, &ingress.metadata)
        })
        .with_config(
            Config::default()
                .debounce(settings.debounce)
                .concurrency(CONCURRENCY),
        )
        .graceful_shutdown_on(runtime.shutdown.clone().cancelled_owned())
        .run(
            runtime.observed(METRICS_NAME, reconcile::Error::reason, reconcile::reconcile),
            reconcile::error_policy,
            ctx.clone(),
        )
        .for_each(|result| log_failure(reconcile::CONTROLLER_NAME, result));
    let sweep = departures::sweep_periodically(ctx, runtime.shutdown.clone());
    futures::join!(controller, ready, sweep);
}

/// The tenant a CspEntry names (same namespace).
fn tenant_of(entry: &CspEntry) -> Option<ObjectRef<QlikTenant>> {
    let namespace = entry.namespace()?;
    Some(ObjectRef::new(&entry.spec.tenant_ref.name).within(&namespace))
}

/// The tenants whose header goes to `config_map`.
fn tenants_naming(
    tenants: &Store<QlikTenant>,
    config_map: &PartialObjectMeta<ConfigMap>,
) -> Vec<ObjectRef<QlikTenant>> {
    let (Some(namespace), Some(name)) = (&config_map.metadata.namespace, &config_map.metadata.name)
    else {
        return Vec::new();
    };
    tenants
        .state()
        .iter()
        .filter(|tenant| names_config_map(tenant, namespace, name))
        .map(|tenant| ObjectRef::from_obj(tenant.as_ref()))
        .collect()
}

/// The tenants left naming the ConfigMap of a tenant that is gone: one of them may take it
/// now.
fn rivals_of(tenants: &Store<QlikTenant>, gone: &QlikTenant) -> Vec<ObjectRef<QlikTenant>> {
    let Some((namespace, config_map)) = gone.namespace().zip(
        gone.spec
            .header
            .as_ref()
            .and_then(|h| h.config_map_name.clone()),
    ) else {
        return Vec::new();
    };
    tenants
        .state()
        .iter()
        .filter(|tenant| tenant.uid() != gone.uid())
        .filter(|tenant| names_config_map(tenant, &namespace, &config_map))
        .map(|tenant| ObjectRef::from_obj(tenant.as_ref()))
        .collect()
}

/// The tenants whose header ConfigMap the Ingress with metadata `ingress` serves.
fn tenants_served_by(
    tenants: &Store<QlikTenant>,
    ingress: &ObjectMeta,
) -> Vec<ObjectRef<QlikTenant>> {
    tenants
        .state()
        .iter()
        .filter(|tenant| {
            let config_map = tenant
                .spec
                .header
                .as_ref()
                .and_then(|h| h.config_map_name.as_deref());
            let (Some(namespace), Some(config_map)) = (tenant.namespace(), config_map) else {
                return false;
            };
            publish::ingress_serves(ingress, &namespace, config_map)
        })
        .map(|tenant| ObjectRef::from_obj(tenant.as_ref()))
        .collect()
}
