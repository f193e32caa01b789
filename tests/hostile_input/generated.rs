//! Cases too long to write in the corpus files: each limit, and one past it.

use std::collections::BTreeMap;

use qlik_csp_operator::csp::Directive;
use serde_json::json;

use super::corpus::{Case, Expect, Kind, case};

/// Values too long to write in the corpus files: each limit, and one past it.
pub fn generated() -> Vec<(Kind, Case)> {
    use Expect::{Accepted, Rejected};
    let label = |n: usize| "a".repeat(n);
    // "https://" + 60.60.60.61 + ".com" = 256 characters.
    let origin_256 = format!("https://{0}.{0}.{0}.{1}.com", label(60), label(61));
    let host_253 = format!("{0}.{0}.{0}.{1}.com", label(62), label(60));
    let mut cases = vec![
        (
            Kind::CspEntry,
            case(
                "a 256-character origin",
                json!({ "origin": origin_256 }),
                Accepted,
                None,
            ),
        ),
        (
            Kind::CspEntry,
            case(
                "a 257-character origin",
                json!({ "origin": format!("{origin_256}x") }),
                Rejected,
                None,
            ),
        ),
        (
            Kind::CspEntry,
            case(
                "a 253-character host",
                json!({ "origin": host_253 }),
                Accepted,
                None,
            ),
        ),
        (
            Kind::CspEntry,
            case(
                "a 254-character host",
                json!({ "origin": format!("b{host_253}") }),
                Rejected,
                None,
            ),
        ),
        (
            Kind::CspEntry,
            case(
                "a 254-character host under a wildcard",
                json!({ "origin": format!("*.b{host_253}") }),
                Rejected,
                None,
            ),
        ),
        (
            Kind::CspEntry,
            case(
                "a 63-character label",
                json!({ "origin": format!("https://{}.example.com", label(63)) }),
                Accepted,
                None,
            ),
        ),
        (
            Kind::CspEntry,
            case(
                "a 64-character label",
                json!({ "origin": format!("https://{}.example.com", label(64)) }),
                Rejected,
                None,
            ),
        ),
        (
            Kind::CspEntry,
            case(
                "a 1024-character description",
                json!({ "origin": "https://described.example.com", "description": "d".repeat(1024) }),
                Accepted,
                None,
            ),
        ),
        (
            Kind::CspEntry,
            case(
                "a 1025-character description",
                json!({ "description": "d".repeat(1025) }),
                Rejected,
                None,
            ),
        ),
        (
            Kind::CspEntry,
            case(
                "a one-megabyte description",
                json!({ "description": "d".repeat(1 << 20) }),
                Rejected,
                None,
            ),
        ),
        (
            Kind::CspEntry,
            case(
                "13 directives",
                json!({ "directives": Directive::ALL.iter().map(|d| d.name()).chain(["img-src"]).collect::<Vec<_>>() }),
                Rejected,
                None,
            ),
        ),
        (
            Kind::QlikTenant,
            case(
                "a 271-character URL",
                json!({ "url": format!("https://{}.com", label(259)) }),
                Rejected,
                None,
            ),
        ),
        (
            Kind::QlikTenant,
            case(
                "a 64-character label in the URL",
                json!({ "url": format!("https://{}.qlikcloud.com", label(64)) }),
                Rejected,
                None,
            ),
        ),
        (
            Kind::QlikTenant,
            case(
                "a 65537-character CA bundle",
                json!({ "caBundle": "c".repeat(65537) }),
                Rejected,
                None,
            ),
        ),
        (
            Kind::QlikTenant,
            case(
                "a 129-character header name",
                json!({ "header": { "key": "K".repeat(129) } }),
                Rejected,
                None,
            ),
        ),
        (
            Kind::QlikTenant,
            case(
                "a 254-character ConfigMap name",
                json!({ "header": { "configMapName": label(254) } }),
                Rejected,
                None,
            ),
        ),
        (
            Kind::QlikTenant,
            case(
                "a 65-character directive name",
                json!({ "header": { "baseDirectives": { label(65): ["'self'"] } } }),
                Rejected,
                Some("spec.header.baseDirectives"),
            ),
        ),
        (
            Kind::QlikTenant,
            case(
                "a 257-character source",
                json!({ "header": { "baseDirectives": { "img-src": [label(257)] } } }),
                Rejected,
                Some("spec.header.baseDirectives"),
            ),
        ),
        (
            Kind::QlikTenant,
            case(
                "33 sources",
                json!({ "header": { "baseDirectives": { "img-src": (0..33).map(|i| format!("s{i}.example.com")).collect::<Vec<_>>() } } }),
                Rejected,
                Some("spec.header.baseDirectives"),
            ),
        ),
        (
            Kind::QlikTenant,
            case(
                "a 129-character client id",
                json!({ "credentials": { "apiKey": null, "oauthClient": { "clientId": "c".repeat(129), "secretRef": { "name": "s", "key": "k" } } } }),
                Rejected,
                Some("spec.credentials.oauthClient.clientId"),
            ),
        ),
        (
            Kind::QlikTenant,
            case(
                "a 33-character duration",
                json!({ "syncInterval": format!("{}10m", "0h".repeat(16)) }),
                Rejected,
                None,
            ),
        ),
        (
            Kind::SecretRotation,
            case(
                "a 201-character key description",
                json!({ "credential": { "apiKey": { "description": "d".repeat(201) } } }),
                Rejected,
                None,
            ),
        ),
        (
            Kind::SecretRotation,
            case(
                "33 rollout targets",
                json!({ "rolloutTargets": (0..33).map(|i| json!({ "kind": "Deployment", "name": format!("web-{i}") })).collect::<Vec<_>>() }),
                Rejected,
                None,
            ),
        ),
        (
            Kind::SecretRotation,
            case(
                "a 254-character Secret name",
                json!({ "secret": { "name": label(254) } }),
                Rejected,
                None,
            ),
        ),
        (
            Kind::SecretRotation,
            case(
                "a 241-character Secret key",
                json!({ "secret": { "key": label(241) } }),
                Rejected,
                None,
            ),
        ),
        (
            Kind::SecretRotation,
            case(
                "a 33-character duration",
                json!({ "gracePeriod": format!("{}10m", "0h".repeat(16)) }),
                Rejected,
                None,
            ),
        ),
    ];
    let directives: BTreeMap<String, Vec<&str>> = (0..17)
        .map(|i| (format!("x{}-src", "y".repeat(i)), vec!["'self'"]))
        .collect();
    cases.push((
        Kind::QlikTenant,
        case(
            "17 base directives",
            json!({ "header": { "baseDirectives": directives } }),
            Rejected,
            Some("spec.header.baseDirectives"),
        ),
    ));
    cases
}
