//! `SecretPush`: a secret that lives outside Qlik (a database password, an SMTP password, a
//! third-party token), kept in a Kubernetes Secret and pushed into the tenant whenever it
//! changes. No I/O.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::core::Duration;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{CEL_OBJECT_NAME, MAX_CONDITIONS, TenantRef};

/// The data connection fields a SecretPush may set (`qUsername` is not secret, but it
/// often changes with the password, so it may come from the same Secret).
pub const DATA_CONNECTION_FIELDS: [&str; 3] = ["qUsername", "qPassword", "qConnectionSecret"];
/// The fields of a data connection on a client-managed site (QRS `DataConnection`).
pub const QRS_DATA_CONNECTION_FIELDS: [&str; 2] = ["username", "password"];
/// The email configuration fields a SecretPush may set.
pub const EMAIL_FIELDS: [&str; 2] = ["emailPassword", "username"];

/// Label that opts a Secret in to the operator's metadata watch (chart value
/// `secretPush.watchSecrets`): a SecretPush whose Secret carries it pushes within seconds of
/// a change instead of at its next poll.
pub const PUSH_SOURCE_LABEL: &str = "qlikops.io/push-source";

/// Pushes values from a Secret into one target on the tenant.
// clippy reads the repeated `printcolumn(type_ = ...)` arguments as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "qlikops.io",
    version = "v1alpha1",
    kind = "SecretPush",
    namespaced,
    status = "SecretPushStatus",
    shortname = "spush",
    category = "qlik",
    doc = "A secret that lives outside Qlik (data connection, automation connection or tenant email credential) pushed from a Secret into the tenant.",
    printcolumn(name = "Secret", type_ = "string", json_path = ".spec.secretName"),
    printcolumn(
        name = "Target",
        type_ = "string",
        description = "The kind of target.",
        json_path = ".status.targetKind"
    ),
    printcolumn(name = "Last Push", type_ = "date", json_path = ".status.lastPushTime"),
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
pub struct SecretPushSpec {
    /// The `QlikTenant` (same namespace) the values are pushed into.
    pub tenant_ref: TenantRef,

    /// The Secret (same namespace) holding the values. The operator reads it by name (a
    /// GET on every `pollEvery` and on every change of this SecretPush); it never lists
    /// Secrets unless the chart's `secretPush.watchSecrets` is on.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(CEL_OBJECT_NAME).message("secretName must be a valid Secret name (lowercase RFC 1123 subdomain)"))]
    pub secret_name: String,

    /// Where the values go; exactly one target.
    pub target: PushTarget,

    /// How often the Secret is read again to notice a change (Go duration, 10s to 24h).
    #[serde(default = "default_poll_every")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('10s') && duration(self) <= duration('24h')").message("pollEvery must be a duration from 10s to 24h, e.g. 1m"))]
    pub poll_every: Duration,

    /// Push again this long after the last push even if nothing changed, to undo an edit
    /// made in Qlik (Go duration, 5m to 720h). Qlik never returns a secret, so a change
    /// made there cannot be seen, only overwritten.
    #[serde(default = "default_resync_every")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('5m') && duration(self) <= duration('720h')").message("resyncEvery must be a duration from 5m to 720h, e.g. 24h"))]
    pub resync_every: Duration,
}

fn default_poll_every() -> Duration {
    std::time::Duration::from_secs(60).into()
}

fn default_resync_every() -> Duration {
    std::time::Duration::from_secs(24 * 3600).into()
}

/// Exactly one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.dataConnection), has(self.automationConnection), has(self.tenantEmail)].filter(x, x).size() == 1").message("exactly one of dataConnection, automationConnection or tenantEmail must be set"))]
pub struct PushTarget {
    /// A data connection's credentials (`/api/v1/data-connections`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_connection: Option<DataConnectionTarget>,
    /// An automation connection's parameters (`/api/v1/automation-connections`), then
    /// Qlik's connection check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automation_connection: Option<AutomationConnectionTarget>,
    /// The tenant's SMTP credentials (`/api/v1/transports/email-config`), then Qlik's
    /// connection verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_email: Option<TenantEmailTarget>,
}

/// A data connection, by id or by name (exactly one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.id) != has(self.name)").message("exactly one of id or name must be set"))]
pub struct DataConnectionTarget {
    /// The connection's id (`qID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new(r#"self.matches(r"^[A-Za-z0-9_-]+$")"#).message("id must consist of letters, digits, '-' and '_'"))]
    pub id: Option<String>,
    /// The connection's name (`qName`); exactly one connection the operator's identity can
    /// see must have it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub name: Option<String>,
    /// Field → Secret key: `qUsername`, `qPassword`, `qConnectionSecret` on Qlik Cloud;
    /// `username`, `password` on a client-managed site (QRS).
    #[schemars(extend("minProperties" = 1, "maxProperties" = 3), schema_with = "field_map")]
    #[x_kube(
        validation = Rule::new("self.all(f, f in ['qUsername', 'qPassword', 'qConnectionSecret', 'username', 'password'])").message("fields may be qUsername, qPassword and qConnectionSecret (Qlik Cloud), or username and password (a client-managed site)"),
        validation = Rule::new(r#"self.all(f, self[f].matches(r"^[-._a-zA-Z0-9]+$"))"#).message("each field maps to a Secret key (alphanumerics, '-', '_' or '.')")
    )]
    pub fields: BTreeMap<String, String>,
}

/// An automation connection, by id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutomationConnectionTarget {
    /// The connection's id.
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new(r#"self.matches(r"^[A-Za-z0-9_-]+$")"#).message("id must consist of letters, digits, '-' and '_'"))]
    pub id: String,
    /// Connection parameter (its name, as Qlik lists it in the connection's `params`) →
    /// Secret key.
    #[schemars(extend("minProperties" = 1, "maxProperties" = 16), schema_with = "field_map")]
    #[x_kube(validation = Rule::new(r#"self.all(f, self[f].matches(r"^[-._a-zA-Z0-9]+$"))"#).message("each parameter maps to a Secret key (alphanumerics, '-', '_' or '.')"))]
    pub fields: BTreeMap<String, String>,
}

/// The tenant's email (SMTP) configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantEmailTarget {
    /// Field → Secret key: `emailPassword` (required) and `username`.
    #[schemars(extend("minProperties" = 1, "maxProperties" = 2), schema_with = "field_map")]
    #[x_kube(
        validation = Rule::new("'emailPassword' in self").message("fields must map emailPassword"),
        validation = Rule::new("self.all(f, f in ['emailPassword', 'username'])").message("fields may be emailPassword and username"),
        validation = Rule::new(r#"self.all(f, self[f].matches(r"^[-._a-zA-Z0-9]+$"))"#).message("each field maps to a Secret key (alphanumerics, '-', '_' or '.')")
    )]
    pub fields: BTreeMap<String, String>,
}

/// The schema of a field → Secret key map: bounded names and keys, so that the CEL rules
/// over it stay within the apiserver's cost budget.
fn field_map(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 253},
        "propertyNames": {"maxLength": 128}
    })
}

impl SecretPush {
    /// The QlikTenant this pushes into: `spec.tenantRef` in its own namespace.
    pub fn tenant_key(&self) -> super::TenantKey {
        self.spec
            .tenant_ref
            .key_in(self.metadata.namespace.as_deref())
    }
}

impl PushTarget {
    /// The target's kind as the status and the printer column say it.
    pub fn kind(&self) -> TargetKind {
        match (
            &self.data_connection,
            &self.automation_connection,
            &self.tenant_email,
        ) {
            (Some(_), _, _) => TargetKind::DataConnection,
            (None, Some(_), _) => TargetKind::AutomationConnection,
            (None, None, _) => TargetKind::TenantEmail,
        }
    }

    /// Field → Secret key of the target, whichever it is.
    pub fn fields(&self) -> &BTreeMap<String, String> {
        static NONE: BTreeMap<String, String> = BTreeMap::new();
        if let Some(t) = &self.data_connection {
            return &t.fields;
        }
        if let Some(t) = &self.automation_connection {
            return &t.fields;
        }
        self.tenant_email.as_ref().map_or(&NONE, |t| &t.fields)
    }
}

/// The kinds of target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum TargetKind {
    DataConnection,
    AutomationConnection,
    TenantEmail,
}

impl TargetKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            TargetKind::DataConnection => "DataConnection",
            TargetKind::AutomationConnection => "AutomationConnection",
            TargetKind::TenantEmail => "TenantEmail",
        }
    }
}

/// Observed state of a `SecretPush`. Holds no secret: what was pushed is recorded only as
/// a keyed digest (HMAC-SHA256 with a key the operator keeps in its own Secret), which
/// tells a restarted operator whether the values changed without revealing them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretPushStatus {
    /// `Ready`, and kstatus `Reconciling` or `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    #[schemars(length(max = MAX_CONDITIONS))]
    pub conditions: Vec<Condition>,
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The kind of target (for `kubectl get`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_kind: Option<TargetKind>,
    /// The id of the target the values were last pushed to (a data connection found by
    /// name, an automation connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub target_id: Option<String>,
    /// `hmac-sha256:<hex>` of the target and the values last pushed; never the values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 80))]
    pub pushed_digest: Option<String>,
    /// When the values were last pushed (and accepted by the tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_push_time: Option<Time>,
    /// How many pushes this SecretPush has made.
    #[serde(default)]
    pub pushes: i64,
    /// The last push the tenant refused for good (or whose target it could not find):
    /// not tried again until the values or the spec change, or an hour (at most
    /// `resyncEvery`) has passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<RefusedPush>,
}

/// A push refused for good (see [`SecretPushStatus::refused`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefusedPush {
    /// The digest of what was refused.
    #[schemars(length(max = 80))]
    pub digest: String,
    /// The SecretPush's generation then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// When.
    pub at: Time,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(value: serde_json::Value) -> PushTarget {
        serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_target_knows_its_kind_and_fields() {
        let email = target(json!({"tenantEmail": {"fields": {"emailPassword": "smtp"}}}));
        assert_eq!(email.kind(), TargetKind::TenantEmail);
        assert_eq!(
            email.fields().get("emailPassword").map(String::as_str),
            Some("smtp")
        );
        let connection =
            target(json!({"dataConnection": {"name": "dwh", "fields": {"qPassword": "pw"}}}));
        assert_eq!(connection.kind(), TargetKind::DataConnection);
        assert_eq!(connection.fields().len(), 1);
    }

    #[test]
    fn defaults_poll_every_minute_and_resync_daily() {
        let spec: SecretPushSpec = serde_json::from_value(json!({
            "tenantRef": {"name": "acme"},
            "secretName": "smtp",
            "target": {"tenantEmail": {"fields": {"emailPassword": "password"}}}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::time::Duration::from(spec.poll_every).as_secs(), 60);
        assert_eq!(
            std::time::Duration::from(spec.resync_every).as_secs(),
            86_400
        );
    }
}
