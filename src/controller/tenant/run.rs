//! Runs the `tenant` controller: watches the `QlikTenant`s (all namespaces, or
//! [`Settings::watch_namespace`](crate::controller::Settings::watch_namespace)), the
//! ConfigMaps they own, the CspEntries that name them and the Ingresses that serve their
//! ConfigMaps. Does I/O.
//!
//! CspEntry changes are mapped to their tenant. A burst of entry changes still publishes
//! once: the reconcile holds the header while the tenant's entries are settling
//! ([`pacing`](super::pacing)).

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;
use kube::runtime::controller::{Config, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use super::publish;
use super::reconcile::{self, Context, MANAGED_BY, MANAGED_BY_LABEL};
use crate::api::{CspEntry, QlikTenant};
use crate::controller::Shared;
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
    let controller = Controller::new(
        settings.api::<QlikTenant>(&client),
        watcher::Config::default(),
    );
    let tenants = controller.store();
    let ready = runtime.ready_when_synced(METRICS_NAME, controller.store());
    let controller = controller
        .owns(
            settings.api::<ConfigMap>(&client),
            watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}")),
        )
        .watches(
            settings.api::<CspEntry>(&client),
            watcher::Config::default(),
            |entry| tenant_of(&entry),
        )
        .watches(
            settings.api::<Ingress>(&client),
            watcher::Config::default(),
            move |ingress| tenants_served_by(&tenants, &ingress),
        )
        .with_config(
            Config::default()
                .debounce(settings.debounce)
                .concurrency(CONCURRENCY),
        )
        .graceful_shutdown_on(runtime.shutdown.clone().cancelled_owned())
        .run(
            runtime.observed(METRICS_NAME, reconcile::Error::reason, reconcile::reconcile),
            reconcile::error_policy,
            Arc::new(Context::new(shared)),
        )
        .for_each(|result| log_failure(reconcile::CONTROLLER_NAME, result));
    futures::join!(controller, ready);
}

/// The tenant a CspEntry names (same namespace).
fn tenant_of(entry: &CspEntry) -> Option<ObjectRef<QlikTenant>> {
    let namespace = entry.namespace()?;
    Some(ObjectRef::new(&entry.spec.tenant_ref.name).within(&namespace))
}

/// The tenants whose header ConfigMap `ingress` serves.
fn tenants_served_by(tenants: &Store<QlikTenant>, ingress: &Ingress) -> Vec<ObjectRef<QlikTenant>> {
    tenants
        .state()
        .iter()
        .filter(|tenant| {
            let (Some(namespace), Some(header)) = (tenant.namespace(), &tenant.spec.header) else {
                return false;
            };
            publish::ingress_serves(ingress, &namespace, &header.config_map_name)
        })
        .map(|tenant| ObjectRef::from_obj(tenant.as_ref()))
        .collect()
}
