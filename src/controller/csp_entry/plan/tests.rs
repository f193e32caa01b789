//! Unit tests of the csp-entry plan, with a fixed `now`.

use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::json;

fn now() -> Timestamp {
    Timestamp::from_second(1_767_225_600).unwrap()
}

fn at(second: i64) -> Option<Timestamp> {
    Some(Timestamp::from_second(second).unwrap())
}

/// A ready tenant with no entries, and the entry `web/cdn` with its finalizer.
fn observed() -> Observed {
    let spec = serde_json::from_value(json!({
        "tenantRef": {"name": "acme"}, "origin": "https://cdn.example.com",
        "directives": ["script-src", "img-src"], "description": "cdn"
    }));
    let entry = EntryState {
        name: "cdn".into(),
        namespace: "web".into(),
        generation: Some(1),
        created: at(1_000),
        spec: spec.unwrap(),
        status: None,
        deleting: false,
        has_finalizer: true,
    };
    let (tenant, remote, remote_limit) = (TenantState::Ready, Arc::from([]), TENANT_ENTRY_LIMIT);
    Observed {
        entry,
        tenant,
        remote,
        remote_count: 0,
        remote_limit,
        rivals: Vec::new(),
    }
}

impl Observed {
    fn holding(mut self, entries: &[(&str, CspOriginContent)]) -> Observed {
        let remote: Vec<CspOrigin> = entries
            .iter()
            .map(|(id, content)| CspOrigin {
                id: id.to_string(),
                content: content.clone(),
                created_date: None,
                modified_date: None,
            })
            .collect();
        self.remote_count = remote.len();
        self.remote = remote.into();
        self
    }

    fn tracking(self, id: &str) -> Observed {
        let status = CspEntryStatus {
            id: Some(id.into()),
            ..CspEntryStatus::default()
        };
        self.edit(|e| e.status = Some(status))
    }

    fn edit(mut self, edit: impl FnOnce(&mut EntryState)) -> Observed {
        edit(&mut self.entry);
        self
    }

    fn deleting(self) -> Observed {
        self.edit(|e| e.deleting = true)
    }

    fn tenant(self, tenant: TenantState) -> Observed {
        Observed { tenant, ..self }
    }
}

/// The content the spec asks for, edited by `edit`.
fn ours(edit: impl FnOnce(&mut CspOriginContent)) -> CspOriginContent {
    let mut content = desired_content("web", "cdn", &observed().entry.spec).unwrap();
    edit(&mut content);
    content
}

fn same(_: &mut CspOriginContent) {}

fn not_ready() -> TenantState {
    let (reason, message) = ("Unreachable".into(), "timed out".into());
    TenantState::NotReady { reason, message }
}

/// `action | Ready status and reason | recorded id | requeue`; checks that Synced
/// agrees with Ready and that what is written to the tenant is the spec's content.
fn summary(o: &Observed) -> String {
    let plan = plan(o, now());
    let action = match &plan.action {
        Action::Create(c) | Action::Update { content: c, .. } if *c != ours(same) => {
            format!("wrong content {c:?}")
        }
        Action::Create(_) => "Create".to_owned(),
        Action::Update {
            id, adopted: true, ..
        } => format!("Update {id} adopted"),
        Action::Update { id, .. } => format!("Update {id}"),
        Action::Adopt { id } => format!("Adopt {id}"),
        Action::Delete { id } => format!("Delete {id}"),
        other => format!("{other:?}"),
    };
    let (ready, id) = match &plan.status {
        None => ("-".to_owned(), "-"),
        Some(s) => {
            assert_eq!(
                (s.ready.status, s.ready.reason),
                (s.synced.status, s.synced.reason)
            );
            let ready = format!(
                "{} {}",
                if s.ready.status { "True" } else { "False" },
                s.ready.reason
            );
            (ready, s.id.as_deref().unwrap_or("-"))
        }
    };
    let requeue = match plan.requeue {
        Requeue::After(d) => format!("After {}s", d.as_secs()),
        other => format!("{other:?}"),
    };
    format!("{action} | {ready} | {id} | {requeue}")
}

fn in_sync() -> Observed {
    observed().holding(&[("r1", ours(same))]).tracking("r1")
}

#[test]
fn desired_content_names_the_entry_after_the_resource() {
    let content = ours(same);
    assert_eq!([&content.name, &content.description], ["web/cdn", "cdn"]);
    let granted: Vec<Directive> = content.directives().into_iter().collect();
    assert_eq!(granted, [Directive::ImgSrc, Directive::ScriptSrc]);
    let bad = observed().edit(|e| e.spec.origin = "https://a.example/path".into());
    let result = desired_content("web", "cdn", &bad.entry.spec);
    assert_eq!(result, Err(OriginError::Path));
}

#[test]
fn plan_adds_the_finalizer_before_anything_else() {
    let bare = observed().edit(|e| e.has_finalizer = false);
    let broken = bare.clone().tenant(TenantState::Missing);
    let broken = broken.edit(|e| e.spec.origin = "a b".into());
    for o in [bare, broken] {
        assert_eq!(
            summary(&o),
            "AddFinalizer | False Pending | - | Immediately"
        );
    }
}

#[test]
fn plan_creates_the_entry_when_the_tenant_has_none() {
    let o = observed().holding(&[("x", CspOriginContent::default())]);
    assert_eq!(summary(&o), "Create | True Created | - | Immediately");
    let synced_at = plan(&o, now()).status.and_then(|s| s.synced_at);
    assert_eq!(synced_at, Some(now()));
}

#[test]
fn plan_adopts_an_existing_entry_with_the_same_origin() {
    let cases = [
        (
            ours(|c| c.origin = "HTTPS://CDN.EXAMPLE.COM".into()),
            "Adopt r1 | True Adopted | r1 | Drift",
        ),
        // Adopting keeps the console's name: no tenant write (`import` relies on it).
        (
            ours(|c| c.name = "typed in the console".into()),
            "Adopt r1 | True Adopted | r1 | Drift",
        ),
        (
            ours(|c| {
                c.name = "typed in the console".into();
                c.font_src = true;
            }),
            "Update r1 adopted | True Adopted | r1 | Immediately",
        ),
    ];
    for (content, expected) in cases {
        assert_eq!(summary(&observed().holding(&[("r1", content)])), expected);
    }
}

#[test]
fn plan_updates_with_a_full_put_when_the_entry_drifted() {
    let drifts = [
        ours(|c| c.img_src = false), // a directive switched off in the console
        ours(|c| c.frame_src = true),
        ours(|c| c.connect_src_wss = true),
        ours(|c| c.description = "edited".into()),
        ours(|c| c.origin = "https://old.example.com".into()),
    ];
    for drift in drifts {
        let o = observed().holding(&[("r1", drift)]).tracking("r1");
        assert_eq!(summary(&o), "Update r1 | True Updated | r1 | Immediately");
    }
}

#[test]
fn plan_never_writes_only_to_rename_an_entry() {
    let renamed = ours(|c| c.name = "renamed in the console".into());
    let o = observed().holding(&[("r1", renamed)]).tracking("r1");
    assert_eq!(summary(&o), "Nothing | True InSync | r1 | Drift");
    let update = plan(&o.edit(|e| e.spec.allow_web_socket = true), now()).action;
    let renamed_back =
        matches!(&update, Action::Update { content, .. } if content.name == "web/cdn");
    assert!(
        renamed_back,
        "a write names it after the resource: {update:?}"
    );
}

#[test]
fn plan_does_nothing_when_the_entry_is_in_sync() {
    assert_eq!(summary(&in_sync()), "Nothing | True InSync | r1 | Drift");
    let synced_at = plan(&in_sync(), now()).status.and_then(|s| s.synced_at);
    assert_eq!(synced_at, None, "a quiet drift check changes nothing");
}

#[test]
fn plan_keeps_a_recorded_success_reason_while_in_sync() {
    let created = Condition {
        type_: READY.into(),
        status: "True".into(),
        reason: "Created".into(),
        message: "created the tenant's entry".into(),
        observed_generation: Some(1),
        last_transition_time: Time(now()),
    };
    let o = in_sync().edit(|e| {
        e.status
            .iter_mut()
            .for_each(|s| s.conditions.push(created.clone()))
    });
    let ready = plan(&o, now()).status.map(|s| s.ready);
    assert_eq!(
        ready.map(|r| (r.reason, r.message)),
        Some(("Created", created.message))
    );
}

#[test]
fn plan_re_creates_an_entry_that_vanished_from_the_tenant() {
    let o = observed().tracking("gone");
    assert_eq!(summary(&o), "Create | True Created | - | Immediately");
    let message = plan(&o, now()).status.map(|s| s.ready.message);
    assert!(message.is_some_and(|m| m.contains("gone")));
}

#[test]
fn plan_deletes_the_remote_entry_then_removes_the_finalizer() {
    let foreign = ours(|c| c.name = "someone else's".into());
    let cases = [
        // by id, whatever its name
        (
            observed()
                .holding(&[("r1", foreign.clone())])
                .tracking("r1"),
            "Delete r1 | False Deleting | r1 | Immediately",
        ),
        // by origin, only when it has our name
        (
            observed().holding(&[("r2", ours(same))]),
            "Delete r2 | False Deleting | r2 | Immediately",
        ),
        (
            observed().holding(&[("r3", foreign)]),
            "RemoveFinalizer | - | - | Never",
        ),
        // already gone, or the DELETE answered 404
        (
            observed().tracking("gone"),
            "RemoveFinalizer | - | - | Never",
        ),
    ];
    for (o, expected) in cases {
        assert_eq!(summary(&o.deleting()), expected);
    }
}

#[test]
fn plan_deletion_never_depends_on_a_valid_spec() {
    let o = in_sync()
        .deleting()
        .edit(|e| e.spec.origin = "not an origin;".into());
    assert_eq!(summary(&o), "Delete r1 | False Deleting | r1 | Immediately");
}

#[test]
fn plan_orphans_the_remote_entry_whatever_the_tenant_or_spec() {
    let o = in_sync().deleting().edit(|e| {
        e.spec.deletion_policy = DeletionPolicy::Orphan;
        e.spec.origin.clear();
    });
    for tenant in [TenantState::Ready, TenantState::Missing, not_ready()] {
        assert_eq!(
            summary(&o.clone().tenant(tenant)),
            "RemoveFinalizer | - | - | Never"
        );
    }
}

#[test]
fn plan_deletion_waits_for_a_tenant_that_is_not_ready_but_not_for_a_missing_one() {
    let o = in_sync().deleting();
    let waiting = "Nothing | False TenantNotReady | r1 | After 30s";
    assert_eq!(summary(&o.clone().tenant(not_ready())), waiting);
    let missing = summary(&o.tenant(TenantState::Missing));
    assert_eq!(missing, "RemoveFinalizer | - | - | Never");
}

#[test]
fn plan_deletion_without_our_finalizer_does_nothing() {
    let o = in_sync().deleting().edit(|e| e.has_finalizer = false);
    assert_eq!(summary(&o), "Nothing | - | - | Never");
}

#[test]
fn plan_gives_a_duplicated_origin_to_the_older_entry() {
    let owner = "Nothing | True InSync | r1 | Drift";
    // The owner's entry is neither touched nor recorded as ours.
    let duplicate = "Nothing | False DuplicateOrigin | - | After 60s";
    // (our creation, the rival's, the rival's name; ours is "cdn")
    let cases = [
        ((1_000, 2_000, "aaa"), owner),     // the older owns the origin
        ((2_000, 1_000, "zzz"), duplicate), // the younger does not
        ((1_000, 1_000, "zzz"), owner),     // a tie goes to the smaller name
        ((1_000, 1_000, "aaa"), duplicate),
    ];
    for ((ours_at, rival_at, rival), expected) in cases {
        let mut o = in_sync().edit(|e| e.created = at(ours_at));
        o.rivals = vec![Claimant {
            name: rival.into(),
            created: at(rival_at),
        }];
        assert_eq!(summary(&o), expected, "rival {rival}");
    }
}

#[test]
fn plan_removes_what_an_entry_left_under_its_old_origin_when_it_moves_onto_a_claimed_one() {
    // The spec moved onto cdn.example.com, which the older "aaa" owns; the tenant still
    // allows the origin the spec named before, under this entry's id.
    let left_behind = ours(|c| c.origin = "https://old.example.com".into());
    let moved = observed()
        .holding(&[("r1", left_behind)])
        .tracking("r1")
        .edit(|e| e.created = at(2_000));
    let rival = || Claimant {
        name: "aaa".into(),
        created: at(1_000),
    };
    let mut o = moved;
    o.rivals = vec![rival()];
    assert_eq!(
        summary(&o),
        "Delete r1 | False DuplicateOrigin | - | Immediately"
    );
    // Once it is gone: nothing to do, nothing tracked.
    let mut gone = observed().edit(|e| e.created = at(2_000));
    gone.rivals = vec![rival()];
    assert_eq!(
        summary(&gone),
        "Nothing | False DuplicateOrigin | - | After 60s"
    );
}

#[test]
fn plan_deletion_of_a_duplicate_never_deletes_the_owners_entry() {
    let owners = ours(|c| c.name = "web/aaa".into());
    let mut o = observed()
        .holding(&[("r1", owners)])
        .tracking("r1")
        .deleting();
    o.rivals = vec![Claimant {
        name: "aaa".into(),
        created: at(1),
    }];
    assert_eq!(summary(&o), "RemoveFinalizer | - | - | Never");
}

#[test]
fn plan_reports_the_limit_without_disturbing_anything() {
    let others: Vec<(String, CspOriginContent)> = (1..TENANT_ENTRY_LIMIT)
        .map(|i| (format!("x{i}"), CspOriginContent::default()))
        .collect();
    let with = |extra: (&str, CspOriginContent)| {
        let mut entries: Vec<(&str, CspOriginContent)> = others
            .iter()
            .map(|(i, c)| (i.as_str(), c.clone()))
            .collect();
        entries.push(extra);
        observed().holding(&entries).tracking("r1")
    };
    let full = with(("x0", CspOriginContent::default()));
    assert_eq!(
        summary(&full),
        "Nothing | False TenantLimitReached | r1 | After 60s"
    );
    // The limit only blocks creating: an entry already there is still kept in sync.
    let drifted = with(("r1", ours(|c| c.img_src = false)));
    assert_eq!(
        summary(&drifted),
        "Update r1 | True Updated | r1 | Immediately"
    );
}

#[test]
fn plan_waits_for_a_tenant_that_is_not_ready() {
    let o = observed().tracking("r1").tenant(not_ready());
    assert_eq!(
        summary(&o),
        "Nothing | False TenantNotReady | r1 | After 30s"
    );
}

#[test]
fn plan_reports_a_missing_tenant_by_its_namespace_and_name_as_not_found() {
    let o = observed().tracking("r1").tenant(TenantState::Missing);
    assert_eq!(
        summary(&o),
        "Nothing | False TenantNotFound | r1 | After 30s"
    );
    let status = plan(&o, now()).status.unwrap();
    assert_eq!(
        status.ready.message,
        tenant_not_found_message("web", "acme")
    );
    assert!(status.ready.message.contains("web/acme"));
}

#[test]
fn plan_rejects_an_invalid_origin_defensively() {
    let o = observed().edit(|e| e.spec.origin = "https://cdn.example.com/path".into());
    assert_eq!(summary(&o), "Nothing | False InvalidSpec | - | OnChange");
}

#[test]
fn plan_syncs_nothing_for_a_client_managed_site_and_reports_the_entry_compiled_locally() {
    let o = observed().tenant(TenantState::Local);
    assert_eq!(summary(&o), "Nothing | True CompiledLocally | - | OnChange");
    // An id left from when the tenant was a cloud tenant is dropped, never deleted there.
    assert_eq!(
        summary(&in_sync().tenant(TenantState::Local)),
        "Nothing | True CompiledLocally | - | OnChange"
    );
}

#[test]
fn plan_still_refuses_an_invalid_or_duplicated_origin_on_a_site() {
    let invalid = observed()
        .tenant(TenantState::Local)
        .edit(|e| e.spec.origin = "https://cdn.example.com/path".into());
    assert!(
        summary(&invalid).contains("False InvalidSpec"),
        "{}",
        summary(&invalid)
    );
    let mut duplicated = observed().tenant(TenantState::Local);
    duplicated.rivals = vec![Claimant {
        name: "older".into(),
        created: at(10),
    }];
    assert!(
        summary(&duplicated).contains("False DuplicateOrigin"),
        "{}",
        summary(&duplicated)
    );
}

#[test]
fn plan_deletion_on_a_site_only_releases_the_finalizer() {
    let o = observed().tenant(TenantState::Local).deleting();
    assert_eq!(summary(&o), "RemoveFinalizer | - | - | Never");
}
