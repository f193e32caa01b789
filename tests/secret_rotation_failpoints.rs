//! Crash safety, with the real `qlik-csp-operator run` binary. For every fail point of
//! `failpoint::rotation::ALL` and every credential kind that reaches it (only automation
//! tokens reach `rotation.after-copy`), a case rotates once cleanly, starts
//! the operator with `QLIKOPS_FAILPOINT=<step>` so that it aborts at that step of the second
//! rotation, checks what the crash left, and starts it again without. Then the invariants
//! hold: right after the crash the Secret holds a credential the tenant accepts; once the
//! rotation is over the tenant holds exactly what it held before, less the first credential
//! and plus the one now in the Secret. That is compared over the tenant's full API key list
//! and the OAuth client's full hint list, not over the keys carrying the operator's marker,
//! so a leaked credential counts whatever its description (for automation tokens: over
//! every automation of the tenant, and exactly one carries the marker). The rollout target
//! carries the new revision.
//!
//! The cases are generated from `point::ALL`: a new fail point gets a case (which fails
//! until [`at_the_crash`] says what the crash leaves there), and none can be left out. They
//! run a few at a time, each with a namespace and an emulator of its own (so the tenant's
//! lists are the case's alone), on the one control plane of this test binary. Each case's
//! operator logs go to `target/tmp/secret_rotation_failpoints/<case>.log`.

mod rotation_rig;
mod support;

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use qlik_csp_operator::api::SecretRotation;
use qlik_csp_operator::api::secret_rotation::{RolloutTarget, WorkloadKind};
use qlik_csp_operator::controller::secret_rotation::step::handle;
use qlik_csp_operator::failpoint::{self, rotation as point};
use rotation_rig::*;
use support::Operator;

/// Cases running at once (each runs the operator binary three times).
const PARALLEL: usize = 7;

/// Starts the operator on the rig's namespace, its logs appended to `log`.
fn operator(rig: &Rig, fail_at: Option<&str>, log: &Path) -> Operator {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    writeln!(file, "=== operator, fail point {fail_at:?}").unwrap();
    let mut operator = rig
        .env
        .operator()
        // The SecretRotation asks for the CRD's minimum, 1 m; a second keeps the run short.
        .args(["--grace-period-override", "1s"])
        .stderr(file);
    if let Some(step) = fail_at {
        operator = operator.env(failpoint::ENV, step);
    }
    operator.spawn()
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    ApiKey,
    OAuth,
    Automation,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::ApiKey, Kind::OAuth, Kind::Automation];

    /// Whether a rotation of this kind passes the fail point `step`.
    fn reaches(self, step: &str) -> bool {
        step != point::AFTER_COPY || matches!(self, Kind::Automation)
    }

    /// SecretRotation `app` (grace period 1 m, which the operator here overrides to 1 s)
    /// rolling out Deployment `app`; for automation tokens, of an automation seeded now.
    async fn rotation(self, rig: &Rig) -> SecretRotation {
        let grace = Duration::from_secs(60);
        let (secret, _) = self.secret();
        let mut rotation = match self {
            Kind::ApiKey => api_key_rotation("app", secret, grace),
            Kind::OAuth => oauth_rotation("app", secret, grace),
            Kind::Automation => {
                let (id, _) = rig.seed_automation("App trigger", "available").await;
                automation_rotation("app", secret, &id, grace)
            }
        };
        rotation.spec.rollout_targets = vec![RolloutTarget {
            kind: WorkloadKind::Deployment,
            name: "app".to_owned(),
        }];
        rotation
    }

    /// The Secret and key it writes.
    fn secret(self) -> (&'static str, &'static str) {
        match self {
            Kind::ApiKey => ("app-qlik", "token"),
            Kind::OAuth => ("app-oauth", "client-secret"),
            Kind::Automation => ("app-automation", "token"),
        }
    }

    /// The tenant read each reconcile makes once.
    fn read(self) -> &'static str {
        match self {
            Kind::ApiKey => "api-keys.list",
            Kind::OAuth => "oauth-clients.get",
            Kind::Automation => "automations.get",
        }
    }

    /// Every credential of this kind on the tenant: all API keys, all of the OAuth
    /// client's secret hints (the seeded one included), or all automations.
    async fn credentials(self, rig: &Rig) -> BTreeSet<String> {
        match self {
            Kind::ApiKey => rig.all_key_ids().await,
            Kind::OAuth => rig.hints().await.into_iter().collect(),
            Kind::Automation => rig.all_automation_ids().await,
        }
    }

    async fn works(self, rig: &Rig, value: &str) -> bool {
        match self {
            Kind::ApiKey => rig.api_key_works(value).await,
            Kind::OAuth => rig.client_secret_works(value).await,
            Kind::Automation => rig.automation_token_works(value).await,
        }
    }
}

/// What the crash at a fail point leaves, relative to the first rotation's end state.
#[derive(Debug, PartialEq, Eq)]
struct AtTheCrash {
    /// Credentials created on the tenant.
    created: usize,
    /// Credentials revoked on the tenant.
    revoked: usize,
    /// The Secret holds the new credential (else still the first).
    secret_written: bool,
    /// The Deployment's pod template names the new revision (else still the first).
    rolled_out: bool,
    /// `status.pending.created` names the created credential.
    recorded: bool,
}

/// The state each fail point is documented to stop in (see `src/failpoint.rs`).
fn at_the_crash(step: &str) -> AtTheCrash {
    let created = |secret_written, rolled_out| AtTheCrash {
        created: 1,
        revoked: 0,
        secret_written,
        rolled_out,
        recorded: false,
    };
    match step {
        point::AFTER_INTENT => AtTheCrash {
            created: 0,
            ..created(false, false)
        },
        point::AFTER_COPY | point::AFTER_CREATE => created(false, false),
        point::HELD_UNWRITTEN => AtTheCrash {
            recorded: true,
            ..created(false, false)
        },
        point::AFTER_SECRET_WRITE => created(true, false),
        point::AFTER_ROLLOUT | point::BEFORE_REVOKE => created(true, true),
        point::AFTER_REVOKE => AtTheCrash {
            revoked: 1,
            ..created(true, true)
        },
        other => panic!("say in at_the_crash what a crash at {other} leaves"),
    }
}

/// How the case's operator is made to reach `step`: the held-value step needs the Secret
/// write to fail.
async fn arrange(rig: &Rig, kind: Kind, step: &str) -> Option<FailingSecretWrites> {
    if step == point::HELD_UNWRITTEN {
        return Some(FailingSecretWrites::install(rig, kind.secret().0).await);
    }
    None
}

async fn rolled_out_revision(rig: &Rig) -> Option<String> {
    template_revision(&rig.api::<Deployment>().get("app").await.unwrap())
}

fn current_handle(rotation: &SecretRotation) -> String {
    let status = rotation.status.as_ref().unwrap();
    handle(status.current.as_ref().unwrap()).unwrap().to_owned()
}

/// Rotates once cleanly, crashes the second rotation at `step`, and recovers.
async fn crash_and_recover(kind: Kind, step: &'static str, log: PathBuf) {
    File::create(&log).unwrap();
    let rig = Rig::start(|_| {}).await;
    rig.create(&deployment("app")).await;
    let rotation = rig.create(&kind.rotation(&rig).await).await;
    let (secret, key) = kind.secret();
    let first = {
        let _clean = operator(&rig, None, &log);
        rig.settle_poked("app", 1, kind.read()).await
    };
    let first_id = current_handle(&first);
    let first_value = rig.secret_value(secret, key).await.unwrap();
    let before = kind.credentials(&rig).await;
    assert!(before.contains(&first_id), "{before:?}");

    let arranged = arrange(&rig, kind, step).await;
    rig.request_rotation(
        "app",
        jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1),
    )
    .await;
    let mut crashing = operator(&rig, Some(step), &log);
    let status = crashing
        .exited(&format!("the operator to abort at {step}"), DEADLINE)
        .await;
    assert_eq!(status.signal(), Some(libc::SIGABRT), "{status:?}");
    if let Some(arranged) = arranged {
        arranged.remove().await;
    }

    // Right after the crash: a good credential in the Secret, and the state the fail
    // point is documented to stop in.
    let value = rig.secret_value(secret, key).await.unwrap();
    assert!(
        kind.works(&rig, &value).await,
        "right after the crash the Secret holds a credential the tenant accepts"
    );
    let crashed = kind.credentials(&rig).await;
    let created: Vec<&String> = crashed.difference(&before).collect();
    let stopped = rig.rotation("app").await;
    let recorded = stopped
        .status
        .as_ref()
        .and_then(|s| s.pending.as_ref())
        .and_then(|p| p.created.as_ref())
        .and_then(handle)
        .map(str::to_owned);
    let seen = AtTheCrash {
        created: created.len(),
        revoked: before.difference(&crashed).count(),
        secret_written: value != first_value,
        rolled_out: rolled_out_revision(&rig).await.as_deref() == Some("2"),
        recorded: recorded.is_some() && recorded.as_ref() == created.first().copied(),
    };
    assert_eq!(seen, at_the_crash(step), "what the crash left");

    // Recovery.
    let done = {
        let _restarted = operator(&rig, None, &log);
        rig.settle_poked("app", 2, kind.read()).await
    };
    let current = current_handle(&done);
    let value = rig.secret_value(secret, key).await.unwrap();
    assert!(
        kind.works(&rig, &value).await,
        "the Secret's credential is accepted"
    );
    assert_ne!(value, first_value, "the Secret holds the new credential");
    assert_eq!(
        rig.secret_value(secret, &format!("{key}.previous")).await,
        None,
        "the previous value is gone after the grace period"
    );
    let after = kind.credentials(&rig).await;
    let mut expected = before.clone();
    expected.remove(&first_id);
    expected.insert(current.clone());
    assert!(!before.contains(&current), "{current} is new");
    assert_eq!(
        after, expected,
        "the tenant holds what it held before the rotation, less the first credential \
         ({first_id}) and plus the current one ({current}): nothing leaked, nothing lost"
    );
    assert!(
        !kind.works(&rig, &first_value).await,
        "the first credential is revoked"
    );
    assert_eq!(rolled_out_revision(&rig).await.as_deref(), Some("2"));
    if let Kind::Automation = kind {
        let marked: Vec<String> = rig
            .automations_of(&rotation)
            .await
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(marked, vec![current], "exactly one copy carries the marker");
    }
}

fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic without a message".to_owned()),
        Err(error) => error.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fail_point_is_recovered_for_every_credential_kind() {
    let logs = Path::new(env!("CARGO_TARGET_TMPDIR")).join("secret_rotation_failpoints");
    std::fs::create_dir_all(&logs).unwrap();
    let cases: Vec<(Kind, &'static str)> = Kind::ALL
        .into_iter()
        .flat_map(|kind| {
            point::ALL
                .into_iter()
                .filter(move |step| kind.reaches(step))
                .map(move |step| (kind, step))
        })
        .collect();
    let total = cases.len();
    let results: Vec<(String, Duration, Result<(), String>)> = futures::stream::iter(cases)
        .map(|(kind, step)| {
            let name = format!("{kind:?} at {step}");
            let log = logs.join(format!("{kind:?}-{step}.log"));
            async move {
                let started = Instant::now();
                let outcome = tokio::spawn(crash_and_recover(kind, step, log.clone()))
                    .await
                    .map_err(|e| {
                        format!("{} (operator logs: {})", panic_message(e), log.display())
                    });
                (name, started.elapsed(), outcome)
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    assert_eq!(results.len(), total);
    for (name, took, outcome) in &results {
        let verdict = if outcome.is_ok() { "ok" } else { "FAILED" };
        println!("{name}: {verdict} in {:.1}s", took.as_secs_f64());
    }
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|(name, _, outcome)| outcome.err().map(|e| format!("- {name}: {e}")))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {total} crash cases failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
