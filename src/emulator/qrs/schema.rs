//! The properties of the entities the site stores, as `Repository.json` declares them
//! (type, `maxLength`, enum), and how a `PUT` body is merged into a stored entity. Pure.
//!
//! The tables are checked against the definition by `tests/emulator_qrs.rs`.
//!
//! Merging a `PUT` body (Qlik's "Updating an entity"): QRS wants the whole entity, but
//! "most PUT requests support a partial update": a writable property the body carries
//! replaces the stored one, one it omits (or sends as `null`) is kept. Server-owned
//! properties (`id`, dates, `modifiedByUserName`, `schemaPath`, `privileges`) are never
//! taken from the body. Properties the definition does not declare are ignored and not
//! stored, as QRS's JSON deserialisation drops unknown members. A value of the wrong type,
//! outside its enum or range, or a string longer than its `maxLength` refuses the whole
//! body (400; nothing is stored). `minLength` is not enforced: QRS itself stores and
//! returns `""` for unset strings whose definition says `minLength: 1`
//! (`sessionCookieDomain`).

use serde_json::{Map, Value};

/// What a property holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Set by the server only.
    ReadOnly,
    /// A string; `min` and `max` are the definition's `minLength` and `maxLength`.
    Text { min: usize, max: Option<usize> },
    /// An integer with an `enum`.
    Choice(&'static [i64]),
    /// An integer with a `minimum` and `maximum`.
    Integer { min: i64, max: i64 },
    /// A boolean.
    Flag,
    /// An array of strings.
    Texts,
    /// An array of objects (tags, custom properties, server nodes, attribute maps).
    Objects,
    /// An object (a data connection's `owner`).
    Object,
}

/// `VirtualProxyConfig`'s properties.
pub const VIRTUAL_PROXY_CONFIG: &[(&str, Kind)] = &[
    ("id", Kind::ReadOnly),
    ("createdDate", Kind::ReadOnly),
    ("modifiedDate", Kind::ReadOnly),
    ("modifiedByUserName", Kind::ReadOnly),
    ("schemaPath", Kind::ReadOnly),
    ("privileges", Kind::ReadOnly),
    ("customProperties", Kind::Objects),
    ("prefix", text(0, 100)),
    ("description", text(0, 500)),
    ("authenticationModuleRedirectUri", text(0, 1024)),
    ("sessionModuleBaseUri", text(0, 1024)),
    ("loadBalancingModuleBaseUri", text(0, 1024)),
    ("useStickyLoadBalancing", Kind::Flag),
    ("loadBalancingServerNodes", Kind::Objects),
    ("authenticationMethod", Kind::Choice(&[0, 1, 2, 3, 4, 5])),
    ("headerAuthenticationMode", Kind::Choice(&[0, 1, 2, 3])),
    ("headerAuthenticationHeaderName", text(0, 256)),
    ("headerAuthenticationStaticUserDirectory", text(0, 256)),
    ("headerAuthenticationDynamicUserDirectory", text(0, 256)),
    ("anonymousAccessMode", Kind::Choice(&[0, 1, 2])),
    ("windowsAuthenticationEnabledDevicePattern", text(1, 256)),
    ("sessionCookieHeaderName", text(1, 256)),
    ("sessionCookieDomain", text(1, 256)),
    ("hasSecureAttributeHttps", Kind::Flag),
    ("sameSiteAttributeHttps", Kind::Choice(&[0, 1, 2, 3])),
    ("hasSecureAttributeHttp", Kind::Flag),
    ("sameSiteAttributeHttp", Kind::Choice(&[0, 1, 2, 3])),
    ("additionalResponseHeaders", text(0, 1024)),
    (
        "sessionInactivityTimeout",
        Kind::Integer { min: 1, max: 71582 },
    ),
    ("extendedSecurityEnvironment", Kind::Flag),
    ("websocketCrossOriginWhiteList", Kind::Texts),
    ("defaultVirtualProxy", Kind::Flag),
    ("tags", Kind::Objects),
    ("samlMetadataIdP", text(0, 100_000)),
    ("samlHostUri", text(0, 1024)),
    ("samlEntityId", text(0, 255)),
    ("samlAttributeUserId", text(0, 255)),
    ("samlAttributeUserDirectory", text(0, 255)),
    ("samlAttributeSigningAlgorithm", Kind::Choice(&[0, 1])),
    ("samlAttributeMap", Kind::Objects),
    ("jwtAttributeUserId", text(0, 255)),
    ("jwtAttributeUserDirectory", text(0, 255)),
    ("jwtAudience", text(0, 255)),
    ("jwtPublicKeyCertificate", text(0, 100_000)),
    ("jwtAttributeMap", Kind::Objects),
    ("magicLinkHostUri", text(0, 1024)),
    ("magicLinkFriendlyName", text(0, 255)),
    ("samlSlo", Kind::Flag),
    ("disableOidcOptionalAttributesParsing", Kind::Flag),
    ("oidcConfigurationEndpointUri", text(0, 1024)),
    ("oidcClientId", text(0, 255)),
    ("oidcClientSecret", text(0, 255)),
    ("oidcRealm", text(0, 255)),
    ("oidcAttributeSub", text(0, 255)),
    ("oidcAttributeName", text(0, 255)),
    ("oidcAttributeGroups", text(0, 255)),
    ("oidcAttributeEmail", text(0, 255)),
    ("oidcAttributeClientId", text(0, 255)),
    ("oidcAttributePicture", text(0, 255)),
    ("oidcScope", text(0, 255)),
    ("oidcAttributeMap", Kind::Objects),
];

/// The properties `VirtualProxyConfigCondensed` leaves out of `VirtualProxyConfig`.
pub const NOT_CONDENSED: &[&str] = &[
    "createdDate",
    "modifiedDate",
    "modifiedByUserName",
    "schemaPath",
    "customProperties",
];

/// `DataConnection`'s properties.
pub const DATA_CONNECTION: &[(&str, Kind)] = &[
    ("id", Kind::ReadOnly),
    ("createdDate", Kind::ReadOnly),
    ("modifiedDate", Kind::ReadOnly),
    ("modifiedByUserName", Kind::ReadOnly),
    ("schemaPath", Kind::ReadOnly),
    ("privileges", Kind::ReadOnly),
    ("customProperties", Kind::Objects),
    ("owner", Kind::Object),
    ("name", text(1, 256)),
    ("connectionstring", text(0, 100_000)),
    ("type", text(0, 500)),
    ("engineObjectId", Kind::Text { min: 0, max: None }),
    ("username", text(0, 500)),
    ("password", text(0, 524_288)),
    ("logOn", Kind::Choice(&[0, 1])),
    ("architecture", Kind::Choice(&[0, 1, 2])),
    ("tags", Kind::Objects),
];

const fn text(min: usize, max: usize) -> Kind {
    Kind::Text {
        min,
        max: Some(max),
    }
}

/// The names of `fields` a filter may compare: strings, numbers and booleans (never a
/// secret).
pub fn filterable(fields: &[(&'static str, Kind)]) -> Vec<&'static str> {
    fields
        .iter()
        .filter(|(name, _)| !matches!(*name, "password" | "oidcClientSecret"))
        .filter(|(name, kind)| match kind {
            Kind::Text { .. } | Kind::Choice(_) | Kind::Integer { .. } | Kind::Flag => true,
            Kind::ReadOnly => matches!(*name, "id" | "modifiedByUserName" | "schemaPath"),
            _ => false,
        })
        .map(|(name, _)| *name)
        .collect()
}

/// Checks `value` against `kind`; the error names `name` and the broken rule.
fn check(name: &str, kind: Kind, value: &Value) -> Result<(), String> {
    let ok = match (kind, value) {
        (Kind::Text { max, .. }, Value::String(s)) => {
            let length = s.encode_utf16().count();
            if let Some(max) = max.filter(|max| length > *max) {
                return Err(format!(
                    "{name} is {length} characters long; at most {max} are allowed"
                ));
            }
            true
        }
        (Kind::Choice(allowed), Value::Number(n)) => {
            n.as_i64().is_some_and(|n| allowed.contains(&n))
        }
        (Kind::Integer { min, max }, Value::Number(n)) => {
            n.as_i64().is_some_and(|n| (min..=max).contains(&n))
        }
        (Kind::Flag, Value::Bool(_)) => true,
        (Kind::Texts, Value::Array(items)) => items.iter().all(Value::is_string),
        (Kind::Objects, Value::Array(items)) => items.iter().all(Value::is_object),
        (Kind::Object, Value::Object(_)) => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{name} has a value its definition does not allow"))
    }
}

/// `stored` with the writable properties of `body` merged in (see the module doc), or why
/// the body is refused.
pub fn merge(
    fields: &[(&'static str, Kind)],
    stored: &Map<String, Value>,
    body: &Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    let mut merged = stored.clone();
    for (name, value) in body {
        let Some((name, kind)) = fields.iter().find(|(n, _)| n == name) else {
            continue;
        };
        if *kind == Kind::ReadOnly || value.is_null() {
            continue;
        }
        check(name, *kind, value)?;
        merged.insert((*name).to_owned(), value.clone());
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn merging_keeps_what_the_body_omits_and_ignores_what_it_may_not_set() {
        let stored = object(json!({
            "id": "a", "prefix": "p", "additionalResponseHeaders": "X-A: 1",
            "schemaPath": "VirtualProxyConfig", "sessionInactivityTimeout": 30,
        }));
        let body = object(json!({
            "id": "b", "schemaPath": "Nope", "additionalResponseHeaders": "X-B: 2",
            "prefix": null, "madeUp": 1,
        }));
        let merged = merge(VIRTUAL_PROXY_CONFIG, &stored, &body).unwrap();
        assert_eq!(
            Value::Object(merged),
            json!({
                "id": "a", "prefix": "p", "additionalResponseHeaders": "X-B: 2",
                "schemaPath": "VirtualProxyConfig", "sessionInactivityTimeout": 30,
            })
        );
    }

    #[test]
    fn merging_refuses_values_the_definition_does_not_allow() {
        let stored = Map::new();
        let refuse = |body: Value| merge(VIRTUAL_PROXY_CONFIG, &stored, &object(body)).is_err();
        assert!(refuse(
            json!({"additionalResponseHeaders": "x".repeat(1025)})
        ));
        assert!(!refuse(
            json!({"additionalResponseHeaders": "x".repeat(1024)})
        ));
        assert!(refuse(json!({"prefix": "p".repeat(101)})));
        assert!(refuse(json!({"additionalResponseHeaders": 5})));
        assert!(refuse(
            json!({"websocketCrossOriginWhiteList": "a.example.com"})
        ));
        assert!(refuse(json!({"websocketCrossOriginWhiteList": [1]})));
        assert!(refuse(json!({"authenticationMethod": 9})));
        assert!(refuse(json!({"sessionInactivityTimeout": 0})));
        assert!(refuse(json!({"defaultVirtualProxy": "yes"})));
        assert!(refuse(json!({"tags": ["x"]})));
        let long_password = json!({"password": "p".repeat(524_289)});
        assert!(merge(DATA_CONNECTION, &stored, &object(long_password)).is_err());
    }

    #[test]
    fn only_scalar_properties_are_filterable() {
        let names = filterable(VIRTUAL_PROXY_CONFIG);
        assert!(names.contains(&"prefix") && names.contains(&"id"));
        assert!(!names.contains(&"websocketCrossOriginWhiteList"));
        assert!(!names.contains(&"createdDate"));
    }
}
