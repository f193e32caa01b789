//! `SecretRotation`: a tenant-issued credential kept fresh in a Secret. No I/O.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::core::Duration;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    CEL_CLIENT_ID, CEL_DATA_KEY, CEL_OBJECT_NAME, MAX_CONDITIONS, MSG_CLIENT_ID, MSG_DATA_KEY,
    TenantRef,
};

/// The most OAuth secret hints a status records. Qlik allows 5 secrets per client; the
/// margin covers secrets that appear between two reads, and a status over the bound would be
/// refused by the apiserver, so the controller keeps its lists well under it.
pub const MAX_RECORDED_HINTS: usize = 16;

/// Annotation that requests a rotation now; its value is an RFC 3339 time.
pub const ROTATE_REQUESTED_AT: &str = "qlikops.io/rotate-requested-at";
/// Label on a rotated Secret naming the `SecretRotation` that writes it: its name, or for a
/// name longer than a label value may be, [`secret_rotation_label_value`] of it.
pub const SECRET_ROTATION_LABEL: &str = "qlikops.io/secret-rotation";
/// Annotation on a rotated Secret (and on rollout targets' pod templates): the revision of
/// the credential under `key`.
pub const CREDENTIAL_REVISION: &str = "qlikops.io/credential-revision";
/// Annotation on a rotated Secret: the API key id, OAuth secret hint or automation id of the
/// credential under `key` (identifiers only, never the value).
pub const CREDENTIAL_ID: &str = "qlikops.io/credential-id";

/// The value of [`SECRET_ROTATION_LABEL`] for the SecretRotation `name`: the name itself when
/// it is a valid label value (at most 63 characters), otherwise its first 52 characters, `-`
/// and the first 10 hex digits of the SHA-256 of the whole name (63 characters, still
/// starting and ending with an alphanumeric), so that `-l qlikops.io/secret-rotation=<value>`
/// selects the Secret of any SecretRotation.
pub fn secret_rotation_label_value(name: &str) -> String {
    const MAX: usize = 63;
    if name.len() <= MAX {
        return name.to_owned();
    }
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    // Object names are ASCII, so byte 52 is a character boundary.
    let prefix: String = name.chars().take(52).collect();
    format!("{prefix}-{}", &digest[..10])
}

/// Rotates an API key, an OAuth client secret or an automation's execution token and keeps
/// the current one in a Secret.
// clippy reads the repeated `printcolumn(type_ = ...)` arguments as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "qlikops.io",
    version = "v1alpha1",
    kind = "SecretRotation",
    namespaced,
    status = "SecretRotationStatus",
    shortname = "srot",
    category = "qlik",
    doc = "A tenant-issued credential (API key, OAuth client secret or automation execution token) rotated with zero downtime into a Secret.",
    printcolumn(name = "Secret", type_ = "string", json_path = ".spec.secret.name"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    // A `date` column is printed as an age, and an age in the future as `<invalid>`: the
    // time itself is what a user wants to read here.
    printcolumn(
        name = "Next Rotation",
        type_ = "string",
        format = "date-time",
        description = "When the next rotation is due (RFC 3339, UTC).",
        json_path = ".status.nextRotationAt"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.credential.apiKey) || has(self.rotateEvery)").message("rotateEvery is required for oauthClientSecret and automationExecutionToken: they never expire"),
    validation = Rule::new("!has(self.renewBefore) || has(self.credential.apiKey)").message("renewBefore applies only to apiKey credentials, which expire"),
    validation = Rule::new("!has(self.rotateEvery) || duration(self.gracePeriod) < duration(self.rotateEvery)").message("gracePeriod must be shorter than rotateEvery"),
    validation = Rule::new("!has(self.renewBefore) || !has(self.credential.apiKey) || !has(self.credential.apiKey.expiry) || duration(self.renewBefore) < duration(self.credential.apiKey.expiry)").message("renewBefore must be shorter than the key's expiry")
)]
pub struct SecretRotationSpec {
    /// The `QlikTenant` (same namespace) that issues the credential. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("tenantRef is immutable"))]
    pub tenant_ref: TenantRef,

    /// The credential to rotate; exactly one kind. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("credential is immutable: create a new SecretRotation instead"))]
    pub credential: RotatedCredential,

    /// The Secret (same namespace) and key the current credential is written to. During the
    /// grace period the previous value stays under `<key>.previous`. Automation execution
    /// tokens also write the automation's execution URL under `<key>.url` (the previous
    /// one under `<key>.url.previous`).
    pub secret: SecretTarget,

    /// API keys: rotate this long before expiry (Go duration, 1m to 8760h, shorter than
    /// `expiry`). Default: a third of the lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1m') && duration(self) <= duration('8760h')").message("renewBefore must be a duration from 1m to 8760h"))]
    pub renew_before: Option<Duration>,

    /// Rotate on this schedule (Go duration, 5m to 8760h); required for OAuth client secrets
    /// and automation execution tokens, which never expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('5m') && duration(self) <= duration('8760h')").message("rotateEvery must be a duration from 5m to 8760h"))]
    pub rotate_every: Option<Duration>,

    /// How long the previous credential stays valid after the new one is published: longer
    /// than the kubelet takes to propagate a Secret change (Go duration, 1m to 168h, shorter
    /// than `rotateEvery`).
    #[serde(default = "default_grace_period")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1m') && duration(self) <= duration('168h')").message("gracePeriod must be a duration from 1m to 168h, e.g. 10m"))]
    pub grace_period: Duration,

    /// Workloads whose pod template is annotated with the credential revision on every
    /// rotation, so consumers that read it from env vars restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub rollout_targets: Vec<RolloutTarget>,
}

impl SecretRotation {
    /// The QlikTenant that issues the credential: `spec.tenantRef` in its own namespace.
    pub fn tenant_key(&self) -> super::TenantKey {
        self.spec
            .tenant_ref
            .key_in(self.metadata.namespace.as_deref())
    }
}

fn default_grace_period() -> Duration {
    std::time::Duration::from_secs(600).into()
}

/// Exactly one credential kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.apiKey), has(self.oauthClientSecret), has(self.automationExecutionToken)].filter(x, x).size() == 1").message("exactly one of apiKey, oauthClientSecret or automationExecutionToken must be set"))]
pub struct RotatedCredential {
    /// An API key of the tenant identity the operator authenticates as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKeyRotation>,
    /// A secret of an OAuth client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_client_secret: Option<OAuthClientSecretRotation>,
    /// The execution token of an automation. Opt-in, and it changes more than the token:
    /// Qlik cannot renew a token, so every rotation copies the automation (the copy has a
    /// new id and a new token) and, after the grace period, deletes the one before it,
    /// starting with the automation named here. Run history, schedules and anything that
    /// points at the old id do not carry over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automation_execution_token: Option<AutomationTokenRotation>,
}

/// API key parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRotation {
    /// Description of the keys, shown in the tenant's console; the operator appends a marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200))]
    pub description: Option<String>,
    /// Requested lifetime (Go duration, 10m to 8760h), capped by the tenant's
    /// `max_api_key_expiry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('10m') && duration(self) <= duration('8760h')").message("expiry must be a duration from 10m to 8760h, e.g. 24h"))]
    pub expiry: Option<Duration>,
}

/// OAuth client secret parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuthClientSecretRotation {
    /// The OAuth client whose secrets are rotated.
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new(CEL_CLIENT_ID).message(MSG_CLIENT_ID))]
    pub client_id: String,
}

/// Automation execution token parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutomationTokenRotation {
    /// The automation whose token is rotated, as it is when the SecretRotation is created.
    /// By choosing this kind you ask the operator to delete this automation once the first
    /// rotation's grace period is over: after the first rotation the current automation
    /// is a copy with another id, recorded in `status.current.id` (this field is
    /// immutable and keeps naming the original).
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new(CEL_CLIENT_ID).message(MSG_AUTOMATION_ID))]
    pub automation_id: String,
}

/// Message for an `automationId` that fails [`CEL_CLIENT_ID`].
const MSG_AUTOMATION_ID: &str = "automationId must consist of letters, digits, '-' and '_'";

/// The Secret a rotated credential is written to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
pub struct SecretTarget {
    /// Secret name; created (and owned) if missing, otherwise only `key` is managed.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(CEL_OBJECT_NAME).message("name must be a valid Secret name (lowercase RFC 1123 subdomain)"))]
    pub name: String,
    /// Key within the Secret.
    #[schemars(length(min = 1, max = 240))]
    #[x_kube(validation = Rule::new(CEL_DATA_KEY).message(MSG_DATA_KEY))]
    pub key: String,
}

/// A workload restarted on rotation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
pub struct RolloutTarget {
    /// The workload kind.
    pub kind: WorkloadKind,
    /// The workload's name in this namespace.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(CEL_OBJECT_NAME).message("name must be a valid workload name (lowercase RFC 1123 subdomain)"))]
    pub name: String,
}

/// Kinds of workload whose pod template can be annotated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

/// Where a rotation stands. Persisted before every side effect that depends on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Nothing in flight; waiting for the next rotation.
    #[default]
    Idle,
    /// A new credential is being created on the tenant.
    Creating,
    /// The new credential is being written to the Secret and rollout targets.
    Publishing,
    /// Consumers are cutting across; the previous credential still works.
    Draining,
    /// The previous credential is being revoked.
    Revoking,
}

/// Observed state of a `SecretRotation`. Holds no credential, only identifiers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRotationStatus {
    /// `Ready` and `Rotating`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    #[schemars(length(max = MAX_CONDITIONS))]
    pub conditions: Vec<Condition>,
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the rotation stands.
    #[serde(default)]
    pub phase: Phase,
    /// The credential in the Secret's `key`. For an automation execution token, `id` is the
    /// id of the automation whose token it is: the automation to call, and the one the next
    /// rotation copies (it changes with every rotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<CredentialRef>,
    /// The credential under `<key>.previous`, until it is revoked (an automation: deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<CredentialRef>,
    /// When the next rotation is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation_at: Option<Time>,
    /// Increments with every rotation; also the rollout annotation's value.
    #[serde(default)]
    pub revision: i64,
    /// When the last rotation completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotation_time: Option<Time>,
    /// The rotation in flight, recorded before its credential is created so that a crash
    /// at any point can be recovered (the marker and the hints that existed before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingRotation>,
}

/// A rotation that has been decided but whose credential may not exist yet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingRotation {
    /// The revision the new credential gets (and its API key description marker, or the
    /// automation copy's name marker).
    pub revision: i64,
    /// Why it rotates: `Initial`, `Scheduled`, `RotationRequested`, `SecretMissing`,
    /// `CredentialRevoked`.
    pub reason: String,
    /// When it was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// The manual request (annotation time) it answers, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<Time>,
    /// OAuth: the client's secret hints before the new secret was created. A hint that is
    /// neither known nor recorded in `created` is revoked only when it is the one hint that
    /// appeared and the tenant says the operator's identity created it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_RECORDED_HINTS))]
    pub known_hints: Vec<String>,
    /// The credential created for this revision whose Secret write has not succeeded yet
    /// (identifiers only). While the operator holds its value in memory it retries the
    /// write, with backoff, and never creates another credential for this revision; after
    /// a restart the value is lost, so it is revoked (when provably the operator's) and a
    /// new one created; an automation copy is adopted instead (its token can be read
    /// again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<CredentialRef>,
    /// OAuth: secrets that appeared while this rotation's answer was lost and that the
    /// operator cannot tell apart from its own. None of them is ever revoked by the
    /// operator; the rotation waits (`AmbiguousSecret`) until a person resumes it with a
    /// newer `qlikops.io/rotate-requested-at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ambiguous: Option<AmbiguousSecrets>,
}

/// OAuth secrets the operator cannot attribute (see [`PendingRotation::ambiguous`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AmbiguousSecrets {
    /// Their hints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_RECORDED_HINTS))]
    pub hints: Vec<String>,
    /// When the operator found them; a rotation request newer than this resumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
}

/// Identifies a credential on the tenant without revealing it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialRef {
    /// API key id, or the automation id (automation execution tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// OAuth client secret hint (the last characters Qlik shows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// When it was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,
    /// When it expires (API keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// When it will be revoked (previous credential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_after: Option<Time>,
}
