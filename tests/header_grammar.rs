//! One grammar for every published header, on a real kube-apiserver with the tenant
//! emulator: a tenant whose `generate-header` returns a header line break, a Unicode
//! separator or an nginx metacharacter never gets it into the ConfigMap; the last good
//! header stays and the QlikTenant says `HeaderPublished=False`, reason `InvalidHeader`.
//!
//! The emulator plays the hostile tenant through its control API
//! (`PUT /_emulator/generated-header`). The controller runs in the test with a drift
//! interval of 1 s, so every override is fetched within a second or two; waits are on
//! the emulator's counters and the tenant's conditions, with deadlines.

mod support;

use k8s_openapi::api::core::v1::ConfigMap;
use qlik_csp_operator::api::QlikTenant;
use qlik_csp_operator::api::tenant::{HeaderSource, HeaderSpec};
use qlik_csp_operator::controller::tenant::publish::header_sha256;
use qlik_csp_operator::csp::header;
use qlik_csp_operator::emulator::control;
use serde_json::json;
use support::tenant_rig::{Controller, DEADLINE, TENANT, TenantRig, condition};

const CONFIG_MAP: &str = "acme-csp";
const HEADER_KEY: &str = "Content-Security-Policy";
const GENERATE_HEADER: &str = "csp-origins.generate-header";

async fn start() -> TenantRig {
    TenantRig::builder().run(Controller::Tenant).start().await
}

/// What this suite asks of the rig.
impl TenantRig {
    /// The admin Secret and QlikTenant [`TENANT`], its header from the tenant.
    async fn create_tenant(&self) {
        self.create_admin_secret().await;
        let header = HeaderSpec {
            config_map_name: Some(CONFIG_MAP.to_owned()),
            key: HEADER_KEY.to_owned(),
            source: HeaderSource::Tenant,
            report_only: false,
            mode: None,
            base_directives: None,
            candidate_directives: None,
            targets: Vec::new(),
        };
        self.create(&self.qlik_tenant(TENANT, json!({ "header": header })))
            .await;
    }

    async fn tenant(&self) -> QlikTenant {
        self.api::<QlikTenant>()
            .get(TENANT)
            .await
            .unwrap_or_else(|e| panic!("failed to read the QlikTenant: {e}"))
    }

    async fn published(&self) -> Option<String> {
        self.api::<ConfigMap>()
            .get_opt(CONFIG_MAP)
            .await
            .unwrap_or_else(|e| panic!("failed to read the ConfigMap: {e}"))
            .and_then(|cm| cm.data?.get(HEADER_KEY).cloned())
    }

    /// Makes the tenant return `value`, and waits until the controller has fetched it
    /// and finished the reconcile that did (the next fetch has started).
    async fn tenant_returns(&self, value: &str) {
        self.control.set_generated_header(value).await;
        let before = self.control.count(GENERATE_HEADER).await;
        support::eventually("two more generate-header calls", DEADLINE, || async {
            (self.control.count(GENERATE_HEADER).await >= before + 2).then_some(())
        })
        .await;
    }

    /// Waits until the tenant reports `HeaderPublished` with `status`/`reason`, or the
    /// ConfigMap stops holding `good`, whichever comes first.
    async fn settle(&self, good: &str, status: &str, reason: &str) -> (QlikTenant, Option<String>) {
        support::eventually(
            &format!("HeaderPublished={status} {reason}, or a change to the ConfigMap"),
            DEADLINE,
            || async {
                let tenant = self.tenant().await;
                let published = self.published().await;
                let settled = condition(&tenant, "HeaderPublished")
                    .is_some_and(|c| c.status == status && c.reason == reason);
                (settled || published.as_deref() != Some(good)).then_some((tenant, published))
            },
        )
        .await
    }
}

#[tokio::test]
async fn a_tenant_header_with_a_line_break_is_refused_and_the_last_good_one_stays() {
    let h = start().await;
    h.create_tenant().await;
    let good = header::compile(&header::tenant_base(), &[])
        .unwrap_or_else(|e| panic!("{e}"))
        .into_string();
    support::eventually("the tenant's header in the ConfigMap", DEADLINE, || async {
        (h.published().await.as_deref() == Some(good.as_str())).then_some(())
    })
    .await;

    h.tenant_returns("default-src 'self';\r\nimg-src x").await;
    let (tenant, published) = h.settle(&good, "False", "InvalidHeader").await;
    assert_eq!(
        published.as_deref(),
        Some(good.as_str()),
        "the ConfigMap must keep the last good header"
    );
    let published_condition = condition(&tenant, "HeaderPublished");
    assert_eq!(
        published_condition.map(|c| (c.status.as_str(), c.reason.as_str())),
        Some(("False", "InvalidHeader")),
        "{published_condition:?}"
    );
    let summary = tenant.status.as_ref().and_then(|s| s.header.as_ref());
    assert_eq!(
        summary.map(|s| s.sha256.clone()),
        Some(header_sha256(&good)),
        "status.header must describe the header still published"
    );

    // The same for every other way out of the grammar: each is fetched and refused.
    for hostile in [
        "default-src 'self'\u{0085}img-src x",
        "default-src 'self';\u{2028}img-src x",
        "default-src\u{00a0}'self'",
        "default-src 'self'\u{000b}",
        "default-src 'self'\u{000c}",
        "default-src 'self' ${host}",
        "default-src 'self' $host",
        "default-src 'self' a,b",
        "default-src 'self' `x`",
        "default-src 'self' \"x\"",
        "default-src 'self' a\\b",
        " default-src 'self'",
        "default-src  'self'",
    ] {
        h.tenant_returns(hostile).await;
        assert_eq!(
            h.published().await.as_deref(),
            Some(good.as_str()),
            "{hostile:?}"
        );
        let tenant = h.tenant().await;
        let reason = condition(&tenant, "HeaderPublished").map(|c| c.reason.clone());
        assert_eq!(reason.as_deref(), Some("InvalidHeader"), "{hostile:?}");
    }

    // A good header from the tenant is published again.
    h.control.clear_generated_header().await;
    let (tenant, published) = h.settle(&good, "True", "Published").await;
    assert_eq!(published.as_deref(), Some(good.as_str()));
    let reason = condition(&tenant, "HeaderPublished").map(|c| c.reason.clone());
    assert_eq!(reason.as_deref(), Some("Published"));
}

#[test]
fn the_emulator_help_documents_the_generated_header_switch() {
    for needle in [
        "PUT    /_emulator/generated-header",
        "DELETE /_emulator/generated-header",
    ] {
        assert!(control::HELP.contains(needle), "HELP lacks {needle}");
    }
}
