//! End to end at the edge: the header the operator publishes is what a real traefik serves
//! (through a Traefik Middleware and through a Gateway API HTTPRoute), an edit to a
//! CspEntry changes what is served without restarting the proxy, and a real browser behind
//! that proxy enforces the policy, or only reports it with `mode: ReportOnly`.
//!
//! The tenant and csp-entry controllers run in process against the emulator and a control
//! plane with the edges' real CRDs; traefik runs against that control plane. Waits are on
//! conditions with deadlines, never sleeps.

mod support;

use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use qlik_csp_operator::api::csp_entry::DirectiveName;
use qlik_csp_operator::api::{CspEntry, QlikTenant};
use qlik_csp_operator::controller::tenant::publish::header_sha256;
use serde_json::{Value, json};
use support::browser::Browser;
use support::edge_proxy::{
    Backend, EdgeProxy, GATEWAY_CLASS_LABEL, GATEWAY_CONTROLLER, apply, expose_port,
};
use support::site::collector::ReportFormat;
use support::site::{PagePolicy, Site};
use support::tenant_rig::{Controller, TENANT, TenantRig, csp_entry};

const CSP: &str = "content-security-policy";
const CSP_RO: &str = "content-security-policy-report-only";
const MIDDLEWARE_HOST: &str = "mw.test";
const ROUTE_HOST: &str = "gw.test";
/// How long the collector may take to receive the reports after the page is done.
const REPORT_DEADLINE: Duration = Duration::from_secs(15);

async fn start() -> TenantRig {
    let rig = TenantRig::builder()
        .edge_crds()
        .run(Controller::Tenant)
        .run(Controller::CspEntry)
        .start()
        .await;
    rig.create_admin_secret().await;
    rig
}

/// What this suite asks of the rig.
impl TenantRig {
    /// Middleware `security-headers`, opted in for the tenant, with a header of its own.
    async fn opted_in_middleware(&self) {
        apply(
            &self.env,
            &json!({
                "apiVersion": "traefik.io/v1alpha1", "kind": "Middleware",
                "metadata": { "name": "security-headers",
                              "annotations": { "qlikops.io/allow-header-from": TENANT } },
                "spec": { "headers": { "frameDeny": true } },
            }),
            true,
        )
        .await;
    }

    /// IngressRoute `app` serving Service `service` (port `port`, see `expose_port`)
    /// through the Middleware, for `matcher`.
    async fn ingress_route(&self, matcher: &str, service: &str, port: u16) {
        apply(
            &self.env,
            &json!({
                "apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute",
                "metadata": { "name": "app" },
                "spec": { "entryPoints": ["web"], "routes": [{
                    "kind": "Rule", "match": matcher,
                    "middlewares": [{ "name": "security-headers" }],
                    "services": [{ "name": service, "port": port }],
                }] },
            }),
            true,
        )
        .await;
    }

    /// A GatewayClass and Gateway for this namespace's traefik, and HTTPRoute `app` (rule
    /// `app`, opted in) for [`ROUTE_HOST`].
    async fn gateway_and_route(&self, proxy: &EdgeProxy) {
        let class = format!("traefik-{}", self.ns());
        apply(
            &self.env,
            &json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                "metadata": { "name": class, "labels": { GATEWAY_CLASS_LABEL: self.ns() } },
                "spec": { "controllerName": GATEWAY_CONTROLLER },
            }),
            false,
        )
        .await;
        apply(
            &self.env,
            &json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                "metadata": { "name": "edge" },
                "spec": { "gatewayClassName": class,
                          "listeners": [{ "name": "web", "protocol": "HTTP", "port": proxy.web_port }] },
            }),
            true,
        )
        .await;
        apply(
            &self.env,
            &json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": { "name": "app", "annotations": { "qlikops.io/allow-header-from": TENANT } },
                "spec": {
                    "parentRefs": [{ "name": "edge" }],
                    "hostnames": [ROUTE_HOST],
                    // A TraefikService: traefik's Gateway API provider refuses the
                    // ExternalName Service a loopback backend needs (see edge_proxy).
                    "rules": [{ "name": "app", "backendRefs": [
                        { "group": "traefik.io", "kind": "TraefikService", "name": "app" }
                    ] }],
                },
            }),
            true,
        )
        .await;
    }

    /// Waits until every target holds the header; returns the tenant.
    async fn wait_published(&self, what: &str, done: impl Fn(&QlikTenant) -> bool) -> QlikTenant {
        self.wait_tenant(TENANT, what, |t| {
            let status = t.status.as_ref()?;
            let all = !status.targets.is_empty() && status.targets.iter().all(|x| x.published);
            (all && done(t)).then(|| t.clone())
        })
        .await
    }
}

fn sha(tenant: &QlikTenant) -> String {
    tenant.published_sha256().unwrap_or_default().to_owned()
}

fn local_header(targets: Value, mode: &str, base: Value) -> Value {
    json!({ "header": { "source": "Local", "mode": mode, "baseDirectives": base, "targets": targets } })
}

#[tokio::test]
async fn traefik_serves_exactly_the_published_header_and_follows_a_csp_entry_edit() {
    let rig = start().await;
    let backend = Backend::start("hello").await;
    backend.expose(&rig.env, "app").await;
    let mut proxy = EdgeProxy::start(&rig.env);
    rig.opted_in_middleware().await;
    rig.ingress_route(&format!("Host(`{MIDDLEWARE_HOST}`)"), "app", backend.port)
        .await;
    rig.gateway_and_route(&proxy).await;

    rig.create(&csp_entry(
        "cdn",
        "https://cdn.example.com",
        &[DirectiveName::ImgSrc],
        false,
    ))
    .await;
    let targets = json!([
        { "kind": "Middleware", "name": "security-headers" },
        { "kind": "HTTPRoute", "name": "app" },
    ]);
    let base = json!({ "default-src": ["'self'"] });
    rig.create(&rig.qlik_tenant(TENANT, local_header(targets, "Enforce", base)))
        .await;
    let tenant = rig
        .wait_published("the header with cdn in every target", |t| {
            t.status
                .as_ref()
                .and_then(|s| s.header.as_ref())
                .is_some_and(|h| h.origins == 1)
        })
        .await;
    let first = sha(&tenant);

    let pid = proxy.id();
    for host in [MIDDLEWARE_HOST, ROUTE_HOST] {
        let served = proxy
            .wait_for("the published header", host, "/", |s| {
                s.header_values(CSP)
                    .iter()
                    .any(|v| header_sha256(v) == first)
            })
            .await;
        assert_eq!(served.body, "hello");
        assert_eq!(served.header_values(CSP).len(), 1, "{host}: {served:?}");
        assert_eq!(served.header_values(CSP_RO).len(), 0, "{host}: {served:?}");
    }

    // The entry gains a directive: the new header is what the proxy serves, on both edges.
    let edited = Instant::now();
    let entries: Api<CspEntry> = rig.api();
    let patch = json!({ "spec": { "directives": ["img-src", "script-src"] } });
    entries
        .patch("cdn", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("failed to edit the CspEntry: {e}"));
    let tenant = rig
        .wait_published("the header with the edit in every target", |t| {
            sha(t) != first
        })
        .await;
    let second = sha(&tenant);
    for host in [MIDDLEWARE_HOST, ROUTE_HOST] {
        let served = proxy
            .wait_for("the edited header", host, "/", |s| {
                s.header_values(CSP)
                    .iter()
                    .any(|v| header_sha256(v) == second)
            })
            .await;
        let value = served.header_values(CSP)[0];
        assert!(
            value.contains("script-src https://cdn.example.com"),
            "{value}"
        );
        eprintln!("{host}: edit served after {:?}", edited.elapsed());
    }
    assert_eq!(proxy.id(), pid, "traefik was not restarted");
}

#[tokio::test]
async fn a_browser_behind_traefik_enforces_the_published_policy_and_only_reports_it_in_report_only_mode()
 {
    let rig = start().await;
    let site = Site::start().await;
    let browser = Browser::find();
    let (allowed, forbidden) = (&site.allowed, &site.forbidden);
    // The page carries no policy of its own: the one the browser sees is the operator's.
    let page = site.serve_page(PagePolicy::Absent).await;
    expose_port(&rig.env, "page", page.port()).await;
    let mut proxy = EdgeProxy::start(&rig.env);
    rig.opted_in_middleware().await;
    rig.ingress_route("PathPrefix(`/`)", "page", page.port())
        .await;

    let directives = [DirectiveName::ScriptSrc, DirectiveName::ImgSrc];
    rig.create(&csp_entry("probe", &allowed.origin(), &directives, false))
        .await;
    let targets = json!([{ "kind": "Middleware", "name": "security-headers" }]);
    let base = json!({ "default-src": ["'self'"] });
    rig.create(&rig.qlik_tenant(TENANT, local_header(targets.clone(), "Enforce", base)))
        .await;
    let tenant = rig
        .wait_published("the enforced header", |t| {
            t.status
                .as_ref()
                .and_then(|s| s.header.as_ref())
                .is_some_and(|h| h.origins == 1)
        })
        .await;
    let url = format!("http://127.0.0.1:{}/", proxy.web_port);
    let enforced = sha(&tenant);
    proxy
        .wait_for("the page with the enforced header", "127.0.0.1", "/", |s| {
            s.header_values(CSP)
                .iter()
                .any(|v| header_sha256(v) == enforced)
        })
        .await;

    let visit = browser.visit(&url).await;
    let seen = &visit.report;
    assert!(seen.script_ran(&allowed.script_url()), "{seen:#?}");
    assert!(seen.image_loaded(&allowed.image_url()), "{seen:#?}");
    assert!(!seen.script_ran(&forbidden.script_url()), "{seen:#?}");
    assert!(!seen.image_loaded(&forbidden.image_url()), "{seen:#?}");
    assert_eq!(
        forbidden.requests(),
        0,
        "a blocked load never leaves the browser"
    );
    // Chromium names the element directive (CSP3) although the policy says script-src.
    for (url, directive) in [
        (forbidden.script_url(), "script-src-elem"),
        (forbidden.image_url(), "img-src"),
    ] {
        let violations = seen.violations_of(&url);
        assert_eq!(violations.len(), 1, "{url}: {seen:#?}");
        assert_eq!(violations[0].effective_directive, directive, "{seen:#?}");
        assert_eq!(violations[0].disposition, "enforce", "{seen:#?}");
    }
    assert_eq!(
        seen.violations.len(),
        2,
        "only the forbidden loads: {seen:#?}"
    );
    drop(visit);

    // Report-only, reporting to the collector: nothing is blocked, the violations are reported.
    let base = json!({ "default-src": ["'self'"], "report-uri": [site.collector.report_uri()] });
    rig.patch_tenant_spec(TENANT, local_header(targets, "ReportOnly", base))
        .await;
    let tenant = rig
        .wait_published("the report-only header", |t| sha(t) != enforced)
        .await;
    let reporting = sha(&tenant);
    proxy
        .wait_for(
            "the page with only the report-only header",
            "127.0.0.1",
            "/",
            |s| {
                s.header_values(CSP).is_empty()
                    && s.header_values(CSP_RO)
                        .iter()
                        .any(|v| header_sha256(v) == reporting)
            },
        )
        .await;
    let visit = browser.visit(&url).await;
    let seen = &visit.report;
    for script in [allowed.script_url(), forbidden.script_url()] {
        assert!(seen.script_ran(&script), "{script}: {seen:#?}");
    }
    for image in [allowed.image_url(), forbidden.image_url()] {
        assert!(seen.image_loaded(&image), "{image}: {seen:#?}");
    }
    assert!(
        seen.violations.iter().all(|v| v.disposition == "report"),
        "{seen:#?}"
    );
    let expected = [forbidden.script_url(), forbidden.image_url()];
    let reports = site
        .collector
        .wait_for(
            "a report of each forbidden load",
            REPORT_DEADLINE,
            |reports| {
                expected
                    .iter()
                    .all(|url| reports.iter().any(|r| &r.blocked_uri == url))
            },
        )
        .await;
    assert!(
        reports
            .iter()
            .all(|r| r.format == ReportFormat::ReportUri && r.disposition == "report"),
        "{reports:#?}"
    );
}
