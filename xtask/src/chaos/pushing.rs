//! Data connection SecretPushes under faults, as `secret_faults`, `operator_kills` and
//! `site_faults` run them: one data connection per SecretPush on the tenant (a Qlik Cloud
//! tenant or a client-managed site), its password in a Secret that the scenario changes
//! while the faults happen, and at the end the counts. Does I/O (the apiserver, the
//! emulators' control APIs, the operator's log file).
//!
//! - `pushes_current`: connections holding their Secret's latest password once every
//!   SecretPush is Ready again (a push lost to a fault or a kill and never retried leaves
//!   an older one there);
//! - `pushed_values_leaked`: passwords, of all those ever set, that appear in the
//!   operator's log, in a SecretPush (its status included) or in an event of the
//!   namespace.
//!
//! Tenant writes per change are reported, not bounded: a kill between a push and its status
//! write rightly pushes again.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use qlik_csp_operator::api::SecretPush;
use serde_json::{Value, json};

use super::{Check, control};
use crate::bench::Bench;
use crate::bench::cluster::{self, TENANT, Tracker};
use crate::processes::Emulator;

/// Where the data connections live, read back through the emulator's control API.
#[derive(Clone)]
pub struct Site {
    /// The QlikTenant the SecretPushes name.
    tenant: String,
    /// The emulator's base URL and a client its control API accepts.
    url: String,
    http: reqwest::Client,
    /// The control API's path for data connections.
    control_path: &'static str,
    /// The connection's password field, as the SecretPush maps it.
    password_field: &'static str,
}

impl Site {
    /// The cloud emulator's tenant [`TENANT`] (`qPassword`).
    pub fn cloud(emulator: &Emulator) -> Site {
        Site {
            tenant: TENANT.to_owned(),
            url: emulator.url.clone(),
            http: emulator.http().clone(),
            control_path: "/_emulator/data-connections",
            password_field: "qPassword",
        }
    }

    /// A client-managed site's QlikTenant `tenant`, its QRS served at `url`; `http` must
    /// present the site's client certificate (`password`).
    pub fn qrs(tenant: &str, url: &str, http: reqwest::Client) -> Site {
        Site {
            tenant: tenant.to_owned(),
            url: url.to_owned(),
            http,
            control_path: "/_emulator/qrs/dataconnections",
            password_field: "password",
        }
    }
}

/// How often the operator reads each Secret again: the CRD's shortest, so that a change
/// arrives within seconds without the Secret watch (which needs list/watch on Secrets).
const POLL_EVERY: &str = "10s";
/// The Secret key holding the password.
const KEY: &str = "password";
/// How often the connections are read back while waiting for them to hold the latest
/// passwords (the emulator's control API has no watch).
const READ_BACK_EVERY: Duration = Duration::from_millis(500);

/// One SecretPush: its name (also its Secret's and its connection's) and the connection's
/// id on the tenant.
struct Connection {
    name: String,
    id: String,
}

/// The SecretPushes while faults happen to them, and every password set so far.
pub struct Pushing {
    scenario: &'static str,
    namespace: String,
    site: Site,
    secrets: Api<Secret>,
    tracker: Tracker<SecretPush>,
    connections: Vec<Connection>,
    /// Changes of every Secret so far (0: the first passwords).
    changes: u64,
    /// Every password set, oldest first; the last `connections.len()` are the current ones.
    passwords: Vec<String>,
    /// Distinguishes this run's passwords from any earlier run's in a reused log.
    run: u64,
}

impl Pushing {
    /// Seeds `count` data connections on the tenant, and creates a Secret and a SecretPush
    /// of its password for each (an operator need not run yet).
    pub async fn start(
        bench: &Bench,
        namespace: &str,
        site: Site,
        scenario: &'static str,
        count: usize,
    ) -> Result<Pushing, String> {
        let secrets: Api<Secret> = Api::namespaced(bench.client.clone(), namespace);
        let pushes: Api<SecretPush> = Api::namespaced(bench.client.clone(), namespace);
        let run = jiff::Timestamp::now().as_nanosecond() as u64;
        let mut pushing = Pushing {
            scenario,
            namespace: namespace.to_owned(),
            site,
            secrets: secrets.clone(),
            tracker: Tracker::start(pushes.clone(), watcher::Config::default()).await?,
            connections: Vec::with_capacity(count),
            changes: 0,
            passwords: Vec::new(),
            run,
        };
        for index in 0..count {
            let name = format!("chaos-push-{index}");
            let id = pushing.seed_connection(&name).await?;
            let password = pushing.password(&name);
            let secret: Secret = serde_json::from_value(json!({
                "metadata": { "name": name },
                "stringData": { KEY: password },
            }))
            .map_err(|e| e.to_string())?;
            secrets
                .create(&PostParams::default(), &secret)
                .await
                .map_err(|e| format!("failed to create Secret {name}: {e}"))?;
            pushes
                .create(&PostParams::default(), &push(&pushing.site, &name)?)
                .await
                .map_err(|e| format!("failed to create SecretPush {name}: {e}"))?;
            pushing.passwords.push(password);
            pushing.connections.push(Connection { name, id });
        }
        Ok(pushing)
    }

    /// A connection named `name` on the tenant, with a password no Secret holds.
    async fn seed_connection(&self, name: &str) -> Result<String, String> {
        let seed = json!({
            "name": name, "type": "postgres", "username": "chaos", "password": "seeded",
        });
        let url = format!("{}{}", self.site.url, self.site.control_path);
        control::create(
            &self.site.http,
            &url,
            &seed,
            &format!("data connection {name}"),
        )
        .await
    }

    /// A password unique to this run, connection and change, long enough that finding it
    /// in a log cannot be a coincidence.
    fn password(&self, name: &str) -> String {
        format!(
            "chaos-{}-{name}-{}-{:x}",
            self.scenario, self.changes, self.run
        )
    }

    /// Changes every Secret's password.
    pub async fn change(&mut self) -> Result<(), String> {
        self.changes += 1;
        for index in 0..self.connections.len() {
            let name = self.connections[index].name.clone();
            let password = self.password(&name);
            let patch = json!({ "stringData": { KEY: password } });
            self.secrets
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| format!("failed to change Secret {name}: {e}"))?;
            self.passwords.push(password);
        }
        Ok(())
    }

    /// The password each connection should hold now.
    fn current(&self) -> &[String] {
        &self.passwords[self.passwords.len() - self.connections.len()..]
    }

    /// How many connections hold their Secret's latest password.
    async fn holding_current(&self) -> Result<u64, String> {
        let mut holding = 0;
        for (connection, password) in self.connections.iter().zip(self.current()) {
            let held = self.connection(&connection.id).await?;
            holding += u64::from(held["password"].as_str() == Some(password.as_str()));
        }
        Ok(holding)
    }

    /// What the tenant holds for connection `id`, password and write count included.
    async fn connection(&self, id: &str) -> Result<Value, String> {
        let site = &self.site;
        control::get(
            &site.http,
            &format!("{}{}/{id}", site.url, site.control_path),
        )
        .await
    }

    /// Waits until every SecretPush is Ready for its generation and every connection holds
    /// its latest password; false after `deadline` (not an error: the count says so).
    pub async fn settles_within(&self, deadline: Duration) -> Result<bool, String> {
        let until = Instant::now() + deadline;
        let count = self.connections.len();
        let ready = self
            .tracker
            .wait_for("every SecretPush Ready", deadline, |pushes| {
                pushes.values().filter(|p| push_ready(p)).count() == count
            })
            .await;
        if let Err(e) = ready {
            println!("{}: {e}", self.scenario);
            return Ok(false);
        }
        loop {
            if self.holding_current().await? == count as u64 {
                return Ok(true);
            }
            if Instant::now() >= until {
                println!(
                    "{}: the data connections did not all hold their latest password within {deadline:?}",
                    self.scenario
                );
                return Ok(false);
            }
            // The emulator's control API has no watch: read back until the deadline.
            tokio::time::sleep(READ_BACK_EVERY).await;
        }
    }

    /// The counts, from the tenant, the operator's log at `operator_log`, the SecretPushes
    /// and the namespace's events. Call once the pushes have settled (or their deadline
    /// passed).
    pub async fn finish(self, bench: &Bench, operator_log: &Path) -> Result<Pushed, String> {
        let current = self.holding_current().await?;
        let mut tenant_writes = 0;
        for connection in &self.connections {
            tenant_writes += self.connection(&connection.id).await?["credentialWrites"]
                .as_u64()
                .unwrap_or(0);
        }
        let log = std::fs::read_to_string(operator_log)
            .map_err(|e| format!("failed to read {}: {e}", operator_log.display()))?;
        let objects = self.tracker.read(|pushes| {
            pushes
                .values()
                .map(|p| serde_json::to_string(p).unwrap_or_default())
                .collect::<String>()
        })?;
        let events = Api::<Event>::namespaced(bench.client.clone(), &self.namespace)
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("failed to list the events: {e}"))?;
        let events = serde_json::to_string(&events.items).unwrap_or_default();
        let leaked = found_in(&self.passwords, &[&log, &objects, &events]);
        Ok(Pushed {
            pushes: self.connections.len() as u64,
            changes: self.changes,
            current,
            tenant_writes,
            leaked,
        })
    }
}

/// How many of `secrets` appear anywhere in `texts`.
fn found_in(secrets: &[String], texts: &[&str]) -> u64 {
    secrets
        .iter()
        .filter(|secret| texts.iter().any(|text| text.contains(secret.as_str())))
        .count() as u64
}

/// A SecretPush of connection `name`'s password from Secret `name`.
fn push(site: &Site, name: &str) -> Result<SecretPush, String> {
    serde_json::from_value(json!({
        "apiVersion": "qlikops.io/v1alpha1",
        "kind": "SecretPush",
        "metadata": { "name": name },
        "spec": {
            "tenantRef": { "name": site.tenant },
            "secretName": name,
            "target": {
                "dataConnection": { "name": name, "fields": { site.password_field: KEY } },
            },
            "pollEvery": POLL_EVERY,
        },
    }))
    .map_err(|e| format!("SecretPush {name}: {e}"))
}

fn push_ready(push: &SecretPush) -> bool {
    let status = push.status.as_ref();
    cluster::is_ready(
        push,
        status.map(|s| s.conditions.as_slice()),
        status.and_then(|s| s.observed_generation),
    )
}

/// What the pushes left.
pub struct Pushed {
    pushes: u64,
    changes: u64,
    current: u64,
    tenant_writes: u64,
    leaked: u64,
}

impl Pushed {
    /// `pushes_current` and `pushed_values_leaked`.
    pub fn checks(&self) -> Vec<Check> {
        vec![
            Check::exactly("pushes_current", self.current, self.pushes),
            Check::exactly("pushed_values_leaked", self.leaked, 0),
        ]
    }

    /// For the report: what ran, and the tenant's credential writes against the fewest
    /// that could have done it (one per connection and password).
    pub fn to_json(&self) -> Value {
        json!({
            "pushes": self.pushes,
            "secret_changes": self.changes,
            "passwords_set": self.pushes * (self.changes + 1),
            "tenant_credential_writes": self.tenant_writes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_anywhere_in_any_text_counts_once() {
        let passwords = [
            "chaos-a-0-1f".to_owned(),
            "chaos-a-1-1f".to_owned(),
            "chaos-b-0-1f".to_owned(),
        ];
        let log = r#"{"msg":"pushing","value":"chaos-a-0-1f"}"#;
        let events = "note: chaos-a-0-1f and chaos-b-0-1f";
        assert_eq!(found_in(&passwords, &[log, "", events]), 2);
        assert_eq!(found_in(&passwords, &["pushed qPassword", ""]), 0);
    }
}
