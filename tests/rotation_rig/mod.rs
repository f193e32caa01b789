//! What the SecretRotation suites share: a namespace with an emulator, the admin Secret and
//! a QlikTenant, plus probes that read the truth from the emulator (which credentials
//! exist, whether a value authenticates).
#![allow(dead_code)] // each suite uses a different part

mod automations;
mod cluster;
mod running;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use qlik_csp_operator::api::ownership::ALLOW_ROTATION_BY;
use qlik_csp_operator::api::secret_rotation::{
    ApiKeyRotation, OAuthClientSecretRotation, ROTATE_REQUESTED_AT, RotatedCredential, SecretTarget,
};
use qlik_csp_operator::api::{QlikTenant, SecretRotation, SecretRotationSpec, TenantRef};
use qlik_csp_operator::emulator::EmulatorConfig;
use qlik_csp_operator::tenant::{ApiKey, Credential, TenantClient};
use serde_json::{Value, json};

use crate::support;
use crate::support::tenant_rig::TenantRig;

// Not every suite that uses the rig needs the cluster helpers.
#[allow(unused_imports)]
pub use self::automations::automation_rotation;
#[allow(unused_imports)]
pub use self::cluster::*;
#[allow(unused_imports)]
pub use self::running::Running;

// The suites name what they use of these.
#[allow(unused_imports)]
pub use crate::support::tenant_rig::{
    ADMIN_KEY, ADMIN_SECRET, ADMIN_SECRET_KEY, DEADLINE, TENANT, meta,
};
pub const CLIENT_ID: &str = "m2m-reports";
pub const CLIENT_SECRET: &str = "seeded-client-secret-0123456789abcdef";

/// A [`TenantRig`] whose emulator also has an OAuth client, with the admin Secret and the
/// QlikTenant created; no controller runs (each suite runs its own).
pub struct Rig(TenantRig);

impl std::ops::Deref for Rig {
    type Target = TenantRig;

    fn deref(&self) -> &TenantRig {
        &self.0
    }
}

impl Rig {
    /// A namespace, an emulator (`tweak` adjusts its limits) with an admin key and an OAuth
    /// client, the admin Secret and the QlikTenant using it.
    pub async fn start(tweak: impl FnOnce(&mut EmulatorConfig)) -> Rig {
        let rig = TenantRig::builder()
            .emulator(|config| {
                config.oauth_clients = vec![(CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())];
                tweak(config);
            })
            .start()
            .await;
        rig.create_admin_secret().await;
        rig.create(&rig.qlik_tenant(TENANT, json!({}))).await;
        Rig(rig)
    }

    /// QlikTenant [`TENANT`] on the emulator, with the admin Secret's API key.
    pub fn tenant(&self) -> QlikTenant {
        self.qlik_tenant(TENANT, json!({}))
    }

    /// Moves the emulator's clock (key expiry) forward.
    pub async fn advance_emulator(&self, by: Duration) {
        self.control.advance_clock(by).await;
    }

    /// The emulator's request counters: `requests` of `operation` (e.g. `api-keys.create`);
    /// fails the test while there is none.
    pub async fn count(&self, operation: &str) -> u64 {
        self.control
            .counter(operation)
            .await
            .unwrap_or_else(|| panic!("no counter {operation}"))
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
        self.control.faults().await
    }

    /// Adds an emulator fault rule (see `qlik-tenant-emulator --help`).
    pub async fn fault(&self, rule: Value) {
        self.control.fault(rule).await;
    }

    /// The emulator's request log.
    pub async fn requests(&self) -> Vec<Value> {
        self.control.requests().await
    }

    /// Another user of the tenant: the OAuth client's own bot user, with its seeded secret.
    pub fn other_user(&self) -> TenantClient {
        self.tenant_client(Credential::oauth_client(CLIENT_ID, CLIENT_SECRET))
    }

    /// Whether the tenant accepts `value` as an API key.
    pub async fn api_key_works(&self, value: &str) -> bool {
        self.tenant_client(Credential::api_key(value))
            .tenant_id()
            .await
            .is_ok()
    }

    /// Whether the tenant accepts `value` as the OAuth client's secret.
    pub async fn client_secret_works(&self, value: &str) -> bool {
        self.tenant_client(Credential::oauth_client(CLIENT_ID, value))
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
                automation_execution_token: None,
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
        automation_execution_token: None,
    };
    rotation.spec.secret.key = "client-secret".to_owned();
    rotation.spec.rotate_every = Some(Duration::from_secs(24 * 3600).into());
    rotation
}
