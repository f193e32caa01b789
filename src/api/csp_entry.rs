//! `CspEntry`: one allow-listed origin and the directives it may serve. No I/O.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{MAX_CONDITIONS, TenantRef};
use crate::csp::origin::{
    CEL_GRAMMAR, CEL_HOST_LENGTH, CEL_NO_FORBIDDEN_CHARACTERS, CEL_NO_PATH, CEL_SCHEME,
    MSG_FORBIDDEN_CHARACTERS, MSG_GRAMMAR, MSG_HOST_LENGTH, MSG_NO_PATH, MSG_SCHEME,
};

/// An origin on the tenant's Content-Security-Policy allow-list (Qlik `csp-origins`).
// clippy reads the repeated `printcolumn(type_ = ...)` arguments as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "qlikops.io",
    version = "v1alpha1",
    kind = "CspEntry",
    plural = "cspentries",
    namespaced,
    status = "CspEntryStatus",
    shortname = "csp",
    category = "qlik",
    doc = "An origin on a Qlik tenant's Content-Security-Policy allow-list, with the directives it may serve. Synced to the tenant's csp-origins API.",
    printcolumn(name = "Origin", type_ = "string", json_path = ".spec.origin"),
    printcolumn(name = "Directives", type_ = "string", json_path = ".spec.directives"),
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
pub struct CspEntrySpec {
    /// The `QlikTenant` (same namespace) this entry belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("tenantRef is immutable: create a new CspEntry for another tenant"))]
    pub tenant_ref: TenantRef,

    /// `[scheme://]host[:port]`, optionally starting with `*.`: scheme `http`, `https`,
    /// `ws` or `wss`; DNS labels of 1-63 letters, digits and `-` (punycode for other
    /// scripts), at most 253 characters; port 1-65535 or `*`; no path, quote, whitespace,
    /// `;` or `,`. A wildcard must not cover a whole public suffix (`*.com`, `*.co.uk`,
    /// `*.github.io`): the operator refuses such an entry with `Ready=False`, reason
    /// `InvalidSpec`, as admission cannot consult the Public Suffix List.
    #[schemars(length(min = 1, max = 256))]
    #[x_kube(
        validation = Rule::new(CEL_NO_FORBIDDEN_CHARACTERS).message(MSG_FORBIDDEN_CHARACTERS),
        validation = Rule::new(CEL_NO_PATH).message(MSG_NO_PATH),
        validation = Rule::new(CEL_SCHEME).message(MSG_SCHEME),
        validation = Rule::new(CEL_GRAMMAR).message(MSG_GRAMMAR),
        validation = Rule::new(CEL_HOST_LENGTH).message(MSG_HOST_LENGTH)
    )]
    pub origin: String,

    /// The directives the origin may serve; each at most once.
    #[schemars(length(min = 1, max = 12))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub directives: Vec<DirectiveName>,

    /// Also allow WebSocket connections (`wss://`) to the origin (Qlik's `connectSrcWSS`).
    #[serde(default)]
    pub allow_web_socket: bool,

    /// Why the origin is allowed; shown in the tenant's console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,

    /// What happens to the tenant's entry when this resource is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// A CSP directive an origin may serve.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum DirectiveName {
    ChildSrc,
    ConnectSrc,
    FontSrc,
    FormAction,
    FrameAncestors,
    FrameSrc,
    ImgSrc,
    MediaSrc,
    ObjectSrc,
    ScriptSrc,
    StyleSrc,
    WorkerSrc,
}

impl From<DirectiveName> for crate::csp::Directive {
    fn from(name: DirectiveName) -> Self {
        use crate::csp::Directive as D;
        match name {
            DirectiveName::ChildSrc => D::ChildSrc,
            DirectiveName::ConnectSrc => D::ConnectSrc,
            DirectiveName::FontSrc => D::FontSrc,
            DirectiveName::FormAction => D::FormAction,
            DirectiveName::FrameAncestors => D::FrameAncestors,
            DirectiveName::FrameSrc => D::FrameSrc,
            DirectiveName::ImgSrc => D::ImgSrc,
            DirectiveName::MediaSrc => D::MediaSrc,
            DirectiveName::ObjectSrc => D::ObjectSrc,
            DirectiveName::ScriptSrc => D::ScriptSrc,
            DirectiveName::StyleSrc => D::StyleSrc,
            DirectiveName::WorkerSrc => D::WorkerSrc,
        }
    }
}

impl From<crate::csp::Directive> for DirectiveName {
    fn from(directive: crate::csp::Directive) -> Self {
        use crate::csp::Directive as D;
        match directive {
            D::ChildSrc => DirectiveName::ChildSrc,
            D::ConnectSrc => DirectiveName::ConnectSrc,
            D::FontSrc => DirectiveName::FontSrc,
            D::FormAction => DirectiveName::FormAction,
            D::FrameAncestors => DirectiveName::FrameAncestors,
            D::FrameSrc => DirectiveName::FrameSrc,
            D::ImgSrc => DirectiveName::ImgSrc,
            D::MediaSrc => DirectiveName::MediaSrc,
            D::ObjectSrc => DirectiveName::ObjectSrc,
            D::ScriptSrc => DirectiveName::ScriptSrc,
            D::StyleSrc => DirectiveName::StyleSrc,
            D::WorkerSrc => DirectiveName::WorkerSrc,
        }
    }
}

/// Whether deleting the resource deletes the tenant's entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete the tenant's entry (a missing entry counts as deleted).
    #[default]
    Delete,
    /// Leave the tenant's entry in place.
    Orphan,
}

/// Observed state of a `CspEntry`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CspEntryStatus {
    /// `Ready` and `Synced`, with reasons such as `Created`, `Adopted`, `Updated`,
    /// `DuplicateOrigin`, `TenantNotReady`, `TenantNotFound`, `TenantLimitReached`, `Rejected`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_CONDITIONS))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The id of the tenant's entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When the entry was last confirmed in sync with the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csp::Directive;

    #[test]
    fn every_directive_name_maps_to_the_directive_of_the_same_spelling() {
        for d in Directive::ALL {
            let name: DirectiveName = serde_json::from_value(serde_json::json!(d.name())).unwrap();
            assert_eq!(Directive::from(name), d);
        }
    }
}
