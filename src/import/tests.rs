use super::*;
use crate::tenant::wire::CspOriginContent;

fn remote(
    id: &str,
    name: &str,
    origin: &str,
    edit: impl FnOnce(&mut CspOriginContent),
) -> CspOrigin {
    let mut content = CspOriginContent {
        name: name.into(),
        origin: origin.into(),
        img_src: true,
        ..CspOriginContent::default()
    };
    edit(&mut content);
    CspOrigin {
        id: id.into(),
        content,
        created_date: None,
        modified_date: None,
    }
}

fn names(imported: &Imported) -> Vec<&str> {
    imported.entries.iter().map(|e| e.name.as_str()).collect()
}

#[test]
fn an_entry_becomes_a_cspentry_granting_exactly_what_it_grants() {
    let tenant = [remote("r1", "Maps", "wss://Maps.Example.com:8443", |c| {
        c.img_src = false;
        c.script_src = true;
        c.connect_src = true;
        c.connect_src_wss = true;
        c.description = "maps for the sales app".into();
    })];
    let imported = import(&tenant, "web", "acme");
    assert_eq!(imported.refused, []);
    assert_eq!(
        imported.entries[0].manifest,
        json!({
            "apiVersion": "qlikops.io/v1alpha1",
            "kind": "CspEntry",
            "metadata": { "name": "wss-maps-example-com-8443", "namespace": "web" },
            "spec": {
                "tenantRef": { "name": "acme" },
                "origin": "wss://Maps.Example.com:8443",
                "directives": ["connect-src", "script-src"],
                "allowWebSocket": true,
                "description": "maps for the sales app",
            },
        })
    );
    // What the operator will compare: the manifest's content is the tenant's, so applying
    // it adopts the entry without a write.
    let entry: crate::api::CspEntry = serde_json::from_value(imported.entries[0].manifest.clone())
        .unwrap_or_else(|e| panic!("{e}"));
    let desired = crate::controller::csp_entry::plan::desired_content("web", "x", &entry.spec)
        .unwrap_or_else(|e| panic!("{e}"));
    let held = &tenant[0].content;
    assert_eq!(
        (
            &desired.origin,
            &desired.description,
            desired.connect_src_wss,
            desired.directives()
        ),
        (
            &held.origin,
            &held.description,
            held.connect_src_wss,
            held.directives()
        )
    );
}

#[test]
fn names_are_dns_labels_derived_from_the_origin() {
    let cases = [
        ("https://cdn.example.com", "cdn-example-com"),
        ("cdn.example.com", "cdn-example-com"),
        (
            "HTTP://Legacy.Example.com:8080",
            "http-legacy-example-com-8080",
        ),
        ("*.example.com", "wildcard-example-com"),
        ("https://*.example.com:*", "wildcard-example-com-any-port"),
    ];
    for (origin, expected) in cases {
        let imported = import(&[remote("r", "n", origin, |_| {})], "web", "acme");
        assert_eq!(names(&imported), [expected], "{origin}");
    }
}

#[test]
fn colliding_and_long_names_get_a_stable_hash_suffix() {
    let tenant = [
        remote("r1", "a", "https://a-b.example.com", |_| {}),
        remote("r2", "b", "https://a.b-example.com", |_| {}),
        remote("r3", "c", "https://only.example.com", |_| {}),
    ];
    let imported = import(&tenant, "web", "acme");
    let first = names(&imported);
    assert_eq!(first.len(), 3);
    assert!(first.contains(&"only-example-com"), "{first:?}");
    let suffixed: Vec<&&str> = first
        .iter()
        .filter(|n| n.starts_with("a-b-example-com-"))
        .collect();
    assert_eq!(
        suffixed.len(),
        2,
        "both colliding origins are suffixed: {first:?}"
    );
    assert_ne!(suffixed[0], suffixed[1]);

    // The same tenant listed in another order names every entry the same way.
    let reversed: Vec<CspOrigin> = tenant.iter().rev().cloned().collect();
    assert_eq!(names(&import(&reversed, "web", "acme")), first);

    let long = format!("https://{}.example.com", ["label"; 20].join("."));
    let name = names(&import(&[remote("r", "n", &long, |_| {})], "web", "acme"))[0].to_owned();
    assert!(name.len() <= MAX_NAME_LEN && name.len() > 50, "{name}");
    let dns_label = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    assert!(dns_label && !name.ends_with('-'), "{name}");
}

#[test]
fn entries_the_operator_cannot_manage_are_refused_with_the_reason() {
    let tenant = [
        remote("r1", "path", "https://evil.example.com/x", |_| {}),
        remote("r2", "nothing", "https://none.example.com", |c| {
            c.img_src = false
        }),
        remote("r3", "public suffix", "*.com", |_| {}),
        remote("r4", "first", "https://twice.example.com", |_| {}),
        remote("r5", "second", "https://TWICE.example.com", |_| {}),
        remote("r6", "fine", "https://fine.example.com", |_| {}),
    ];
    let imported = import(&tenant, "web", "acme");
    assert_eq!(names(&imported), ["fine-example-com", "twice-example-com"]);
    let refused: Vec<(&str, &str)> = imported
        .refused
        .iter()
        .map(|r| (r.remote_id.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(refused.len(), 4, "{refused:#?}");
    let reason = |id: &str| {
        refused
            .iter()
            .find(|r| r.0 == id)
            .map(|r| r.1)
            .unwrap_or_default()
    };
    assert!(reason("r1").contains("path"), "{}", reason("r1"));
    assert!(reason("r2").contains("no directive"), "{}", reason("r2"));
    assert!(reason("r3").contains("public suffix"), "{}", reason("r3"));
    assert!(reason("r5").contains("entry r4"), "{}", reason("r5"));
}

#[test]
fn the_yaml_names_the_tenant_entry_and_parses_back() {
    let imported = import(
        &[remote(
            "r1",
            "typed \"by hand\"\nsecond line",
            "https://cdn.example.com",
            |_| {},
        )],
        "web",
        "acme",
    );
    let text = entry_yaml(&imported.entries[0]);
    let first_line = text.lines().next().unwrap_or_default();
    assert_eq!(
        first_line,
        "# Imported from the tenant's entry r1 (\"typed \\\"by hand\\\"\\nsecond line\")."
    );
    let back: crate::api::CspEntry =
        serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.spec.origin, "https://cdn.example.com");

    let skeleton = tenant_skeleton("web", "acme", "https://acme.eu.qlikcloud.com", None);
    assert!(skeleton.contains("kubectl -n web create secret generic qlik-api-key"));
    let tenant: crate::api::QlikTenant =
        serde_norway::from_str(&skeleton).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        tenant.spec.url.as_deref(),
        Some("https://acme.eu.qlikcloud.com")
    );
}
