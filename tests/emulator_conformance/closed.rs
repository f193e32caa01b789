//! The part of the check JSON Schema does not do: a body may carry only the properties its
//! definition declares, at every depth, and an object under an `anyOf` must be declared by
//! one branch alone. Pure.
//!
//! OpenAPI schemas leave `additionalProperties` open unless they say otherwise, so a
//! misspelt or invented field would pass the schema check. Here a schema that declares
//! `properties` is closed: each property of the instance must be declared by the schema or
//! by a subschema that applies with it (its `allOf` members and the chosen `anyOf` branch),
//! unless `additionalProperties` opens it. A schema declaring no properties at all (an
//! error's free-form `meta`) stays open.
//!
//! `anyOf` is read as "one of these shapes": the instance must fit one branch that the
//! schema check accepts, with every property declared by that branch (plus what applies
//! anyway). Properties that are each declared by some branch, but not all by the same one,
//! are a [`Issue::Mixed`] object: valid for each branch on its own (branches are open), yet
//! no shape the definition describes.

use serde_json::Value;

/// A property nobody declares, or an object mixing `anyOf` branches, as a JSON pointer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Issue {
    Undeclared(String),
    Mixed(String),
}

/// Follows `$ref`s (local to `doc`) to the schema they name; `Null` when one dangles.
pub fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let mut schema = schema;
    let mut hops = 0;
    while let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        hops += 1;
        if hops > 64 {
            return &Value::Null;
        }
        schema = doc
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or(&Value::Null);
    }
    schema
}

/// The issues of `instance` (at JSON pointer `at`) under `schema`. `valid` says whether an
/// instance passes a subschema; it picks the `anyOf` branches an instance can take.
pub fn issues(
    doc: &Value,
    schema: &Value,
    instance: &Value,
    at: &str,
    valid: &dyn Fn(&Value, &Value) -> bool,
) -> Vec<Issue> {
    let alternatives = alternatives(doc, schema, 0);
    let viable: Vec<&Vec<&Value>> = if alternatives.len() == 1 {
        alternatives.iter().collect()
    } else {
        let fitting: Vec<_> = alternatives
            .iter()
            .filter(|alt| alt.iter().all(|s| valid(s, instance)))
            .collect();
        // None fits: the schema check reports it; judge the properties against them all.
        if fitting.is_empty() {
            alternatives.iter().collect()
        } else {
            fitting
        }
    };
    let mut best: Option<Vec<Issue>> = None;
    for alt in &viable {
        let found = within(doc, alt, instance, at, valid);
        if found.is_empty() {
            return found;
        }
        if best.as_ref().is_none_or(|b| found.len() < b.len()) {
            best = Some(found);
        }
    }
    if let Value::Object(map) = instance
        && viable.len() > 1
    {
        let one_declares_all = viable.iter().any(|alt| map.keys().all(|k| accepts(alt, k)));
        let each_declared = map.keys().all(|k| viable.iter().any(|alt| accepts(alt, k)));
        if !one_declares_all && each_declared {
            return vec![Issue::Mixed(at.to_owned())];
        }
    }
    best.unwrap_or_default()
}

/// The ways an instance can satisfy `schema`: each is the list of schemas that then all
/// apply to it (the schema, its `allOf` members, one branch of each `anyOf`, recursively).
fn alternatives<'a>(doc: &'a Value, schema: &'a Value, depth: usize) -> Vec<Vec<&'a Value>> {
    let schema = resolve(doc, schema);
    let mut alternatives = vec![vec![schema]];
    if depth > 16 {
        return alternatives;
    }
    if let Some(members) = schema.get("allOf").and_then(Value::as_array) {
        for member in members {
            alternatives = cross(&alternatives, &self::alternatives(doc, member, depth + 1));
        }
    }
    if let Some(branches) = schema.get("anyOf").and_then(Value::as_array) {
        let choices: Vec<Vec<&Value>> = branches
            .iter()
            .flat_map(|b| self::alternatives(doc, b, depth + 1))
            .collect();
        alternatives = cross(&alternatives, &choices);
    }
    alternatives
}

fn cross<'a>(left: &[Vec<&'a Value>], right: &[Vec<&'a Value>]) -> Vec<Vec<&'a Value>> {
    left.iter()
        .flat_map(|l| {
            right
                .iter()
                .map(move |r| l.iter().chain(r.iter()).copied().collect())
        })
        .collect()
}

/// Whether the schemas of `alt` together accept a property named `key`.
fn accepts(alt: &[&Value], key: &str) -> bool {
    !declares_properties(alt)
        || alt.iter().any(|s| {
            s["properties"].get(key).is_some()
                || (s.get("additionalProperties").is_some() && s["additionalProperties"] != false)
                || required(s, key)
        })
}

fn declares_properties(alt: &[&Value]) -> bool {
    alt.iter().any(|s| s.get("properties").is_some())
}

/// OAuthClientBase requires `ownerId` without declaring it: a required name is declared.
fn required(schema: &Value, key: &str) -> bool {
    schema["required"]
        .as_array()
        .is_some_and(|r| r.iter().any(|n| n == key))
}

/// The issues of `instance` when all schemas of `alt` apply to it.
fn within(
    doc: &Value,
    alt: &[&Value],
    instance: &Value,
    at: &str,
    valid: &dyn Fn(&Value, &Value) -> bool,
) -> Vec<Issue> {
    let mut out = Vec::new();
    match instance {
        Value::Object(map) => {
            let extra: Vec<&Value> = alt
                .iter()
                .filter_map(|s| s.get("additionalProperties"))
                .filter(|a| a.is_object())
                .collect();
            for (key, value) in map {
                let path = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                let declared: Vec<&Value> = alt
                    .iter()
                    .filter_map(|s| s["properties"].get(key.as_str()))
                    .collect();
                let subs = if declared.is_empty() {
                    extra.clone()
                } else {
                    declared
                };
                if subs.is_empty() && !accepts(alt, key) {
                    out.push(Issue::Undeclared(path.clone()));
                }
                for sub in subs {
                    out.extend(issues(doc, sub, value, &path, valid));
                }
            }
        }
        Value::Array(items) => {
            for item_schema in alt.iter().filter_map(|s| s.get("items")) {
                for (i, item) in items.iter().enumerate() {
                    out.extend(issues(doc, item_schema, item, &format!("{at}/{i}"), valid));
                }
            }
        }
        _ => {}
    }
    out
}
