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

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, PostParams};
use qlik_csp_operator::api::tenant::{
    ApiKeyCredential, HeaderSource, HeaderSpec, QlikTenantSpec, RateLimitSpec, TenantCredentials,
};
use qlik_csp_operator::api::{QlikTenant, SecretKeyRef};
use qlik_csp_operator::controller::tenant::publish::header_sha256;
use qlik_csp_operator::controller::tenant::run::run;
use qlik_csp_operator::csp::header;
use qlik_csp_operator::emulator::{Emulator, EmulatorConfig, control};
use serde_json::{Value, json};

const KEY: &str = "header-grammar-admin-key-0123456789";
const SECRET: &str = "qlik-credentials";
const SECRET_KEY: &str = "apiKey";
const TENANT: &str = "acme";
const CONFIG_MAP: &str = "acme-csp";
const HEADER_KEY: &str = "Content-Security-Policy";
const DEADLINE: Duration = Duration::from_secs(60);

/// A namespace, an emulator, its control client and a running tenant controller.
struct Harness {
    env: support::TestEnv,
    emulator: Emulator,
    control: reqwest::Client,
    controller: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.controller.abort();
    }
}

impl Harness {
    async fn start() -> Harness {
        let env = support::TestEnv::new().await;
        let config = EmulatorConfig {
            admin_api_keys: vec![KEY.to_owned()],
            ..EmulatorConfig::default()
        };
        let emulator = Emulator::start(config)
            .await
            .unwrap_or_else(|e| panic!("failed to start the emulator: {e}"));
        let tls = emulator
            .client_tls_config()
            .unwrap_or_else(|e| panic!("failed to build the emulator's TLS config: {e}"));
        let control = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .build()
            .unwrap_or_else(|e| panic!("failed to build the control client: {e}"));
        let shared = support::controller_shared(&env, Duration::from_millis(200));
        let controller = tokio::spawn(run(shared));
        Harness {
            env,
            emulator,
            control,
            controller,
        }
    }

    async fn create_tenant(&self) {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(SECRET.to_owned()),
                ..Default::default()
            },
            string_data: Some(BTreeMap::from([(SECRET_KEY.to_owned(), KEY.to_owned())])),
            ..Secret::default()
        };
        let ns = &self.env.namespace;
        Api::<Secret>::namespaced(self.env.client.clone(), ns)
            .create(&PostParams::default(), &secret)
            .await
            .unwrap_or_else(|e| panic!("failed to create the Secret: {e}"));
        let mut tenant = QlikTenant::new(
            TENANT,
            QlikTenantSpec {
                url: self.emulator.base_url(),
                credentials: TenantCredentials {
                    api_key: Some(ApiKeyCredential {
                        secret_ref: SecretKeyRef {
                            name: SECRET.to_owned(),
                            key: SECRET_KEY.to_owned(),
                        },
                    }),
                    oauth_client: None,
                },
                ca_bundle: Some(self.emulator.ca_pem().to_owned()),
                header: Some(HeaderSpec {
                    config_map_name: CONFIG_MAP.to_owned(),
                    key: HEADER_KEY.to_owned(),
                    source: HeaderSource::Tenant,
                    report_only: false,
                    base_directives: None,
                }),
                sync_interval: Duration::from_secs(600).into(),
                rate_limit: RateLimitSpec::default(),
            },
        );
        tenant.metadata.namespace = Some(ns.clone());
        Api::<QlikTenant>::namespaced(self.env.client.clone(), ns)
            .create(&PostParams::default(), &tenant)
            .await
            .unwrap_or_else(|e| panic!("failed to create the QlikTenant: {e}"));
    }

    async fn tenant(&self) -> QlikTenant {
        Api::<QlikTenant>::namespaced(self.env.client.clone(), &self.env.namespace)
            .get(TENANT)
            .await
            .unwrap_or_else(|e| panic!("failed to read the QlikTenant: {e}"))
    }

    async fn published(&self) -> Option<String> {
        Api::<ConfigMap>::namespaced(self.env.client.clone(), &self.env.namespace)
            .get_opt(CONFIG_MAP)
            .await
            .unwrap_or_else(|e| panic!("failed to read the ConfigMap: {e}"))
            .and_then(|cm| cm.data?.get(HEADER_KEY).cloned())
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.emulator.base_url());
        let mut request = self.control.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = response.status();
        assert!(status.is_success(), "{url}: {status}");
        response.json().await.unwrap_or(Value::Null)
    }

    async fn generate_header_calls(&self) -> u64 {
        let counters = self
            .control(reqwest::Method::GET, "/_emulator/counters", None)
            .await;
        counters["operations"]["csp-origins.generate-header"]["requests"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Makes the tenant return `value`, and waits until the controller has fetched it
    /// and finished the reconcile that did (the next fetch has started).
    async fn tenant_returns(&self, value: &str) {
        let body = json!({ "header": value });
        self.control(
            reqwest::Method::PUT,
            "/_emulator/generated-header",
            Some(body),
        )
        .await;
        let before = self.generate_header_calls().await;
        support::eventually("two more generate-header calls", DEADLINE, || async {
            (self.generate_header_calls().await >= before + 2).then_some(())
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

fn condition<'a>(tenant: &'a QlikTenant, type_: &str) -> Option<&'a Condition> {
    tenant
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

#[tokio::test]
async fn a_tenant_header_with_a_line_break_is_refused_and_the_last_good_one_stays() {
    let h = Harness::start().await;
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
    h.control(reqwest::Method::DELETE, "/_emulator/generated-header", None)
        .await;
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
