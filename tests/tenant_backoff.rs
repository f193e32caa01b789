//! A tenant's `429 Retry-After` is honoured for the whole tenant, by every controller: the
//! tenant and csp-entry controllers (run as the other suites run them, drift checks every
//! second) on a real kube-apiserver against the tenant emulator, which answers the CSP
//! paths with `429 Retry-After: 600`. However many CspEntries want to sync, the tenant
//! sees at most a handful of requests while the pause lasts: every later request fails
//! inside the operator without a network call, and each entry is requeued for the
//! pause's end; nor is any entry's status written again while it lasts, and the tenant
//! stays Ready (its credential was proven; it only asked for silence). Once the pause is
//! over, every entry syncs.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{Patch, PatchParams, PostParams};
use qlik_csp_operator::api::{CspEntry, QlikTenant};
use qlik_csp_operator::controller::tenant_clients::TenantClients;
use qlik_csp_operator::tenant::{ClientConfig, RetryPolicy};
use serde_json::{Value, json};
use support::tenant_rig::{Controller, DEADLINE, TenantRig};

const ENTRIES: usize = 30;
/// The silence the tenant asks for.
const PAUSE_SECS: u64 = 600;
/// How many reconciles of the tenant the requests are counted over, each caused by an
/// edit of the QlikTenant's annotations (while paused the controllers requeue for the
/// pause's end, so nothing else wakes them): each is a chance to call the tenant, and a
/// reconcile that ignored the pause would show up many times over.
const TENANT_RECONCILES: u64 = 20;
/// The most tenant requests allowed in the window. The first 429 starts the pause; before
/// it comes back, at most one other request can be on its way: the csp-entry controller
/// lists a tenant's entries once for all its reconciles (and writes nothing before a list
/// succeeded), and the tenant controller's requests to one tenant are sequential. So two
/// requests, plus one for a tenant check that was already in flight when the count began.
const MAX_REQUESTS: u64 = 3;

/// Both controllers, drift checks every second.
async fn start() -> TenantRig {
    start_with(None).await
}

/// With `max_retry_after`, the client waits out only pauses up to that long itself
/// (default: a minute), so that a test can see a short pause handled like a long one.
async fn start_with(max_retry_after: Option<Duration>) -> TenantRig {
    TenantRig::builder()
        .debounce(Duration::ZERO)
        .shared(move |shared| {
            if let Some(max_retry_after) = max_retry_after {
                let template = ClientConfig {
                    request_timeout: Duration::from_secs(10),
                    connect_timeout: Duration::from_secs(2),
                    retry: RetryPolicy {
                        max_retry_after,
                        ..RetryPolicy::default()
                    },
                    ..ClientConfig::new("https://set-per-tenant.invalid")
                };
                shared.tenants = TenantClients::new(template, Duration::from_secs(1))
                    .with_allowed_hosts(support::test_allowed_hosts());
            }
        })
        .run(Controller::Tenant)
        .run(Controller::CspEntry)
        .start()
        .await
}

/// What this suite asks of the rig.
impl TenantRig {
    /// The requests from the `skip`-th on, counted by operation and status.
    async fn requests_since(&self, skip: u64) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        let requests = self.control.requests().await;
        for request in requests.iter().skip(usize::try_from(skip).unwrap_or(0)) {
            let key = format!(
                "{} {}",
                request["operation"].as_str().unwrap_or("?"),
                request["status"]
            );
            *counts.entry(key).or_default() += 1;
        }
        counts
    }

    /// The resourceVersion of every CspEntry with its Ready reason (to say what changed
    /// when one moves), by name.
    async fn versions(&self) -> BTreeMap<String, (String, String)> {
        let entries = self.api::<CspEntry>().list(&Default::default()).await;
        let entries = entries.unwrap_or_else(|e| panic!("failed to list the entries: {e}"));
        entries
            .items
            .into_iter()
            .map(|e| {
                let version = e.metadata.resource_version.unwrap_or_default();
                let reason = e
                    .status
                    .as_ref()
                    .and_then(|s| condition(&s.conditions, "Ready"))
                    .map(|c| c.reason.clone())
                    .unwrap_or_default();
                (e.metadata.name.unwrap_or_default(), (version, reason))
            })
            .collect()
    }

    /// The tenant's `Ready` status and reason.
    async fn tenant_ready(&self) -> (String, String) {
        let tenant = self.api::<QlikTenant>().get("acme").await;
        let tenant = tenant.unwrap_or_else(|e| panic!("failed to read the tenant: {e}"));
        let conditions = tenant.status.map(|s| s.conditions).unwrap_or_default();
        condition(&conditions, "Ready")
            .map(|c| (c.status.clone(), c.reason.clone()))
            .unwrap_or_default()
    }

    async fn create_tenant(&self) {
        self.create_admin_secret().await;
        self.create(&self.qlik_tenant("acme", json!({ "header": { "configMapName": "csp" } })))
            .await;
    }
}

fn condition<'a>(
    conditions: &'a [k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

fn entry(index: usize) -> CspEntry {
    serde_json::from_value(json!({
        "apiVersion": "qlikops.io/v1alpha1",
        "kind": "CspEntry",
        "metadata": { "name": format!("e{index}") },
        "spec": {
            "tenantRef": { "name": "acme" },
            "origin": format!("https://paused{index}.example.com"),
            "directives": ["img-src"],
        },
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

impl TenantRig {
    /// Creates the tenant and waits until it is connected and has published its header.
    async fn ready_tenant(&self) {
        self.create_tenant().await;
        let tenants = self.api::<QlikTenant>();
        support::eventually("the tenant to be Ready", DEADLINE, || async {
            let tenant = tenants.get("acme").await.ok()?;
            let conditions = tenant.status?.conditions;
            let ready = condition(&conditions, "Ready")?;
            let published = condition(&conditions, "HeaderPublished")?;
            (ready.status == "True" && published.status == "True").then_some(())
        })
        .await;
    }

    /// The emulator answers the CSP paths with `429 Retry-After: seconds`, `times` times
    /// (always when `None`).
    async fn throttle(&self, seconds: u64, times: Option<u32>) {
        let mut fault = json!({
            "path": "/api/v1/csp-origins*", "fault": "status", "status": 429,
            "retryAfter": seconds,
        });
        if let Some(times) = times {
            fault["times"] = json!(times);
        }
        self.control.fault(fault).await;
    }

    async fn create_entries(&self) {
        let entries = self.api::<CspEntry>();
        for i in 0..ENTRIES {
            entries
                .create(&PostParams::default(), &entry(i))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// Waits until every entry's `Ready` condition, for its current generation, has
    /// `status` and one of `reasons`; on timeout, says where each entry and the tenant
    /// stand.
    async fn wait_entries(&self, what: &str, status: &str, reasons: &[&str]) {
        let entries = self.api::<CspEntry>();
        let until = tokio::time::Instant::now() + DEADLINE;
        let mut poll = tokio::time::interval(Duration::from_millis(100));
        loop {
            poll.tick().await;
            let list = entries.list(&Default::default()).await;
            let items = list.map(|l| l.items).unwrap_or_default();
            let settled = items.iter().filter(|e| {
                let Some(entry_status) = &e.status else {
                    return false;
                };
                condition(&entry_status.conditions, "Ready").is_some_and(|c| {
                    c.status == status
                        && c.observed_generation == e.metadata.generation
                        && reasons.contains(&c.reason.as_str())
                })
            });
            if settled.count() == ENTRIES {
                return;
            }
            if tokio::time::Instant::now() >= until {
                let mut seen = BTreeMap::<String, u32>::new();
                for e in &items {
                    let ready = e
                        .status
                        .as_ref()
                        .and_then(|s| condition(&s.conditions, "Ready"))
                        .map(|c| format!("{} {}: {}", c.status, c.reason, c.message));
                    *seen.entry(ready.unwrap_or_default()).or_default() += 1;
                }
                let tenant = self.api::<QlikTenant>().get("acme").await.ok();
                let tenant = tenant.and_then(|t| t.status).map(|s| s.conditions);
                panic!(
                    "timed out after {DEADLINE:?} waiting for {what}: entries {seen:#?}, tenant {tenant:#?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_tenant_that_asks_for_ten_minutes_of_silence_gets_at_most_a_handful_of_requests() {
    let h = start().await;
    h.ready_tenant().await;
    h.throttle(PAUSE_SECS, None).await;
    let before = h.control.total().await;
    h.create_entries().await;
    // Every entry has tried and recorded why it is not synced: the pause is in force. The
    // tenant stays Ready (a pause says nothing about its credential), so no entry follows
    // it to `TenantNotReady`: this is the state the pause settles in.
    h.wait_entries("every entry to report the pause", "False", &["RateLimited"])
        .await;

    // The claim is about what does not happen while the pause lasts: measured over
    // reconciles of the tenant, each waited for.
    let versions_before = h.versions().await;
    let metrics = &h.shared.runtime.metrics;
    let tenants = h.api::<QlikTenant>();
    for poke in 0..TENANT_RECONCILES {
        let since = support::reconciles::reconciles(metrics, "tenant");
        let annotation =
            json!({ "metadata": { "annotations": { "test/poke": poke.to_string() } } });
        tenants
            .patch("acme", &PatchParams::default(), &Patch::Merge(&annotation))
            .await
            .unwrap_or_else(|e| panic!("failed to annotate the tenant: {e}"));
        support::reconciles::until_reconciled(metrics, "tenant", since, 1, DEADLINE).await;
    }
    let versions_after = h.versions().await;

    let sent = h.control.total().await - before;
    let breakdown = h.requests_since(before).await;
    assert!(
        sent <= MAX_REQUESTS,
        "{sent} tenant requests over {TENANT_RECONCILES} tenant reconciles of a \
         {PAUSE_SECS} s Retry-After (at most {MAX_REQUESTS}): {breakdown:?}"
    );
    // Nor busy loops against the apiserver: each entry's status says the same on every
    // failed attempt (the message carries no countdown), so it is not written again.
    assert_eq!(
        versions_after, versions_before,
        "entries were written during the pause"
    );
    let ready = h.tenant_ready().await;
    assert_eq!(
        ready,
        ("True".to_owned(), "Connected".to_owned()),
        "the tenant's Ready changed with the pause"
    );
}

#[tokio::test]
async fn once_the_pause_is_over_every_entry_syncs_and_nothing_was_sent_during_it() {
    // The client waits out pauses up to a second itself; 10 s is "long" here, handled as
    // 600 s is in production: fail fast, requeue for the end.
    const SHORT_PAUSE_MS: u64 = 10_000;
    let h = start_with(Some(Duration::from_secs(1))).await;
    h.ready_tenant().await;
    h.throttle(SHORT_PAUSE_MS / 1000, Some(1)).await;
    let before = h.control.total().await;
    h.create_entries().await;
    h.wait_entries("every entry to be created", "True", &["Created"])
        .await;

    let requests = h.control.requests().await;
    let requests = &requests[usize::try_from(before).unwrap_or(0)..];
    let at = |r: &Value| r["atMs"].as_u64().unwrap_or(0);
    let throttled: Vec<&Value> = requests.iter().filter(|r| r["status"] == 429).collect();
    assert_eq!(throttled.len(), 1, "one 429: {throttled:?}");
    let paused_at = at(throttled[0]);
    // Requests sent before the client learnt of the pause arrive within milliseconds of
    // the 429; after that second, nothing until the pause's end.
    let during: Vec<&Value> = requests
        .iter()
        .filter(|r| at(r) > paused_at + 1_000 && at(r) < paused_at + SHORT_PAUSE_MS)
        .collect();
    assert!(during.is_empty(), "sent during the pause: {during:?}");
}
