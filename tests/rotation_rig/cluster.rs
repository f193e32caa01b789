//! The cluster side of the SecretRotation suites: a Deployment to roll out, a webhook that
//! makes one Secret's writes fail, the events about a SecretRotation counted exactly, and
//! settle points after which counts can be asserted.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use qlik_csp_operator::api::SecretRotation;
use qlik_csp_operator::api::secret_rotation::CREDENTIAL_REVISION;
use serde_json::json;

use super::{Rig, settled};

/// A Deployment `name` (its pods never run: the control plane has no controller manager).
pub fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name },
        "spec": {
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "app", "image": "example.invalid/app" }] },
            },
        },
    }))
    .unwrap()
}

/// The `qlikops.io/credential-revision` a rollout put on the pod template.
pub fn template_revision(deployment: &Deployment) -> Option<String> {
    deployment
        .spec
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(CREDENTIAL_REVISION)
        .cloned()
}

/// Events counted by `(type, reason)`.
pub type EventCounts = BTreeMap<(String, String), i32>;

/// `(type, reason, count)` triples as [`EventCounts`], for exact comparisons.
pub fn events(expected: &[(&str, &str, i32)]) -> EventCounts {
    expected
        .iter()
        .map(|(t, r, n)| (((*t).to_owned(), (*r).to_owned()), *n))
        .collect()
}

/// Makes every write of one Secret of the rig's namespace fail with a 500, as long as it
/// is installed: a validating webhook the apiserver must ask but cannot reach.
pub struct FailingSecretWrites {
    api: kube::Api<ValidatingWebhookConfiguration>,
    name: String,
}

impl FailingSecretWrites {
    pub async fn install(rig: &Rig, secret: &str) -> FailingSecretWrites {
        let name = format!("fail-secret-writes-{}", rig.ns());
        let webhook: ValidatingWebhookConfiguration = serde_json::from_value(json!({
            "metadata": { "name": name },
            "webhooks": [{
                "name": "fail.secret-writes.qlikops.test",
                // Nothing listens on port 1: the call fails, and so does the write.
                "clientConfig": { "url": "https://127.0.0.1:1/validate" },
                "rules": [{
                    "apiGroups": [""], "apiVersions": ["v1"], "resources": ["secrets"],
                    "operations": ["CREATE", "UPDATE"], "scope": "Namespaced",
                }],
                "namespaceSelector": {
                    "matchLabels": { "kubernetes.io/metadata.name": rig.ns() },
                },
                "matchConditions": [{
                    "name": "the-target",
                    "expression": format!("request.name == '{secret}'"),
                }],
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 2,
            }],
        }))
        .unwrap();
        let api = kube::Api::<ValidatingWebhookConfiguration>::all(rig.client());
        api.create(&Default::default(), &webhook).await.unwrap();
        FailingSecretWrites { api, name }
    }

    pub async fn remove(self) {
        self.api
            .delete(&self.name, &DeleteParams::default())
            .await
            .unwrap();
    }
}

impl Rig {
    /// How many times each event was published about `rotation`. The events recorder
    /// publishes a repeated event (same type, reason and object) as one Event whose
    /// `series.count` grows, so each Event counts as its series.
    pub async fn event_counts(&self, rotation: &SecretRotation) -> EventCounts {
        let mut counts = EventCounts::new();
        let listed = self
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .unwrap();
        for event in listed.items {
            if event.regarding.as_ref().and_then(|r| r.uid.as_ref())
                != rotation.metadata.uid.as_ref()
            {
                continue;
            }
            let times = event.series.as_ref().map_or(1, |s| s.count);
            let key = (
                event.type_.unwrap_or_default(),
                event.reason.unwrap_or_default(),
            );
            *counts.entry(key).or_default() += times;
        }
        counts
    }

    /// A settle point for a controller that checks its credential every second: waits
    /// until `name` is settled at `revision`, then until it has read the tenant twice more
    /// (`operation`: `api-keys.list` or `oauth-clients.get`; reconciles of one object never
    /// overlap, so the second read comes from a reconcile that started after every
    /// reconcile that was under way when the first wait ended), and asserts it is still
    /// settled at `revision`: a rotation triggered again a moment later fails here, and
    /// counts taken afterwards are final.
    pub async fn settle(&self, name: &str, revision: i64, operation: &str) -> SecretRotation {
        self.wait_settled(name, revision).await;
        self.wait_reconciles(operation, 2).await;
        self.assert_still_settled(name, revision).await
    }

    /// A settle point for an operator that does not look again on its own (the tenant's
    /// `syncInterval` is minutes): as [`Rig::settle`], but each of the two reconciles is
    /// caused by touching an annotation of the SecretRotation.
    pub async fn settle_poked(&self, name: &str, revision: i64, operation: &str) -> SecretRotation {
        self.wait_settled(name, revision).await;
        for poke in 0..2 {
            let start = self.count(operation).await;
            let patch = json!({ "metadata": { "annotations": { "test.qlikops.io/poke": poke.to_string() } } });
            self.api::<SecretRotation>()
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
            crate::support::eventually(
                &format!("{name}: a reconcile after poke {poke}"),
                super::DEADLINE,
                || async { (self.count(operation).await > start).then_some(()) },
            )
            .await;
        }
        self.assert_still_settled(name, revision).await
    }

    async fn assert_still_settled(&self, name: &str, revision: i64) -> SecretRotation {
        let now = self.rotation(name).await;
        assert!(
            settled(&now, revision),
            "{name} moved on after settling at revision {revision}: {:?}",
            now.status
        );
        now
    }
}
