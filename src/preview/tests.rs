//! The preview of a known tenant, case by case: each row is a tenant holding some entries,
//! manifests asking for others, and the actions expected.

use serde_json::json;

use super::*;
use crate::csp::Origin;

const NS: &str = "web";

fn held(id: &str, name: &str, origin: &str, directives: &[Directive]) -> CspOrigin {
    let origin = Origin::parse(origin).unwrap_or_else(|e| panic!("{e}"));
    CspOrigin {
        id: id.into(),
        content: CspOriginContent::new(name, &origin, directives.iter().copied(), false, ""),
        created_date: None,
        modified_date: None,
    }
}

fn entry(name: &str, origin: &str, directives: &[&str]) -> CspEntry {
    serde_json::from_value(json!({
        "apiVersion": "qlikops.io/v1alpha1", "kind": "CspEntry",
        "metadata": { "name": name, "namespace": NS },
        "spec": { "tenantRef": { "name": "acme" }, "origin": origin, "directives": directives },
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn input(entries: Vec<CspEntry>, remote: Vec<CspOrigin>) -> Input {
    Input {
        namespace: NS.into(),
        tenant: "acme".into(),
        url: "https://acme.eu.qlikcloud.com".into(),
        entries,
        tenant_manifest: None,
        remote,
        cluster: None,
    }
}

/// `change entry [remote id]` per change, then `unmanaged id`, then `problem entry reason`.
fn summary(preview: &Preview) -> Vec<String> {
    let mut lines: Vec<String> = preview
        .changes
        .iter()
        .map(|c| {
            let id = c
                .remote_id
                .as_deref()
                .map(|id| format!(" {id}"))
                .unwrap_or_default();
            format!("{:?} {}{id}", c.change, c.entry)
        })
        .collect();
    lines.extend(
        preview
            .unmanaged
            .iter()
            .map(|u| format!("unmanaged {}", u.id)),
    );
    lines.extend(
        preview
            .problems
            .iter()
            .map(|p| format!("problem {} {}", p.entry, p.reason)),
    );
    lines
}

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn each_situation_gives_the_action_the_controller_would_take() {
    use Directive::{FontSrc, ImgSrc};
    let cases: Vec<(&str, Input, Vec<&str>)> = vec![
        (
            "a new origin is created",
            input(
                vec![entry("cdn", "https://cdn.example.com", &["img-src"])],
                vec![],
            ),
            vec!["Create cdn"],
        ),
        (
            "an entry the operator made, as the manifest says, is unchanged",
            input(
                vec![entry("cdn", "https://cdn.example.com", &["img-src"])],
                vec![held("r1", "web/cdn", "https://cdn.example.com", &[ImgSrc])],
            ),
            vec!["Unchanged cdn r1"],
        ),
        (
            "a changed directive is an update of the same tenant entry",
            input(
                vec![entry(
                    "cdn",
                    "https://cdn.example.com",
                    &["img-src", "font-src"],
                )],
                vec![held("r1", "web/cdn", "https://cdn.example.com", &[ImgSrc])],
            ),
            vec!["Update cdn r1"],
        ),
        (
            "a moved origin updates the entry the CspEntry tracks",
            input(
                vec![entry("cdn", "https://cdn2.example.com", &["img-src"])],
                vec![held("r1", "web/cdn", "https://cdn.example.com", &[ImgSrc])],
            ),
            vec!["Update cdn r1"],
        ),
        (
            "a console entry granting the same is adopted without a write",
            input(
                vec![entry("maps", "https://maps.example.com", &["img-src"])],
                vec![held(
                    "r1",
                    "Maps (by hand)",
                    "https://maps.example.com",
                    &[ImgSrc],
                )],
            ),
            vec!["Adopt maps r1"],
        ),
        (
            "a console entry granting something else is adopted with one update",
            input(
                vec![entry("maps", "https://maps.example.com", &["img-src"])],
                vec![held(
                    "r1",
                    "Maps (by hand)",
                    "https://maps.example.com",
                    &[FontSrc],
                )],
            ),
            vec!["Update maps r1"],
        ),
        (
            "an entry the operator made whose CspEntry left the manifests is deleted",
            input(
                vec![entry("cdn", "https://cdn.example.com", &["img-src"])],
                vec![
                    held("r1", "web/cdn", "https://cdn.example.com", &[ImgSrc]),
                    held("r2", "web/old", "https://old.example.com", &[ImgSrc]),
                ],
            ),
            vec!["Unchanged cdn r1", "Delete old r2"],
        ),
        (
            "entries not named by the operator, or named for another namespace, are left alone",
            input(
                vec![],
                vec![
                    held("r1", "by hand", "https://hand.example.com", &[ImgSrc]),
                    held("r2", "other/cdn", "https://cdn.example.com", &[ImgSrc]),
                ],
            ),
            vec!["unmanaged r1", "unmanaged r2"],
        ),
        (
            "the younger of two CspEntries for one origin reports a duplicate",
            input(
                vec![
                    entry("a", "https://cdn.example.com", &["img-src"]),
                    entry("b", "https://CDN.example.com", &["font-src"]),
                ],
                vec![],
            ),
            vec!["Create a", "problem b DuplicateOrigin"],
        ),
        (
            "an origin the operator refuses is reported as the controller would",
            input(vec![entry("wild", "*.com", &["img-src"])], vec![]),
            vec!["problem wild InvalidSpec"],
        ),
    ];
    for (what, input, expected) in cases {
        assert_eq!(summary(&preview(&input, now())), expected, "{what}");
    }
}

#[test]
fn an_update_lists_each_field_it_changes() {
    let input = input(
        vec![entry(
            "cdn",
            "https://cdn.example.com",
            &["img-src", "font-src"],
        )],
        vec![held(
            "r1",
            "by hand",
            "https://cdn.example.com",
            &[Directive::ImgSrc],
        )],
    );
    let preview = preview(&input, now());
    let fields: Vec<(&str, &str, &str)> = preview.changes[0]
        .fields
        .iter()
        .map(|f| (f.field, f.from.as_str(), f.to.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("directives", "img-src", "font-src img-src"),
            ("name", "by hand", "web/cdn")
        ]
    );
    assert_eq!(preview.writes(), 1);
}

#[test]
fn creates_beyond_the_tenant_limit_wait_after_deletes_make_room() {
    let full: Vec<CspOrigin> = (0..TENANT_ENTRY_LIMIT)
        .map(|i| {
            let origin = format!("https://h{i}.example.com");
            held(
                &format!("r{i}"),
                &format!("web/old{i}"),
                &origin,
                &[Directive::ImgSrc],
            )
        })
        .collect();
    // One old entry leaves, two new ones come: one fits after the delete, one waits.
    let mut entries: Vec<CspEntry> = (1..TENANT_ENTRY_LIMIT)
        .map(|i| {
            entry(
                &format!("old{i}"),
                &format!("https://h{i}.example.com"),
                &["img-src"],
            )
        })
        .collect();
    entries.push(entry("new1", "https://new1.example.com", &["img-src"]));
    entries.push(entry("new2", "https://new2.example.com", &["img-src"]));
    let preview = preview(&input(entries, full), now());
    assert_eq!(
        (preview.count(Change::Create), preview.count(Change::Delete)),
        (1, 1)
    );
    let problems: Vec<(&str, &str)> = preview
        .problems
        .iter()
        .map(|p| (p.entry.as_str(), p.reason))
        .collect();
    assert_eq!(problems, [("new2", "TenantLimitReached")]);
}

#[test]
fn the_header_is_checked_against_qlik_and_each_edge_target() {
    let tenant: QlikTenant = serde_json::from_value(json!({
        "apiVersion": "qlikops.io/v1alpha1", "kind": "QlikTenant",
        "metadata": { "name": "acme", "namespace": NS },
        "spec": {
            "url": "https://acme.eu.qlikcloud.com",
            "credentials": { "apiKey": { "secretRef": { "name": "k", "key": "k" } } },
            "header": {
                "source": "Local",
                "baseDirectives": { "default-src": ["'self'"] },
                "targets": [{ "kind": "HTTPRoute", "name": "portal", "rules": [] }],
            },
        },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let entries: Vec<CspEntry> = (0..200)
        .map(|i| {
            entry(
                &format!("e{i}"),
                &format!("https://host-{i:03}.example.com"),
                &["img-src"],
            )
        })
        .collect();
    let mut input = input(entries, vec![]);
    input.tenant_manifest = Some(tenant);
    let header = preview(&input, now()).header;
    let length = header.length.unwrap_or_default();
    assert!(length > 4096 && length <= 6144, "{length}");
    let verdicts: Vec<(&str, usize, bool)> = header
        .limits
        .iter()
        .map(|l| (l.target.as_str(), l.max, l.fits))
        .collect();
    assert_eq!(
        verdicts,
        [("Qlik", 6144, true), ("HTTPRoute/portal", 4096, false)]
    );
    assert_eq!(header.source, "Local");
}

#[test]
fn the_json_carries_every_change_and_the_counts() {
    let input = input(
        vec![entry("cdn", "https://cdn.example.com", &["img-src"])],
        vec![held(
            "r9",
            "by hand",
            "https://hand.example.com",
            &[Directive::ImgSrc],
        )],
    );
    let value = json(&preview(&input, now()));
    assert_eq!(value["changes"][0]["change"], "create");
    assert_eq!(value["unmanaged"][0]["id"], "r9");
    assert_eq!(value["summary"]["create"], 1);
    assert_eq!(value["summary"]["tenantWrites"], 1);
    let text = text(&preview(&input, now()));
    assert!(
        text.contains("  + create  cdn  https://cdn.example.com"),
        "{text}"
    );
    assert!(text.ends_with("Plan: 1 to create, 0 to update, 0 to delete; 0 to adopt without a tenant write, 0 unchanged, 1 left alone, 0 problems.\n"), "{text}");
}

#[test]
fn with_the_cluster_deletes_follow_status_ids_not_names() {
    let remote = vec![
        held(
            "r1",
            "Maps (by hand)",
            "https://maps.example.com",
            &[Directive::ImgSrc],
        ),
        held(
            "r2",
            "web/kept",
            "https://kept.example.com",
            &[Directive::ImgSrc],
        ),
        held(
            "r3",
            "Orphaned",
            "https://orphan.example.com",
            &[Directive::ImgSrc],
        ),
    ];
    let tracked = |name: &str, id: &str, orphan| Tracked {
        name: name.into(),
        id: Some(id.into()),
        orphan,
    };
    // `maps` (adopted under the console's name) and `gone` (deletionPolicy Orphan) left
    // Git; `kept` stays.
    let mut with_cluster = input(
        vec![entry("kept", "https://kept.example.com", &["img-src"])],
        remote.clone(),
    );
    with_cluster.cluster = Some(vec![
        tracked("maps", "r1", false),
        tracked("kept", "r2", false),
        tracked("gone", "r3", true),
    ]);
    assert_eq!(
        summary(&preview(&with_cluster, now())),
        ["Unchanged kept r2", "Delete maps r1", "unmanaged r3"]
    );
    // Without the cluster the adopted entry cannot be told from one nobody manages.
    let without = input(
        vec![entry("kept", "https://kept.example.com", &["img-src"])],
        remote,
    );
    assert_eq!(
        summary(&preview(&without, now())),
        ["Unchanged kept r2", "unmanaged r1", "unmanaged r3"]
    );
}
