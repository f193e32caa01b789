//! `spec.header.targets` against a real kube-apiserver with the edges' real CRDs (Gateway
//! API's standard channel and Traefik's, from their Go modules): the header reaches an
//! opted-in HTTPRoute and Middleware and nothing else of them changes; a target that has
//! not opted in is never written; a GitOps re-apply that drops the header is not fought;
//! a header too long for Gateway API stays out of the route; removing a target takes out
//! only what the operator added; `mode: Both` publishes the candidate as report-only.
//!
//! Each test runs the tenant controller in process (drift 1 s) against its own emulator.
//! Waits are on conditions with deadlines, never sleeps.

mod support;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use qlik_csp_operator::api::QlikTenant;
use qlik_csp_operator::api::header::{TargetKind, TargetStatus};
use qlik_csp_operator::controller::tenant::edge::api_resource;
use qlik_csp_operator::controller::tenant::publish::header_sha256;
use serde_json::{Value, json};
use support::tenant_rig::{Controller, DEADLINE, TENANT, TenantRig, condition};

const ROUTE: &str = "web";
const MIDDLEWARE: &str = "security-headers";
const CSP: &str = "Content-Security-Policy";
const CSP_RO: &str = "Content-Security-Policy-Report-Only";

async fn start() -> TenantRig {
    TenantRig::builder()
        .edge_crds()
        .run(Controller::Tenant)
        .start()
        .await
}

/// The route as Git holds it: two rules, one with the user's own response header.
fn route_manifest(namespace: &str, opted_in: bool) -> Value {
    let annotations = if opted_in {
        json!({ "qlikops.io/allow-header-from": TENANT })
    } else {
        json!({})
    };
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": { "name": ROUTE, "namespace": namespace, "annotations": annotations },
        "spec": {
            "parentRefs": [{ "name": "public" }],
            "rules": [
                { "name": "app", "filters": [{ "type": "ResponseHeaderModifier", "responseHeaderModifier": {
                    "set": [{ "name": "X-Frame-Options", "value": "SAMEORIGIN" }] } }],
                  "backendRefs": [{ "name": "app", "port": 80 }] },
                { "name": "static", "backendRefs": [{ "name": "static", "port": 80 }] },
            ],
        },
    })
}

fn middleware_manifest(namespace: &str) -> Value {
    json!({
        "apiVersion": "traefik.io/v1alpha1", "kind": "Middleware",
        "metadata": { "name": MIDDLEWARE, "namespace": namespace,
                      "annotations": { "qlikops.io/allow-header-from": TENANT } },
        "spec": { "headers": { "frameDeny": true } },
    })
}

fn base_spec(targets: Value) -> Value {
    json!({ "header": {
        "source": "Local",
        "baseDirectives": { "default-src": ["'self'"] },
        "targets": targets,
    } })
}

fn both_targets() -> Value {
    json!([
        { "kind": "HTTPRoute", "name": ROUTE, "rules": ["app"] },
        { "kind": "Middleware", "name": MIDDLEWARE },
    ])
}

/// What this suite asks of the rig.
impl TenantRig {
    fn dynamic(&self, kind: TargetKind) -> Api<DynamicObject> {
        let resource: ApiResource = api_resource(kind);
        Api::namespaced_with(self.client(), self.ns(), &resource)
    }

    /// Applies `manifest` as a GitOps tool would: server-side, its own field manager, forced.
    async fn git_apply(&self, kind: TargetKind, manifest: &Value) -> Value {
        let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
        let applied = self
            .dynamic(kind)
            .patch(
                name,
                &PatchParams::apply("argocd-controller").force(),
                &Patch::Apply(manifest),
            )
            .await
            .unwrap_or_else(|e| panic!("failed to apply {kind} {name}: {e}"));
        serde_json::to_value(applied).unwrap_or_default()
    }

    async fn get(&self, kind: TargetKind, name: &str) -> Value {
        let object = self
            .dynamic(kind)
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("failed to read {kind} {name}: {e}"));
        serde_json::to_value(object).unwrap_or_default()
    }

    /// The admin Secret, and the route and the Middleware as Git holds them, opted in.
    async fn opted_in_route_and_middleware(&self) {
        self.create_admin_secret().await;
        self.git_apply(TargetKind::HttpRoute, &route_manifest(self.ns(), true))
            .await;
        self.git_apply(TargetKind::Middleware, &middleware_manifest(self.ns()))
            .await;
    }

    /// Waits until the tenant reports `reason` for the target; returns the tenant.
    async fn wait_target(&self, kind: TargetKind, name: &str, reason: &str) -> QlikTenant {
        self.wait_tenant(TENANT, &format!("{kind} {name} to report {reason}"), |t| {
            target_status(t, kind, name)
                .filter(|s| s.reason == reason && (reason != "Published" || s.published))
                .map(|_| t.clone())
        })
        .await
    }
}

fn target_status<'a>(
    tenant: &'a QlikTenant,
    kind: TargetKind,
    name: &str,
) -> Option<&'a TargetStatus> {
    tenant.status.as_ref()?.target(kind, name)
}

/// The `set` entries of rule `index` of a route, as `(name, value)`.
fn route_headers(route: &Value, index: usize) -> Vec<(String, String)> {
    route
        .pointer(&format!("/spec/rules/{index}/filters"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| {
            f.pointer("/responseHeaderModifier/set")
                .and_then(Value::as_array)
        })
        .flatten()
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (field("name"), field("value"))
        })
        .collect()
}

fn header_of(route: &Value, index: usize, name: &str) -> Option<String> {
    route_headers(route, index)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

fn published_sha(tenant: &QlikTenant) -> String {
    tenant.published_sha256().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn an_opted_in_route_and_middleware_carry_the_header_and_nothing_else_changes() {
    let rig = start().await;
    rig.opted_in_route_and_middleware().await;
    rig.create(&rig.qlik_tenant(TENANT, base_spec(both_targets())))
        .await;

    rig.wait_target(TargetKind::HttpRoute, ROUTE, "Published")
        .await;
    let tenant = rig
        .wait_target(TargetKind::Middleware, MIDDLEWARE, "Published")
        .await;
    let published = condition(&tenant, "HeaderPublished").map(|c| c.status.clone());
    assert_eq!(published.as_deref(), Some("True"));

    let route = rig.get(TargetKind::HttpRoute, ROUTE).await;
    let value = header_of(&route, 0, CSP).expect("rule app carries the header");
    assert_eq!(
        header_sha256(&value),
        published_sha(&tenant),
        "the value in the status"
    );
    assert_eq!(
        header_of(&route, 0, "X-Frame-Options").as_deref(),
        Some("SAMEORIGIN"),
        "the user's own entry stays"
    );
    assert!(
        route_headers(&route, 1).is_empty(),
        "rule static was not chosen"
    );
    assert_eq!(
        route.pointer("/spec/rules/0/backendRefs"),
        Some(&json!([{ "group": "", "kind": "Service", "name": "app", "port": 80, "weight": 1 }]))
    );

    let middleware = rig.get(TargetKind::Middleware, MIDDLEWARE).await;
    assert_eq!(
        middleware
            .pointer("/spec/headers/contentSecurityPolicy")
            .and_then(Value::as_str),
        Some(value.as_str())
    );
    assert_eq!(
        middleware.pointer("/spec/headers/frameDeny"),
        Some(&json!(true))
    );
    assert!(
        middleware.pointer("/metadata/ownerReferences").is_none(),
        "never an owner reference"
    );
}

#[tokio::test]
async fn a_target_that_has_not_opted_in_is_never_written_until_it_does() {
    let rig = start().await;
    rig.create_admin_secret().await;
    let before = rig
        .git_apply(TargetKind::HttpRoute, &route_manifest(rig.ns(), false))
        .await;
    let targets = json!([{ "kind": "HTTPRoute", "name": ROUTE }]);
    rig.create(&rig.qlik_tenant(TENANT, base_spec(targets)))
        .await;

    let tenant = rig
        .wait_target(TargetKind::HttpRoute, ROUTE, "TargetNotOptedIn")
        .await;
    let header = condition(&tenant, "HeaderPublished")
        .cloned()
        .expect("HeaderPublished");
    assert_eq!(
        (header.status.as_str(), header.reason.as_str()),
        ("False", "TargetNotOptedIn")
    );
    assert!(
        header.message.contains("qlikops.io/allow-header-from=acme"),
        "{}",
        header.message
    );
    let after = rig.get(TargetKind::HttpRoute, ROUTE).await;
    assert_eq!(
        after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"],
        "not written"
    );

    rig.git_apply(TargetKind::HttpRoute, &route_manifest(rig.ns(), true))
        .await;
    rig.wait_target(TargetKind::HttpRoute, ROUTE, "Published")
        .await;
    let route = rig.get(TargetKind::HttpRoute, ROUTE).await;
    assert!(
        header_of(&route, 0, CSP).is_some() && header_of(&route, 1, CSP).is_some(),
        "every rule"
    );
}

#[tokio::test]
async fn a_git_reapply_that_drops_the_header_is_not_fought_and_a_new_header_is_written() {
    let rig = start().await;
    rig.create_admin_secret().await;
    let manifest = route_manifest(rig.ns(), true);
    rig.git_apply(TargetKind::HttpRoute, &manifest).await;
    let targets = json!([{ "kind": "HTTPRoute", "name": ROUTE, "rules": ["app"] }]);
    rig.create(&rig.qlik_tenant(TENANT, base_spec(targets.clone())))
        .await;
    rig.wait_target(TargetKind::HttpRoute, ROUTE, "Published")
        .await;

    // Without force, Git's server-side apply conflicts with the operator's share of the
    // rules instead of dropping the header silently.
    let unforced = rig
        .dynamic(TargetKind::HttpRoute)
        .patch(
            ROUTE,
            &PatchParams::apply("argocd-controller"),
            &Patch::Apply(&manifest),
        )
        .await;
    match unforced {
        Err(kube::Error::Api(status)) if status.code == 409 => {
            assert!(
                status.message.contains("qlik-csp-operator/tenant"),
                "{}",
                status.message
            );
            assert!(status.message.contains(".spec.rules"), "{}", status.message);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Git re-applies its manifest with force, which has no CSP entry: the atomic rules list
    // is Git's again.
    let reverted = rig.git_apply(TargetKind::HttpRoute, &manifest).await;
    assert!(header_of(&reverted, 0, CSP).is_none());
    let tenant = rig
        .wait_target(TargetKind::HttpRoute, ROUTE, "HeaderRemovedByAnotherWriter")
        .await;
    let message = &target_status(&tenant, TargetKind::HttpRoute, ROUTE)
        .expect("listed")
        .message;
    assert!(message.contains("argocd-controller"), "{message}");

    // Several reconciles later the route is still as Git left it: no write loop.
    let seen = rig.tenant_failures("HeaderRemovedByAnotherWriter");
    support::eventually("three more reconciles of the tenant", DEADLINE, || async {
        (rig.tenant_failures("HeaderRemovedByAnotherWriter") >= seen + 3).then_some(())
    })
    .await;
    let route = rig.get(TargetKind::HttpRoute, ROUTE).await;
    assert_eq!(
        route["metadata"]["resourceVersion"],
        reverted["metadata"]["resourceVersion"]
    );

    // A new header is published again.
    let mut spec = base_spec(targets);
    spec["header"]["baseDirectives"]["img-src"] = json!(["'self'", "data:"]);
    rig.patch_tenant_spec(TENANT, spec).await;
    let tenant = rig
        .wait_target(TargetKind::HttpRoute, ROUTE, "Published")
        .await;
    let route = rig.get(TargetKind::HttpRoute, ROUTE).await;
    let value = header_of(&route, 0, CSP).expect("written again");
    assert!(value.contains("img-src 'self' data:"), "{value}");
    assert_eq!(header_sha256(&value), published_sha(&tenant));
}

#[tokio::test]
async fn a_header_too_long_for_gateway_api_stays_out_of_the_route_and_reaches_the_middleware() {
    let rig = start().await;
    rig.opted_in_route_and_middleware().await;
    rig.create(&rig.qlik_tenant(TENANT, base_spec(both_targets())))
        .await;
    rig.wait_target(TargetKind::HttpRoute, ROUTE, "Published")
        .await;
    let short = header_of(&rig.get(TargetKind::HttpRoute, ROUTE).await, 0, CSP);

    // 16 directives of 2 sources of about 150 characters: about 5,000 characters.
    let mut spec = base_spec(both_targets());
    for i in 0..15 {
        let host = |n: u32| format!("https://{}{i}-{n}.example.com", "a".repeat(120));
        spec["header"]["baseDirectives"][format!("x{}-src", "y".repeat(i))] =
            json!([host(1), host(2)]);
    }
    rig.patch_tenant_spec(TENANT, spec).await;
    let tenant = rig
        .wait_target(TargetKind::HttpRoute, ROUTE, "HeaderTooLongForTarget")
        .await;
    let length = tenant
        .status
        .as_ref()
        .and_then(|s| s.header.as_ref())
        .map_or(0, |h| h.length);
    assert!((4097..=6144).contains(&length), "{length}");
    let header = condition(&tenant, "HeaderPublished")
        .cloned()
        .expect("HeaderPublished");
    assert_eq!(
        (header.status.as_str(), header.reason.as_str()),
        ("False", "HeaderTooLongForTarget")
    );
    assert!(header.message.contains("4096"), "{}", header.message);
    assert_eq!(
        header_of(&rig.get(TargetKind::HttpRoute, ROUTE).await, 0, CSP),
        short,
        "the last good one stays"
    );

    rig.wait_target(TargetKind::Middleware, MIDDLEWARE, "Published")
        .await;
    let middleware = rig.get(TargetKind::Middleware, MIDDLEWARE).await;
    let value = middleware
        .pointer("/spec/headers/contentSecurityPolicy")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert_eq!(value.chars().count() as u32, length);
}

#[tokio::test]
async fn removing_targets_takes_out_only_what_the_operator_added() {
    let rig = start().await;
    rig.opted_in_route_and_middleware().await;
    rig.create(&rig.qlik_tenant(TENANT, base_spec(both_targets())))
        .await;
    rig.wait_target(TargetKind::HttpRoute, ROUTE, "Published")
        .await;
    rig.wait_target(TargetKind::Middleware, MIDDLEWARE, "Published")
        .await;

    let mut spec = base_spec(json!([]));
    spec["header"]["configMapName"] = json!("acme-csp");
    rig.patch_tenant_spec(TENANT, spec).await;
    rig.wait_tenant(TENANT, "the targets to leave the status", |t| {
        t.status
            .as_ref()
            .filter(|s| s.targets.is_empty() && s.header.is_some())
            .map(|_| ())
    })
    .await;

    let route = rig.get(TargetKind::HttpRoute, ROUTE).await;
    assert_eq!(
        route_headers(&route, 0),
        [("X-Frame-Options".to_owned(), "SAMEORIGIN".to_owned())]
    );
    let middleware = rig.get(TargetKind::Middleware, MIDDLEWARE).await;
    assert_eq!(
        middleware.pointer("/spec/headers"),
        Some(&json!({ "frameDeny": true }))
    );
}

#[tokio::test]
async fn mode_both_publishes_the_candidate_policy_as_report_only_everywhere() {
    let rig = start().await;
    rig.opted_in_route_and_middleware().await;
    let mut spec = base_spec(both_targets());
    spec["header"]["configMapName"] = json!("acme-csp");
    spec["header"]["mode"] = json!("Both");
    spec["header"]["baseDirectives"] = json!({ "default-src": ["'self'", "https:"] });
    spec["header"]["candidateDirectives"] =
        json!({ "default-src": ["'self'"], "report-uri": ["/csp-report"] });
    rig.create(&rig.qlik_tenant(TENANT, spec)).await;
    rig.wait_target(TargetKind::HttpRoute, ROUTE, "Published")
        .await;
    let tenant = rig
        .wait_target(TargetKind::Middleware, MIDDLEWARE, "Published")
        .await;

    let status = tenant.status.clone().unwrap_or_default();
    let enforced_sha = status.header.map(|h| h.sha256).unwrap_or_default();
    let candidate_sha = status
        .candidate_header
        .map(|h| h.sha256)
        .expect("candidateHeader");

    let route = rig.get(TargetKind::HttpRoute, ROUTE).await;
    let enforced = header_of(&route, 0, CSP).expect("enforced");
    let candidate = header_of(&route, 0, CSP_RO).expect("report-only");
    assert_eq!(enforced, "default-src 'self' https:");
    assert_eq!(candidate, "default-src 'self'; report-uri /csp-report");
    assert_eq!(
        (header_sha256(&enforced), header_sha256(&candidate)),
        (enforced_sha, candidate_sha)
    );

    let middleware = rig.get(TargetKind::Middleware, MIDDLEWARE).await;
    assert_eq!(
        middleware
            .pointer("/spec/headers/contentSecurityPolicy")
            .and_then(Value::as_str),
        Some(enforced.as_str())
    );
    assert_eq!(
        middleware
            .pointer("/spec/headers/contentSecurityPolicyReportOnly")
            .and_then(Value::as_str),
        Some(candidate.as_str())
    );

    let config_map = support::eventually("the ConfigMap with both headers", DEADLINE, || async {
        rig.api::<ConfigMap>()
            .get_opt("acme-csp")
            .await
            .ok()
            .flatten()
            .filter(|cm| cm.data.as_ref().is_some_and(|d| d.len() == 2))
    })
    .await;
    let data = config_map.data.unwrap_or_default();
    assert_eq!(data.get(CSP), Some(&enforced));
    assert_eq!(data.get(CSP_RO), Some(&candidate));
}

#[tokio::test]
async fn the_edge_examples_are_accepted_by_the_real_crds() {
    use serde::Deserialize;
    let resource = |kind: &str| match kind {
        "QlikTenant" => Some(ApiResource::erase::<QlikTenant>(&())),
        "HTTPRoute" => Some(api_resource(TargetKind::HttpRoute)),
        "Middleware" => Some(api_resource(TargetKind::Middleware)),
        "IngressRoute" => Some(ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("traefik.io", "v1alpha1", "IngressRoute"),
            "ingressroutes",
        )),
        _ => None,
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut created = Vec::new();
    for dir in ["gateway-api", "traefik"] {
        // Each setup in a namespace of its own: both name their tenant acme.
        let env = support::TestEnv::with_edge_crds().await;
        let mut paths: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("examples/{dir}: {e}"))
            .flatten()
            .map(|e| e.path())
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for document in serde_norway::Deserializer::from_str(&text) {
                let mut object = Value::deserialize(document)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                object["metadata"]["namespace"] = json!(env.namespace);
                let kind = object["kind"].as_str().unwrap_or_default().to_owned();
                let resource = resource(&kind)
                    .unwrap_or_else(|| panic!("{}: unexpected kind {kind}", path.display()));
                let api: Api<DynamicObject> =
                    Api::namespaced_with(env.client.clone(), &env.namespace, &resource);
                let object: DynamicObject =
                    serde_json::from_value(object).unwrap_or_else(|e| panic!("{e}"));
                if let Err(e) = api.create(&Default::default(), &object).await {
                    panic!("{} ({kind}) was rejected: {e}", path.display());
                }
                created.push(kind);
            }
        }
    }
    created.sort();
    assert_eq!(
        created,
        [
            "HTTPRoute",
            "IngressRoute",
            "Middleware",
            "QlikTenant",
            "QlikTenant"
        ]
    );
}
