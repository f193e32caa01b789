//! The record step of the `tenant` controller: the status (written whole under the
//! controller's field manager, only when it changed; see `own_writes`), then events for
//! condition transitions and for writes. Does I/O (apiserver).

use kube::api::Api;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use super::apply::Published;
use super::context::{CONTROLLER_NAME, Context};
use super::error::{Error, MAX_MESSAGE_CHARS, truncate};
use super::status::{self, HEADER_PUBLISHED};
use crate::api::QlikTenant;
use crate::api::tenant::QlikTenantStatus;
use crate::controller::conditions::READY;
use crate::controller::own_writes;

/// Writes `next` when it differs from the tenant's status, then publishes the events.
/// A failed event is logged only; a failed status write is the reconcile's error.
pub async fn record(
    ctx: &Context,
    tenant: &QlikTenant,
    next: &QlikTenantStatus,
    published: Option<&Published>,
) -> Result<(), Error> {
    let previous = tenant.status.as_ref();
    if status::changed(previous, next) {
        let namespace = tenant.namespace().ok_or(Error::InvalidObject)?;
        let api: Api<QlikTenant> = Api::namespaced(ctx.shared.kube.clone(), &namespace);
        own_writes::write_status(&api, tenant, CONTROLLER_NAME, next.clone(), false)
            .await
            .map_err(|source| Error::PatchStatus {
                namespace,
                name: tenant.name_any(),
                source,
            })?;
    }
    record_events(ctx, tenant, previous, next, published).await;
    Ok(())
}

/// Events for condition transitions and for writes. Failing to publish one is logged only.
async fn record_events(
    ctx: &Context,
    tenant: &QlikTenant,
    previous: Option<&QlikTenantStatus>,
    next: &QlikTenantStatus,
    published: Option<&Published>,
) {
    let mut events = Vec::new();
    for (type_, action) in [(READY, "Connect"), (HEADER_PUBLISHED, "PublishHeader")] {
        if !status::transitioned(previous, next, type_) {
            continue;
        }
        let Some(condition) = status::condition(Some(next), type_) else {
            continue;
        };
        let ok = condition.status == "True";
        // A successful publish has its own event below.
        if ok && type_ == HEADER_PUBLISHED {
            continue;
        }
        events.push(Event {
            type_: if ok {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason: condition.reason.clone(),
            note: Some(condition.message.clone()),
            action: action.to_owned(),
            secondary: None,
        });
    }
    if let Some(published) = published
        && let Some(config_map) = &published.config_map
        && (published.config_map_written || !published.ingresses_bumped.is_empty())
    {
        events.push(Event {
            type_: EventType::Normal,
            reason: "Published".to_owned(),
            note: Some(published_note(published, config_map)),
            action: "PublishHeader".to_owned(),
            secondary: None,
        });
    }
    let reference = tenant.object_ref(&());
    for event in &events {
        if let Err(e) = ctx.recorder.publish(event, &reference).await {
            tracing::warn!(reason = %event.reason, error = %e, "failed to publish an event");
        }
    }
}

/// The note of a `Published` event: public facts about the header, never its sources.
fn published_note(published: &Published, config_map: &str) -> String {
    let sha256 = &published.current.sha256;
    let short = sha256.get(..12).unwrap_or(sha256);
    let written = if published.config_map_written {
        ""
    } else {
        " (unchanged)"
    };
    let ingresses = if published.ingresses_bumped.is_empty() {
        "none".to_owned()
    } else {
        published.ingresses_bumped.join(", ")
    };
    truncate(
        &format!(
            "published the header ({} characters, sha256 {short}…) to ConfigMap {config_map}{written}; annotated Ingresses: {ingresses}",
            published.current.length,
        ),
        MAX_MESSAGE_CHARS,
    )
}
