//! The operator's runtime safeguards on a real apiserver: leader election on a Lease (one
//! leader at a time, a release that clears the holder at once and a takeover after it, a
//! leader that loses the Lease notices) and
//! the tenant host allow-list (a tenant pointing at a host not allowed is refused before
//! anything is read or sent). Waits are on conditions with deadlines, never sleeps.

mod support;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::api::{Api, Patch, PatchParams};
use qlik_csp_operator::api::QlikTenant;
use qlik_csp_operator::controller::allowed_hosts::AllowedHosts;
use qlik_csp_operator::controller::leader::{Elector, LeaseSettings};
use serde_json::{Value, json};
use support::tenant_rig::{ADMIN_KEY, ADMIN_SECRET_KEY, Controller, TenantRig};
use support::{TestEnv, eventually};

const LEASE: &str = "operator-leader";
const LEASE_DURATION: Duration = Duration::from_secs(4);

fn lease_settings(env: &TestEnv, identity: &str) -> LeaseSettings {
    LeaseSettings {
        name: LEASE.to_owned(),
        namespace: env.namespace.clone(),
        identity: identity.to_owned(),
        duration: LEASE_DURATION,
    }
}

async fn lease_spec(env: &TestEnv) -> LeaseSpec {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.namespace);
    leases.get(LEASE).await.unwrap().spec.unwrap_or_default()
}

async fn holder(env: &TestEnv) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.namespace);
    let lease = leases.get_opt(LEASE).await.ok()??;
    lease.spec?.holder_identity.filter(|h| !h.is_empty())
}

#[tokio::test]
async fn one_of_two_electors_leads_and_the_other_takes_over_after_a_release() {
    let env = TestEnv::new().await;
    let a = Elector::start(env.client.clone(), lease_settings(&env, "replica-a"))
        .await
        .unwrap();
    let b = Elector::start(env.client.clone(), lease_settings(&env, "replica-b"))
        .await
        .unwrap();

    let deadline = LEASE_DURATION * 3;
    eventually("a leader", deadline, || {
        assert!(
            !(a.is_leader() && b.is_leader()),
            "both electors lead at once"
        );
        let leader = a.is_leader() || b.is_leader();
        async move { leader.then_some(()) }
    })
    .await;
    let (leader, standby, leader_id, standby_id) = if a.is_leader() {
        (a, b, "replica-a", "replica-b")
    } else {
        (b, a, "replica-b", "replica-a")
    };
    assert!(!standby.is_leader());
    assert_eq!(holder(&env).await.as_deref(), Some(leader_id));

    // The standby must not take over while the leader renews: several lease durations pass
    // while the standby stays a standby (checked on every poll).
    let renewed = tokio::time::Instant::now() + LEASE_DURATION * 2;
    eventually("two lease durations with one leader", deadline, || {
        assert!(leader.is_leader() && !standby.is_leader());
        let done = tokio::time::Instant::now() >= renewed;
        async move { done.then_some(()) }
    })
    .await;
    assert_eq!(holder(&env).await.as_deref(), Some(leader_id));

    // A release must clear the holder. A standby sleeps until the Lease it saw would
    // expire, so it cannot have taken the Lease in the moment since the release returned;
    // should it have, it must have been before the released Lease could expire.
    let before = lease_spec(&env).await;
    let released = tokio::time::Instant::now();
    leader.release().await.unwrap();
    let after = lease_spec(&env).await;
    match after.holder_identity.as_deref().filter(|h| !h.is_empty()) {
        None => {}
        Some(id) if id == standby_id => {
            let expiry = before.renew_time.expect("a held Lease has a renewTime").0
                + jiff::SignedDuration::try_from(LEASE_DURATION).unwrap();
            let acquired = after
                .acquire_time
                .expect("a taken Lease has an acquireTime")
                .0;
            assert!(
                acquired < expiry,
                "the standby took the Lease only when it expired, at {acquired}: the release \
                 did not free it"
            );
        }
        Some(id) => panic!("right after release the Lease is still held by {id:?}"),
    }
    eventually(
        "the standby to take over",
        LEASE_DURATION + Duration::from_secs(2),
        || async { standby.is_leader().then_some(()) },
    )
    .await;
    assert!(released.elapsed() <= LEASE_DURATION + Duration::from_secs(2));
    assert_eq!(holder(&env).await.as_deref(), Some(standby_id));
}

#[tokio::test]
async fn a_leader_whose_lease_is_taken_notices_it_has_lost_it() {
    let env = TestEnv::new().await;
    let mut elector = Elector::start(env.client.clone(), lease_settings(&env, "replica-a"))
        .await
        .unwrap();
    tokio::time::timeout(LEASE_DURATION * 3, elector.acquired())
        .await
        .expect("the only elector leads")
        .unwrap();

    // Someone else (a replica that saw the Lease expire) now holds it.
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.namespace);
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(jiff::Timestamp::now());
    let patch =
        json!({ "spec": { "holderIdentity": "intruder", "renewTime": now, "acquireTime": now } });
    leases
        .patch(LEASE, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();

    tokio::time::timeout(LEASE_DURATION * 2, elector.lost())
        .await
        .expect("the elector notices the Lease is no longer its own");
}

#[tokio::test]
async fn a_tenant_on_a_host_not_allowed_is_stalled_and_the_tenant_never_hears_of_it() {
    // The operator's default allow-list: Qlik Cloud only, not the emulator's 127.0.0.1.
    let mut rig = TenantRig::builder()
        .allowed_hosts(AllowedHosts::default())
        .debounce(Duration::from_millis(50))
        .start()
        .await;
    rig.create_admin_secret().await;
    // `acme` has its Secret; `ghost` has none: a SecretNotFound would mean the Secret was
    // looked up before the host was checked.
    rig.create(&rig.qlik_tenant("acme", json!({}))).await;
    let missing =
        json!({ "apiKey": { "secretRef": { "name": "missing", "key": ADMIN_SECRET_KEY } } });
    rig.create(&rig.qlik_tenant("ghost", json!({ "credentials": missing })))
        .await;
    rig.start_controller(Controller::Tenant);
    let tenants = rig.api::<QlikTenant>();

    for name in ["acme", "ghost"] {
        let tenant = eventually(
            &format!("{name} Ready=False HostNotAllowed"),
            Duration::from_secs(30),
            || async {
                let tenant = tenants.get(name).await.ok()?;
                let value = serde_json::to_value(&tenant).ok()?;
                let ready = condition(&value, "Ready")?;
                (ready["status"] == "False" && ready["reason"] == "HostNotAllowed").then_some(value)
            },
        )
        .await;
        let ready = condition(&tenant, "Ready").unwrap();
        let message = ready["message"].as_str().unwrap();
        assert!(message.contains("\"127.0.0.1\""), "{message}");
        assert!(message.contains("*.qlikcloud.com"), "{message}");
        assert!(!message.contains(ADMIN_KEY), "{message}");
        let stalled = condition(&tenant, "Stalled").expect("a host not allowed needs a user");
        assert_eq!(
            (&stalled["status"], &stalled["reason"]),
            (&json!("True"), &json!("HostNotAllowed"))
        );
        assert!(condition(&tenant, "Reconciling").is_none());
    }
    rig.stop();

    let counters = rig.control.counters().await;
    assert_eq!(
        counters["total"], 0,
        "requests reached the tenant: {counters}"
    );
}

fn condition<'a>(tenant: &'a Value, type_: &str) -> Option<&'a Value> {
    tenant["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}
