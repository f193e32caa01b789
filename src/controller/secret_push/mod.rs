//! The `secret-push` controller: values from a Secret pushed into a Qlik target (a data
//! connection's credentials, an automation connection's parameters, the tenant's SMTP
//! password) whenever they change, and again every `resyncEvery`.
//!
//! [`observe`] (the Secret by name, its values and their [`digest`]) → [`plan`] (pure,
//! `now` passed in: push, or wait until when) → [`push`] (the tenant writes and Qlik's
//! check; [`push_site`] on a client-managed site) → [`plan::after_push`] → status and
//! events. No finalizer: deleting a SecretPush
//! leaves the values in Qlik, as a deleted Secret would leave them in a pod.
//!
//! What wakes a SecretPush: a change of its spec (status writes do not: the controller's
//! own write must never cause another push), its QlikTenant becoming Ready, the `poll
//! interval (the Secret is read again by name: Secrets are never listed), and, only with
//! `--watch-push-secrets`, a change to a Secret labelled `qlikops.io/push-source=true`
//! (a metadata-only watch).

pub mod digest;
pub mod observe;
pub mod plan;
pub mod push;
pub mod push_site;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Action as Requeue, Controller};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, predicates, watcher};
use kube::{Resource, ResourceExt};
use tokio::sync::OnceCell;

use self::digest::DigestKey;
use self::plan::{Outcome, Plan, Verification};
use super::Shared;
use crate::api::reasons::tenant_not_found_message;
use crate::api::secret_push::{PUSH_SOURCE_LABEL, SecretPushStatus};
use crate::api::{QlikTenant, SecretPush};
use crate::controller::backoff::{self, Backoff};
use crate::controller::site_clients::Remote;
use crate::controller::{log_failure, own_writes};
use crate::error_chain::error_chain;

/// Field manager, event reporter and tracing span of this controller.
pub const CONTROLLER_NAME: &str = "qlik-csp-operator/secret-push";
/// The `controller` label of this controller's metrics and its readiness line.
pub const METRICS_NAME: &str = "secret-push";

/// A reconcile that could not finish: the apiserver failed a read or the status write, or
/// the digest key could not be had. Retried with backoff; nothing was pushed on its
/// account that the status does not record.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read Secret {name}")]
    ReadSecret {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to read QlikTenant {name}")]
    ReadTenant {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to record the status")]
    Status(#[source] kube::Error),
    #[error(transparent)]
    Key(#[from] digest::KeyError),
}

impl Error {
    /// The bounded reason (metrics, logs).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Key(_) => "DigestKeyUnavailable",
            _ => "KubernetesApiError",
        }
    }

    /// Every one of these may pass: the apiserver comes back.
    pub fn is_transient(&self) -> bool {
        true
    }
}

struct Context {
    shared: Arc<Shared>,
    recorder: Recorder,
    backoff: Backoff<SecretPush>,
    /// Loaded (or created) at the first reconcile, kept for the process's life.
    key: OnceCell<Arc<DigestKey>>,
}

/// Runs the controller until its watch streams end.
pub async fn run(shared: Arc<Shared>) {
    let kube = shared.kube.clone();
    let runtime = shared.runtime.clone();
    let settings = shared.settings.clone();
    let (pushes, writer) = reflector::store::<SecretPush>();
    // Spec changes only: a status write must not wake the object it was written to.
    let push_events = watcher(
        settings.api::<SecretPush>(&kube),
        watcher::Config::default(),
    )
    .reflect(writer)
    .applied_objects()
    .predicate_filter(predicates::generation, PredicateConfig::default());
    let tenants = watcher(
        settings.api::<QlikTenant>(&kube),
        watcher::Config::default(),
    )
    .applied_objects()
    .predicate_filter(super::tenant_readiness, PredicateConfig::default());
    let for_tenants = pushes.clone();
    let mut controller = Controller::for_stream(push_events, pushes.clone()).watches_stream(
        tenants,
        move |tenant: QlikTenant| {
            super::naming_tenant(&for_tenants, &tenant, |p: &SecretPush| {
                &p.spec.tenant_ref.name
            })
        },
    );
    if settings.watch_push_secrets {
        let selector = format!("{PUSH_SOURCE_LABEL}=true");
        let secrets = watcher(
            settings.api::<PartialObjectMeta<Secret>>(&kube),
            watcher::Config::default().labels(&selector),
        )
        .touched_objects();
        let for_secrets = pushes.clone();
        controller = controller.watches_stream(secrets, move |secret| {
            reading(&for_secrets, &secret.metadata)
        });
    }
    let ready = runtime.ready_when_synced(METRICS_NAME, pushes);
    let context = Arc::new(Context {
        recorder: Recorder::new(kube, super::event_reporter(CONTROLLER_NAME)),
        shared,
        backoff: Backoff::new(backoff::DEFAULT),
        key: OnceCell::new(),
    });
    let running = controller
        .with_config(controller::Config::default().debounce(settings.debounce))
        .graceful_shutdown_on(runtime.shutdown.clone().cancelled_owned())
        .run(
            runtime.observed(METRICS_NAME, Error::reason, reconcile),
            error_policy,
            context,
        )
        .for_each(|result| log_failure(CONTROLLER_NAME, result));
    tokio::join!(ready, running);
}

/// The SecretPushes that read the Secret `secret`.
fn reading(
    pushes: &Store<SecretPush>,
    secret: &kube::api::ObjectMeta,
) -> Vec<ObjectRef<SecretPush>> {
    pushes
        .state()
        .iter()
        .filter(|p| {
            p.namespace() == secret.namespace && Some(&p.spec.secret_name) == secret.name.as_ref()
        })
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}

#[tracing::instrument(name = "secret-push", skip_all, fields(namespace = object.namespace(), name = object.name_any()))]
async fn reconcile(object: Arc<SecretPush>, context: Arc<Context>) -> Result<Requeue, Error> {
    let result = sync(&object, &context).await;
    if let Err(error) = &result {
        tracing::warn!(reason = error.reason(), error = %error_chain(error), "reconcile failed");
    }
    result
}

async fn sync(object: &SecretPush, context: &Context) -> Result<Requeue, Error> {
    let shared = &context.shared;
    let key = context
        .key
        .get_or_try_init(|| load_key(shared))
        .await?
        .clone();
    let now = shared.clock.now();
    let observation = observe::observe(shared, &key, object, now).await?;
    let o = &observation.observed;
    let (reason, digest) = match plan::plan(o) {
        Plan::Wait { status, at } => {
            write_status(shared, object, status).await?;
            context.backoff.succeeded(object);
            return Ok(Requeue::requeue(until(now, at)));
        }
        Plan::Push { reason, digest } => (reason, digest),
    };
    let client = match tenant_client(shared, object).await? {
        Ok(client) => client,
        Err(failure) => {
            write_status(shared, object, plan::blocked(o, &failure)).await?;
            warn(context, object, failure.reason, &failure.message).await;
            let wait = context.backoff.failed(object, None);
            return Ok(Requeue::requeue(wait.max(Duration::from_secs(1))));
        }
    };
    let last_id = o.status.target_id.as_deref();
    let target = &object.spec.target;
    tracing::info!(target = target.kind().as_str(), ?reason, "pushing");
    let (outcome, retry_after) = push::push(&client, target, &observation.values, last_id).await;
    let status = plan::after_push(o, &digest, &outcome);
    write_status(shared, object, status).await?;
    match &outcome {
        Outcome::Pushed { verification, .. } => {
            let fields: Vec<&str> = target.fields().keys().map(String::as_str).collect();
            let note = format!("pushed {} ({reason:?})", fields.join(", "));
            event(context, object, EventType::Normal, "Pushed", &note).await;
            if let Verification::Failed { message } = verification {
                warn(context, object, plan::VERIFICATION_FAILED, message).await;
            }
            context.backoff.succeeded(object);
            Ok(Requeue::requeue(o.poll_every))
        }
        Outcome::Failed(failure) => {
            warn(context, object, failure.reason, &failure.message).await;
            if failure.transient {
                // Capped at a minute while the tenant answers other requests (see
                // `Backoff::failed_on`): a push that an outage of one service or a flaky
                // tenant kept failing must not sit at the 5-minute cap afterwards.
                let tenant = shared
                    .tenants
                    .backoff_state(&object.tenant_key(), retry_after);
                Ok(Requeue::requeue(context.backoff.failed_on(object, tenant)))
            } else {
                context.backoff.succeeded(object);
                Ok(Requeue::requeue(o.poll_every))
            }
        }
    }
}

/// The tenant's client, or why there is none (a condition, not an error).
async fn tenant_client(
    shared: &Shared,
    object: &SecretPush,
) -> Result<Result<Remote, plan::Failure>, Error> {
    let namespace = object.namespace().unwrap_or_default();
    let name = &object.spec.tenant_ref.name;
    let tenants: Api<QlikTenant> = Api::namespaced(shared.kube.clone(), &namespace);
    let tenant = tenants
        .get_opt(name)
        .await
        .map_err(|source| Error::ReadTenant {
            name: name.clone(),
            source,
        })?;
    let Some(tenant) = tenant else {
        return Ok(Err(plan::Failure {
            reason: crate::api::reasons::TENANT_NOT_FOUND,
            message: tenant_not_found_message(&namespace, name),
            transient: false,
        }));
    };
    Ok(shared
        .tenants
        .for_remote(&shared.kube, &tenant)
        .await
        .map_err(|e| plan::Failure {
            reason: e.reason(),
            message: format!("no client for the tenant: {}", error_chain(&e)),
            transient: e.is_transient(),
        }))
}

/// The digest key: kept in the operator's namespace; in memory only when it has none
/// (a local run), which costs one push per SecretPush after each restart.
async fn load_key(shared: &Shared) -> Result<Arc<DigestKey>, Error> {
    match &shared.settings.operator_namespace {
        Some(namespace) => Ok(Arc::new(
            digest::load_or_create(&shared.kube, namespace).await?,
        )),
        None => {
            tracing::warn!(
                "no operator namespace (POD_NAMESPACE): the SecretPush digest key is kept in memory, so a restart pushes every SecretPush once more"
            );
            DigestKey::random()
                .map(Arc::new)
                .map_err(|_| Error::Key(digest::KeyError::Random))
        }
    }
}

/// Writes `status` when it differs from the stored one.
async fn write_status(
    shared: &Shared,
    object: &SecretPush,
    status: SecretPushStatus,
) -> Result<(), Error> {
    let stored = object.status.clone().unwrap_or_default();
    if stored == status {
        return Ok(());
    }
    let api: Api<SecretPush> =
        Api::namespaced(shared.kube.clone(), &object.namespace().unwrap_or_default());
    own_writes::write_status(&api, object, CONTROLLER_NAME, status, false)
        .await
        .map(|_| ())
        .map_err(Error::Status)
}

async fn warn(context: &Context, object: &SecretPush, reason: &str, message: &str) {
    event(context, object, EventType::Warning, reason, message).await;
}

async fn event(context: &Context, object: &SecretPush, type_: EventType, reason: &str, note: &str) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(crate::controller::conditions::truncate_message(note)),
        action: "Push".to_owned(),
        secondary: None,
    };
    if let Err(error) = context
        .recorder
        .publish(&event, &object.object_ref(&()))
        .await
    {
        tracing::debug!(error = %error_chain(&error), "failed to publish an event");
    }
}

fn until(now: jiff::Timestamp, at: jiff::Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// A reconcile that failed (the apiserver, or the digest key): backoff.
fn error_policy(object: Arc<SecretPush>, error: &Error, context: Arc<Context>) -> Requeue {
    tracing::debug!(reason = error.reason(), "retrying after an error");
    Requeue::requeue(context.backoff.failed(&object, None))
}
