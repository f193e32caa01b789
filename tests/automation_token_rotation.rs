//! Automation execution tokens rotated by the `secret-rotation` controller against a real
//! kube-apiserver and the tenant emulator: every rotation copies the current automation
//! (the spec's before the first one), gives the copy the copied one's state, writes its
//! token and execution URL into the Secret, and deletes the automation before it only
//! once the grace period is over; a lost copy answer is adopted, never copied twice; the
//! current automation is never deleted, not even with the SecretRotation; a current
//! automation deleted by someone else stalls the rotation.
//!
//! The emulator does not run automations, so "the token works" means the tenant holds an
//! automation with that token. Each test runs its own controllers (health checks every
//! second) on a clock it moves together with the emulator's.

mod rotation_rig;
mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::DeleteParams;
use qlik_csp_operator::api::SecretRotation;
use qlik_csp_operator::api::secret_rotation::{RolloutTarget, WorkloadKind};
use qlik_csp_operator::controller::secret_rotation::{Clock, marker};
use rotation_rig::*;
use serde_json::json;

const GRACE: Duration = Duration::from_secs(120);
const READ: &str = "automations.get";

fn current_id(rotation: &SecretRotation) -> String {
    let status = rotation.status.as_ref().unwrap();
    status.current.as_ref().unwrap().id.clone().unwrap()
}

fn previous_id(rotation: &SecretRotation) -> Option<String> {
    rotation.status.as_ref()?.previous.as_ref()?.id.clone()
}

fn draining(rotation: &SecretRotation, revision: i64) -> bool {
    rotation.status.as_ref().is_some_and(|s| {
        s.revision == revision
            && s.phase == qlik_csp_operator::api::secret_rotation::Phase::Draining
    })
}

/// Requests of `method` on `path` in the emulator's log.
async fn requested(rig: &Rig, method: &str, path: &str) -> usize {
    rig.requests()
        .await
        .iter()
        .filter(|r| r["method"] == method && r["path"] == path)
        .count()
}

#[tokio::test]
async fn each_rotation_copies_the_current_automation_and_deletes_the_one_before_after_the_grace() {
    let rig = Rig::start(|_| {}).await;
    let running = Running::start_keeping_grace(&rig, false);
    rig.create(&deployment("nightly")).await;
    let (original, original_token) = rig.seed_automation("Nightly export", "available").await;
    let mut rotation = automation_rotation("nightly", "nightly-run", &original, GRACE);
    rotation.spec.rollout_targets = vec![RolloutTarget {
        kind: WorkloadKind::Deployment,
        name: "nightly".to_owned(),
    }];
    let created = rig.create(&rotation).await;
    let uid = created.metadata.uid.clone().unwrap();
    let admin = rig.admin();

    // The first rotation copies the spec's automation; the original stays for the grace.
    let first = rig
        .wait_rotation("nightly", "revision 1 draining", |r| draining(r, 1))
        .await;
    let copy1 = current_id(&first);
    assert_ne!(copy1, original);
    assert_eq!(previous_id(&first).as_deref(), Some(original.as_str()));
    let held = rig.automation(&copy1).await.unwrap();
    assert_eq!(
        held["name"],
        format!("Nightly export {}", marker::automation_marker(&uid, 1))
    );
    assert_eq!(held["state"], "available", "enabled, as the original was");
    let token1 = rig.secret_value("nightly-run", "token").await.unwrap();
    assert_eq!(held["executionToken"], token1.as_str());
    assert_ne!(token1, original_token);
    assert_eq!(
        rig.secret_value("nightly-run", "token.url")
            .await
            .as_deref(),
        Some(admin.automation_execution_url(&copy1).as_str())
    );
    assert_eq!(
        rig.secret_value("nightly-run", "token.previous").await,
        None
    );
    assert!(
        rig.automation(&original).await.is_some(),
        "nothing is deleted during the grace period"
    );
    assert_eq!(rig.control.count("automations.delete").await, 0);
    assert_eq!(
        requested(
            &rig,
            "POST",
            &format!("/api/v1/automations/{original}/actions/copy")
        )
        .await,
        1
    );

    // After the grace period the original is deleted; the copy is all that is left.
    running.advance(&rig, GRACE + Duration::from_secs(1)).await;
    rig.settle("nightly", 1, READ).await;
    assert!(
        rig.automation(&original).await.is_none(),
        "the original is deleted"
    );
    assert!(rig.automation_token_works(&token1).await);
    assert!(!rig.automation_token_works(&original_token).await);

    // The second rotation copies the copy, not the spec's automation.
    rig.request_rotation(
        "nightly",
        running.clock.now() + jiff::SignedDuration::from_secs(1),
    )
    .await;
    let second = rig
        .wait_rotation("nightly", "revision 2 draining", |r| draining(r, 2))
        .await;
    let copy2 = current_id(&second);
    assert_ne!(copy2, copy1);
    assert_eq!(previous_id(&second).as_deref(), Some(copy1.as_str()));
    assert_eq!(
        requested(
            &rig,
            "POST",
            &format!("/api/v1/automations/{copy1}/actions/copy")
        )
        .await,
        1
    );
    let held = rig.automation(&copy2).await.unwrap();
    assert_eq!(
        held["name"],
        format!("Nightly export {}", marker::automation_marker(&uid, 2)),
        "the marker is replaced, not added to"
    );
    let token2 = rig.secret_value("nightly-run", "token").await.unwrap();
    assert_eq!(held["executionToken"], token2.as_str());
    assert_eq!(
        rig.secret_value("nightly-run", "token.previous").await,
        Some(token1.clone()),
        "the old token stays beside the new one during the grace period"
    );
    assert_eq!(
        rig.secret_value("nightly-run", "token.url.previous")
            .await
            .as_deref(),
        Some(admin.automation_execution_url(&copy1).as_str()),
        "with the URL it runs"
    );
    assert!(rig.automation_token_works(&token1).await);
    assert_eq!(
        template_revision(&rig.api::<Deployment>().get("nightly").await.unwrap()).as_deref(),
        Some("2")
    );

    running.advance(&rig, GRACE + Duration::from_secs(1)).await;
    let done = rig.settle("nightly", 2, READ).await;
    assert_eq!(current_id(&done), copy2);
    assert_eq!(
        rig.all_automation_ids().await,
        [copy2.clone()].into(),
        "the tenant holds exactly the current copy"
    );
    assert_eq!(rig.automations_of(&created).await.len(), 1);
    assert!(rig.automation_token_works(&token2).await);
    assert!(!rig.automation_token_works(&token1).await);
    for gone in ["token.previous", "token.url.previous"] {
        assert_eq!(rig.secret_value("nightly-run", gone).await, None, "{gone}");
    }
    assert_eq!(rig.count("automations.copy").await, 2);
    assert_eq!(rig.count("automations.delete").await, 2);
}

#[tokio::test]
async fn a_disabled_automation_is_copied_disabled() {
    let rig = Rig::start(|_| {}).await;
    let _running = Running::start(&rig, false);
    let (original, _) = rig.seed_automation("Paused sync", "disabled").await;
    rig.create(&automation_rotation(
        "paused",
        "paused-run",
        &original,
        GRACE,
    ))
    .await;
    let done = rig.settle("paused", 1, READ).await;
    let copy = rig.automation(&current_id(&done)).await.unwrap();
    assert_eq!(copy["state"], "disabled");
    assert_eq!(rig.control.count("automations.enable").await, 0);
    assert!(rig.automation(&original).await.is_none());
}

#[tokio::test]
async fn a_lost_copy_answer_is_adopted_by_its_marker_and_never_copied_twice() {
    let rig = Rig::start(|_| {}).await;
    let _running = Running::start(&rig, false);
    let (original, _) = rig.seed_automation("Webhook relay", "available").await;
    // The copy takes effect; its answer never arrives.
    rig.fault(json!({
        "method": "POST", "path": "/api/v1/automations/*/actions/copy",
        "fault": "drop", "when": "after", "times": 1,
    }))
    .await;
    let created = rig
        .create(&automation_rotation("relay", "relay-run", &original, GRACE))
        .await;
    let done = rig.settle("relay", 1, READ).await;
    assert_eq!(rig.count("automations.copy").await, 1, "copied once");
    let marked = rig.automations_of(&created).await;
    assert_eq!(marked.len(), 1, "{marked:?}");
    assert_eq!(marked[0].id, current_id(&done));
    let token = rig.secret_value("relay-run", "token").await.unwrap();
    assert_eq!(
        rig.automation(&marked[0].id).await.unwrap()["executionToken"],
        token.as_str()
    );
    let events = rig.event_counts(&created).await;
    assert_eq!(
        events.get(&("Normal".to_owned(), "Adopted".to_owned())),
        Some(&1),
        "{events:?}"
    );
    assert_eq!(
        rig.all_automation_ids().await,
        [marked[0].id.clone()].into()
    );
}

#[tokio::test]
async fn deleting_the_rotation_keeps_the_current_automation_and_deletes_the_previous_after_its_grace()
 {
    let rig = Rig::start(|_| {}).await;
    let running = Running::start_keeping_grace(&rig, false);
    let (original, _) = rig.seed_automation("Report mailer", "available").await;
    rig.create(&automation_rotation(
        "mailer",
        "mailer-run",
        &original,
        GRACE,
    ))
    .await;
    let first = rig
        .wait_rotation("mailer", "revision 1 draining", |r| draining(r, 1))
        .await;
    let copy = current_id(&first);
    rig.api::<SecretRotation>()
        .delete("mailer", &DeleteParams::default())
        .await
        .unwrap();
    rig.wait_rotation("mailer", "Ready=False Finalizing", |r| {
        condition(r, "Ready").is_some_and(|c| c.reason == "Finalizing")
    })
    .await;
    assert!(
        rig.automation(&original).await.is_some(),
        "its grace is not over"
    );
    running.advance(&rig, GRACE + Duration::from_secs(1)).await;
    support::eventually("the SecretRotation to go", DEADLINE, || async {
        rig.api::<SecretRotation>()
            .get_opt("mailer")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        rig.automation(&original).await.is_none(),
        "the previous one is deleted"
    );
    assert!(
        rig.automation(&copy).await.is_some(),
        "the current automation is the user's workload: it stays"
    );
}

#[tokio::test]
async fn a_current_automation_deleted_outside_the_operator_stalls_and_nothing_is_copied() {
    let rig = Rig::start(|_| {}).await;
    let _running = Running::start(&rig, false);
    let (original, _) = rig.seed_automation("Fragile", "available").await;
    rig.create(&automation_rotation(
        "fragile",
        "fragile-run",
        &original,
        GRACE,
    ))
    .await;
    let done = rig.settle("fragile", 1, READ).await;
    let copy = current_id(&done);
    rig.admin().delete_automation(&copy).await.unwrap();
    let stalled = rig
        .wait_rotation("fragile", "Stalled=True AutomationNotFound", |r| {
            condition(r, "Stalled")
                .is_some_and(|c| c.status == "True" && c.reason == "AutomationNotFound")
        })
        .await;
    let ready = condition(&stalled, "Ready").unwrap();
    assert_eq!(ready.status, "False");
    assert!(ready.message.contains(&copy), "{}", ready.message);
    assert_eq!(
        rig.count("automations.copy").await,
        1,
        "nothing copied again"
    );
    assert!(rig.all_automation_ids().await.is_empty());
}
