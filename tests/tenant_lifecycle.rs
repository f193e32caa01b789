//! A `QlikTenant` over its life, against a real kube-apiserver and the tenant emulator:
//! pointing it at another credential (another key of the same Secret, another OAuth
//! `clientId`) switches the operator's credential at once, and deleting tenants drops
//! everything the operator kept for them (tenant clients, remote-entry snapshots, pacing
//! state, metric series), as the in-process controllers' `/metrics` show.
//!
//! Waits are on conditions with deadlines, never sleeps.

mod support;

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::Resource;
use kube::api::DeleteParams;
use qlik_csp_operator::api::{CspEntry, QlikTenant};
use serde_json::{Value, json};
use support::tenant_rig::{ADMIN_KEY, Controller, DEADLINE, TenantRig, from_json};

const REVOKED: &str = "lifecycle-revoked-key-9876543210zyx";
const CLIENT: (&str, &str) = ("lifecycle-client", "lifecycle-client-secret-0123456789");
const OTHER_CLIENT: (&str, &str) = ("other-client", "other-client-secret-0123456789ab");
const TENANTS: usize = 200;
/// Every tenth tenant gets a CspEntry, so that the csp-entry controller keeps a snapshot of
/// its remote entries.
const ENTRY_EVERY: usize = 10;

/// Both controllers with drift checks every `drift`, against an emulator that knows two
/// OAuth clients and whose rate limits are `rate_limits`.
async fn start(drift: Duration, rate_limits: bool) -> TenantRig {
    TenantRig::builder()
        .emulator(|config| {
            config.oauth_clients = [CLIENT, OTHER_CLIENT]
                .iter()
                .map(|(id, secret)| ((*id).to_owned(), (*secret).to_owned()))
                .collect();
            config.rate_limits = rate_limits;
        })
        .debounce(Duration::ZERO)
        .drift(drift)
        .run(Controller::Tenant)
        .run(Controller::CspEntry)
        .start()
        .await
}

/// What this suite asks of the rig.
impl TenantRig {
    /// Creates the Secret `qlik` with `data`.
    async fn create_qlik_secret(&self, data: &[(&str, &str)]) {
        self.create_secret("qlik", data).await;
    }

    fn tenant(&self, name: &str, credentials: Value, header: Option<Value>) -> QlikTenant {
        let mut spec = json!({ "credentials": credentials });
        if let Some(header) = header {
            spec["header"] = header;
        }
        self.qlik_tenant(name, spec)
    }

    /// Waits until `Ready` describes the tenant's generation `generation`, and returns its
    /// status and reason.
    async fn ready_for(&self, name: &str, generation: Option<i64>) -> (String, String) {
        let what = format!("QlikTenant {name} Ready for generation {generation:?}");
        self.wait_tenant(name, &what, |tenant| {
            let status = tenant.status.as_ref()?;
            let ready = status.conditions.iter().find(|c| c.type_ == "Ready")?;
            (ready.observed_generation == generation && status.observed_generation == generation)
                .then(|| (ready.status.clone(), ready.reason.clone()))
        })
        .await
    }

    /// What the operator keeps per tenant, from its `/metrics` text; `None` until the
    /// tenant controller reports its caches.
    fn kept(&self) -> Option<Kept> {
        let text = self.shared.runtime.metrics.encode(jiff::Timestamp::now());
        let cache = |name: &str| {
            let prefix = format!("qlikops_tenant_cache_entries{{cache=\"{name}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .and_then(|v| v.trim().parse().ok())
        };
        Some(Kept {
            clients: cache("tenant-clients")?,
            remote_entries: cache("remote-entries")?,
            header_state: cache("header-state")?,
            header_series: text
                .lines()
                .filter(|l| l.starts_with("qlikops_header_bytes{"))
                .count(),
        })
    }

    /// Waits until what is kept satisfies `done`; fails with the last observation.
    async fn wait_kept(
        &self,
        what: &str,
        deadline: Duration,
        done: impl Fn(&Kept) -> bool,
    ) -> Kept {
        let until = Instant::now() + deadline;
        let mut poll = tokio::time::interval(Duration::from_millis(250));
        loop {
            poll.tick().await;
            let kept = self.kept();
            if let Some(kept) = kept.filter(&done) {
                return kept;
            }
            assert!(
                Instant::now() < until,
                "timed out after {deadline:?} waiting for {what}; kept: {kept:?}"
            );
        }
    }
}

/// What the operator keeps per tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Kept {
    clients: usize,
    remote_entries: usize,
    header_state: usize,
    header_series: usize,
}

fn api_key(key: &str) -> Value {
    json!({ "apiKey": { "secretRef": { "name": "qlik", "key": key } } })
}

#[tokio::test]
async fn another_key_of_the_same_secret_is_used_at_once() {
    let h = start(Duration::from_secs(1), true).await;
    h.create_qlik_secret(&[("current", ADMIN_KEY), ("revoked", REVOKED)])
        .await;
    let created = h.create(&h.tenant("acme", api_key("current"), None)).await;
    let ready = h.ready_for("acme", created.meta().generation).await;
    assert_eq!(ready, ("True".to_owned(), "Connected".to_owned()));

    // The Secret does not change; only which of its keys the tenant reads.
    let switched = h
        .patch_tenant_spec("acme", json!({ "credentials": api_key("revoked") }))
        .await;
    let ready = h.ready_for("acme", switched.meta().generation).await;
    assert_eq!(
        ready,
        ("False".to_owned(), "Unauthorized".to_owned()),
        "the operator still authenticates with the key the tenant no longer names"
    );

    let back = h
        .patch_tenant_spec("acme", json!({ "credentials": api_key("current") }))
        .await;
    let ready = h.ready_for("acme", back.meta().generation).await;
    assert_eq!(ready, ("True".to_owned(), "Connected".to_owned()));
}

#[tokio::test]
async fn another_oauth_client_id_is_used_at_once() {
    let h = start(Duration::from_secs(1), true).await;
    h.create_qlik_secret(&[("secret", CLIENT.1)]).await;
    let oauth = |client_id: &str| json!({ "oauthClient": { "clientId": client_id, "secretRef": { "name": "qlik", "key": "secret" } } });
    let created = h.create(&h.tenant("acme", oauth(CLIENT.0), None)).await;
    let ready = h.ready_for("acme", created.meta().generation).await;
    assert_eq!(ready, ("True".to_owned(), "Connected".to_owned()));

    // The other client exists, but the Secret holds this client's secret, not its own.
    let switched = h
        .patch_tenant_spec("acme", json!({ "credentials": oauth(OTHER_CLIENT.0) }))
        .await;
    let ready = h.ready_for("acme", switched.meta().generation).await;
    assert_eq!(
        ready,
        ("False".to_owned(), "Unauthorized".to_owned()),
        "the operator still authenticates as the client the tenant no longer names"
    );
}

#[tokio::test]
async fn churning_200_tenants_leaves_no_client_cache_or_metric_series_behind() {
    // Drift checks every minute: the test is about what is kept, not about the tenant's
    // rate limits, which 200 tenants of one emulator would otherwise exceed.
    let h = start(Duration::from_secs(60), false).await;
    h.create_qlik_secret(&[("key", ADMIN_KEY)]).await;
    let baseline = h.wait_kept("the caches reported", DEADLINE, |_| true).await;
    assert_eq!(baseline.header_series, 0, "{baseline:?}");

    let names: Vec<String> = (0..TENANTS).map(|i| format!("t{i:03}")).collect();
    let with_entry = names.iter().step_by(ENTRY_EVERY).count();
    let h = &h;
    futures::stream::iter(names.iter().enumerate())
        .map(|(i, name)| {
            let header = json!({
                "configMapName": format!("{name}-csp"),
                "source": "Local",
                "baseDirectives": { "default-src": ["'self'"] },
            });
            let tenant = h.tenant(name, api_key("key"), Some(header));
            let entry: Option<CspEntry> = (i % ENTRY_EVERY == 0).then(|| {
                from_json(json!({
                    "apiVersion": "qlikops.io/v1alpha1",
                    "kind": "CspEntry",
                    "metadata": { "name": format!("{name}-entry") },
                    "spec": {
                        "tenantRef": { "name": name },
                        "origin": format!("https://{name}.example.com"),
                        "directives": ["img-src"],
                    },
                }))
            });
            async move {
                h.create(&tenant).await;
                if let Some(entry) = entry {
                    h.create(&entry).await;
                }
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;

    // Every tenant connected and published, so every cache holds it.
    let started = Instant::now();
    h.wait_kept(
        &format!("the caches to hold {TENANTS} tenants"),
        Duration::from_secs(240),
        |kept| {
            kept.clients >= baseline.clients + TENANTS
                && kept.header_state >= baseline.header_state + TENANTS
                && kept.header_series >= TENANTS
                && kept.remote_entries >= baseline.remote_entries + with_entry
        },
    )
    .await;

    eprintln!("{TENANTS} tenants published in {:?}", started.elapsed());
    let started = Instant::now();
    let tenants = h.api::<QlikTenant>();
    futures::stream::iter(&names)
        .map(|name| {
            let tenants = tenants.clone();
            async move { tenants.delete(name, &DeleteParams::default()).await }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_or_else(|e| panic!("failed to delete a tenant: {e}"));

    // The CspEntries stay, still naming their (deleted) tenants: that keeps nothing.
    h.wait_kept(
        "every cache and metric series back to the baseline",
        Duration::from_secs(120),
        |kept| *kept == baseline,
    )
    .await;
    eprintln!(
        "{TENANTS} tenants deleted and forgotten in {:?}",
        started.elapsed()
    );
}
