//! The edge rig itself: a real traefik, configured from the test control plane, serves the
//! Content-Security-Policy header that a Traefik Middleware or a Gateway API HTTPRoute
//! filter holds, and serves a changed value without a restart. These are the fields the
//! operator will write (see DESIGN.md, "Making the change reach the edge"); here the test
//! writes them, to prove the rig.

mod support;

use serde_json::json;
use support::TestEnv;
use support::edge_proxy::{
    Backend, EdgeProxy, GATEWAY_CLASS_LABEL, GATEWAY_CONTROLLER, ROUTE_DEADLINE, apply, dynamic_api,
};

const HOST: &str = "app.test";
const BODY: &str = "hello from the backend";
const FIRST_POLICY: &str = "default-src 'self'; frame-ancestors 'self' https://tenant.example";
const SECOND_POLICY: &str = "default-src 'self'; frame-ancestors 'none'";
const CSP: &str = "content-security-policy";

#[tokio::test]
async fn a_traefik_middleware_serves_its_csp_header_and_a_new_value_without_a_restart() {
    let env = TestEnv::with_edge_crds().await;
    let backend = Backend::start(BODY).await;
    backend.expose(&env, "app").await;
    let mut proxy = EdgeProxy::start(&env);

    apply(&env, &csp_middleware(FIRST_POLICY), true).await;
    apply(
        &env,
        &json!({
            "apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute",
            "metadata": {"name": "app"},
            "spec": {
                "entryPoints": ["web"],
                "routes": [{
                    "kind": "Rule",
                    "match": format!("Host(`{HOST}`)"),
                    "middlewares": [{"name": "csp"}],
                    "services": [{"name": "app", "port": backend.port}],
                }],
            },
        }),
        true,
    )
    .await;

    let served = proxy
        .wait_for("the IngressRoute to serve the backend", HOST, "/", |s| {
            s.status == 200
        })
        .await;
    assert_eq!(served.body, BODY);
    assert_eq!(served.header_values(CSP), [FIRST_POLICY], "{served:?}");

    let pid = proxy.id();
    apply(&env, &csp_middleware(SECOND_POLICY), true).await;
    let served = proxy
        .wait_for("the Middleware's new policy to be served", HOST, "/", |s| {
            s.header_values(CSP) != [FIRST_POLICY]
        })
        .await;
    assert_eq!(served.header_values(CSP), [SECOND_POLICY], "{served:?}");
    assert_eq!(served.body, BODY);
    assert_eq!(proxy.id(), pid, "traefik was restarted");
}

#[tokio::test]
async fn a_gateway_api_httproute_filter_serves_its_csp_header_and_a_new_value_without_a_restart() {
    let env = TestEnv::with_edge_crds().await;
    let backend = Backend::start(BODY).await;
    backend.expose(&env, "app").await;
    let mut proxy = EdgeProxy::start(&env);

    // Cluster-scoped: named and labelled after the namespace, so only this test's proxy
    // takes it.
    let class = format!("traefik-{}", env.namespace);
    apply(
        &env,
        &json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": class, "labels": {GATEWAY_CLASS_LABEL: env.namespace}},
            "spec": {"controllerName": GATEWAY_CONTROLLER},
        }),
        false,
    )
    .await;
    apply(
        &env,
        &json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "edge"},
            "spec": {
                "gatewayClassName": class,
                // traefik binds a listener to the entrypoint with the same port.
                "listeners": [{"name": "web", "protocol": "HTTP", "port": proxy.web_port}],
            },
        }),
        true,
    )
    .await;
    apply(&env, &csp_route(FIRST_POLICY), true).await;

    let served = proxy
        .wait_for("the HTTPRoute to serve the backend", HOST, "/", |s| {
            s.status == 200
        })
        .await;
    assert_eq!(served.body, BODY);
    assert_eq!(served.header_values(CSP), [FIRST_POLICY], "{served:?}");

    let routes = dynamic_api(&env, "gateway.networking.k8s.io/v1", "HTTPRoute", true);
    support::eventually(
        "the HTTPRoute to be Accepted by the Gateway",
        ROUTE_DEADLINE,
        || async {
            let route = routes.get("app").await.ok()?;
            let parents = route.data["status"]["parents"].as_array()?.clone();
            parents
                .iter()
                .any(|parent| {
                    parent["controllerName"] == GATEWAY_CONTROLLER
                        && parent["parentRef"]["name"] == "edge"
                        && parent["conditions"].as_array().is_some_and(|conditions| {
                            conditions
                                .iter()
                                .any(|c| c["type"] == "Accepted" && c["status"] == "True")
                        })
                })
                .then_some(())
        },
    )
    .await;

    let pid = proxy.id();
    apply(&env, &csp_route(SECOND_POLICY), true).await;
    let served = proxy
        .wait_for("the HTTPRoute's new policy to be served", HOST, "/", |s| {
            s.header_values(CSP) != [FIRST_POLICY]
        })
        .await;
    assert_eq!(served.header_values(CSP), [SECOND_POLICY], "{served:?}");
    assert_eq!(served.body, BODY);
    assert_eq!(proxy.id(), pid, "traefik was restarted");
}

/// Middleware `csp`: the field the operator will own (`headers.contentSecurityPolicy`).
fn csp_middleware(policy: &str) -> serde_json::Value {
    json!({
        "apiVersion": "traefik.io/v1alpha1", "kind": "Middleware",
        "metadata": {"name": "csp"},
        "spec": {"headers": {"contentSecurityPolicy": policy}},
    })
}

/// HTTPRoute `app` on Gateway `edge`, setting Content-Security-Policy on responses: the
/// filter the operator will own.
fn csp_route(policy: &str) -> serde_json::Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "app"},
        "spec": {
            "parentRefs": [{"name": "edge"}],
            "hostnames": [HOST],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "filters": [{
                    "type": "ResponseHeaderModifier",
                    "responseHeaderModifier": {
                        "set": [{"name": "Content-Security-Policy", "value": policy}],
                    },
                }],
                "backendRefs": [{"group": "traefik.io", "kind": "TraefikService", "name": "app"}],
            }],
        },
    })
}
