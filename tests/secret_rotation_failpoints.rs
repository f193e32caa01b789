//! Crash safety, with the real `qlik-csp-operator run` binary: it is started with
//! `QLIKOPS_FAILPOINT=<step>`, aborts at that step of a rotation, and is started again
//! without it. Then the invariants hold: the Secret always held a credential the tenant
//! accepts, and once the rotation is over exactly one credential the operator created
//! remains (no leaked key or secret, no lost token).

mod rotation_rig;
mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use qlik_csp_operator::failpoint::{self, rotation as point};
use rotation_rig::*;

/// Kills the operator when dropped (the test ends, passes or panics).
struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn operator(rig: &Rig, fail_at: Option<&str>) -> Operator {
    let mut command = Command::new(env!("CARGO_BIN_EXE_qlik-csp-operator"));
    command
        .args(["run", "--namespace", rig.ns(), "--log-format", "text"])
        .args(["--allowed-tenant-hosts", "127.0.0.1"])
        .args(["--metrics-address", "127.0.0.1:0"])
        .env("KUBECONFIG", &rig.env.control_plane.kubeconfig)
        .env_remove(failpoint::ENV)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(step) = fail_at {
        command.env(failpoint::ENV, step);
    }
    Operator(command.spawn().unwrap())
}

async fn exited(operator: &mut Operator, what: &str) -> ExitStatus {
    support::eventually(what, DEADLINE, || {
        let status = operator.0.try_wait().unwrap();
        async move { status }
    })
    .await
}

enum Kind {
    ApiKey,
    OAuth,
}

/// Rotates once cleanly, then crashes the second rotation at `step` and restarts.
async fn crash_and_recover(kind: Kind, step: &str) {
    let rig = Rig::start(|_| {}).await;
    let grace = Duration::from_secs(1);
    let (rotation, secret, key) = match kind {
        Kind::ApiKey => (
            api_key_rotation("app", "app-qlik", grace),
            "app-qlik",
            "token",
        ),
        Kind::OAuth => (
            oauth_rotation("app", "app-oauth", grace),
            "app-oauth",
            "client-secret",
        ),
    };
    let created = rig.create(&rotation).await;
    {
        let _clean = operator(&rig, None);
        rig.wait_settled("app", 1).await;
    }
    let works = |value: String| {
        let rig = &rig;
        let api_key = matches!(kind, Kind::ApiKey);
        async move {
            if api_key {
                rig.api_key_works(&value).await
            } else {
                rig.client_secret_works(&value).await
            }
        }
    };

    rig.request_rotation(
        "app",
        jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1),
    )
    .await;
    let mut crashing = operator(&rig, Some(step));
    let status = exited(&mut crashing, &format!("the operator to abort at {step}")).await;
    assert_eq!(status.signal(), Some(libc::SIGABRT), "{step}: {status:?}");
    let value = rig.secret_value(secret, key).await.unwrap();
    assert!(
        works(value).await,
        "{step}: right after the crash the Secret holds a good credential"
    );
    if step == point::AFTER_CREATE {
        // The crash stranded a credential whose value is lost: recovery must remove it.
        let stranded = match kind {
            Kind::ApiKey => rig.keys_of(&created).await.len(),
            Kind::OAuth => rig.hints().await.len() - 1,
        };
        assert_eq!(stranded, 2, "the current credential and the stranded one");
    }

    {
        let _restarted = operator(&rig, None);
        let done = rig.wait_settled("app", 2).await;
        let value = rig.secret_value(secret, key).await.unwrap();
        assert!(
            works(value).await,
            "{step}: the Secret's credential is accepted"
        );
        assert_eq!(
            rig.secret_value(secret, &format!("{key}.previous")).await,
            None,
            "{step}: the previous value is gone after the grace period"
        );
        let current = done.status.unwrap().current.unwrap();
        match kind {
            Kind::ApiKey => {
                let keys = rig.keys_of(&created).await;
                let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
                assert_eq!(
                    ids,
                    vec![current.id.as_deref().unwrap()],
                    "{step}: exactly one key"
                );
            }
            Kind::OAuth => {
                let mut hints = rig.hints().await;
                hints.sort();
                let seeded = CLIENT_SECRET[CLIENT_SECRET.len() - 4..].to_owned();
                let mut expected = vec![seeded, current.hint.unwrap()];
                expected.sort();
                assert_eq!(
                    hints, expected,
                    "{step}: the seeded secret and exactly one rotated one"
                );
            }
        }
    }
}

#[tokio::test]
async fn api_key_crash_after_intent() {
    crash_and_recover(Kind::ApiKey, point::AFTER_INTENT).await;
}

#[tokio::test]
async fn api_key_crash_after_create() {
    crash_and_recover(Kind::ApiKey, point::AFTER_CREATE).await;
}

#[tokio::test]
async fn api_key_crash_after_secret_write() {
    crash_and_recover(Kind::ApiKey, point::AFTER_SECRET_WRITE).await;
}

#[tokio::test]
async fn api_key_crash_after_rollout() {
    crash_and_recover(Kind::ApiKey, point::AFTER_ROLLOUT).await;
}

#[tokio::test]
async fn api_key_crash_before_revoke() {
    crash_and_recover(Kind::ApiKey, point::BEFORE_REVOKE).await;
}

#[tokio::test]
async fn api_key_crash_after_revoke() {
    crash_and_recover(Kind::ApiKey, point::AFTER_REVOKE).await;
}

#[tokio::test]
async fn oauth_secret_crash_after_create() {
    crash_and_recover(Kind::OAuth, point::AFTER_CREATE).await;
}

#[tokio::test]
async fn oauth_secret_crash_after_secret_write() {
    crash_and_recover(Kind::OAuth, point::AFTER_SECRET_WRITE).await;
}

#[tokio::test]
async fn every_rotation_fail_point_is_covered() {
    let covered = [
        point::AFTER_INTENT,
        point::AFTER_CREATE,
        point::AFTER_SECRET_WRITE,
        point::AFTER_ROLLOUT,
        point::BEFORE_REVOKE,
        point::AFTER_REVOKE,
    ];
    assert_eq!(covered, point::ALL);
}
