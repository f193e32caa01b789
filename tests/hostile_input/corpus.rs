//! The hostile-input corpus: the cases in the YAML files beside this one and the
//! generated ones, the valid spec of each kind they are merged into, and the merge.

use kube::Resource;
use kube::core::ApiResource;
use qlik_csp_operator::api::{CspEntry, QlikTenant, SecretRotation};
use serde::Deserialize;
use serde_json::{Value, json};

/// What must become of a case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// Refused at admission, naming the field.
    #[default]
    Rejected,
    /// Admitted, then refused by the controller with a condition (CspEntry only).
    Refused,
    /// Valid: synced, adding exactly its own origin to the header (CspEntry only).
    Accepted,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub why: String,
    pub set: Value,
    #[serde(default)]
    pub expect: Expect,
    #[serde(default)]
    pub field: Option<String>,
}

/// The three kinds, each with a valid spec the cases are merged into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    CspEntry,
    QlikTenant,
    SecretRotation,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::CspEntry, Kind::QlikTenant, Kind::SecretRotation];

    pub fn file(self) -> &'static str {
        match self {
            Kind::CspEntry => "cspentries.yaml",
            Kind::QlikTenant => "qliktenants.yaml",
            Kind::SecretRotation => "secretrotations.yaml",
        }
    }

    pub fn valid_spec(self) -> Value {
        match self {
            Kind::CspEntry => json!({
                "tenantRef": { "name": "acme" },
                "origin": "https://ok.example.com",
                "directives": ["img-src"],
            }),
            Kind::QlikTenant => json!({
                "url": "https://acme.eu.qlikcloud.com",
                "credentials": { "apiKey": { "secretRef": { "name": "qlik-admin", "key": "api-key" } } },
                "header": {
                    "configMapName": "csp", "source": "Local",
                    "baseDirectives": { "default-src": ["'self'"] },
                },
            }),
            Kind::SecretRotation => json!({
                "tenantRef": { "name": "acme" },
                "credential": { "apiKey": { "expiry": "24h" } },
                "secret": { "name": "reports-qlik", "key": "api-key" },
            }),
        }
    }

    pub fn resource(self) -> ApiResource {
        fn erase<K: Resource<DynamicType = ()>>() -> ApiResource {
            ApiResource::erase::<K>(&())
        }
        match self {
            Kind::CspEntry => erase::<CspEntry>(),
            Kind::QlikTenant => erase::<QlikTenant>(),
            Kind::SecretRotation => erase::<SecretRotation>(),
        }
    }
}

/// RFC 7386 JSON merge patch: `null` removes, objects merge, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

/// The field a rejection must name: `spec.` and the keys down to `set`'s single leaf
/// (stopping at a map whose keys are data, like `baseDirectives`).
pub fn field_of(case: &Case) -> String {
    if let Some(field) = &case.field {
        return field.clone();
    }
    let mut path = vec!["spec".to_owned()];
    let mut value = &case.set;
    while let Value::Object(map) = value {
        let Some((key, inner)) = map.iter().next() else {
            break;
        };
        path.push(key.clone());
        if map.len() > 1 || key == "baseDirectives" {
            break;
        }
        value = inner;
    }
    path.join(".")
}

pub fn case(why: &str, set: Value, expect: Expect, field: Option<&str>) -> Case {
    Case {
        why: why.to_owned(),
        set,
        expect,
        field: field.map(str::to_owned),
    }
}

/// Every case: the corpus files, then the generated ones.
pub fn corpus() -> Vec<(Kind, Case)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile_input");
    let mut cases = Vec::new();
    for kind in Kind::ALL {
        let path = dir.join(kind.file());
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
        let file: Vec<Case> = serde_norway::from_str(&text)
            .unwrap_or_else(|e| panic!("failed to parse {}: {e}", path.display()));
        cases.extend(file.into_iter().map(|c| (kind, c)));
    }
    cases.extend(super::generated::generated());
    cases
}

pub fn object(kind: Kind, name: &str, case: &Case) -> Value {
    let mut spec = kind.valid_spec();
    merge(&mut spec, &case.set);
    let resource = kind.resource();
    json!({
        "apiVersion": resource.api_version, "kind": resource.kind,
        "metadata": { "name": name }, "spec": spec,
    })
}
