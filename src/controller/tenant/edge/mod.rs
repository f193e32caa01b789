//! Publishing the header to Gateway API HTTPRoutes and Traefik Middlewares
//! (`spec.header.targets`), and taking it out of targets removed from the spec. Does I/O
//! (apiserver); what to write is decided by [`route`] and [`middleware`] (pure) and
//! [`decide`] here.
//!
//! The operator writes a target only when its owner opted in with
//! `qlikops.io/allow-header-from: <tenant>`; it never creates one, never adds an owner
//! reference, and writes only its own header entries. A target whose header someone else
//! removed after the operator wrote it is not written again for the same header
//! (`HeaderRemovedByAnotherWriter`): a GitOps tool that reverts the route and an operator
//! that restores it would otherwise write in turn forever. It is written again when the
//! header changes, or after the target is removed from the spec and added back.

pub mod middleware;
pub mod route;

use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::Value;

use super::context::{CONTROLLER_NAME, Context};
use super::publication::Publication;
use crate::api::QlikTenant;
use crate::api::header::{
    ENFORCING_HEADER, HeaderSpec, HeaderTarget, REPORT_ONLY_HEADER, TargetKind, TargetStatus,
};
use crate::api::ownership::ALLOW_HEADER_FROM;
use crate::controller::tenant::publish::header_sha256;

/// Reasons a target reports.
pub mod reasons {
    pub const PUBLISHED: &str = "Published";
    pub const NOT_FOUND: &str = "TargetNotFound";
    pub const NOT_OPTED_IN: &str = "TargetNotOptedIn";
    pub const CONFLICT: &str = "TargetConflict";
    pub const TOO_LONG: &str = "HeaderTooLongForTarget";
    pub const RULE_NOT_FOUND: &str = "RuleNotFound";
    pub const TOO_MANY_HEADERS: &str = "TooManyHeaders";
    pub const REMOVED: &str = "HeaderRemovedByAnotherWriter";
    pub const WRITE_FAILED: &str = "TargetWriteFailed";
}

/// The API resource of a target kind.
pub fn api_resource(kind: TargetKind) -> ApiResource {
    let (group, version, plural) = match kind {
        TargetKind::HttpRoute => ("gateway.networking.k8s.io", "v1", "httproutes"),
        TargetKind::Middleware => ("traefik.io", "v1alpha1", "middlewares"),
    };
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind.as_str()),
        plural,
    )
}

/// Writes `publication` into every target of `spec`; one status per target, in spec order.
pub async fn publish(
    ctx: &Context,
    tenant: &QlikTenant,
    spec: &HeaderSpec,
    publication: &Publication,
) -> Vec<TargetStatus> {
    let desired: Vec<(&str, &str)> = publication.values().collect();
    let sha = publication
        .current()
        .map(|h| header_sha256(h.as_str()))
        .unwrap_or_default();
    let mut statuses = Vec::with_capacity(spec.targets.len());
    for target in &spec.targets {
        let previous = tenant
            .status
            .as_ref()
            .and_then(|s| s.target(target.kind, &target.name));
        let status = publish_one(ctx, tenant, spec, target, &desired, &sha, previous).await;
        statuses.push(status);
    }
    statuses
}

/// Takes the header out of targets the status lists and the spec no longer does; returns
/// those it could not (kept in the status to try again).
pub async fn withdraw(ctx: &Context, tenant: &QlikTenant) -> Vec<TargetStatus> {
    let spec = tenant.spec.header.as_ref();
    let in_spec = |t: &TargetStatus| {
        spec.is_some_and(|s| {
            s.targets
                .iter()
                .any(|x| x.kind == t.kind && x.name == t.name)
        })
    };
    let stale: Vec<TargetStatus> = tenant
        .status
        .iter()
        .flat_map(|s| s.targets.iter())
        .filter(|t| !in_spec(t))
        .cloned()
        .collect();
    let owned: Vec<&str> = match spec {
        Some(spec) => spec.owned_names().to_vec(),
        None => vec![ENFORCING_HEADER, REPORT_ONLY_HEADER],
    };
    let mut pending = Vec::new();
    for target in stale {
        if let Err(message) = withdraw_one(ctx, tenant, &target, &owned).await {
            pending.push(TargetStatus {
                published: false,
                reason: reasons::WRITE_FAILED.to_owned(),
                message,
                ..target
            });
        }
    }
    pending
}

fn api(ctx: &Context, namespace: &str, kind: TargetKind) -> Api<DynamicObject> {
    Api::namespaced_with(ctx.shared.kube.clone(), namespace, &api_resource(kind))
}

/// What to do with a target that exists and opted in: pure.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// It carries the header.
    Current,
    /// Write it.
    Write,
    /// Do not write; report this reason and message.
    Refuse {
        reason: &'static str,
        message: String,
    },
}

/// Decides for `target` (its JSON), given what the operator last recorded for it.
pub fn decide(
    target: &HeaderTarget,
    object: &Value,
    desired: &[(&str, &str)],
    sha: &str,
    previous: Option<&TargetStatus>,
) -> Decision {
    if let Some((name, value)) = desired
        .iter()
        .find(|(_, v)| v.chars().count() > target.kind.max_value_len())
    {
        return Decision::Refuse {
            reason: reasons::TOO_LONG,
            message: format!(
                "{name} is {} characters long and a {} takes at most {}; the {} keeps its last header",
                value.chars().count(),
                target.kind,
                target.kind.max_value_len(),
                target.kind
            ),
        };
    }
    let (carries, carries_none) = match target.kind {
        TargetKind::HttpRoute => (
            route::carries(object, &target.rules, desired),
            desired
                .iter()
                .all(|line| !route::carries_any(object, &target.rules, *line)),
        ),
        TargetKind::Middleware => (
            middleware::carries(object, desired),
            !desired
                .iter()
                .any(|line| middleware::carries(object, std::slice::from_ref(line))),
        ),
    };
    if carries {
        return Decision::Current;
    }
    // Written by the operator: published, or already found removed (which must stay so).
    let wrote_this = previous.is_some_and(|p| {
        p.sha256.as_deref() == Some(sha) && (p.published || p.reason == reasons::REMOVED)
    });
    if wrote_this && carries_none {
        return Decision::Refuse {
            reason: reasons::REMOVED,
            message: format!(
                "the header the operator wrote into {} {} was removed by another writer{}; the operator does not write it back (that would fight the writer), but writes again when the header changes. If a GitOps tool reverts it, have it ignore the header (see the README)",
                target.kind,
                target.name,
                other_writers(object)
            ),
        };
    }
    Decision::Write
}

/// ` (field managers: a, b)` for the managers other than the operator's, or nothing.
fn other_writers(object: &Value) -> String {
    let managers: Vec<&str> = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("manager").and_then(Value::as_str))
        .filter(|m| *m != CONTROLLER_NAME)
        .collect();
    if managers.is_empty() {
        String::new()
    } else {
        format!(" (field managers: {})", managers.join(", "))
    }
}

async fn publish_one(
    ctx: &Context,
    tenant: &QlikTenant,
    spec: &HeaderSpec,
    target: &HeaderTarget,
    desired: &[(&str, &str)],
    sha: &str,
    previous: Option<&TargetStatus>,
) -> TargetStatus {
    let kept_sha = previous.and_then(|p| p.sha256.clone());
    let status =
        |published: bool, reason: &str, message: String, sha256: Option<String>| TargetStatus {
            kind: target.kind,
            name: target.name.clone(),
            published,
            reason: reason.to_owned(),
            message: truncate(message),
            sha256,
        };
    let namespace = tenant.namespace().unwrap_or_default();
    let api = api(ctx, &namespace, target.kind);
    let object = match opted_in(&api, tenant, target).await {
        Ok(object) => object,
        Err((reason, message)) => return status(false, reason, message, kept_sha),
    };
    let json = match serde_json::to_value(&object) {
        Ok(json) => json,
        Err(e) => return status(false, reasons::WRITE_FAILED, e.to_string(), kept_sha),
    };
    match decide(target, &json, desired, sha, previous) {
        Decision::Current => {
            return status(
                true,
                reasons::PUBLISHED,
                format!("{} {} carries the header", target.kind, target.name),
                Some(sha.to_owned()),
            );
        }
        Decision::Refuse { reason, message } => return status(false, reason, message, kept_sha),
        Decision::Write => {}
    }
    let written = match target.kind {
        TargetKind::HttpRoute => {
            write_route(&api, &json, &target.rules, desired, &spec.owned_names()).await
        }
        TargetKind::Middleware => {
            let body = middleware::apply_body(&namespace, &target.name, desired);
            apply_middleware(&api, &target.name, &object, body).await
        }
    };
    match written {
        Ok(()) => status(
            true,
            reasons::PUBLISHED,
            format!("wrote the header into {} {}", target.kind, target.name),
            Some(sha.to_owned()),
        ),
        Err((reason, message)) => status(false, reason, message, kept_sha),
    }
}

/// The target, when it exists and its owner opted in for this tenant.
async fn opted_in(
    api: &Api<DynamicObject>,
    tenant: &QlikTenant,
    target: &HeaderTarget,
) -> Result<DynamicObject, (&'static str, String)> {
    let object = match api.get_opt(&target.name).await {
        Ok(Some(object)) => object,
        Ok(None) => return Err((reasons::NOT_FOUND, not_found(target))),
        // The CRD is not installed: the apiserver does not know the resource.
        Err(kube::Error::Api(status)) if status.code == 404 => {
            return Err((reasons::NOT_FOUND, not_found(target)));
        }
        Err(e) => {
            return Err((
                reasons::WRITE_FAILED,
                format!("failed to read {} {}: {e}", target.kind, target.name),
            ));
        }
    };
    let named = object
        .annotations()
        .get(ALLOW_HEADER_FROM)
        .map(String::as_str);
    if named != Some(tenant.name_any().as_str()) {
        return Err((
            reasons::NOT_OPTED_IN,
            format!(
                "{} {} has not opted in: annotate it with {ALLOW_HEADER_FROM}={} to let this QlikTenant write its header there",
                target.kind,
                target.name,
                tenant.name_any()
            ),
        ));
    }
    Ok(object)
}

fn not_found(target: &HeaderTarget) -> String {
    let api = match target.kind {
        TargetKind::HttpRoute => "the Gateway API",
        TargetKind::Middleware => "Traefik's CRDs",
    };
    format!(
        "{} {} does not exist in this namespace (or {api} is not installed)",
        target.kind, target.name
    )
}

async fn write_route(
    api: &Api<DynamicObject>,
    route: &Value,
    rules: &[String],
    desired: &[(&str, &str)],
    owned: &[&str],
) -> Result<(), (&'static str, String)> {
    let name = route
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let patch = match route::plan(route, rules, desired, owned) {
        route::RoutePlan::UpToDate => return Ok(()),
        route::RoutePlan::Patch(patch) => patch,
        route::RoutePlan::RuleNotFound { missing } => {
            return Err((
                reasons::RULE_NOT_FOUND,
                format!("HTTPRoute {name} has no rule named {}", missing.join(", ")),
            ));
        }
        route::RoutePlan::TooManyHeaders { rule } => {
            return Err((
                reasons::TOO_MANY_HEADERS,
                format!(
                    "rule {rule} of HTTPRoute {name} would have more than {} response headers to set",
                    route::MAX_SET_ENTRIES
                ),
            ));
        }
        route::RoutePlan::NoRules => {
            return Err((
                reasons::RULE_NOT_FOUND,
                format!("HTTPRoute {name} has no rules"),
            ));
        }
    };
    let patch = Patch::Json::<()>(
        serde_json::from_value(patch).map_err(|e| (reasons::WRITE_FAILED, e.to_string()))?,
    );
    let params = PatchParams {
        field_manager: Some(CONTROLLER_NAME.to_owned()),
        ..PatchParams::default()
    };
    api.patch(name, &params, &patch)
        .await
        .map(drop)
        .map_err(|e| {
            (
                reasons::WRITE_FAILED,
                format!("failed to patch HTTPRoute {name}: {e}"),
            )
        })
}

async fn apply_middleware(
    api: &Api<DynamicObject>,
    name: &str,
    read: &DynamicObject,
    mut body: Value,
) -> Result<(), (&'static str, String)> {
    // The resourceVersion read makes the apply conditional: a Middleware deleted (or
    // replaced) since it was read is not re-created by the apply, and a withdrawn opt-in
    // is respected.
    if let Some(version) = read.resource_version() {
        body["metadata"]["resourceVersion"] = Value::String(version);
    }
    // No force: a field another manager holds is a conflict to report, never to take.
    let params = PatchParams::apply(CONTROLLER_NAME);
    match api.patch(name, &params, &Patch::Apply(&body)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 && !field_conflict(&status) => Err((
            reasons::WRITE_FAILED,
            format!("Middleware {name} changed since it was read; trying again"),
        )),
        Err(kube::Error::Api(status)) if status.code == 409 => Err((
            reasons::CONFLICT,
            format!(
                "another field manager holds the CSP fields of Middleware {name}, so the operator does not write them: {}",
                status.message
            ),
        )),
        Err(e) => Err((
            reasons::WRITE_FAILED,
            format!("failed to apply Middleware {name}: {e}"),
        )),
    }
}

/// Whether a 409 is server-side apply's field-manager conflict (not a stale
/// resourceVersion).
fn field_conflict(status: &kube::core::Status) -> bool {
    status
        .details
        .as_ref()
        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "FieldManagerConflict"))
}

async fn withdraw_one(
    ctx: &Context,
    tenant: &QlikTenant,
    target: &TargetStatus,
    owned: &[&str],
) -> Result<(), String> {
    let namespace = tenant.namespace().unwrap_or_default();
    let api = api(ctx, &namespace, target.kind);
    let spec_target = HeaderTarget {
        kind: target.kind,
        name: target.name.clone(),
        rules: Vec::new(),
    };
    // Gone, or no longer opted in: nothing of the operator's may be touched there.
    let Ok(object) = opted_in(&api, tenant, &spec_target).await else {
        return Ok(());
    };
    let json = serde_json::to_value(&object).map_err(|e| e.to_string())?;
    let result = match target.kind {
        TargetKind::HttpRoute => write_route(&api, &json, &[], &[], owned).await,
        TargetKind::Middleware => {
            let body = middleware::apply_body(&namespace, &target.name, &[]);
            apply_middleware(&api, &target.name, &object, body).await
        }
    };
    result.map_err(|(_, message)| message)
}

fn truncate(message: String) -> String {
    match message.char_indices().nth(1000) {
        Some((at, _)) => format!("{}…", &message[..at]),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SHA: &str = "aaaa";

    fn route_target() -> HeaderTarget {
        HeaderTarget {
            kind: TargetKind::HttpRoute,
            name: "web".into(),
            rules: Vec::new(),
        }
    }

    fn route_with(value: Option<&str>) -> Value {
        let filters = value.map_or_else(
            || json!([]),
            |v| json!([{ "type": "ResponseHeaderModifier", "responseHeaderModifier": { "set": [{ "name": ENFORCING_HEADER, "value": v }] } }]),
        );
        json!({ "metadata": { "name": "web", "managedFields": [
            { "manager": CONTROLLER_NAME }, { "manager": "argocd-controller" }
        ] }, "spec": { "rules": [{ "filters": filters }] } })
    }

    fn written(sha: &str) -> TargetStatus {
        TargetStatus {
            kind: TargetKind::HttpRoute,
            name: "web".into(),
            published: true,
            reason: reasons::PUBLISHED.into(),
            message: String::new(),
            sha256: Some(sha.into()),
        }
    }

    #[test]
    fn a_target_is_written_once_and_then_left_alone_when_someone_takes_the_header_out() {
        let desired = [(ENFORCING_HEADER, "img-src 'self'")];
        // Never written: write.
        assert_eq!(
            decide(&route_target(), &route_with(None), &desired, SHA, None),
            Decision::Write
        );
        // Holds it: nothing to do.
        assert_eq!(
            decide(
                &route_target(),
                &route_with(Some("img-src 'self'")),
                &desired,
                SHA,
                Some(&written(SHA))
            ),
            Decision::Current
        );
        // Written, then removed by another writer: not written back for the same header.
        let Decision::Refuse { reason, message } = decide(
            &route_target(),
            &route_with(None),
            &desired,
            SHA,
            Some(&written(SHA)),
        ) else {
            panic!("expected a refusal");
        };
        assert_eq!(reason, reasons::REMOVED);
        assert!(message.contains("argocd-controller"), "{message}");
        assert!(!message.contains(CONTROLLER_NAME), "{message}");
        // And on every later reconcile, from the status that refusal recorded.
        let refused = TargetStatus {
            published: false,
            reason: reasons::REMOVED.into(),
            ..written(SHA)
        };
        assert!(matches!(
            decide(
                &route_target(),
                &route_with(None),
                &desired,
                SHA,
                Some(&refused)
            ),
            Decision::Refuse { .. }
        ));
        // A new header is written again.
        assert_eq!(
            decide(
                &route_target(),
                &route_with(None),
                &desired,
                "bbbb",
                Some(&written(SHA))
            ),
            Decision::Write
        );
        // An older header of ours still there is an update, not a removal.
        assert_eq!(
            decide(
                &route_target(),
                &route_with(Some("old")),
                &desired,
                SHA,
                Some(&written("0ld"))
            ),
            Decision::Write
        );
    }

    #[test]
    fn a_header_longer_than_gateway_api_allows_is_not_written_to_a_route() {
        let long = format!("img-src {}", "a".repeat(4096));
        let desired = [(ENFORCING_HEADER, long.as_str())];
        let Decision::Refuse { reason, message } =
            decide(&route_target(), &route_with(None), &desired, SHA, None)
        else {
            panic!("expected a refusal");
        };
        assert_eq!(reason, reasons::TOO_LONG);
        assert!(message.contains("4096"), "{message}");
        let middleware = HeaderTarget {
            kind: TargetKind::Middleware,
            name: "csp".into(),
            rules: Vec::new(),
        };
        assert_eq!(
            decide(&middleware, &json!({}), &desired, SHA, None),
            Decision::Write
        );
    }
}
