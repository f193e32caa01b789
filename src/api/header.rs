//! `QlikTenant.spec.header`: where the compiled CSP header is published (the ingress-nginx
//! ConfigMap, Gateway API HTTPRoutes, Traefik Middlewares) and how it is rolled out
//! (enforced, report-only, or both). No I/O.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::CEL_OBJECT_NAME;
use crate::csp::policy::{
    CEL_DIRECTIVE_NAME, CEL_HEADER_NAME, CEL_REPORT_TO, CEL_REPORT_URI, CEL_SOURCE,
    MAX_HEADER_NAME_LEN, MSG_DIRECTIVE_NAME, MSG_HEADER_NAME, MSG_REPORT_TO, MSG_REPORT_URI,
    MSG_SOURCE,
};

/// The header name browsers enforce.
pub const ENFORCING_HEADER: &str = "Content-Security-Policy";
/// The header name browsers only report on.
pub const REPORT_ONLY_HEADER: &str = "Content-Security-Policy-Report-Only";
/// The most header targets one tenant publishes to.
pub const MAX_TARGETS: usize = 8;

/// Where and how the compiled CSP header is published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.mode) || !self.reportOnly").message("reportOnly is the older spelling of mode: ReportOnly; set one of them"))]
#[x_kube(validation = Rule::new("!has(self.candidateDirectives) || (has(self.mode) && self.mode == 'Both')").message("candidateDirectives only apply with mode: Both"))]
#[x_kube(validation = Rule::new("self.key == 'Content-Security-Policy' || !has(self.targets) || self.targets.all(t, t.kind != 'Middleware')").message("a Middleware target publishes through Traefik's contentSecurityPolicy fields: leave key at Content-Security-Policy"))]
pub struct HeaderSpec {
    /// ingress-nginx: the ConfigMap (same namespace) the header is written into, which an
    /// Ingress names in `nginx.ingress.kubernetes.io/custom-headers`. Created and owned by
    /// the QlikTenant when missing; an existing one needs the opt-in annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(CEL_OBJECT_NAME).message("configMapName must be a valid ConfigMap name (lowercase RFC 1123 subdomain)"))]
    pub config_map_name: Option<String>,

    /// The name the enforced header is published under (the ConfigMap key, which
    /// ingress-nginx uses as the header name, and the HTTPRoute `set` entry): an HTTP
    /// header name of letters, digits, `-` and `_`.
    #[serde(default = "default_header_key")]
    #[schemars(length(min = 1, max = MAX_HEADER_NAME_LEN))]
    #[x_kube(validation = Rule::new(CEL_HEADER_NAME).message(MSG_HEADER_NAME))]
    pub key: String,

    /// `Tenant`: the tenant's own `generate-header`; `Local`: compiled from this tenant's
    /// CspEntries plus `baseDirectives`. A client-managed site (`clientManaged`) has no
    /// `generate-header`: its header is always `Local`, whatever this says.
    #[serde(default)]
    pub source: HeaderSource,

    /// How the policy is rolled out: `Enforce` (the default), `ReportOnly`, or `Both`
    /// (enforce the current policy and report on the candidate one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<HeaderMode>,

    /// The older spelling of `mode: ReportOnly`: when `key` is left at its default the
    /// header is published under `Content-Security-Policy-Report-Only` instead.
    #[serde(default)]
    pub report_only: bool,

    /// With `source: Local`: directives always present, e.g. `default-src: ["'self'"]`.
    /// At most 16 directives of at most 32 sources each; a source is one source expression
    /// of visible ASCII without spaces or any of `;` `,` `"` `\` `$` `{` `}` `` ` ``.
    /// `report-uri` takes URLs (`https://…` or a path), `report-to` one endpoint name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "directives_schema")]
    pub base_directives: Option<BTreeMap<String, Vec<String>>>,

    /// With `mode: Both`: the base directives of the candidate policy, published as
    /// `Content-Security-Policy-Report-Only` together with the same CspEntries, while the
    /// current policy (`baseDirectives` and the CspEntries) stays enforced. Promote it by
    /// moving it to `baseDirectives`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "directives_schema")]
    pub candidate_directives: Option<BTreeMap<String, Vec<String>>>,

    /// Gateway API HTTPRoutes and Traefik Middlewares (same namespace) that carry the
    /// header. Each must opt in with `qlikops.io/allow-header-from: <this tenant>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_TARGETS))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["kind".into(), "name".into()]))]
    pub targets: Vec<HeaderTarget>,
}

/// How the policy is rolled out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HeaderMode {
    /// Published as `key` (by default `Content-Security-Policy`): browsers block.
    #[default]
    Enforce,
    /// Published as `Content-Security-Policy-Report-Only` (or `key` when it is not the
    /// default): browsers only report.
    ReportOnly,
    /// The current policy enforced under `key`, and the candidate policy (from
    /// `candidateDirectives`) reported on under `Content-Security-Policy-Report-Only`.
    Both,
}

/// Which policy a published header carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// From `source` (`baseDirectives` or the tenant) and the CspEntries.
    Current,
    /// From `candidateDirectives` and the CspEntries.
    Candidate,
}

/// A header name and the policy it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderLine {
    pub name: String,
    pub policy: Policy,
}

impl HeaderSpec {
    /// `source: Local`, enforced under `Content-Security-Policy`, no base directives and no
    /// destination: what a client-managed site publishes when `header` is omitted.
    pub fn local_defaults() -> HeaderSpec {
        HeaderSpec {
            config_map_name: None,
            key: default_header_key(),
            source: HeaderSource::Local,
            mode: None,
            report_only: false,
            base_directives: None,
            candidate_directives: None,
            targets: Vec::new(),
        }
    }

    /// The rollout mode, with the older `reportOnly: true` read as `ReportOnly`.
    pub fn effective_mode(&self) -> HeaderMode {
        self.mode.unwrap_or(if self.report_only {
            HeaderMode::ReportOnly
        } else {
            HeaderMode::Enforce
        })
    }

    /// The headers published, in order: one, or two with `mode: Both`.
    pub fn lines(&self) -> Vec<HeaderLine> {
        let line = |name: &str, policy| HeaderLine {
            name: name.to_owned(),
            policy,
        };
        match self.effective_mode() {
            HeaderMode::Enforce => vec![line(&self.key, Policy::Current)],
            HeaderMode::ReportOnly if self.key == ENFORCING_HEADER => {
                vec![line(REPORT_ONLY_HEADER, Policy::Current)]
            }
            HeaderMode::ReportOnly => vec![line(&self.key, Policy::Current)],
            HeaderMode::Both => vec![
                line(&self.key, Policy::Current),
                line(REPORT_ONLY_HEADER, Policy::Candidate),
            ],
        }
    }

    /// Every header name this spec may publish under in any mode: what the operator owns
    /// in an opted-in target, and so what it removes there when the mode changes.
    pub fn owned_names(&self) -> [&str; 2] {
        [self.key.as_str(), REPORT_ONLY_HEADER]
    }
}

/// A Gateway API HTTPRoute or a Traefik Middleware that carries the header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.kind == 'HTTPRoute' || !has(self.rules)").message("rules only apply to HTTPRoute targets"))]
pub struct HeaderTarget {
    /// `HTTPRoute` (`gateway.networking.k8s.io/v1`: a `ResponseHeaderModifier` filter) or
    /// `Middleware` (`traefik.io/v1alpha1`: `spec.headers.contentSecurityPolicy`).
    pub kind: TargetKind,
    /// The object's name, in the tenant's namespace.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(CEL_OBJECT_NAME).message("name must be a valid object name (lowercase RFC 1123 subdomain)"))]
    pub name: String,
    /// HTTPRoute only: the names of the rules that carry the header; omit for every rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 253)))]
    pub rules: Vec<String>,
}

/// The kinds of header target.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum TargetKind {
    /// `gateway.networking.k8s.io/v1` `HTTPRoute`.
    #[serde(rename = "HTTPRoute")]
    HttpRoute,
    /// `traefik.io/v1alpha1` `Middleware`.
    Middleware,
}

impl TargetKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            TargetKind::HttpRoute => "HTTPRoute",
            TargetKind::Middleware => "Middleware",
        }
    }

    /// The longest header value the target accepts: Gateway API caps a `set` value at
    /// 4,096 characters; Traefik sets no limit, so Qlik's 6,144 applies.
    pub const fn max_value_len(self) -> usize {
        match self {
            TargetKind::HttpRoute => 4096,
            TargetKind::Middleware => crate::csp::header::MAX_LEN,
        }
    }
}

impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the header comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HeaderSource {
    /// The tenant's `csp-origins/actions/generate-header`.
    #[default]
    Tenant,
    /// Compiled by the operator from the tenant's CspEntries and `baseDirectives`.
    Local,
}

fn default_header_key() -> String {
    ENFORCING_HEADER.to_owned()
}

/// Bounds every size so the apiserver can cost the CEL rules (it rejects unbounded ones).
fn directives_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "nullable": true,
        "maxProperties": 16,
        "x-kubernetes-validations": [
            { "rule": CEL_DIRECTIVE_NAME, "message": MSG_DIRECTIVE_NAME },
            { "rule": CEL_REPORT_URI, "message": MSG_REPORT_URI },
            { "rule": CEL_REPORT_TO, "message": MSG_REPORT_TO },
        ],
        "additionalProperties": {
            "type": "array",
            "maxItems": 32,
            "items": {
                "type": "string",
                "minLength": 1,
                "maxLength": 256,
                "x-kubernetes-validations": [{
                    "rule": CEL_SOURCE,
                    "message": MSG_SOURCE,
                }],
            },
        },
    })
}

/// What one header target holds, as the last reconcile found or left it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetStatus {
    pub kind: TargetKind,
    pub name: String,
    /// Whether the target carries the current header.
    pub published: bool,
    /// `Published`, or why not (`TargetNotFound`, `TargetNotOptedIn`, `TargetConflict`,
    /// `HeaderTooLongForTarget`, `RuleNotFound`, `TooManyHeaders`, `HeaderRemovedByAnotherWriter`,
    /// `TargetWriteFailed`).
    #[schemars(length(max = 64))]
    pub reason: String,
    /// A sentence for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 1024))]
    pub message: String,
    /// SHA-256 (hex) of the header value the operator last wrote there (with `mode: Both`,
    /// of the enforced one); kept when a newer header could not be written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> HeaderSpec {
        serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"))
    }

    fn names(spec: &HeaderSpec) -> Vec<(String, Policy)> {
        spec.lines()
            .into_iter()
            .map(|l| (l.name, l.policy))
            .collect()
    }

    #[test]
    fn each_mode_publishes_its_header_names() {
        let enforce = spec(serde_json::json!({ "configMapName": "csp" }));
        assert_eq!(
            names(&enforce),
            [(ENFORCING_HEADER.to_owned(), Policy::Current)]
        );
        let report = spec(serde_json::json!({ "configMapName": "csp", "mode": "ReportOnly" }));
        assert_eq!(
            names(&report),
            [(REPORT_ONLY_HEADER.to_owned(), Policy::Current)]
        );
        let legacy = spec(serde_json::json!({ "configMapName": "csp", "reportOnly": true }));
        assert_eq!(legacy.effective_mode(), HeaderMode::ReportOnly);
        let both = spec(serde_json::json!({ "configMapName": "csp", "mode": "Both" }));
        assert_eq!(
            names(&both),
            [
                (ENFORCING_HEADER.to_owned(), Policy::Current),
                (REPORT_ONLY_HEADER.to_owned(), Policy::Candidate)
            ]
        );
    }

    #[test]
    fn a_custom_key_is_kept_in_report_only_mode() {
        let custom = spec(
            serde_json::json!({ "configMapName": "csp", "key": "X-CSP", "mode": "ReportOnly" }),
        );
        assert_eq!(names(&custom), [("X-CSP".to_owned(), Policy::Current)]);
    }

    #[test]
    fn targets_are_read_with_their_kinds() {
        let with_targets = spec(serde_json::json!({
            "targets": [
                { "kind": "HTTPRoute", "name": "web", "rules": ["app"] },
                { "kind": "Middleware", "name": "csp" },
            ],
        }));
        assert_eq!(with_targets.targets[0].kind, TargetKind::HttpRoute);
        assert_eq!(with_targets.targets[0].rules, ["app"]);
        assert_eq!(with_targets.targets[1].kind, TargetKind::Middleware);
        assert!(with_targets.config_map_name.is_none());
    }
}
