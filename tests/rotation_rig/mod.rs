//! What the SecretRotation suites share: a namespace with an emulator, the admin Secret and
//! a QlikTenant, plus probes that read the truth from the emulator (which credentials
//! exist, whether a value authenticates).
#![allow(dead_code)] // each suite uses a different part

mod cluster;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use qlik_csp_operator::api::ownership::ALLOW_ROTATION_BY;
use qlik_csp_operator::api::secret_rotation::{
    ApiKeyRotation, OAuthClientSecretRotation, ROTATE_REQUESTED_AT, RotatedCredential, SecretTarget,
};
use qlik_csp_operator::api::tenant::{
    ApiKeyCredential, QlikTenantSpec, RateLimitSpec, TenantCredentials,
};
use qlik_csp_operator::api::{
    QlikTenant, SecretKeyRef, SecretRotation, SecretRotationSpec, TenantRef,
};
use qlik_csp_operator::emulator::{Emulator, EmulatorConfig};
use qlik_csp_operator::tenant::{ApiKey, ClientConfig, Credential, CredentialSource, TenantClient};
use serde_json::{Value, json};

use crate::support::{self, TestEnv};

// Not every suite that uses the rig needs the cluster helpers.
#[allow(unused_imports)]
pub use self::cluster::*;

pub const ADMIN_KEY: &str = "rotation-admin-key-0123456789abcdef";
pub const CLIENT_ID: &str = "m2m-reports";
pub const CLIENT_SECRET: &str = "seeded-client-secret-0123456789abcdef";
pub const TENANT: &str = "acme";
pub const ADMIN_SECRET: &str = "qlik-admin";
pub const ADMIN_SECRET_KEY: &str = "api-key";
pub const DEADLINE: Duration = Duration::from_secs(60);

pub struct Rig {
    pub env: TestEnv,
    pub emulator: Emulator,
    control: reqwest::Client,
}

impl Rig {
    /// A namespace, an emulator (`tweak` adjusts its limits) with an admin key and an OAuth
    /// client, the admin Secret and the QlikTenant using it.
    pub async fn start(tweak: impl FnOnce(&mut EmulatorConfig)) -> Rig {
        let env = TestEnv::new().await;
        let mut config = EmulatorConfig {
            admin_api_keys: vec![ADMIN_KEY.to_owned()],
            oauth_clients: vec![(CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())],
            ..EmulatorConfig::default()
        };
        tweak(&mut config);
        let emulator = Emulator::start(config)
            .await
            .unwrap_or_else(|e| panic!("failed to start the emulator: {e}"));
        let tls = emulator.client_tls_config().unwrap();
        let control = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .build()
            .unwrap();
        let rig = Rig {
            env,
            emulator,
            control,
        };
        let secret = Secret {
            metadata: meta(ADMIN_SECRET),
            string_data: Some(BTreeMap::from([(
                ADMIN_SECRET_KEY.to_owned(),
                ADMIN_KEY.to_owned(),
            )])),
            ..Secret::default()
        };
        rig.create(&secret).await;
        rig.create(&rig.tenant()).await;
        rig
    }

    pub fn client(&self) -> Client {
        self.env.client.clone()
    }

    pub fn ns(&self) -> &str {
        &self.env.namespace
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
        K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        Api::namespaced(self.client(), self.ns())
    }

    pub async fn create<K>(&self, object: &K) -> K
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
        K: Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
    {
        self.api::<K>()
            .create(&PostParams::default(), object)
            .await
            .unwrap_or_else(|e| panic!("failed to create {}: {e}", object.name_any()))
    }

    pub fn tenant(&self) -> QlikTenant {
        let mut tenant = QlikTenant::new(
            TENANT,
            QlikTenantSpec {
                url: self.emulator.base_url(),
                credentials: TenantCredentials {
                    api_key: Some(ApiKeyCredential {
                        secret_ref: SecretKeyRef {
                            name: ADMIN_SECRET.to_owned(),
                            key: ADMIN_SECRET_KEY.to_owned(),
                        },
                    }),
                    oauth_client: None,
                },
                ca_bundle: Some(self.emulator.ca_pem().to_owned()),
                header: None,
                sync_interval: Duration::from_secs(600).into(),
                rate_limit: RateLimitSpec::default(),
            },
        );
        tenant.metadata.namespace = Some(self.ns().to_owned());
        tenant
    }

    /// Moves the emulator's clock (key expiry) forward.
    pub async fn advance_emulator(&self, by: Duration) {
        let url = format!("{}/_emulator/clock/advance", self.emulator.base_url());
        let answer = self
            .control
            .post(&url)
            .json(&json!({ "seconds": by.as_secs() }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(answer.status().is_success(), "{url}: {}", answer.status());
    }

    /// The emulator's request counters: `requests` of `operation` (e.g. `api-keys.create`).
    pub async fn count(&self, operation: &str) -> u64 {
        let url = format!("{}/_emulator/counters", self.emulator.base_url());
        let counters: Value = self
            .control
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        counters["operations"][operation]["requests"]
            .as_u64()
            .unwrap_or_else(|| panic!("no counter {operation} in {counters}"))
    }

    /// Waits until the operator has looked at the tenant `more` more times (each reconcile
    /// of a SecretRotation reads its credentials once: `api-keys.list` or
    /// `oauth-clients.get`), a settle point after which counts can be asserted.
    pub async fn wait_reconciles(&self, operation: &str, more: u64) {
        let start = self.count(operation).await;
        support::eventually(
            &format!("{more} more {operation} requests than {start}"),
            DEADLINE,
            || async { (self.count(operation).await >= start + more).then_some(()) },
        )
        .await;
    }

    /// The remaining uses of each emulator fault rule, by id.
    pub async fn faults(&self) -> Vec<(String, Option<u64>)> {
        let url = format!("{}/_emulator/faults", self.emulator.base_url());
        let listed: Value = self
            .control
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        listed["faults"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|f| {
                (
                    f["id"].as_str().unwrap_or_default().to_owned(),
                    f["remaining"].as_u64(),
                )
            })
            .collect()
    }

    /// Adds an emulator fault rule (see `qlik-tenant-emulator --help`).
    pub async fn fault(&self, rule: Value) {
        let url = format!("{}/_emulator/faults", self.emulator.base_url());
        let answer = self
            .control
            .post(&url)
            .json(&rule)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(answer.status().is_success(), "{url}: {}", answer.status());
    }

    /// The emulator's request log.
    pub async fn requests(&self) -> Vec<Value> {
        let url = format!("{}/_emulator/requests", self.emulator.base_url());
        let log: Value = self
            .control
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        log["requests"].as_array().cloned().unwrap_or_default()
    }

    fn client_with(&self, credential: Credential) -> TenantClient {
        let config = ClientConfig {
            ca_bundle: Some(self.emulator.ca_pem().to_owned()),
            ..ClientConfig::new(self.emulator.base_url())
        };
        let source = CredentialSource::Secret {
            namespace: self.ns().to_owned(),
            name: "under-test".to_owned(),
            key: "value".to_owned(),
        };
        TenantClient::new(config, credential, source).unwrap()
    }

    pub fn admin(&self) -> TenantClient {
        self.client_with(Credential::api_key(ADMIN_KEY))
    }

    /// Another user of the tenant: the OAuth client's own bot user, with its seeded secret.
    pub fn other_user(&self) -> TenantClient {
        self.client_with(Credential::oauth_client(CLIENT_ID, CLIENT_SECRET))
    }

    /// Whether the tenant accepts `value` as an API key.
    pub async fn api_key_works(&self, value: &str) -> bool {
        self.client_with(Credential::api_key(value))
            .tenant_id()
            .await
            .is_ok()
    }

    /// Whether the tenant accepts `value` as the OAuth client's secret.
    pub async fn client_secret_works(&self, value: &str) -> bool {
        self.client_with(Credential::oauth_client(CLIENT_ID, value))
            .tenant_id()
            .await
            .is_ok()
    }

    /// The API keys carrying `rotation`'s marker.
    pub async fn keys_of(&self, rotation: &SecretRotation) -> Vec<ApiKey> {
        let uid = rotation.metadata.uid.clone().unwrap();
        self.admin()
            .find_api_keys_by_description_marker(&format!("[qlikops:{uid}:"))
            .await
            .unwrap()
    }

    /// Every API key on the tenant (whoever made it, marker or not), by id.
    pub async fn all_key_ids(&self) -> BTreeSet<String> {
        self.admin()
            .list_api_keys()
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.id)
            .collect()
    }

    /// The OAuth client's secret hints.
    pub async fn hints(&self) -> Vec<String> {
        self.admin()
            .get_oauth_client(CLIENT_ID)
            .await
            .unwrap()
            .client_secrets
            .into_iter()
            .map(|s| s.hint)
            .collect()
    }

    pub async fn secret(&self, name: &str) -> Option<Secret> {
        self.api::<Secret>().get_opt(name).await.unwrap()
    }

    /// The text under `key` of Secret `name`.
    pub async fn secret_value(&self, name: &str, key: &str) -> Option<String> {
        let secret = self.secret(name).await?;
        let bytes = secret.data?.get(key)?.0.clone();
        String::from_utf8(bytes).ok()
    }

    pub async fn rotation(&self, name: &str) -> SecretRotation {
        self.api::<SecretRotation>().get(name).await.unwrap()
    }

    /// Waits until SecretRotation `name` satisfies `probe`.
    pub async fn wait_rotation(
        &self,
        name: &str,
        what: &str,
        probe: impl Fn(&SecretRotation) -> bool,
    ) -> SecretRotation {
        let api = self.api::<SecretRotation>();
        let last = std::sync::Mutex::new(None);
        let waited = tokio::time::timeout(
            DEADLINE,
            support::eventually(&format!("{name}: {what}"), DEADLINE * 2, || {
                let (api, probe, last) = (api.clone(), &probe, &last);
                async move {
                    let seen = api.get_opt(name).await.ok().flatten()?;
                    let found = probe(&seen).then(|| seen.clone());
                    *last.lock().unwrap() = seen.status;
                    found
                }
            }),
        )
        .await;
        waited.unwrap_or_else(|_| {
            panic!(
                "timed out after {DEADLINE:?} waiting for {name}: {what}; its status: {:?}",
                last.lock().unwrap()
            )
        })
    }

    /// Waits until `name` is Idle and Ready at `revision`.
    pub async fn wait_settled(&self, name: &str, revision: i64) -> SecretRotation {
        self.wait_rotation(name, &format!("settled at revision {revision}"), |r| {
            settled(r, revision)
        })
        .await
    }

    /// Asks for a rotation now (`at`: an RFC 3339 time newer than the last rotation).
    pub async fn request_rotation(&self, name: &str, at: jiff::Timestamp) {
        let patch =
            json!({ "metadata": { "annotations": { ROTATE_REQUESTED_AT: at.to_string() } } });
        self.api::<SecretRotation>()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }
}

pub fn meta(name: &str) -> kube::api::ObjectMeta {
    kube::api::ObjectMeta {
        name: Some(name.to_owned()),
        ..kube::api::ObjectMeta::default()
    }
}

/// A Secret of the user's, `data` under its keys, opened to the SecretRotation `rotation`
/// (`qlikops.io/allow-rotation-by`) when given.
pub fn users_secret(name: &str, data: &[(&str, &str)], rotation: Option<&str>) -> Secret {
    let mut metadata = meta(name);
    if let Some(rotation) = rotation {
        metadata.annotations = Some(BTreeMap::from([(
            ALLOW_ROTATION_BY.to_owned(),
            rotation.to_owned(),
        )]));
    }
    Secret {
        metadata,
        string_data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..Secret::default()
    }
}

pub fn condition<'a>(rotation: &'a SecretRotation, type_: &str) -> Option<&'a Condition> {
    rotation
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

/// Idle, Ready, at `revision`, for the current generation.
pub fn settled(rotation: &SecretRotation, revision: i64) -> bool {
    let Some(status) = &rotation.status else {
        return false;
    };
    status.revision == revision
        && status.phase == qlik_csp_operator::api::secret_rotation::Phase::Idle
        && status.previous.is_none()
        && status.observed_generation == rotation.metadata.generation
        && condition(rotation, "Ready").is_some_and(|c| c.status == "True")
}

/// The shortest `gracePeriod` the CRD admits. Suites that want none run the controller
/// with `Settings::grace_period_override` (or the binary's hidden `--grace-period-override`).
pub const MIN_GRACE: Duration = Duration::from_secs(60);

/// An API key rotation into Secret `secret`/`token`, with `grace` raised to [`MIN_GRACE`].
pub fn api_key_rotation(name: &str, secret: &str, grace: Duration) -> SecretRotation {
    SecretRotation::new(
        name,
        SecretRotationSpec {
            tenant_ref: TenantRef {
                name: TENANT.to_owned(),
            },
            credential: RotatedCredential {
                api_key: Some(ApiKeyRotation {
                    description: None,
                    expiry: None,
                }),
                oauth_client_secret: None,
            },
            secret: SecretTarget {
                name: secret.to_owned(),
                key: "token".to_owned(),
            },
            renew_before: None,
            rotate_every: None,
            grace_period: grace.max(MIN_GRACE).into(),
            rollout_targets: Vec::new(),
        },
    )
}

/// An OAuth client secret rotation into Secret `secret`/`client-secret`.
pub fn oauth_rotation(name: &str, secret: &str, grace: Duration) -> SecretRotation {
    let mut rotation = api_key_rotation(name, secret, grace);
    rotation.spec.credential = RotatedCredential {
        api_key: None,
        oauth_client_secret: Some(OAuthClientSecretRotation {
            client_id: CLIENT_ID.to_owned(),
        }),
    };
    rotation.spec.secret.key = "client-secret".to_owned();
    rotation.spec.rotate_every = Some(Duration::from_secs(24 * 3600).into());
    rotation
}
