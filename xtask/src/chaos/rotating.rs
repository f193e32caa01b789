//! One API key SecretRotation under faults, as `operator_kills` ([`super::rotation_kills`])
//! and `failover` run it: the SecretRotation and its first key, a [`Consumer`] that keeps
//! calling the tenant with whatever the Secret holds, the rotations requested, the Secret
//! checked after every fault, and at the end the counts both scenarios check; and the
//! rotation phases that `control_plane` and `failover` time their faults by. Does I/O (the
//! apiserver, the tenant).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::watcher;
use qlik_csp_operator::api::SecretRotation;
use qlik_csp_operator::api::secret_rotation::Phase;
use qlik_csp_operator::controller::secret_rotation::marker;
use serde_json::{Map, Value, json};

use super::Check;
use super::measure::{self, Logged};
use crate::bench::Bench;
use crate::bench::api_key_rotation::{self as rotation, Consumer};
use crate::bench::cluster::Tracker;
use crate::processes::Emulator;

/// The SecretRotation while faults happen to it, and what was asked of it so far.
pub struct Rotating<'a> {
    /// The scenario, for the messages it prints.
    scenario: &'static str,
    namespace: String,
    emulator: &'a Emulator,
    rotations: Api<SecretRotation>,
    secrets: Api<Secret>,
    tracker: Tracker<SecretRotation>,
    consumer: Consumer,
    uid: String,
    /// The revision of the first key, before any request.
    first: i64,
    requested: u64,
    credential_checks: u64,
    lost_credentials: u64,
}

impl<'a> Rotating<'a> {
    /// Creates SecretRotation [`rotation::NAME`], waits for its first key (an operator must
    /// be running, and leading), and starts the consumer.
    pub async fn start(
        bench: &Bench,
        namespace: &str,
        emulator: &'a Emulator,
        scenario: &'static str,
    ) -> Result<Rotating<'a>, String> {
        let rotations = rotation::create(&bench.client, namespace, "chaos consumer").await?;
        let tracker = Tracker::start(rotations.clone(), watcher::Config::default()).await?;
        let first = rotation::first_credential(&tracker).await?;
        let uid = tracker
            .read(|r| r.values().find_map(|r| r.metadata.uid.clone()))?
            .ok_or("the SecretRotation has no uid")?;
        Ok(Rotating {
            scenario,
            namespace: namespace.to_owned(),
            emulator,
            rotations,
            secrets: Api::namespaced(bench.client.clone(), namespace),
            tracker,
            consumer: Consumer::start(&bench.client, namespace, emulator),
            uid,
            first,
            requested: 0,
            credential_checks: 0,
            lost_credentials: 0,
        })
    }

    /// The SecretRotation as the watch last saw it.
    pub fn tracker(&self) -> &Tracker<SecretRotation> {
        &self.tracker
    }

    /// Asks for one more rotation.
    pub async fn request(&mut self) -> Result<(), String> {
        rotation::request(&self.rotations, &self.tracker).await?;
        self.requested += 1;
        Ok(())
    }

    pub fn requested(&self) -> u64 {
        self.requested
    }

    /// The rotations settled since the first key.
    pub fn completed(&self) -> Result<u64, String> {
        settled_since(&self.tracker, self.first)
    }

    /// Whether every requested rotation settles in time (not `?`: a rotation that never
    /// completes is a failed invariant, counted like the others).
    pub async fn settles(&self) -> bool {
        self.settles_within(rotation::ROTATION_DEADLINE).await
    }

    /// [`Rotating::settles`] with a deadline of its own (a faulty tenant's retries take
    /// longer).
    pub async fn settles_within(&self, deadline: std::time::Duration) -> bool {
        let revision = self.first + self.requested as i64;
        let settled = rotation::wait_settled(&self.tracker, revision, deadline).await;
        if let Err(e) = &settled {
            println!("{}: {e}", self.scenario);
        }
        settled.is_ok()
    }

    /// Counts a lost credential when the Secret holds no key the tenant accepts. Called
    /// right after a fault (a dead process: what it left is all there is) and at the end.
    pub async fn check_credential(&mut self) {
        self.credential_checks += 1;
        self.lost_credentials += u64::from(!secret_accepted(&self.secrets, self.emulator).await);
    }

    /// Stops the consumer, checks the Secret a last time and counts the leaked keys: the
    /// operator's (carrying the SecretRotation's marker) other than the one its status
    /// names. Call once the rotations have settled, their grace periods over.
    pub async fn finish(self) -> Result<Rotated, String> {
        let (consumer_requests, consumer_failures) = self.consumer.stop().await;
        let lost_at_end = !secret_accepted(&self.secrets, self.emulator).await;
        let current = self.tracker.read(|r| {
            r.values()
                .find_map(|r| r.status.as_ref()?.current.as_ref()?.id.clone())
        })?;
        let ours = self
            .emulator
            .admin_client(&self.namespace)?
            .find_api_keys_by_description_marker(&marker::prefix(&self.uid))
            .await
            .map_err(|e| format!("failed to list the API keys: {e}"))?;
        let leaked = ours
            .iter()
            .filter(|k| Some(&k.id) != current.as_ref())
            .count();
        Ok(Rotated {
            requested: self.requested,
            completed: settled_since(&self.tracker, self.first)?,
            consumer_requests,
            consumer_failures,
            credential_checks: self.credential_checks + 1,
            lost_credentials: self.lost_credentials + u64::from(lost_at_end),
            leaked_credentials: leaked as u64,
            uid: self.uid,
        })
    }
}

/// The rotations settled since revision `first`.
fn settled_since(tracker: &Tracker<SecretRotation>, first: i64) -> Result<u64, String> {
    let settled = tracker
        .read(|r| r.values().find_map(rotation::settled_at))?
        .unwrap_or(0);
    Ok((settled - first).max(0) as u64)
}

/// Whether the Secret holds a key the tenant accepts.
async fn secret_accepted(secrets: &Api<Secret>, emulator: &Emulator) -> bool {
    match rotation::secret_value(secrets).await {
        Some(token) => rotation::accepted(emulator.http(), &emulator.url, &token).await,
        None => false,
    }
}

/// What the rotations left.
pub struct Rotated {
    requested: u64,
    completed: u64,
    consumer_requests: u64,
    consumer_failures: u64,
    /// Secret checks (after each fault, and at the end) and the failed ones.
    credential_checks: u64,
    lost_credentials: u64,
    leaked_credentials: u64,
    uid: String,
}

impl Rotated {
    /// `rotations_completed`, `consumer_auth_failures`, `leaked_credentials` and
    /// `lost_credentials`.
    pub fn checks(&self) -> Vec<Check> {
        vec![
            Check::exactly("rotations_completed", self.completed, self.requested),
            Check::exactly("consumer_auth_failures", self.consumer_failures, 0),
            Check::exactly("leaked_credentials", self.leaked_credentials, 0),
            Check::exactly("lost_credentials", self.lost_credentials, 0),
        ]
    }

    /// The API key creates the tenant accepted in `log`, per revision of this
    /// SecretRotation (the marker in a key's description names it).
    pub fn creates_per_revision(&self, log: &[Logged]) -> BTreeMap<String, u64> {
        let ours = marker::prefix(&self.uid).to_ascii_lowercase();
        let mut creates = measure::per_subject(log, "api-keys.create", true);
        creates.retain(|description, _| description.contains(&ours));
        creates
    }

    /// For the report: what ran, and the API key creates per revision from `log`.
    pub fn to_json(&self, log: &[Logged]) -> Map<String, Value> {
        let per_revision = self.creates_per_revision(log);
        let report = json!({
            "requested": self.requested,
            "completed": self.completed,
            "consumer_requests": self.consumer_requests,
            "credential_checks": self.credential_checks,
            "api_key_creates": per_revision.values().sum::<u64>(),
            "revisions_created_more_than_once": per_revision.values().filter(|n| **n > 1).count(),
        });
        match report {
            Value::Object(fields) => fields,
            _ => Map::new(),
        }
    }
}

/// The new key published, the old one still valid until the grace period ends.
pub fn draining(rotation: &SecretRotation) -> bool {
    rotation
        .status
        .as_ref()
        .is_some_and(|s| s.phase == Phase::Draining)
}

/// The phase as the report names it (`Creating`, `Draining`, ...).
pub fn phase_of(rotation: &SecretRotation) -> Option<String> {
    rotation.status.as_ref().map(|s| format!("{:?}", s.phase))
}
